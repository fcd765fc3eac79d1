// Package web serves fabrictrace over HTTP: the sFlow-RT compatible REST API
// and the embedded dashboard. It reads from the flow engine and the RIB and
// never reaches back into ingest.
//
// It arrives with the REST API and dashboard issues.
package web
