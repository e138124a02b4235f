package validate

import (
	"encoding/json"
)

// parseFast parses a request body the way parseBody's encoding/json decoder does (objects as
// map[string]any, arrays as []any, numbers as json.Number, strings, bools, null as nil) in one pass and
// with one copy of the body: every string that has no escape is a slice of that copy. It reports false
// for anything it does not take exactly as encoding/json would, invalid JSON included; parseBody then
// decodes the body with encoding/json, which also words the error. The decoder's two passes and its
// per-string allocations were a fifth of a GetParticipant's handler time (docs/BENCHMARKS.md, "The lists
// and GetParticipant"); FuzzParseFast checks this parser against encoding/json.
//
// body must be valid UTF-8 (parseBody checks it first): encoding/json would replace invalid bytes, this
// parser would keep them.
func parseFast(body []byte) (map[string]any, bool) {
	p := fastParser{s: string(body)}
	p.space()
	if !p.at('{') {
		return nil, false
	}
	obj, ok := p.object()
	if !ok {
		return nil, false
	}
	p.space()
	return obj, p.i == len(p.s)
}

// maxFastDepth bounds the nesting parseFast follows; deeper documents take encoding/json's path (its own
// limit is 10,000). The model's inputs nest three deep.
const maxFastDepth = 32

type fastParser struct {
	s     string
	i     int
	depth int
}

// at reports whether the next byte is c.
func (p *fastParser) at(c byte) bool { return p.i < len(p.s) && p.s[p.i] == c }

// space skips JSON whitespace (RFC 8259 §2).
func (p *fastParser) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *fastParser) value() (any, bool) {
	if p.i >= len(p.s) {
		return nil, false
	}
	switch c := p.s[p.i]; {
	case c == '{':
		m, ok := p.object()
		return m, ok
	case c == '[':
		a, ok := p.array()
		return a, ok
	case c == '"':
		s, ok := p.str()
		return s, ok
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		n, ok := p.number()
		return n, ok
	}
	return nil, false
}

func (p *fastParser) literal(lit string) bool {
	if len(p.s)-p.i < len(lit) || p.s[p.i:p.i+len(lit)] != lit {
		return false
	}
	p.i += len(lit)
	return true
}

// object parses an object at '{'. Of a repeated key the last value wins, as with encoding/json.
func (p *fastParser) object() (map[string]any, bool) {
	if p.depth++; p.depth > maxFastDepth {
		return nil, false
	}
	defer func() { p.depth-- }()
	p.i++ // '{'
	m := make(map[string]any)
	p.space()
	if p.at('}') {
		p.i++
		return m, true
	}
	for {
		if !p.at('"') {
			return nil, false
		}
		k, ok := p.str()
		if !ok {
			return nil, false
		}
		p.space()
		if !p.at(':') {
			return nil, false
		}
		p.i++
		p.space()
		v, ok := p.value()
		if !ok {
			return nil, false
		}
		m[k] = v
		if more, ok := p.next('}'); !ok || !more {
			return m, ok
		}
	}
}

// next consumes what follows a member or an element: a comma (more follows) or the closing bracket.
func (p *fastParser) next(closing byte) (more, ok bool) {
	p.space()
	if p.i >= len(p.s) {
		return false, false
	}
	switch p.s[p.i] {
	case ',':
		p.i++
		p.space()
		return true, true
	case closing:
		p.i++
		return false, true
	}
	return false, false
}

// array parses an array at '['.
func (p *fastParser) array() ([]any, bool) {
	if p.depth++; p.depth > maxFastDepth {
		return nil, false
	}
	defer func() { p.depth-- }()
	p.i++        // '['
	a := []any{} // encoding/json gives an empty, not a nil, slice for []
	p.space()
	if p.at(']') {
		p.i++
		return a, true
	}
	for {
		v, ok := p.value()
		if !ok {
			return nil, false
		}
		a = append(a, v)
		if more, ok := p.next(']'); !ok || !more {
			return a, ok
		}
	}
}

// str parses a string at '"'. One with no escape is a slice of the body's copy; one with escapes is
// unquoted by encoding/json (rare in API bodies).
func (p *fastParser) str() (string, bool) {
	start := p.i
	p.i++ // '"'
	escaped := false
	for p.i < len(p.s) {
		switch c := p.s[p.i]; {
		case c == '"':
			p.i++
			if !escaped {
				return p.s[start+1 : p.i-1], true
			}
			var out string
			if err := json.Unmarshal([]byte(p.s[start:p.i]), &out); err != nil {
				return "", false
			}
			return out, true
		case c == '\\':
			escaped = true
			p.i += 2 // the escape and the character it escapes; \u's digits are ordinary bytes here
		case c < 0x20: // control characters must be escaped (RFC 8259 §7)
			return "", false
		default:
			p.i++
		}
	}
	return "", false
}

// number checks the RFC 8259 §6 grammar, -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, and returns the
// literal as json.Number, as a decoder with UseNumber does.
func (p *fastParser) number() (json.Number, bool) {
	start := p.i
	if p.s[p.i] == '-' {
		p.i++
	}
	switch {
	case p.at('0'):
		p.i++
	case p.i < len(p.s) && '1' <= p.s[p.i] && p.s[p.i] <= '9':
		p.digits()
	default:
		return "", false
	}
	if p.at('.') {
		p.i++
		if !p.digits() {
			return "", false
		}
	}
	if p.at('e') || p.at('E') {
		p.i++
		if p.at('+') || p.at('-') {
			p.i++
		}
		if !p.digits() {
			return "", false
		}
	}
	return json.Number(p.s[start:p.i]), true
}

// digits skips one or more decimal digits and reports whether there was one.
func (p *fastParser) digits() bool {
	start := p.i
	for p.i < len(p.s) && '0' <= p.s[p.i] && p.s[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}
