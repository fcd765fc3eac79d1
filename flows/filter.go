package flows

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// filter is a compiled sFlow-RT filter: key=v1,v2 key!=v key~re key!~re,
// joined with & and |, grouped with ( ).
type filter interface {
	match(s *sample) bool
}

type and struct{ a, b filter }
type or struct{ a, b filter }

func (f and) match(s *sample) bool { return f.a.match(s) && f.b.match(s) }
func (f or) match(s *sample) bool  { return f.a.match(s) || f.b.match(s) }

// operand is one value on a comparison's right side, pre-parsed every way
// the key's value might need it.
type operand struct {
	text   string
	prefix netip.Prefix // an address or CIDR
	n      uint64
	isNum  bool
	mac    uint64
	isMAC  bool
}

type compare struct {
	key    token
	negate bool
	values []operand      // = and !=
	re     *regexp.Regexp // ~ and !~
}

func (c *compare) match(s *sample) bool {
	v := c.key.get(s)
	if c.re != nil {
		if v.kind == missing {
			return c.negate
		}
		b := v.appendText(s.e.scratch[:0], s.e.strings)
		s.e.scratch = b
		return c.re.Match(b) != c.negate
	}
	for i := range c.values {
		if c.values[i].equal(v, s.e.strings) {
			return !c.negate
		}
	}
	return c.negate
}

func (o *operand) equal(v value, in *interner) bool {
	switch v.kind {
	case missing:
		return o.text == "null"
	case addr4, addr6:
		return o.prefix.IsValid() && o.prefix.Contains(v.addr())
	case prefix4, prefix6:
		return o.prefix.IsValid() && o.prefix == v.prefix()
	case num:
		return o.isNum && o.n == v.n
	case mac:
		return o.isMAC && o.mac == v.n
	case str:
		return o.text == in.lookup(uint32(v.n))
	}
	return false
}

func parseOperand(text string) operand {
	o := operand{text: text}
	if p, err := netip.ParsePrefix(text); err == nil {
		o.prefix = p.Masked()
	} else if a, err := netip.ParseAddr(text); err == nil {
		o.prefix = netip.PrefixFrom(a, a.BitLen())
	}
	if n, err := strconv.ParseUint(text, 10, 64); err == nil {
		o.n, o.isNum = n, true
	}
	h := strings.NewReplacer(":", "", "-", "", ".", "").Replace(text)
	if len(h) == 12 {
		if m, err := strconv.ParseUint(h, 16, 64); err == nil {
			o.mac, o.isMAC = m, true
		}
	}
	return o
}

// Bounds on what a filter or key expression may be: they come from the
// network (PUT bodies, query strings), and a parser recurses per level.
const (
	maxExprLen   = 4096 // bytes of one filter, or of one definition's keys
	maxExprDepth = 32   // levels of ( ) in a filter, or of [ ] in a key
)

// ErrTooDeep and ErrTooLong say that an expression passed those bounds.
var (
	ErrTooDeep = fmt.Errorf("nests deeper than %d levels", maxExprDepth)
	ErrTooLong = fmt.Errorf("longer than %d bytes", maxExprLen)
)

// compileFilter parses a filter expression; "" means no filter.
func compileFilter(text string) (filter, error) {
	if strings.TrimSpace(text) == "" {
		return nil, nil
	}
	if len(text) > maxExprLen {
		return nil, fmt.Errorf("filter of %d bytes: %w", len(text), ErrTooLong)
	}
	p := &filterParser{in: text}
	f, err := p.expr()
	if err != nil {
		return nil, fmt.Errorf("filter %.80q: %w", text, err)
	}
	if p.pos < len(p.in) {
		return nil, fmt.Errorf("filter %.80q: unexpected %.40q at %d", text, p.in[p.pos:], p.pos)
	}
	return f, nil
}

type filterParser struct {
	in    string
	pos   int
	depth int // of ( ) now
}

func (p *filterParser) skipSpace() {
	for p.pos < len(p.in) && p.in[p.pos] == ' ' {
		p.pos++
	}
}

func (p *filterParser) peek() byte {
	p.skipSpace()
	if p.pos < len(p.in) {
		return p.in[p.pos]
	}
	return 0
}

func (p *filterParser) expr() (filter, error) {
	f, err := p.term()
	for err == nil && p.peek() == '|' {
		p.pos++
		var g filter
		if g, err = p.term(); err == nil {
			f = or{f, g}
		}
	}
	return f, err
}

func (p *filterParser) term() (filter, error) {
	f, err := p.factor()
	for err == nil && p.peek() == '&' {
		p.pos++
		var g filter
		if g, err = p.factor(); err == nil {
			f = and{f, g}
		}
	}
	return f, err
}

func (p *filterParser) factor() (filter, error) {
	if p.peek() == '(' {
		if p.depth++; p.depth > maxExprDepth {
			return nil, fmt.Errorf("( at %d: %w", p.pos, ErrTooDeep)
		}
		defer func() { p.depth-- }()
		p.pos++
		f, err := p.expr()
		if err != nil {
			return nil, err
		}
		if p.peek() != ')' {
			return nil, fmt.Errorf("missing ) at %d", p.pos)
		}
		p.pos++
		return f, nil
	}
	return p.comparison()
}

func (p *filterParser) comparison() (filter, error) {
	p.skipSpace()
	start, depth := p.pos, 0
	for ; p.pos < len(p.in); p.pos++ {
		c := p.in[p.pos]
		if c == '[' {
			depth++
		} else if c == ']' {
			depth--
		} else if depth == 0 && (c == '=' || c == '~' || c == '!') {
			break
		}
	}
	keyText := strings.TrimSpace(p.in[start:p.pos])
	if keyText == "" {
		return nil, fmt.Errorf("missing key at %d", start)
	}
	var op string
	for _, o := range []string{"!=", "!~", "=", "~"} {
		if strings.HasPrefix(p.in[p.pos:], o) {
			op = o
			break
		}
	}
	if op == "" {
		return nil, fmt.Errorf("key %q: want = != ~ or !~ after it", keyText)
	}
	p.pos += len(op)
	key, err := compileKey(keyText)
	if err != nil {
		return nil, err
	}
	vstart := p.pos
	for p.pos < len(p.in) && !strings.ContainsRune("&|)", rune(p.in[p.pos])) {
		p.pos++
	}
	rhs := strings.TrimSpace(p.in[vstart:p.pos])
	c := &compare{key: key, negate: op[0] == '!'}
	if op[len(op)-1] == '~' {
		if c.re, err = regexp.Compile(rhs); err != nil {
			return nil, fmt.Errorf("key %q: regular expression: %w", keyText, err)
		}
		return c, nil
	}
	for v := range strings.SplitSeq(rhs, ",") {
		c.values = append(c.values, parseOperand(strings.TrimSpace(v)))
	}
	return c, nil
}
