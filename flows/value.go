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
	addr4
	addr6
	mac
	str
	prefix4
	prefix6
)

// prefixKind is the prefix kind for an address kind.
func prefixKind(k kind) kind {
	if k == addr4 {
		return prefix4
	}
	return prefix6
}

// value is one extracted key field, 24 bytes that copy cheaply: numbers,
// MACs and interned string ids in n, addresses as two halves.
type value struct {
	kind kind
	bits uint8  // a prefix's length
	n    uint64 // num; mac in the low 48 bits; str: the interned id; an address's low half
	hi   uint64 // an address's high half
}

func numValue(n uint64) value { return value{kind: num, n: n} }

func addrValue(a netip.Addr) value {
	if !a.IsValid() {
		return value{}
	}
	b := a.As16()
	k := addr6
	if a.Is4() {
		k = addr4
	}
	return value{kind: k, hi: binary.BigEndian.Uint64(b[:8]), n: binary.BigEndian.Uint64(b[8:])}
}

func (v value) isAddr() bool { return v.kind == addr4 || v.kind == addr6 }

func (v value) addr() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], v.hi)
	binary.BigEndian.PutUint64(b[8:], v.n)
	a := netip.AddrFrom16(b)
	if v.kind == addr4 || v.kind == prefix4 {
		a = a.Unmap()
	}
	return a
}

func (v value) prefix() netip.Prefix { return netip.PrefixFrom(v.addr(), int(v.bits)) }

// appendText writes v as sFlow-RT prints it: decimal numbers, dotted or
// colon addresses, MACs as 12 upper-case hex digits.
func (v value) appendText(b []byte, in *interner) []byte {
	switch v.kind {
	case num:
		return strconv.AppendUint(b, v.n, 10)
	case addr4, addr6:
		return v.addr().AppendTo(b)
	case mac:
		const hexdigits = "0123456789ABCDEF"
		for i := 40; i >= 0; i -= 8 {
			c := byte(v.n >> i)
			b = append(b, hexdigits[c>>4], hexdigits[c&15])
		}
		return b
	case str:
		return append(b, in.lookup(uint32(v.n))...)
	case prefix4, prefix6:
		return v.prefix().AppendTo(b)
	}
	return b
}

// appendKey writes v into a binary flow key: a kind byte, then a payload of
// the kind's fixed width, so distinct values never encode alike.
func (v value) appendKey(b []byte) []byte {
	b = append(b, byte(v.kind))
	switch v.kind {
	case num, mac, str:
		b = binary.BigEndian.AppendUint64(b, v.n)
	case addr4:
		b = binary.BigEndian.AppendUint32(b, uint32(v.n))
	case addr6:
		b = binary.BigEndian.AppendUint64(b, v.hi)
		b = binary.BigEndian.AppendUint64(b, v.n)
	case prefix4:
		b = binary.BigEndian.AppendUint32(b, uint32(v.n))
		b = append(b, v.bits)
	case prefix6:
		b = binary.BigEndian.AppendUint64(b, v.hi)
		b = binary.BigEndian.AppendUint64(b, v.n)
		b = append(b, v.bits)
	}
	return b
}

// readKey reads back a value written by appendKey.
func readKey(b []byte) (value, []byte) {
	v := value{kind: kind(b[0])}
	b = b[1:]
	switch v.kind {
	case num, mac, str:
		v.n = binary.BigEndian.Uint64(b)
		b = b[8:]
	case addr4:
		v.n = 0xFFFF<<32 | uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	case addr6:
		v.hi = binary.BigEndian.Uint64(b)
		v.n = binary.BigEndian.Uint64(b[8:])
		b = b[16:]
	case prefix4:
		v.n = 0xFFFF<<32 | uint64(binary.BigEndian.Uint32(b))
		v.bits = b[4]
		b = b[5:]
	case prefix6:
		v.hi = binary.BigEndian.Uint64(b)
		v.n = binary.BigEndian.Uint64(b[8:])
		v.bits = b[16]
		b = b[17:]
	}
	return v, b
}

// interner gives strings small stable ids. It is capped: past maxStrings it
// refuses new strings, and the key that needed one counts as missing, until
// the engine's sweep finds which ids no flow key holds and frees them
// (reclaim): a key refused comes back once the strings behind it are gone.
type interner struct {
	ids     map[string]uint32
	strs    []string
	free    []uint32 // ids released, for reuse
	refused uint64
	freed   uint64
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
	var id uint32
	switch n := len(in.free); {
	case n > 0:
		id, in.free = in.free[n-1], in.free[:n-1]
		in.strs[id] = s
	case len(in.strs) < maxStrings:
		id = uint32(len(in.strs))
		in.strs = append(in.strs, s)
	default:
		in.refused++
		return 0, "", false
	}
	in.ids[s] = id
	return id, s, true
}

// held is how many ids are in use.
func (in *interner) held() int { return len(in.strs) - len(in.free) }

// release frees every id not marked used. Nothing may hold an id it frees.
func (in *interner) release(used []bool) {
	for id, s := range in.strs {
		if !used[id] && in.ids[s] == uint32(id) && s != "" {
			delete(in.ids, s)
			in.strs[id] = ""
			in.free = append(in.free, uint32(id))
			in.freed++
		}
	}
}

// markKey marks the string ids in a binary key (appendKey's values, end to
// end).
func markKey(used []bool, key []byte) {
	for len(key) > 0 {
		var v value
		v, key = readKey(key)
		if v.kind == str && v.n < uint64(len(used)) {
			used[v.n] = true
		}
	}
}

func (in *interner) lookup(id uint32) string {
	if int(id) < len(in.strs) {
		return in.strs[id]
	}
	return ""
}
