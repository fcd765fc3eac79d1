// Package oui names the organization a MAC address's first three bytes
// were assigned to (the IEEE MA-L registry), for the oui: flow key. The
// table ships with the project (oui.tsv.gz, made by gen.go from Debian's
// ieee-data) and is read on first use.
package oui

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"strconv"
	"strings"
	"sync"
)

//go:generate go run gen.go

//go:embed oui.tsv.gz
var table []byte

var (
	once  sync.Once
	names map[uint32]string
)

// Name returns the organization of the MAC address's OUI (its top 24 bits
// of 48), or false for one not in the registry, such as a locally
// administered address.
func Name(mac uint64) (string, bool) {
	once.Do(load)
	n, ok := names[uint32(mac>>24)&0xFFFFFF]
	return n, ok
}

// Len is how many assignments the table holds.
func Len() int {
	once.Do(load)
	return len(names)
}

func load() {
	names = map[uint32]string{}
	zr, err := gzip.NewReader(bytes.NewReader(table))
	if err != nil {
		panic("oui: the embedded table is corrupt: " + err.Error())
	}
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		hex, name, ok := strings.Cut(sc.Text(), "\t")
		v, err := strconv.ParseUint(hex, 16, 32)
		if !ok || err != nil || len(hex) != 6 {
			panic("oui: the embedded table has a bad line: " + sc.Text())
		}
		names[uint32(v)] = name
	}
	if err := sc.Err(); err != nil {
		panic("oui: the embedded table is corrupt: " + err.Error())
	}
}
