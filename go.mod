module github.com/fabrictrace/fabrictrace

go 1.26

require github.com/Cistern/sflow v0.0.0-20240622235316-ed105e3cf9fb

require (
	golang.org/x/sync v0.18.0 // indirect
	golang.org/x/sys v0.38.0 // indirect
)
