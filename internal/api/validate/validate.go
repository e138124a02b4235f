// Package validate checks request inputs of the IVS Real-Time API against every rule of the AWS API
// model (docs/DESIGN.md §2): required members, JSON types, string lengths in Unicode characters, anchored
// patterns, enums, numeric ranges, and list and map sizes, for any operation, nested members included.
//
// One mechanism does it all: model_gen.go, generated from the model by ./gen, is a table of the input
// shape of every operation and of every shape reachable from one; Decode walks a request against it.
// Nothing here is written per operation or per field.
//
// Messages follow the AWS style, one per problem:
//
//	1 validation error detected: Value '21000' at 'duration' failed to satisfy constraint: Member must have value less than or equal to 20160
package validate

//go:generate go run ./gen -model model/ivs-realtime-2020-07-14.min.json -out model_gen.go

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrUnknownOperation is returned (wrapped) by Decode for an operation the model does not have.
var ErrUnknownOperation = errors.New("validate: unknown operation")

// Known reports whether op is an operation of the model.
func Known(op string) bool {
	_, ok := operations[op]
	return ok
}

// Decode parses body (a JSON object; an empty body counts as {}) as the input of operation op, merges the
// members bound from the URL, checks every rule of the model, and on success unmarshals the merged
// document into dst (a pointer to a struct with json tags) when dst != nil.
//
// bound maps the member names of members the model binds outside the body (location uri, querystring or
// header) to their values, e.g. {"resourceArn": "arn:...", "tagKeys": []string{"a", "b"}}; it may be nil.
// Values may be strings, []string, []any or numbers; a string for a numeric or boolean member is parsed
// as the HTTP binding sends it. A nil value (or nil slice) is absent. Keys naming body members are ignored,
// and so are body keys naming bound members: each member comes from where the model binds it.
//
// Unknown JSON fields are ignored and do not reach dst; JSON null counts as absent. Integers reach dst
// normalized (1.0 and 1e2 are the integers 1 and 100). A body that breaks a rule gives an *Error listing
// every problem; any other error (unknown op, a dst that cannot hold the validated document) is a
// programming error on the caller's side.
func Decode(op string, body []byte, bound map[string]any, dst any) error {
	o, ok := operations[op]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownOperation, op)
	}
	obj, err := parseBody(body)
	if err != nil {
		return err
	}
	// Without bound members the body is the document unless the checker reshapes it: check first, and
	// build the document only if it is needed.
	c := checker{checkOnly: bound == nil}
	doc := c.structure(o.input, obj, bound, "")
	if len(c.problems) > 0 {
		return &Error{Problems: c.problems, omitted: c.omitted}
	}
	if dst == nil {
		return nil
	}
	if bound == nil && !c.reshaped {
		// The body is the validated document: store what was parsed in dst directly (assign.go), rather
		// than re-encode the document and decode that (a fifth of a GetParticipant's cost, profiled).
		if len(bytes.TrimSpace(body)) == 0 {
			return nil
		}
		rv := reflect.ValueOf(dst)
		if rv.Kind() == reflect.Pointer && !rv.IsNil() {
			if assign(rv.Elem(), obj) {
				return nil
			}
			rv.Elem().SetZero() // undo what assign stored before it gave up
		}
		if err := json.Unmarshal(body, dst); err != nil {
			return fmt.Errorf("validate: %s: decode validated input into %T: %w", op, dst, err)
		}
		return nil
	}
	if doc == nil {
		var b checker
		doc = b.structure(o.input, obj, bound, "")
	}
	return decodeDocument(op, doc, dst)
}

// decodeDocument decodes the validated document into dst by way of JSON: the general path, for bodies
// the checker reshaped and for members bound from the URL.
func decodeDocument(op string, doc map[string]any, dst any) error {
	buf, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("validate: %s: encode validated input: %w", op, err)
	}
	if err := json.Unmarshal(buf, dst); err != nil {
		return fmt.Errorf("validate: %s: decode validated input into %T: %w", op, dst, err)
	}
	return nil
}

// parseBody returns the top-level JSON object of body, with numbers as json.Number.
func parseBody(body []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]any{}, nil
	}
	if !utf8.Valid(body) {
		return nil, bodyError("request body is not valid JSON: invalid UTF-8")
	}
	if obj, ok := parseFast(body); ok {
		return obj, nil
	}
	return parseDecoder(body)
}

// parseDecoder is parseBody by encoding/json, for what parseFast does not take: invalid JSON (whose
// error it words) and the rare bodies parseFast leaves to it.
func parseDecoder(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, bodyError("request body is not valid JSON: unexpected end of input")
		}
		return nil, bodyError("request body is not valid JSON: " + err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bodyError("request body is not valid JSON: unexpected data after the top-level value")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, bodyError("request body must be a JSON object, got " + jsonKind(v))
	}
	return obj, nil
}

func bodyError(msg string) *Error {
	return &Error{Problems: []Problem{{Message: msg}}}
}

// Error is a validation failure; Error() gives the whole message.
type Error struct {
	Problems []Problem

	omitted int // problems found beyond maxProblems, counted but not listed
}

// Problem is one broken rule. Path names the member, e.g. "participantTokenConfigurations[1].duration"
// (empty for the body as a whole); Message is the whole AWS-style sentence, value and path included.
type Problem struct {
	Path    string
	Message string
}

// Error returns "N validation error(s) detected: " and the problems joined by "; ".
func (e *Error) Error() string {
	n := len(e.Problems) + e.omitted
	var b strings.Builder
	b.WriteString(strconv.Itoa(n))
	if n == 1 {
		b.WriteString(" validation error detected: ")
	} else {
		b.WriteString(" validation errors detected: ")
	}
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Message)
	}
	if e.omitted > 0 {
		fmt.Fprintf(&b, "; and %d more", e.omitted)
	}
	return b.String()
}
