package keys

import (
	"net/netip"
	"strings"
)

// Amount is what one sample adds to a flow of value kind k: its frames,
// bytes or bits, scaled by the sampling.
func (p *Plan) Amount(k ValueKind, s *Sample) float64 {
	switch k {
	case ValueFrames:
		return s.Scaled
	case ValueBits:
		return 8 * float64(s.Flow.RawHeader.FrameLength) * s.Scaled
	}
	return float64(s.Flow.RawHeader.FrameLength) * s.Scaled
}

// AppendKey appends a binary flow key's text, its values joined by the
// flow's separator (fs).
func (p *Plan) AppendKey(b []byte, key []byte, in *Interner) []byte {
	for i := range p.Keys {
		var v Value
		v, key = ReadKey(key)
		if i > 0 {
			b = append(b, p.Def.FS...)
		}
		b = v.AppendText(b, in)
	}
	return b
}

// Ident is a key's identity: its values without the location fields
// (node, port, TTL...), which say where a flow was seen, not what it is.
func (p *Plan) Ident(key []byte) []byte {
	var ident []byte
	for _, t := range p.Keys {
		var v Value
		v, key = ReadKey(key)
		if !t.Location {
			ident = v.AppendKey(ident)
		}
	}
	return ident
}

// AppendIdent appends the text of an identity (Ident), its values joined by
// the flow's separator.
func (p *Plan) AppendIdent(b []byte, ident []byte, in *Interner) []byte {
	first := true
	for _, t := range p.Keys {
		if t.Location {
			continue
		}
		var v Value
		v, ident = ReadKey(ident)
		if !first {
			b = append(b, p.Def.FS...)
		}
		first = false
		b = v.AppendText(b, in)
	}
	return b
}

// Endpoints finds a flow's source and destination addresses among the
// fields of its identity (Ident).
func (p *Plan) Endpoints(ident []byte) (src, dst netip.Addr) {
	for _, t := range p.Keys {
		if t.Location {
			continue
		}
		var v Value
		v, ident = ReadKey(ident)
		switch {
		case !v.IsAddr():
		case strings.Contains(t.Text, "destination"):
			dst = v.Addr()
		case strings.Contains(t.Text, "source"):
			src = v.Addr()
		}
	}
	return src, dst
}
