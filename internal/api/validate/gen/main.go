// Command gen reads the AWS API model of IVS Real-Time (botocore service-2 JSON) and writes model_gen.go,
// the table that package validate checks requests against: every operation, its input shape, and every
// shape reachable from an input, with the constraints of the model (length, pattern, range, enum,
// required, sensitive) and the HTTP binding of each member.
//
// Usage (from go:generate in package validate):
//
//	go run ./gen -model model/ivs-realtime-2020-07-14.min.json -out model_gen.go
//
// The model it reads is the reduced copy kept in the repository: the full model with its documentation
// strings removed and nothing else changed (every operation, shape, member, constraint, error and HTTP
// binding stays, in model order). -reduce makes that copy from a full model, for instance the one botocore
// installs with the AWS CLI (gzipped files are read as such):
//
//	go run ./gen -reduce -model .../botocore/data/ivs-realtime/2020-07-14/service-2.json.gz \
//		-out model/ivs-realtime-2020-07-14.min.json
//	go generate .
//
// The model's patterns are ECMA-262 regular expressions (Smithy's pattern trait) and are not anchored;
// gen translates each one into Go RE2 syntax, anchors it (^(?:...)$) and checks that it compiles, so the
// runtime never sees a pattern that fails to compile.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/format"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	modelPath := flag.String("model", "", "path of the botocore service-2 JSON model")
	outPath := flag.String("out", "model_gen.go", "path of the Go file (or, with -reduce, the JSON model) to write")
	reduceModel := flag.Bool("reduce", false, "write the model without its documentation strings instead of generating Go")
	flag.Parse()
	if *modelPath == "" {
		fmt.Fprintln(os.Stderr, "gen: -model is required")
		os.Exit(2)
	}
	do := run
	if *reduceModel {
		do = runReduce
	}
	if err := do(*modelPath, *outPath); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// run generates the table for the model at modelPath and writes it to outPath.
func run(modelPath, outPath string) error {
	raw, err := readModel(modelPath)
	if err != nil {
		return err
	}
	src, err := generate(raw, filepath.Base(modelPath))
	if err != nil {
		return err
	}
	return os.WriteFile(outPath, src, 0o644)
}

// The botocore model, as far as gen reads it.
type model struct {
	Metadata struct {
		APIVersion string `json:"apiVersion"`
		UID        string `json:"uid"`
		Protocol   string `json:"protocol"`
	} `json:"metadata"`
	Operations map[string]struct {
		HTTP struct {
			Method     string `json:"method"`
			RequestURI string `json:"requestUri"`
		} `json:"http"`
		Input *ref `json:"input"`
	} `json:"operations"`
	Shapes map[string]*modelShape `json:"shapes"`
}

type ref struct {
	Shape string `json:"shape"`
}

type modelShape struct {
	Type            string         `json:"type"`
	Members         orderedMembers `json:"members"`
	Required        []string       `json:"required"`
	Member          *ref           `json:"member"`
	Key             *ref           `json:"key"`
	Value           *ref           `json:"value"`
	Min             *json.Number   `json:"min"`
	Max             *json.Number   `json:"max"`
	Pattern         *string        `json:"pattern"`
	Enum            []string       `json:"enum"`
	Sensitive       bool           `json:"sensitive"`
	Union           bool           `json:"union"`
	Document        bool           `json:"document"`
	Payload         string         `json:"payload"`
	TimestampFormat string         `json:"timestampFormat"`
	Sparse          bool           `json:"sparse"`
}

type modelMember struct {
	Name         string
	Shape        string `json:"shape"`
	Location     string `json:"location"`
	LocationName string `json:"locationName"`
	JSONValue    bool   `json:"jsonvalue"`
}

// orderedMembers keeps a structure's members in model order (a Go map would lose it).
type orderedMembers []modelMember

func (o *orderedMembers) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fmt.Errorf("members: expected an object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		m := modelMember{Name: tok.(string)}
		if err := dec.Decode(&m); err != nil {
			return fmt.Errorf("member %s: %w", m.Name, err)
		}
		*o = append(*o, m)
	}
	_, err := dec.Token()
	return err
}

// patternFixes corrects model patterns that are plainly wrong. A fix applies only while the model still
// carries exactly the pattern it was written for; if the model changes, gen fails so that someone looks.
var patternFixes = map[string]struct{ model, fixed, why string }{
	"ResourceArn": {
		model: `arn:aws:ivs:[a-z0-9-]+:[0-9]+:[a-z-]/[a-zA-Z0-9-]+`,
		fixed: `arn:aws:ivs:[a-z0-9-]+:[0-9]+:[a-z-]+/[a-zA-Z0-9-]+`,
		why: "the model allows a single character for the resource type ([a-z-]/), so no real ARN " +
			"(stage/..., public-key/...) would match; the resource type is one or more characters",
	},
}

// kinds maps botocore types to the identifiers of package validate.
var kinds = map[string]string{
	"structure": "kindStructure",
	"list":      "kindList",
	"map":       "kindMap",
	"string":    "kindString",
	"byte":      "kindByte",
	"short":     "kindShort",
	"integer":   "kindInteger",
	"long":      "kindLong",
	"float":     "kindFloat",
	"double":    "kindDouble",
	"boolean":   "kindBoolean",
	"timestamp": "kindTimestamp",
	"blob":      "kindBlob",
}

// generate returns the gofmt'ed source of model_gen.go for the model in raw.
func generate(raw []byte, modelName string) ([]byte, error) {
	var m model
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("parse model: %w", err)
	}
	if len(m.Operations) == 0 {
		return nil, errors.New("model has no operations")
	}

	// Every shape reachable from an operation input.
	reach := map[string]bool{}
	var walk func(name, from string) error
	walk = func(name, from string) error {
		if reach[name] {
			return nil
		}
		s, ok := m.Shapes[name]
		if !ok {
			return fmt.Errorf("%s refers to unknown shape %q", from, name)
		}
		reach[name] = true
		for _, mem := range s.Members {
			if err := walk(mem.Shape, name+"."+mem.Name); err != nil {
				return err
			}
		}
		for _, r := range []*ref{s.Member, s.Key, s.Value} {
			if r != nil {
				if err := walk(r.Shape, name); err != nil {
					return err
				}
			}
		}
		return nil
	}
	opNames := sortedKeys(m.Operations)
	for _, op := range opNames {
		if in := m.Operations[op].Input; in != nil {
			if err := walk(in.Shape, op); err != nil {
				return nil, err
			}
			if p := m.Shapes[in.Shape].Payload; p != "" {
				return nil, fmt.Errorf("%s: input payload member %q is not supported", op, p)
			}
		}
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by gen from %s; DO NOT EDIT.\n\n", modelName)
	fmt.Fprintf(&b, "package validate\n\n")
	fmt.Fprintf(&b, "// Model %s (protocol %s, apiVersion %s).\n\n", m.Metadata.UID, m.Metadata.Protocol, m.Metadata.APIVersion)
	fmt.Fprintf(&b, "// operations holds every operation of the model with its HTTP binding and input shape.\n")
	fmt.Fprintf(&b, "var operations = map[string]*operation{\n")
	for _, op := range opNames {
		o := m.Operations[op]
		input := ""
		if o.Input != nil {
			input = o.Input.Shape
		}
		fmt.Fprintf(&b, "%q: {Method: %q, URI: %q, Input: %q},\n", op, o.HTTP.Method, o.HTTP.RequestURI, input)
	}
	fmt.Fprintf(&b, "}\n\n")

	fmt.Fprintf(&b, "// shapes holds the input shape of every operation and every shape reachable from one, by name.\n")
	fmt.Fprintf(&b, "// Shapes are sorted by name; structure members and enum values are in model order.\n")
	fmt.Fprintf(&b, "var shapes = map[string]*shape{\n")
	for _, name := range sortedKeys(reach) {
		if err := writeShape(&b, name, m.Shapes[name]); err != nil {
			return nil, fmt.Errorf("shape %s: %w", name, err)
		}
	}
	fmt.Fprintf(&b, "}\n")

	src, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("gofmt generated code: %w", err)
	}
	return src, nil
}

func writeShape(b *bytes.Buffer, name string, s *modelShape) error {
	kind, ok := kinds[s.Type]
	switch {
	case s.Type == "structure" && s.Document:
		kind = "kindDocument"
	case s.Type == "structure" && s.Union:
		kind = "kindUnion"
	case !ok:
		return fmt.Errorf("unsupported type %q", s.Type)
	}
	if s.Sparse {
		return errors.New("sparse collections are not supported")
	}
	var pattern, regex, modelPattern, why string
	if s.Pattern != nil {
		pattern = *s.Pattern
		if fix, ok := patternFixes[name]; ok {
			if fix.model != pattern {
				return fmt.Errorf("pattern fix is stale: model has %q, fix expects %q", pattern, fix.model)
			}
			modelPattern, pattern, why = pattern, fix.fixed, fix.why
		}
		re, err := translate(pattern)
		if err != nil {
			return fmt.Errorf("pattern %q: %w", pattern, err)
		}
		regex = "^(?:" + re + ")$"
		if _, err := regexp.Compile(regex); err != nil {
			return fmt.Errorf("pattern %q: %w", pattern, err)
		}
	}
	if why != "" {
		for _, line := range wrap(name+": pattern corrected (ModelPattern is the model's): "+why+".", 100) {
			fmt.Fprintf(b, "// %s\n", line)
		}
	}
	fmt.Fprintf(b, "%q: {\n", name)
	fmt.Fprintf(b, "Kind: %s,\n", kind)
	if s.Sensitive {
		fmt.Fprintf(b, "Sensitive: true,\n")
	}
	if len(s.Members) > 0 {
		required := map[string]bool{}
		for _, r := range s.Required {
			required[r] = true
		}
		seen := map[string]bool{}
		fmt.Fprintf(b, "Members: []member{\n")
		for _, mem := range s.Members {
			jsonName := mem.Name
			switch mem.Location {
			case "":
				if mem.LocationName != "" {
					jsonName = mem.LocationName
				}
			case "uri", "querystring", "header", "headers":
			default:
				return fmt.Errorf("member %s: unsupported location %q", mem.Name, mem.Location)
			}
			if mem.JSONValue {
				return fmt.Errorf("member %s: jsonvalue members are not supported", mem.Name)
			}
			if seen[jsonName] {
				return fmt.Errorf("two members named %q", jsonName)
			}
			seen[jsonName] = true
			fmt.Fprintf(b, "{Name: %q, JSON: %q, Shape: %q", mem.Name, jsonName, mem.Shape)
			if mem.Location != "" {
				fmt.Fprintf(b, ", Location: %q, LocationName: %q", mem.Location, mem.LocationName)
			}
			if required[mem.Name] {
				fmt.Fprintf(b, ", Required: true")
				delete(required, mem.Name)
			}
			fmt.Fprintf(b, "},\n")
		}
		fmt.Fprintf(b, "},\n")
		if len(required) > 0 {
			return fmt.Errorf("required members %v are not members", sortedKeys(required))
		}
	} else if len(s.Required) > 0 {
		return fmt.Errorf("required members %v are not members", s.Required)
	}
	if s.Member != nil {
		fmt.Fprintf(b, "Member: %q,\n", s.Member.Shape)
	}
	if s.Key != nil {
		fmt.Fprintf(b, "Key: %q,\n", s.Key.Shape)
	}
	if s.Value != nil {
		fmt.Fprintf(b, "Value: %q,\n", s.Value.Shape)
	}
	integral := s.Type != "float" && s.Type != "double"
	for _, bound := range []struct {
		field string
		n     *json.Number
	}{{"Min", s.Min}, {"Max", s.Max}} {
		if bound.n == nil {
			continue
		}
		v, err := strconv.ParseFloat(bound.n.String(), 64)
		if err != nil {
			return fmt.Errorf("%s: %w", strings.ToLower(bound.field), err)
		}
		if integral && (v != math.Trunc(v) || math.Abs(v) > 1<<53) {
			return fmt.Errorf("%s %s is not an integer that a float64 holds exactly", strings.ToLower(bound.field), bound.n)
		}
		fmt.Fprintf(b, "Has%s: true, %s: %s,\n", bound.field, bound.field, strconv.FormatFloat(v, 'f', -1, 64))
	}
	if pattern != "" {
		fmt.Fprintf(b, "Pattern: %s,\n", goString(pattern))
		if modelPattern != "" {
			fmt.Fprintf(b, "ModelPattern: %s,\n", goString(modelPattern))
		}
		fmt.Fprintf(b, "Regexp: %s,\n", goString(regex))
	}
	if len(s.Enum) > 0 {
		fmt.Fprintf(b, "Enum: []string{")
		for i, e := range s.Enum {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(b, "%q", e)
		}
		fmt.Fprintf(b, "},\n")
	}
	if s.TimestampFormat != "" {
		fmt.Fprintf(b, "TimestampFormat: %q,\n", s.TimestampFormat)
	}
	fmt.Fprintf(b, "},\n")
	return nil
}

// ecmaSpace is the class body of ECMA-262 \s (WhiteSpace and LineTerminator), which is wider than RE2's
// \s ([\t\n\f\r ]).
const ecmaSpace = `\t\n\v\f\r \x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}\x{feff}`

// translate rewrites an ECMA-262 pattern (non-unicode mode, as Smithy's pattern trait) into Go RE2
// syntax with the same meaning. It rewrites what the two dialects read differently (\s, ., identity
// escapes, \b in a class) and refuses what RE2 cannot express (backreferences, lookaround).
func translate(p string) (string, error) {
	var out strings.Builder
	inClass := false
	rs := []rune(p)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == '\\':
			if i+1 >= len(rs) {
				return "", errors.New("trailing backslash")
			}
			i++
			e := rs[i]
			switch {
			case e == 's':
				if inClass {
					out.WriteString(ecmaSpace)
				} else {
					out.WriteString("[" + ecmaSpace + "]")
				}
			case e == 'S':
				if inClass {
					return "", errors.New(`\S inside a character class is not supported`)
				}
				out.WriteString("[^" + ecmaSpace + "]")
			case e == 'b' && inClass:
				out.WriteString(`\x08`)
			case e == '0':
				out.WriteString(`\x00`)
			case e >= '1' && e <= '9':
				return "", errors.New("backreferences are not supported")
			case e == 'u' && i+4 < len(rs) && isHex(rs[i+1:i+5]):
				out.WriteString(`\x{` + string(rs[i+1:i+5]) + `}`)
				i += 4
			case e == 'x' && i+2 < len(rs) && isHex(rs[i+1:i+3]):
				out.WriteString(`\x` + string(rs[i+1:i+3]))
				i += 2
			case strings.ContainsRune("dDwWbBtnrfv", e):
				out.WriteString(`\` + string(e))
			case e == 'c' || e == 'k' || e == 'p' || e == 'P' || e == 'u' || e == 'x':
				return "", fmt.Errorf(`\%c escapes are not supported`, e)
			case e < 0x80 && !isAlnum(e):
				// Escaped punctuation is itself in both dialects, inside a class too.
				out.WriteString(`\` + string(e))
			default:
				// Identity escape (ECMA-262 Annex B): the character itself.
				out.WriteRune(e)
			}
		case inClass:
			if c == ']' {
				inClass = false
			} else if c == '[' {
				out.WriteString(`\[`)
				continue
			}
			out.WriteRune(c)
		case c == '[':
			inClass = true
			out.WriteRune(c)
			if i+1 < len(rs) && rs[i+1] == '^' {
				out.WriteRune('^')
				i++
			}
			if i+1 < len(rs) && rs[i+1] == ']' {
				return "", errors.New("empty character classes ([] and [^]) are not supported")
			}
		case c == '.':
			// ECMA's . excludes every line terminator; RE2's only \n.
			out.WriteString(`[^\n\r\x{2028}\x{2029}]`)
		case c == '(' && i+2 < len(rs) && rs[i+1] == '?' && (rs[i+2] == '=' || rs[i+2] == '!' ||
			(rs[i+2] == '<' && i+3 < len(rs) && (rs[i+3] == '=' || rs[i+3] == '!'))):
			return "", errors.New("lookaround assertions are not supported")
		default:
			out.WriteRune(c)
		}
	}
	if inClass {
		return "", errors.New("unterminated character class")
	}
	return out.String(), nil
}

// wrap breaks text into lines of at most width bytes (longer words stay whole).
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}

func isAlnum(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

func isHex(rs []rune) bool {
	for _, r := range rs {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

// goString quotes s as a Go string literal, raw when that is possible (patterns read better raw).
func goString(s string) string {
	if strconv.CanBackquote(s) {
		return "`" + s + "`"
	}
	return strconv.Quote(s)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
