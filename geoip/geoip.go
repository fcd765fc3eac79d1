// Package geoip reads MaxMind's legacy GeoIP country databases (the
// GeoIP.dat and GeoIPv6.dat that Debian's geoip-database package installs
// in /usr/share/GeoIP) for the country: flow key. A database is a binary
// tree over the address bits, read whole into memory; a lookup walks at
// most 32 (or 128) nodes and allocates nothing.
package geoip

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
)

// Database editions this package reads (the byte after the structure
// info's 0xFFFFFF marker).
const (
	editionCountry   = 1
	editionCountryV6 = 12
)

const (
	countryBegin  = 16776960 // a record at or past it is a leaf: country id + countryBegin
	recordLength  = 3
	structInfoMax = 20
)

// ErrFormat is a file that is not a legacy GeoIP country database.
var ErrFormat = errors.New("not a GeoIP legacy country database")

// table is one database: the tree, and whether it is over IPv6.
type table struct {
	tree []byte
	v6   bool
}

// DB answers the country of an address from an IPv4 and an IPv6 database,
// either of which may be missing. It is safe for concurrent use.
type DB struct {
	v4, v6 *table
	Files  []string // the files it was opened from
}

// Open reads the given database files: each is an IPv4 or an IPv6 country
// edition, at most one of each.
func Open(paths ...string) (*DB, error) {
	db := &DB{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("geoip: %w", err)
		}
		t, err := parse(b)
		if err != nil {
			return nil, fmt.Errorf("geoip: %s: %w", p, err)
		}
		slot := &db.v4
		if t.v6 {
			slot = &db.v6
		}
		if *slot != nil {
			return nil, fmt.Errorf("geoip: %s: a second %s database", p, map[bool]string{false: "IPv4", true: "IPv6"}[t.v6])
		}
		*slot = t
		db.Files = append(db.Files, p)
	}
	if db.v4 == nil && db.v6 == nil {
		return nil, errors.New("geoip: no database files given")
	}
	return db, nil
}

// parse finds the edition in the structure info at the end of the file.
// A file without one is an IPv4 country edition, as the C library reads it.
func parse(b []byte) (*table, error) {
	edition := editionCountry
	for i, p := 0, len(b)-3; i < structInfoMax && p >= 0; i, p = i+1, p-1 {
		if b[p] == 0xFF && b[p+1] == 0xFF && b[p+2] == 0xFF {
			if p+3 >= len(b) {
				return nil, fmt.Errorf("%w: structure info cut short at offset %d", ErrFormat, p)
			}
			edition = int(b[p+3])
			if edition >= 106 { // editions of the old numbering
				edition -= 105
			}
			break
		}
	}
	switch edition {
	case editionCountry:
		return &table{tree: b}, nil
	case editionCountryV6:
		return &table{tree: b, v6: true}, nil
	}
	return nil, fmt.Errorf("%w: edition %d (want the country edition, 1, or its IPv6 form, 12)", ErrFormat, edition)
}

// Country returns the address's ISO 3166 code ("US"), or false when the
// database has no country for it (private and reserved space) or no
// database covers its family.
func (db *DB) Country(a netip.Addr) (string, bool) {
	a = a.Unmap()
	t := db.v4
	if a.Is6() {
		t = db.v6
	}
	if t == nil {
		return "", false
	}
	id, ok := t.lookup(a)
	if !ok || id <= 0 || id >= len(codes) {
		return "", false
	}
	return codes[id], true
}

// lookup walks the tree by the address's bits, most significant first.
func (t *table) lookup(a netip.Addr) (int, bool) {
	var bits [16]byte
	n := 32
	if a.Is4() {
		b4 := a.As4()
		if t.v6 { // an IPv4 address in the IPv6 tree: ::a.b.c.d
			copy(bits[12:], b4[:])
			n = 128
		} else {
			copy(bits[:], b4[:])
		}
	} else {
		bits, n = a.As16(), 128
	}
	offset := 0
	for depth := 0; depth < n; depth++ {
		at := offset * 2 * recordLength
		if at+2*recordLength > len(t.tree) {
			return 0, false // a corrupt tree points past its end
		}
		r := t.tree[at:]
		if bits[depth/8]&(0x80>>(depth%8)) != 0 {
			r = r[recordLength:]
		}
		x := int(r[0]) | int(r[1])<<8 | int(r[2])<<16
		if x >= countryBegin {
			return x - countryBegin, true
		}
		offset = x
	}
	return 0, false
}

// codes are the legacy databases' country ids, as libGeoIP 1.6 names them.
var codes = [...]string{"--", "AP", "EU", "AD", "AE", "AF", "AG", "AI", "AL", "AM", "CW",
	"AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AZ", "BA", "BB",
	"BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BM", "BN", "BO",
	"BR", "BS", "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD",
	"CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR",
	"CU", "CV", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO",
	"DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ",
	"FK", "FM", "FO", "FR", "SX", "GA", "GB", "GD", "GE", "GF",
	"GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT",
	"GU", "GW", "GY", "HK", "HM", "HN", "HR", "HT", "HU", "ID",
	"IE", "IL", "IN", "IO", "IQ", "IR", "IS", "IT", "JM", "JO",
	"JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW",
	"KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT",
	"LU", "LV", "LY", "MA", "MC", "MD", "MG", "MH", "MK", "ML",
	"MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV",
	"MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI",
	"NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF",
	"PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW",
	"PY", "QA", "RE", "RO", "RU", "RW", "SA", "SB", "SC", "SD",
	"SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO",
	"SR", "ST", "SV", "SY", "SZ", "TC", "TD", "TF", "TG", "TH",
	"TJ", "TK", "TM", "TN", "TO", "TL", "TR", "TT", "TV", "TW",
	"TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE",
	"VG", "VI", "VN", "VU", "WF", "WS", "YE", "YT", "RS", "ZA",
	"ZM", "ME", "ZW", "A1", "A2", "O1", "AX", "GG", "IM", "JE",
	"BL", "MF", "BQ", "SS"}
