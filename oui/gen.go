//go:build ignore

// gen writes oui.tsv.gz, the table package oui ships, from the IEEE's
// MA-L registry as Debian's ieee-data package installs it:
//
//	apt-get install ieee-data && go generate ./oui/
package main

import (
	"compress/gzip"
	"encoding/csv"
	"fmt"
	"log"
	"os"
	"sort"
	"strings"
)

func main() {
	const src = "/usr/share/ieee-data/oui.csv"
	f, err := os.Open(src)
	if err != nil {
		log.Fatalf("%v (apt-get install ieee-data)", err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		log.Fatalf("%s: %v", src, err)
	}
	var lines []string
	for _, r := range rows[1:] {
		if len(r) < 3 || len(r[1]) != 6 {
			continue
		}
		name := strings.Join(strings.Fields(r[2]), " ")
		lines = append(lines, strings.ToUpper(r[1])+"\t"+name+"\n")
	}
	sort.Strings(lines)
	out, err := os.Create("oui.tsv.gz")
	if err != nil {
		log.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(out, gzip.BestCompression)
	for _, l := range lines {
		fmt.Fprint(zw, l)
	}
	if err := zw.Close(); err != nil {
		log.Fatal(err)
	}
	if err := out.Close(); err != nil {
		log.Fatal(err)
	}
	log.Printf("oui.tsv.gz: %d assignments from %s", len(lines), src)
}
