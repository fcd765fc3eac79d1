package flows

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// kind says what a field value holds.
type kind uint8

const (
	missing kind = iota
	num
	addr
	mac
	str
)

// value is one extracted key field. Strings are interned (id), so a value
// can be written into a flow key and read back without allocating.
type value struct {
	kind kind
	n    uint64 // num; mac in the low 48 bits; str: the interned id
	a    netip.Addr
	s    string // str only
}

func numValue(n uint64) value { return value{kind: num, n: n} }

func addrValue(a netip.Addr) value {
	if !a.IsValid() {
		return value{}
	}
	return value{kind: addr, a: a}
}

// appendText writes v as sFlow-RT prints it: decimal numbers, dotted or
// colon addresses, MACs as 12 upper-case hex digits.
func (v value) appendText(b []byte) []byte {
	switch v.kind {
	case num:
		return strconv.AppendUint(b, v.n, 10)
	case addr:
		return v.a.AppendTo(b)
	case mac:
		const hexdigits = "0123456789ABCDEF"
		for i := 40; i >= 0; i -= 8 {
			c := byte(v.n >> i)
			b = append(b, hexdigits[c>>4], hexdigits[c&15])
		}
		return b
	case str:
		return append(b, v.s...)
	}
	return b
}

// appendKey writes v into a binary flow key: a kind byte, then a fixed
// width payload, so distinct values never encode alike.
func (v value) appendKey(b []byte) []byte {
	b = append(b, byte(v.kind))
	switch v.kind {
	case num, mac, str:
		b = binary.BigEndian.AppendUint64(b, v.n)
	case addr:
		a := v.a.As16()
		b = append(b, a[:]...)
		if v.a.Is4() {
			b = append(b, 4)
		} else {
			b = append(b, 6)
		}
	}
	return b
}

// readKey reads back a value written by appendKey; in resolves strings.
func readKey(b []byte, in *interner) (value, []byte) {
	v := value{kind: kind(b[0])}
	b = b[1:]
	switch v.kind {
	case num, mac, str:
		v.n = binary.BigEndian.Uint64(b)
		b = b[8:]
		if v.kind == str {
			v.s = in.lookup(uint32(v.n))
		}
	case addr:
		a := netip.AddrFrom16([16]byte(b[:16]))
		if b[16] == 4 {
			a = a.Unmap()
		}
		v.a = a
		b = b[17:]
	}
	return v, b
}

// interner gives strings small stable ids. It is capped: past maxStrings it
// refuses new strings, and the key that needed one counts as missing.
type interner struct {
	ids     map[string]uint32
	strs    []string
	refused uint64
}

const maxStrings = 1 << 16

func newInterner() *interner { return &interner{ids: map[string]uint32{}} }

// id interns b; it allocates only for a string it has not seen.
func (in *interner) id(b []byte) (uint32, string, bool) {
	if id, ok := in.ids[string(b)]; ok {
		return id, in.strs[id], true
	}
	return in.add(string(b))
}

// idString interns s.
func (in *interner) idString(s string) (uint32, string, bool) {
	if id, ok := in.ids[s]; ok {
		return id, in.strs[id], true
	}
	return in.add(s)
}

func (in *interner) add(s string) (uint32, string, bool) {
	if len(in.strs) >= maxStrings {
		in.refused++
		return 0, "", false
	}
	id := uint32(len(in.strs))
	in.ids[s] = id
	in.strs = append(in.strs, s)
	return id, s, true
}

func (in *interner) lookup(id uint32) string {
	if int(id) < len(in.strs) {
		return in.strs[id]
	}
	return ""
}
