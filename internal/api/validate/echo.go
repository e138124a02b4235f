package validate

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// echo quotes a value for a message: null as null, a value whose shape is (or holds something) sensitive
// as '***', anything else as text cut to maxEcho characters. Lists read [a, b], objects {k=v}, as AWS
// prints them.
func echo(v any, s *shape) string {
	if v == nil {
		return "null"
	}
	if s != nil && s.secret {
		return "'***'"
	}
	b := echoBuilder{left: maxEcho}
	b.value(v)
	if b.cut {
		b.sb.WriteString("...")
	}
	return "'" + b.sb.String() + "'"
}

// pathKey is a map key as it appears in a path: cut like an echoed value, masked when sensitive.
func pathKey(k string, s *shape) string {
	if s != nil && s.secret {
		return "***"
	}
	b := echoBuilder{left: maxEcho}
	b.write(k)
	if b.cut {
		b.sb.WriteString("...")
	}
	return b.sb.String()
}

// echoBuilder renders a value up to a number of characters and stops working once that is reached.
type echoBuilder struct {
	sb   strings.Builder
	left int  // characters still allowed
	cut  bool // something was left out
}

func (b *echoBuilder) write(s string) {
	if b.cut {
		return
	}
	if n := utf8.RuneCountInString(s); n <= b.left {
		b.sb.WriteString(s)
		b.left -= n
		return
	}
	for _, r := range s {
		if b.left == 0 {
			break
		}
		b.sb.WriteRune(r)
		b.left--
	}
	b.cut = true
}

func (b *echoBuilder) value(v any) {
	if b.cut {
		return
	}
	switch x := v.(type) {
	case nil:
		b.write("null")
	case string:
		b.write(x)
	case json.Number:
		b.write(string(x))
	case bool:
		b.write(strconv.FormatBool(x))
	case int64:
		b.write(strconv.FormatInt(x, 10))
	case float64:
		b.write(strconv.FormatFloat(x, 'g', -1, 64))
	case []any:
		b.write("[")
		for i, e := range x {
			if b.cut {
				return
			}
			if i > 0 {
				b.write(", ")
			}
			b.value(e)
		}
		b.write("]")
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.write("{")
		for i, k := range keys {
			if b.cut {
				return
			}
			if i > 0 {
				b.write(", ")
			}
			b.write(k)
			b.write("=")
			b.value(x[k])
		}
		b.write("}")
	default:
		b.write(fmt.Sprint(x))
	}
}
