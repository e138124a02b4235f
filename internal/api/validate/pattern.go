package validate

import (
	"regexp"
	"regexp/syntax"
	"unicode/utf8"
)

// The model's patterns are nearly all a sequence of ASCII literals and ASCII character classes repeated
// one or more (or zero or more) times: "^arn:aws:ivs:[a-z0-9-]+:[0-9]+:stage/[a-zA-Z0-9-]+$", identifiers,
// session ids. Go's regexp matched them at about half a microsecond each, a tenth of a GetParticipant's
// validation (profiled; docs/BENCHMARKS.md, issue 16). sequenceMatcher matches such a pattern byte by byte
// instead. It is built from regexp/syntax's parse of the pattern itself, so it is the pattern's own
// classes and literals, and only for sequences where matching each repeated class greedily cannot differ
// from the regular expression's answer: no repeated class may contain the byte that can follow it. Any
// other pattern keeps regexp. FuzzPatterns checks every pattern of the model against regexp.

// atom is one element of a sequence: a literal, or a class repeated min (0 or 1) or more times.
type atom struct {
	lit   string
	class *[256]bool // nil for a literal
	min   int
}

type sequenceMatcher []atom

// patternMatcher returns the fastest matcher for re: a sequenceMatcher when the pattern is one, else
// re.MatchString.
func patternMatcher(re *regexp.Regexp) func(string) bool {
	if m, ok := newSequenceMatcher(re.String()); ok {
		return m.match
	}
	return re.MatchString
}

// match reports whether str matches the shape's pattern (re, which must be set).
func (s *shape) match(str string) bool {
	if s.matches != nil {
		return s.matches(str)
	}
	return s.re.MatchString(str)
}

func newSequenceMatcher(expr string) (sequenceMatcher, bool) {
	tree, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, false
	}
	tree = tree.Simplify()
	var seq []*syntax.Regexp
	if !flatten(tree, &seq) || len(seq) < 2 || seq[0].Op != syntax.OpBeginText || seq[len(seq)-1].Op != syntax.OpEndText {
		return nil, false
	}
	var m sequenceMatcher
	for _, r := range seq[1 : len(seq)-1] {
		if r.Flags&syntax.FoldCase != 0 {
			return nil, false
		}
		switch r.Op {
		case syntax.OpLiteral:
			s := string(r.Rune)
			for i := 0; i < len(s); i++ {
				if s[i] >= utf8.RuneSelf {
					return nil, false
				}
			}
			m = append(m, atom{lit: s})
		case syntax.OpPlus, syntax.OpStar:
			class, ok := asciiClass(r.Sub[0])
			if !ok || r.Sub[0].Flags&syntax.FoldCase != 0 {
				return nil, false
			}
			a := atom{class: class}
			if r.Op == syntax.OpPlus {
				a.min = 1
			}
			m = append(m, a)
		default:
			return nil, false
		}
	}
	// Greedy matching is the regular expression's answer only when no repeated class can also take what
	// follows it: the first byte of the next literal, or any byte of the next class.
	for i, a := range m {
		if a.class == nil || i+1 == len(m) {
			continue
		}
		next := m[i+1]
		if next.lit != "" {
			if a.class[next.lit[0]] {
				return nil, false
			}
			continue
		}
		for c := range 256 {
			if a.class[c] && next.class[c] {
				return nil, false
			}
		}
		if next.min == 0 { // the class after an optional one could be followed by yet another: keep it simple
			return nil, false
		}
	}
	return m, true
}

// flatten appends the concatenated parts of r (through non-capturing and capturing groups) to seq.
func flatten(r *syntax.Regexp, seq *[]*syntax.Regexp) bool {
	switch r.Op {
	case syntax.OpConcat:
		for _, s := range r.Sub {
			if !flatten(s, seq) {
				return false
			}
		}
		return true
	case syntax.OpCapture:
		return flatten(r.Sub[0], seq)
	case syntax.OpLiteral, syntax.OpPlus, syntax.OpStar, syntax.OpBeginText, syntax.OpEndText:
		*seq = append(*seq, r)
		return true
	}
	return false
}

// asciiClass returns the bytes a character class (or a single literal character) matches, if they are all
// ASCII.
func asciiClass(r *syntax.Regexp) (*[256]bool, bool) {
	var set [256]bool
	switch r.Op {
	case syntax.OpCharClass:
		for i := 0; i+1 < len(r.Rune); i += 2 {
			lo, hi := r.Rune[i], r.Rune[i+1]
			if hi >= utf8.RuneSelf {
				return nil, false
			}
			for c := lo; c <= hi; c++ {
				set[c] = true
			}
		}
	case syntax.OpLiteral:
		if len(r.Rune) != 1 || r.Rune[0] >= utf8.RuneSelf {
			return nil, false
		}
		set[r.Rune[0]] = true
	default:
		return nil, false
	}
	return &set, true
}

// match reports whether the whole of s matches the sequence.
func (m sequenceMatcher) match(s string) bool {
	i := 0
	for _, a := range m {
		if a.class == nil {
			if len(s)-i < len(a.lit) || s[i:i+len(a.lit)] != a.lit {
				return false
			}
			i += len(a.lit)
			continue
		}
		j := i
		for j < len(s) && a.class[s[j]] {
			j++
		}
		if j-i < a.min {
			return false
		}
		i = j
	}
	return i == len(s)
}
