package keys

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// Filter is a compiled sFlow-RT Filter: key=v1,v2 key!=v key~re key!~re,
// joined with & and |, grouped with ( ).
type Filter interface {
	Match(s *Sample) bool
}

type and struct{ a, b Filter }
type or struct{ a, b Filter }

func (f and) Match(s *Sample) bool { return f.a.Match(s) && f.b.Match(s) }
func (f or) Match(s *Sample) bool  { return f.a.Match(s) || f.b.Match(s) }

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
	key    Token
	negate bool
	values []operand      // = and !=
	re     *regexp.Regexp // ~ and !~
}

func (c *compare) Match(s *Sample) bool {
	v := c.key.Get(s)
	if c.re != nil {
		if v.Kind == Missing {
			return c.negate
		}
		b := v.AppendText(s.Env.scratch[:0], s.Env.Strings)
		s.Env.scratch = b
		return c.re.Match(b) != c.negate
	}
	for i := range c.values {
		if c.values[i].equal(v, s.Env.Strings) {
			return !c.negate
		}
	}
	return c.negate
}

func (o *operand) equal(v Value, in *Interner) bool {
	switch v.Kind {
	case Missing:
		return o.text == "null"
	case Addr4, Addr6:
		return o.prefix.IsValid() && o.prefix.Contains(v.Addr())
	case Prefix4, Prefix6:
		return o.prefix.IsValid() && o.prefix == v.Prefix()
	case Num:
		return o.isNum && o.n == v.N
	case MAC:
		return o.isMAC && o.mac == v.N
	case Str:
		return o.text == in.Lookup(uint32(v.N))
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
	MaxExprLen   = 4096 // bytes of one filter, or of one definition's keys
	MaxExprDepth = 32   // levels of ( ) in a filter, or of [ ] in a key
)

// ErrTooDeep and ErrTooLong say that an expression passed those bounds.
var (
	ErrTooDeep = fmt.Errorf("nests deeper than %d levels", MaxExprDepth)
	ErrTooLong = fmt.Errorf("longer than %d bytes", MaxExprLen)
)

// CompileFilter parses a filter expression; "" means no filter.
func CompileFilter(text string) (Filter, error) {
	if strings.TrimSpace(text) == "" {
		return nil, nil
	}
	if len(text) > MaxExprLen {
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

func (p *filterParser) expr() (Filter, error) {
	f, err := p.term()
	for err == nil && p.peek() == '|' {
		p.pos++
		var g Filter
		if g, err = p.term(); err == nil {
			f = or{f, g}
		}
	}
	return f, err
}

func (p *filterParser) term() (Filter, error) {
	f, err := p.factor()
	for err == nil && p.peek() == '&' {
		p.pos++
		var g Filter
		if g, err = p.factor(); err == nil {
			f = and{f, g}
		}
	}
	return f, err
}

func (p *filterParser) factor() (Filter, error) {
	if p.peek() == '(' {
		if p.depth++; p.depth > MaxExprDepth {
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

func (p *filterParser) comparison() (Filter, error) {
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
	key, err := CompileKey(keyText)
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
