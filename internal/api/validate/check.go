package validate

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	// maxProblems caps the problems listed in one Error; the rest are only counted.
	maxProblems = 100
	// maxEcho caps, in characters, a value quoted in a message.
	maxEcho = 64
)

// checker walks a decoded JSON document against a shape, collects problems, and builds the validated
// document: model members only, nulls dropped, integers normalized.
type checker struct {
	problems []Problem
	omitted  int
	// reshaped is set when the validated document differs from the body: an unknown member or a null was
	// dropped, or an integer was normalized. Until then the body itself can be decoded into the input
	// struct, which saves re-encoding the document (validate.go).
	reshaped bool
	// checkOnly: the top-level document is not built (its structure returns nil); Decode sets it when
	// the body itself will be the document unless reshaped, and builds the document afterwards if it was.
	checkOnly bool
}

// fail records that value v of shape s at path breaks constraint.
func (c *checker) fail(path string, s *shape, v any, constraint string) {
	if len(c.problems) >= maxProblems {
		c.omitted++
		return
	}
	c.problems = append(c.problems, Problem{
		Path:    path,
		Message: "Value " + echo(v, s) + " at '" + path + "' failed to satisfy constraint: " + constraint,
	})
}

func (c *checker) typeError(path string, s *shape, v any) {
	c.fail(path, s, v, "expected "+typeName(s.Kind)+", got "+jsonKind(v))
}

// structure checks the members of obj; bound supplies the members bound outside the body (top level).
func (c *checker) structure(s *shape, obj, bound map[string]any, path string) map[string]any {
	var out map[string]any
	if !c.checkOnly || path != "" {
		out = make(map[string]any, len(s.Members))
	}
	known := 0 // body keys that name a body member
	set := 0   // members in the document
	for i := range s.Members {
		m := &s.Members[i]
		var v any
		present := false
		if m.Location == "" {
			if v, present = obj[m.JSON]; present {
				known++
			}
		} else {
			v = fromBound(m.shape, bound[m.JSON])
		}
		p := m.JSON
		if path != "" {
			p = path + "." + m.JSON
		}
		if v == nil {
			if m.Required {
				c.fail(p, m.shape, nil, "Member must not be null")
			}
			if present {
				known-- // a null is dropped: the document is not the body
			}
			continue
		}
		v = c.value(m.shape, v, p)
		if out != nil {
			out[m.JSON] = v
		}
		set++
	}
	if s.Kind == kindUnion && set != 1 {
		c.fail(path, s, obj, "Member must have exactly one member set")
	}
	if known != len(obj) {
		c.reshaped = true
	}
	return out
}

// value checks v (not nil) against s and returns it as it goes into the validated document.
func (c *checker) value(s *shape, v any, path string) any {
	switch s.Kind {
	case kindStructure, kindUnion:
		obj, ok := v.(map[string]any)
		if !ok {
			c.typeError(path, s, v)
			return nil
		}
		return c.structure(s, obj, nil, path)

	case kindList:
		items, ok := v.([]any)
		if !ok {
			c.typeError(path, s, v)
			return nil
		}
		c.size(s, len(items), path, v, "Member")
		out := make([]any, len(items))
		for i, item := range items {
			p := path + "[" + strconv.Itoa(i) + "]"
			if item == nil {
				c.fail(p, s.member, nil, "Member must not be null")
				continue
			}
			out[i] = c.value(s.member, item, p)
		}
		return out

	case kindMap:
		obj, ok := v.(map[string]any)
		if !ok {
			c.typeError(path, s, v)
			return nil
		}
		c.size(s, len(obj), path, v, "Member")
		out := make(map[string]any, len(obj))
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			// Key problems are reported at the map, value problems at path.key.
			c.str(s.key, k, path, "Map keys")
			p := path + "." + pathKey(k, s.key)
			if obj[k] == nil {
				c.fail(p, s.elem, nil, "Member must not be null")
				continue
			}
			out[k] = c.value(s.elem, obj[k], p)
		}
		return out

	case kindString:
		str, ok := v.(string)
		if !ok {
			c.typeError(path, s, v)
			return nil
		}
		c.str(s, str, path, "Member")
		return v // v holds str already: returning str would box it again

	case kindByte, kindShort, kindInteger, kindLong:
		return c.integer(s, v, path)

	case kindFloat, kindDouble:
		n, ok := v.(json.Number)
		if !ok {
			c.typeError(path, s, v)
			return nil
		}
		bits := 64
		if s.Kind == kindFloat {
			bits = 32
		}
		f, err := strconv.ParseFloat(string(n), bits)
		if err != nil || math.IsInf(f, 0) {
			c.fail(path, s, v, "expected "+typeName(s.Kind)+", got a number out of its range")
			return nil
		}
		if s.HasMin && f < s.Min {
			c.fail(path, s, v, "Member must have value greater than or equal to "+formatBound(s.Min))
		}
		if s.HasMax && f > s.Max {
			c.fail(path, s, v, "Member must have value less than or equal to "+formatBound(s.Max))
		}
		return f

	case kindBoolean:
		if _, ok := v.(bool); !ok {
			c.typeError(path, s, v)
			return nil
		}
		return v

	case kindTimestamp:
		if !validTimestamp(s.TimestampFormat, v) {
			c.typeError(path, s, v)
			return nil
		}
		return v

	case kindBlob:
		str, ok := v.(string)
		if !ok {
			c.typeError(path, s, v)
			return nil
		}
		raw, err := base64.StdEncoding.DecodeString(str)
		if err != nil {
			c.typeError(path, s, v)
			return nil
		}
		c.size(s, len(raw), path, v, "Member")
		return str

	case kindDocument:
		return v
	}
	panic(fmt.Sprintf("validate: shape %s has unknown kind %d", s.name, s.Kind))
}

// str checks a string (a member, or a map key when subject is "Map keys"): length in Unicode
// characters (Smithy's length trait), anchored pattern, enum.
func (c *checker) str(s *shape, str, path, subject string) {
	if !utf8.ValidString(str) { // only bound values can be: bodies are checked as a whole
		c.fail(path, s, str, subject+" must be valid UTF-8")
		return
	}
	if s.HasMin || s.HasMax {
		// str goes into an interface only for a message: boxed on every call, it cost an allocation per
		// string member of every request.
		if n := utf8.RuneCountInString(str); (s.HasMin && float64(n) < s.Min) || (s.HasMax && float64(n) > s.Max) {
			c.size(s, n, path, str, subject)
		}
	}
	if s.re != nil && !s.match(str) {
		c.fail(path, s, str, subject+" must satisfy regular expression pattern: "+s.Pattern)
	}
	if len(s.Enum) > 0 && !slices.Contains(s.Enum, str) {
		c.fail(path, s, str, subject+" must satisfy enum value set: "+s.enumText)
	}
}

// size checks a length: characters of a string, bytes of a blob, items of a list, entries of a map.
func (c *checker) size(s *shape, n int, path string, v any, subject string) {
	if s.HasMin && float64(n) < s.Min {
		c.fail(path, s, v, subject+" must have length greater than or equal to "+formatBound(s.Min))
	}
	if s.HasMax && float64(n) > s.Max {
		c.fail(path, s, v, subject+" must have length less than or equal to "+formatBound(s.Max))
	}
}

// integer checks a whole number of the shape's width and its range; it returns the value as int64.
func (c *checker) integer(s *shape, v any, path string) any {
	n, ok := v.(json.Number)
	if !ok {
		c.typeError(path, s, v)
		return nil
	}
	i, integral, inRange := parseInteger(string(n))
	lo, hi := intRange(s.Kind)
	switch {
	case !integral:
		c.fail(path, s, v, "expected "+typeName(s.Kind)+", got a number with a fractional part")
		return nil
	case !inRange || i < lo || i > hi:
		c.fail(path, s, v, fmt.Sprintf("expected %s, got a number outside [%d, %d]", typeName(s.Kind), lo, hi))
		return nil
	}
	// The generator guarantees integral bounds a float64 holds exactly.
	if s.HasMin && i < int64(s.Min) {
		c.fail(path, s, v, "Member must have value greater than or equal to "+formatBound(s.Min))
	}
	if s.HasMax && i > int64(s.Max) {
		c.fail(path, s, v, "Member must have value less than or equal to "+formatBound(s.Max))
	}
	if string(n) != strconv.FormatInt(i, 10) { // 1.0, 1e2, -0: encoding/json would not take it for an int
		c.reshaped = true
	}
	return i
}

// intRange gives the values an integer kind holds.
func intRange(k kind) (lo, hi int64) {
	switch k {
	case kindByte:
		return math.MinInt8, math.MaxInt8
	case kindShort:
		return math.MinInt16, math.MaxInt16
	case kindInteger:
		return math.MinInt32, math.MaxInt32
	}
	return math.MinInt64, math.MaxInt64
}

// parseInteger reads a JSON number literal that denotes a whole number (1, -0, 1.0, 1e2, 120e-1) as an
// int64. integral is false for a number with a fractional part; inRange is false beyond int64. It never
// allocates in proportion to an exponent, so "1e999999999" costs nothing.
func parseInteger(lit string) (v int64, integral, inRange bool) {
	if i, err := strconv.ParseInt(lit, 10, 64); err == nil {
		return i, true, true
	}
	neg := strings.HasPrefix(lit, "-")
	lit = strings.TrimPrefix(lit, "-")
	mant, exp := lit, ""
	if k := strings.IndexAny(lit, "eE"); k >= 0 {
		mant, exp = lit[:k], lit[k+1:]
	}
	intPart, frac := mant, ""
	if k := strings.IndexByte(mant, '.'); k >= 0 {
		intPart, frac = mant[:k], mant[k+1:]
	}
	// value = digits × 10^e
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" {
		return 0, true, true
	}
	e := int64(-len(frac))
	trimmed := strings.TrimRight(digits, "0")
	e += int64(len(digits) - len(trimmed))
	digits = trimmed
	if exp != "" {
		x, err := strconv.ParseInt(exp, 10, 32)
		if err != nil { // an exponent of more than nine digits
			if strings.HasPrefix(exp, "-") {
				return 0, false, true
			}
			return 0, true, false
		}
		e += x
	}
	if e < 0 {
		return 0, false, true
	}
	if int64(len(digits))+e > 19 {
		return 0, true, false
	}
	s := digits + strings.Repeat("0", int(e))
	if neg {
		s = "-" + s
	}
	i, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, true, false
	}
	return i, true, true
}

// validTimestamp reports whether v is a timestamp in the shape's format. restJson1 bodies default to
// epoch seconds.
func validTimestamp(format string, v any) bool {
	switch format {
	case "iso8601":
		s, ok := v.(string)
		if !ok {
			return false
		}
		_, err := time.Parse(time.RFC3339Nano, s)
		return err == nil
	case "rfc822":
		s, ok := v.(string)
		if !ok {
			return false
		}
		_, err := time.Parse(time.RFC1123, s)
		return err == nil
	default:
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		f, err := strconv.ParseFloat(string(n), 64)
		return err == nil && !math.IsInf(f, 0)
	}
}

// fromBound converts a value bound from the URL or headers to the form JSON decoding gives, so that the
// same checks apply: strings for numbers and booleans are parsed, slices become []any. nil and nil
// slices are absent.
func fromBound(s *shape, v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		switch s.Kind {
		case kindByte, kindShort, kindInteger, kindLong, kindFloat, kindDouble:
			if isNumber(x) {
				return json.Number(x)
			}
		case kindBoolean:
			if x == "true" || x == "false" {
				return x == "true"
			}
		case kindTimestamp:
			if s.TimestampFormat == "" || s.TimestampFormat == "epoch-seconds" {
				if isNumber(x) {
					return json.Number(x)
				}
			}
		}
		return x
	case []string:
		if x == nil {
			return nil
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = fromBound(elemShape(s), e)
		}
		return out
	case []any:
		if x == nil {
			return nil
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = fromBound(elemShape(s), e)
		}
		return out
	case map[string]string:
		if x == nil {
			return nil
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = fromBound(mapValueShape(s), e)
		}
		return out
	case int:
		return json.Number(strconv.FormatInt(int64(x), 10))
	case int32:
		return json.Number(strconv.FormatInt(int64(x), 10))
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return x
		}
		return json.Number(strconv.FormatFloat(x, 'g', -1, 64))
	}
	return v
}

// unknownShape stands for the elements of a bound slice given for a shape that is not a list.
var unknownShape = &shape{Kind: kindDocument, name: "unknown"}

func elemShape(s *shape) *shape {
	if s.Kind == kindList {
		return s.member
	}
	return unknownShape
}

func mapValueShape(s *shape) *shape {
	if s.Kind == kindMap {
		return s.elem
	}
	return unknownShape
}

// isNumber reports whether s is exactly a JSON number literal.
func isNumber(s string) bool {
	if s == "" || !(s[0] == '-' || s[0] >= '0' && s[0] <= '9') || s[len(s)-1] < '0' || s[len(s)-1] > '9' {
		return false
	}
	return json.Valid([]byte(s))
}

func typeName(k kind) string {
	switch k {
	case kindStructure, kindUnion:
		return "structure"
	case kindList:
		return "list"
	case kindMap:
		return "map"
	case kindString:
		return "string"
	case kindByte:
		return "byte"
	case kindShort:
		return "short"
	case kindInteger:
		return "integer"
	case kindLong:
		return "long"
	case kindFloat:
		return "float"
	case kindDouble:
		return "double"
	case kindBoolean:
		return "boolean"
	case kindTimestamp:
		return "timestamp"
	case kindBlob:
		return "blob (base64 string)"
	}
	return "document"
}

// jsonKind names the JSON type of a decoded value.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case json.Number, float64, int64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func formatBound(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}
