package keys

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// Kind says what a field value holds.
type Kind uint8

const (
	Missing Kind = iota
	Num
	Addr4
	Addr6
	MAC
	Str
	Prefix4
	Prefix6
)

// PrefixKind is the prefix kind for an address kind.
func PrefixKind(k Kind) Kind {
	if k == Addr4 {
		return Prefix4
	}
	return Prefix6
}

// Value is one extracted key field, 24 bytes that copy cheaply: numbers,
// MACs and interned string ids in n, addresses as two halves.
type Value struct {
	Kind Kind
	Bits uint8  // a prefix's length
	N    uint64 // num; mac in the low 48 bits; str: the interned id; an address's low half
	Hi   uint64 // an address's high half
}

func NumValue(n uint64) Value { return Value{Kind: Num, N: n} }

func AddrValue(a netip.Addr) Value {
	if !a.IsValid() {
		return Value{}
	}
	b := a.As16()
	k := Addr6
	if a.Is4() {
		k = Addr4
	}
	return Value{Kind: k, Hi: binary.BigEndian.Uint64(b[:8]), N: binary.BigEndian.Uint64(b[8:])}
}

func (v Value) IsAddr() bool { return v.Kind == Addr4 || v.Kind == Addr6 }

func (v Value) Addr() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], v.Hi)
	binary.BigEndian.PutUint64(b[8:], v.N)
	a := netip.AddrFrom16(b)
	if v.Kind == Addr4 || v.Kind == Prefix4 {
		a = a.Unmap()
	}
	return a
}

func (v Value) Prefix() netip.Prefix { return netip.PrefixFrom(v.Addr(), int(v.Bits)) }

// AppendText writes v as sFlow-RT prints it: decimal numbers, dotted or
// colon addresses, MACs as 12 upper-case hex digits.
func (v Value) AppendText(b []byte, in *Interner) []byte {
	switch v.Kind {
	case Num:
		return strconv.AppendUint(b, v.N, 10)
	case Addr4, Addr6:
		return v.Addr().AppendTo(b)
	case MAC:
		const hexdigits = "0123456789ABCDEF"
		for i := 40; i >= 0; i -= 8 {
			c := byte(v.N >> i)
			b = append(b, hexdigits[c>>4], hexdigits[c&15])
		}
		return b
	case Str:
		return append(b, in.Lookup(uint32(v.N))...)
	case Prefix4, Prefix6:
		return v.Prefix().AppendTo(b)
	}
	return b
}

// AppendKey writes v into a binary flow key: a kind byte, then a payload of
// the kind's fixed width, so distinct values never encode alike.
func (v Value) AppendKey(b []byte) []byte {
	b = append(b, byte(v.Kind))
	switch v.Kind {
	case Num, MAC, Str:
		b = binary.BigEndian.AppendUint64(b, v.N)
	case Addr4:
		b = binary.BigEndian.AppendUint32(b, uint32(v.N))
	case Addr6:
		b = binary.BigEndian.AppendUint64(b, v.Hi)
		b = binary.BigEndian.AppendUint64(b, v.N)
	case Prefix4:
		b = binary.BigEndian.AppendUint32(b, uint32(v.N))
		b = append(b, v.Bits)
	case Prefix6:
		b = binary.BigEndian.AppendUint64(b, v.Hi)
		b = binary.BigEndian.AppendUint64(b, v.N)
		b = append(b, v.Bits)
	}
	return b
}

// ReadKey reads back a value written by appendKey.
func ReadKey(b []byte) (Value, []byte) {
	v := Value{Kind: Kind(b[0])}
	b = b[1:]
	switch v.Kind {
	case Num, MAC, Str:
		v.N = binary.BigEndian.Uint64(b)
		b = b[8:]
	case Addr4:
		v.N = 0xFFFF<<32 | uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	case Addr6:
		v.Hi = binary.BigEndian.Uint64(b)
		v.N = binary.BigEndian.Uint64(b[8:])
		b = b[16:]
	case Prefix4:
		v.N = 0xFFFF<<32 | uint64(binary.BigEndian.Uint32(b))
		v.Bits = b[4]
		b = b[5:]
	case Prefix6:
		v.Hi = binary.BigEndian.Uint64(b)
		v.N = binary.BigEndian.Uint64(b[8:])
		v.Bits = b[16]
		b = b[17:]
	}
	return v, b
}

// Interner gives strings small stable ids. It is capped: past maxStrings it
// refuses new strings, and the key that needed one counts as missing, until
// the engine's sweep finds which ids no flow key holds and frees them
// (reclaim): a key refused comes back once the strings behind it are gone.
type Interner struct {
	ids     map[string]uint32
	strs    []string
	free    []uint32 // ids released, for reuse
	Refused uint64
	Freed   uint64
}

const MaxStrings = 1 << 16

func NewInterner() *Interner { return &Interner{ids: map[string]uint32{}} }

// ID interns b; it allocates only for a string it has not seen.
func (in *Interner) ID(b []byte) (uint32, string, bool) {
	if id, ok := in.ids[string(b)]; ok {
		return id, in.strs[id], true
	}
	return in.add(string(b))
}

// IDString interns s.
func (in *Interner) IDString(s string) (uint32, string, bool) {
	if id, ok := in.ids[s]; ok {
		return id, in.strs[id], true
	}
	return in.add(s)
}

func (in *Interner) add(s string) (uint32, string, bool) {
	var id uint32
	switch n := len(in.free); {
	case n > 0:
		id, in.free = in.free[n-1], in.free[:n-1]
		in.strs[id] = s
	case len(in.strs) < MaxStrings:
		id = uint32(len(in.strs))
		in.strs = append(in.strs, s)
	default:
		in.Refused++
		return 0, "", false
	}
	in.ids[s] = id
	return id, s, true
}

// Cap is one more than the highest id given out: the length of the mask
// Release takes.
func (in *Interner) Cap() int { return len(in.strs) }

// Held is how many ids are in use.
func (in *Interner) Held() int { return len(in.strs) - len(in.free) }

// Release frees every id not marked used. Nothing may hold an id it frees.
func (in *Interner) Release(used []bool) {
	for id, s := range in.strs {
		if !used[id] && in.ids[s] == uint32(id) && s != "" {
			delete(in.ids, s)
			in.strs[id] = ""
			in.free = append(in.free, uint32(id))
			in.Freed++
		}
	}
}

// MarkKey marks the string ids in a binary key (appendKey's values, end to
// end).
func MarkKey(used []bool, key []byte) {
	for len(key) > 0 {
		var v Value
		v, key = ReadKey(key)
		if v.Kind == Str && v.N < uint64(len(used)) {
			used[v.N] = true
		}
	}
}

func (in *Interner) Lookup(id uint32) string {
	if int(id) < len(in.strs) {
		return in.strs[id]
	}
	return ""
}
