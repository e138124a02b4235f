package validate

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"
)

// FuzzDecode feeds arbitrary bodies to Decode for a handful of operations. Decode must never panic, must
// fail only with *Error, and whatever it accepts must decode into a map, whose JSON it must accept again.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		``,
		`{}`,
		`{"name":"s","participantTokenConfigurations":[{"duration":60,"capabilities":["PUBLISH"],"attributes":{"a":"b"}}],"tags":{"k":"v"}}`,
		`{"stageArn":"` + stageARN + `","duration":1.0e1,"userId":"é","capabilities":["SUBSCRIBE"]}`,
		`{"stageArn":"` + stageARN + `","sessionId":"` + sessionID + `","participantId":"p","maxResults":100,"nextToken":"a"}`,
		`{"tags":{"a":"b"}}`,
		`{"maxResults":1e20}`,
		`{"participantTokenConfigurations":[null,{"duration":"x"}]}`,
		`[1,2]`,
		`{"a":`,
		"{\"name\":\"\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	ops := []string{"CreateStage", "CreateParticipantToken", "ListParticipants", "ListParticipantEvents", "TagResource", "UntagResource", "StartComposition", "ListStages"}
	bound := map[string]any{"resourceArn": stageARN, "tagKeys": []string{"a"}}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, op := range ops {
			err := Decode(op, body, bound, nil)
			if err != nil {
				var verr *Error
				if !errors.As(err, &verr) || len(verr.Problems) == 0 || verr.Error() == "" {
					t.Fatalf("%s: error %T %v", op, err, err)
				}
				continue
			}
			var m map[string]any
			if err := Decode(op, body, bound, &m); err != nil {
				t.Fatalf("%s: accepted, but decoding into a map failed: %v", op, err)
			}
			again, err := json.Marshal(m)
			if err != nil {
				t.Fatalf("%s: %v", op, err)
			}
			if err := Decode(op, again, bound, nil); err != nil {
				t.Fatalf("%s: accepted %q but not its own output %s: %v", op, body, again, err)
			}
		}
	})
}

// directInput has the shapes of the API's input structs (string, pointer, list, map, nested and embedded
// members).
type directInput struct {
	directEmbedded
	Name        *string           `json:"name"`
	SessionID   string            `json:"sessionId"`
	UserID      string            `json:"userId"`
	Duration    *int              `json:"duration"`
	MaxResults  *int32            `json:"maxResults"`
	NextToken   *string           `json:"nextToken"`
	Published   *bool             `json:"filterByPublished"`
	Caps        *[]string         `json:"capabilities"`
	Attributes  map[string]string `json:"attributes"`
	Tags        map[string]string `json:"tags"`
	TokenConfig []struct {
		Duration   *int              `json:"duration"`
		UserID     string            `json:"userId"`
		Attributes map[string]string `json:"attributes"`
		Caps       *[]string         `json:"capabilities"`
	} `json:"participantTokenConfigurations"`
	Recording map[string]any `json:"autoParticipantRecordingConfiguration"`
}

type directEmbedded struct {
	StageARN string `json:"stageArn"`
	Ignored  string `json:"-"`
	Untagged string
}

// FuzzDecodeDirect: decoding the body directly (Decode's fast path) gives what decoding the validated
// document gives, for every body that validates.
func FuzzDecodeDirect(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `{"name":null}`, `{"Name":"x"}`, `{"name":"x","unknown":1}`, `{"duration":1.0e1}`, `{"duration":-0}`,
		`{"name":"s","participantTokenConfigurations":[{"duration":60,"capabilities":["PUBLISH"],"attributes":{"a":"b"},"x":1}],"tags":{"k":"v"}}`,
		`{"stageArn":"` + stageARN + `","duration":10,"userId":"é","capabilities":["SUBSCRIBE"],"attributes":{"a":"b"}}`,
		`{"stageArn":"` + stageARN + `","sessionId":"` + sessionID + `","participantId":"p","maxResults":100,"nextToken":"a"}`,
		`{"stageArn":"` + stageARN + `","sessionId":"` + sessionID + `","filterByPublished":true,"maxResults":5}`,
	} {
		f.Add([]byte(seed))
	}
	ops := []string{"CreateStage", "CreateParticipantToken", "GetParticipant", "ListParticipants", "ListParticipantEvents"}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, op := range ops {
			if Decode(op, body, nil, nil) != nil {
				continue
			}
			obj, err := parseBody(body)
			if err != nil {
				t.Fatal(err)
			}
			var c checker
			doc := c.structure(operations[op].input, obj, nil, "")
			for _, mk := range []func() any{func() any { return &directInput{} }, func() any { return &map[string]any{} },
				func() any { return &struct{ Name string }{} }} {
				fast, slow := mk(), mk()
				errFast := Decode(op, body, nil, fast)
				errSlow := decodeDocument(op, doc, slow)
				if (errFast == nil) != (errSlow == nil) {
					t.Fatalf("%s %s: direct %v, via the document %v", op, body, errFast, errSlow)
				}
				if errFast == nil && !reflect.DeepEqual(fast, slow) {
					t.Fatalf("%s %s:\ndirect       %#v\nvia document %#v", op, body, fast, slow)
				}
			}
		}
	})
}

// FuzzPatterns: every pattern of the model matches what Go's regexp matches, whichever matcher
// patternMatcher chose for it (pattern.go).
func FuzzPatterns(f *testing.F) {
	for _, s := range []string{"", "arn:aws:ivs:us-east-1:123456789012:stage/abcDEF123", "st-abc123", "st-", "abc-DEF_1",
		"arn:aws:ivs:us-east-1:1:stage/", "arn:aws:ivs::1:stage/a", "arn:aws:ivs:us-east-1:12a:stage/x", "a\nb", "é",
		"arn:aws:ivs:us-east-1:123:storage-configuration/abc", "1.2.3-x", "AQ+/=_-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for name, sh := range shapes {
			if sh.re == nil {
				continue
			}
			if got, want := sh.match(s), sh.re.MatchString(s); got != want {
				t.Fatalf("%s (%s): %q: %v, regexp says %v", name, sh.Regexp, s, got, want)
			}
		}
	})
}

// TestPatternMatchers: the model's sequence patterns got the byte matcher (the others keep regexp).
func TestPatternMatchers(t *testing.T) {
	fast := 0
	for name, sh := range shapes {
		if sh.re == nil {
			continue
		}
		if _, ok := newSequenceMatcher(sh.re.String()); ok {
			fast++
		} else {
			t.Logf("%s keeps regexp: %s", name, sh.Regexp)
		}
	}
	for _, name := range []string{"StageArn", "StageSessionId", "ParticipantId"} {
		if sh, ok := shapes[name]; !ok || sh.re == nil {
			t.Errorf("no pattern on %s", name)
		} else if _, ok := newSequenceMatcher(sh.re.String()); !ok {
			t.Errorf("%s (%s) has no byte matcher", name, sh.Regexp)
		}
	}
	if fast == 0 {
		t.Fatal("no pattern has the byte matcher")
	}
}

// FuzzParseFast checks parseFast against encoding/json: whatever it takes, encoding/json takes too and
// gives the same document.
func FuzzParseFast(f *testing.F) {
	for _, seed := range []string{
		`{}`, ` { } `, `{"a":"b","c":[1,-0.5e+3,true,false,null,{"d":{}}],"e":[]}`, `{"a":"\u00e9\n\"","a":2}`,
		`{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":1e}`, `{"a":"x` + "\x01" + `"}`, `{"a":tru}`, `{"a":1,}`, `[1]`,
		`{"a":1} x`, `{"a":"\ud800"}`, `{"a":"\x"}`, `{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !utf8.Valid(body) {
			return // parseBody refuses it before either parser
		}
		fast, ok := parseFast(body)
		slow, err := parseDecoder(body)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("parseFast took %q, encoding/json did not: %v", body, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: parseFast %#v, encoding/json %#v", body, fast, slow)
		}
	})
}

// TestParseFastTakesAPIBodies: the bodies clients send take the fast path (a fuzz target cannot show
// that the fast path is used at all).
func TestParseFastTakesAPIBodies(t *testing.T) {
	for _, body := range []string{
		`{"stageArn":"` + stageARN + `","sessionId":"` + sessionID + `","participantId":"p"}`,
		`{"name":"s","participantTokenConfigurations":[{"duration":60,"capabilities":["PUBLISH"],"attributes":{"a":"b"}}],"tags":{"k":"v"}}`,
		"{\n  \"maxResults\": 100,\n  \"filterByPublished\": false,\n  \"userId\": \"\\u00e9\"\n}",
	} {
		if _, ok := parseFast([]byte(body)); !ok {
			t.Errorf("parseFast did not take %s", body)
		}
	}
}
