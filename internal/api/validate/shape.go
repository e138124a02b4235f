package validate

import (
	"fmt"
	"regexp"
	"strings"
)

// kind is the type of a shape, as the model names it.
type kind uint8

const (
	kindStructure kind = iota + 1
	kindUnion          // a structure with exactly one member set
	kindList
	kindMap
	kindString
	kindByte    // int8
	kindShort   // int16
	kindInteger // int32
	kindLong    // int64
	kindFloat   // float32
	kindDouble  // float64
	kindBoolean
	kindTimestamp
	kindBlob     // base64 in JSON
	kindDocument // any JSON value
)

// operation is one operation of the model (a row of the generated table).
type operation struct {
	Method string // HTTP method
	URI    string // request URI pattern, e.g. /tags/{resourceArn}
	Input  string // input shape name; empty when the operation takes no input

	input *shape
}

// shape is one shape of the model (a row of the generated table). Min and Max bound the length of a
// string (in Unicode characters) or a blob (in bytes), the item count of a list, the entry count of a
// map, or the value of a number.
type shape struct {
	Kind      kind
	Sensitive bool // the value must never be echoed

	Members []member // structure, union: in model order
	Member  string   // list: member shape
	Key     string   // map: key shape
	Value   string   // map: value shape

	HasMin, HasMax bool
	Min, Max       float64

	Pattern      string // the ECMA-262 pattern, as the model has it (or as corrected), for messages
	ModelPattern string // when the pattern was corrected: the model's own pattern
	Regexp       string // Pattern in RE2 syntax, anchored

	Enum            []string // allowed values, in model order
	TimestampFormat string   // iso8601, epoch-seconds or rfc822; empty: the protocol default

	// Resolved by init from the fields above.
	name              string
	member, key, elem *shape // list member; map key and value
	re                *regexp.Regexp
	matches           func(string) bool // re's match, by a faster matcher where there is one (pattern.go)
	enumText          string            // "[A, B]"
	secret            bool              // Sensitive, or a sensitive shape is reachable from it
}

// member is a member of a structure.
type member struct {
	Name         string // member name in the model
	JSON         string // key in the JSON body (body members) and in the merged document
	Shape        string
	Location     string // "" (JSON body), "uri", "querystring", "header" or "headers": bound from the request URL or headers
	LocationName string // URI label, query parameter or header name when Location is set
	Required     bool

	shape *shape
}

func init() {
	if err := resolve(); err != nil {
		panic("validate: generated model table: " + err.Error())
	}
}

// resolve links the generated table by pointers and compiles its regular expressions, once.
func resolve() error {
	lookup := func(name, from string) (*shape, error) {
		s, ok := shapes[name]
		if !ok {
			return nil, fmt.Errorf("%s refers to unknown shape %q", from, name)
		}
		return s, nil
	}
	var err error
	for name, s := range shapes {
		s.name = name
		for i := range s.Members {
			m := &s.Members[i]
			if m.shape, err = lookup(m.Shape, name+"."+m.Name); err != nil {
				return err
			}
		}
		if s.Member != "" {
			if s.member, err = lookup(s.Member, name); err != nil {
				return err
			}
		}
		if s.Key != "" {
			if s.key, err = lookup(s.Key, name); err != nil {
				return err
			}
		}
		if s.Value != "" {
			if s.elem, err = lookup(s.Value, name); err != nil {
				return err
			}
		}
		if s.Regexp != "" {
			if s.re, err = regexp.Compile(s.Regexp); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			s.matches = patternMatcher(s.re)
		}
		if len(s.Enum) > 0 {
			s.enumText = "[" + strings.Join(s.Enum, ", ") + "]"
		}
	}
	for name, op := range operations {
		if op.Input == "" {
			op.input = &shape{Kind: kindStructure, name: name + "Input"}
			continue
		}
		if op.input, err = lookup(op.Input, name); err != nil {
			return err
		}
		if op.input.Kind != kindStructure {
			return fmt.Errorf("%s: input %s is not a structure", name, op.Input)
		}
	}
	for _, s := range shapes {
		s.secret = hasSecret(s, map[*shape]bool{})
	}
	return nil
}

func hasSecret(s *shape, seen map[*shape]bool) bool {
	if s.Sensitive {
		return true
	}
	if seen[s] {
		return false
	}
	seen[s] = true
	for _, m := range s.Members {
		if hasSecret(m.shape, seen) {
			return true
		}
	}
	for _, t := range []*shape{s.member, s.key, s.elem} {
		if t != nil && hasSecret(t, seen) {
			return true
		}
	}
	return false
}
