package validate

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const (
	stageARN  = "arn:aws:ivs:us-east-1:123456789012:stage/abcdABCDefgh"
	sessionID = "st-1CVugbu2cf2n8" // 16 characters
)

// decodeProblems runs Decode and returns its problems; it fails the test on any other kind of error.
func decodeProblems(t *testing.T, op, body string, bound map[string]any) []Problem {
	t.Helper()
	err := Decode(op, []byte(body), bound, nil)
	if err == nil {
		return nil
	}
	var verr *Error
	if !errors.As(err, &verr) {
		t.Fatalf("Decode(%s, %q): error %T %v, want *Error", op, body, err, err)
	}
	if len(verr.Problems) == 0 {
		t.Fatalf("Decode(%s, %q): *Error without problems", op, body)
	}
	return verr.Problems
}

func repeat(s string, n int) string { return strings.Repeat(s, n) }

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func tagsJSON(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"k%d":"v"`, i)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func publicKeyPEM(t *testing.T, crlf bool) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	s := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if crlf {
		s = strings.ReplaceAll(s, "\n", "\r\n")
	}
	return s
}

// TestRules drives every kind of rule through real operations. want lists the expected problems as
// "path: message suffix" (the part after "failed to satisfy constraint: "); nil means valid.
func TestRules(t *testing.T) {
	pem, pemCRLF := publicKeyPEM(t, false), publicKeyPEM(t, true)
	bound := map[string]any{"resourceArn": stageARN}
	tagKeys := func(keys ...string) map[string]any {
		if keys == nil {
			keys = []string{} // present but empty, as opposed to a nil slice (absent)
		}
		return map[string]any{"resourceArn": stageARN, "tagKeys": keys}
	}
	manyKeys := make([]string, 51)
	for i := range manyKeys {
		manyKeys[i] = fmt.Sprintf("k%d", i)
	}

	for _, tc := range []struct {
		name  string
		op    string
		body  string
		bound map[string]any
		want  []string
	}{
		// Valid requests.
		{"CreateStage empty body", "CreateStage", "", nil, nil},
		{"CreateStage whitespace body", "CreateStage", " \n\t", nil, nil},
		{"CreateStage empty object", "CreateStage", "{}", nil, nil},
		{"CreateStage full", "CreateStage", `{"name":"my-stage_1","participantTokenConfigurations":[{"duration":20160,"userId":"u","attributes":{"a":"b"},"capabilities":["PUBLISH","SUBSCRIBE"]},{"duration":1,"capabilities":[]}],"tags":{"env":"dev"}}`, nil, nil},
		{"CreateStage 12 configurations", "CreateStage", `{"participantTokenConfigurations":[` + strings.TrimSuffix(repeat(`{},`, 12), ",") + `]}`, nil, nil},
		{"CreateStage unknown fields ignored", "CreateStage", `{"bogus":[1,{"x":null}],"Name":5}`, nil, nil},
		{"CreateStage nulls are absent", "CreateStage", `{"name":null,"participantTokenConfigurations":null,"tags":null}`, nil, nil},
		{"CreateStage recording config", "CreateStage", `{"autoParticipantRecordingConfiguration":{"storageConfigurationArn":"","mediaTypes":["AUDIO_ONLY"]}}`, nil, nil},
		{"CreateParticipantToken minimal", "CreateParticipantToken", `{"stageArn":"` + stageARN + `"}`, nil, nil},
		{"CreateParticipantToken 128 multibyte runes", "CreateParticipantToken", `{"stageArn":"` + stageARN + `","userId":"` + repeat("é", 128) + `"}`, nil, nil},
		{"CreateParticipantToken 128 astral runes", "CreateParticipantToken", `{"stageArn":"` + stageARN + `","userId":"` + repeat("😀", 128) + `"}`, nil, nil},
		{"CreateParticipantToken integral forms", "CreateParticipantToken", `{"stageArn":"` + stageARN + `","duration":6.0e1}`, nil, nil},
		{"ListParticipants maxResults 1", "ListParticipants", `{"stageArn":"` + stageARN + `","sessionId":"` + sessionID + `","maxResults":1}`, nil, nil},
		{"ListParticipants maxResults 100", "ListParticipants", `{"stageArn":"` + stageARN + `","sessionId":"` + sessionID + `","maxResults":100,"filterByState":"CONNECTED","filterByPublished":true,"nextToken":"abc+/=_-"}`, nil, nil},
		{"ListParticipantEvents", "ListParticipantEvents", `{"stageArn":"` + stageARN + `","sessionId":"` + sessionID + `","participantId":"abcdABCD1234","maxResults":50}`, nil, nil},
		{"GetStageSession", "GetStageSession", `{"stageArn":"` + stageARN + `","sessionId":"` + sessionID + `"}`, nil, nil},
		{"ImportPublicKey", "ImportPublicKey", `{"publicKeyMaterial":` + jsonString(pem) + `,"name":"k1"}`, nil, nil},
		{"ImportPublicKey CRLF", "ImportPublicKey", `{"publicKeyMaterial":` + jsonString(pemCRLF) + `}`, nil, nil},
		{"TagResource", "TagResource", `{"tags":{"a":"","b":"` + repeat("é", 256) + `"}}`, bound, nil},
		{"TagResource 50 tags", "TagResource", `{"tags":` + tagsJSON(50) + `}`, bound, nil},
		{"TagResource public key ARN", "TagResource", `{"tags":{}}`, map[string]any{"resourceArn": "arn:aws:ivs:us-west-2:123456789012:public-key/abcd1234ABCD"}, nil},
		{"UntagResource", "UntagResource", "", tagKeys("a", "b"), nil},
		{"UntagResource []any", "UntagResource", "", map[string]any{"resourceArn": stageARN, "tagKeys": []any{"a"}}, nil},
		{"UntagResource empty list", "UntagResource", "", tagKeys(), nil},
		{"ListTagsForResource", "ListTagsForResource", "", bound, nil},
		{"DisconnectParticipant", "DisconnectParticipant", `{"stageArn":"` + stageARN + `","participantId":"abc_DEF-123","reason":"` + repeat("ü", 128) + `"}`, nil, nil},

		// Required members.
		{"missing required", "CreateParticipantToken", "{}", nil, []string{"stageArn: Member must not be null"}},
		{"null required", "CreateParticipantToken", `{"stageArn":null}`, nil, []string{"stageArn: Member must not be null"}},
		{"empty body, required", "GetStageSession", "", nil, []string{"stageArn: Member must not be null", "sessionId: Member must not be null"}},
		{"required bound missing", "TagResource", `{"tags":{}}`, nil, []string{"resourceArn: Member must not be null"}},
		{"body cannot supply a bound member", "TagResource", `{"resourceArn":"` + stageARN + `","tags":{}}`, nil, []string{"resourceArn: Member must not be null"}},
		{"required bound nil slice", "UntagResource", "", map[string]any{"resourceArn": stageARN, "tagKeys": []string(nil)}, []string{"tagKeys: Member must not be null"}},
		{"nested required", "StartComposition", `{"stageArn":"` + stageARN + `","destinations":[{"channel":{}}]}`, nil, []string{"destinations[0].channel.channelArn: Member must not be null"}},
		{"null list item", "CreateStage", `{"participantTokenConfigurations":[null]}`, nil, []string{"participantTokenConfigurations[0]: Member must not be null"}},
		{"null map value", "CreateStage", `{"tags":{"a":null}}`, nil, []string{"tags.a: Member must not be null"}},

		// Lengths, counted in Unicode characters.
		{"name too long", "CreateStage", `{"name":"` + repeat("a", 129) + `"}`, nil, []string{"name: Member must have length less than or equal to 128"}},
		{"129 multibyte runes", "CreateParticipantToken", `{"stageArn":"` + stageARN + `","userId":"` + repeat("é", 129) + `"}`, nil, []string{"userId: Member must have length less than or equal to 128"}},
		{"reason too long", "DisconnectParticipant", `{"stageArn":"` + stageARN + `","participantId":"p","reason":"` + repeat("a", 129) + `"}`, nil, []string{"reason: Member must have length less than or equal to 128"}},
		{"sessionId 15", "GetStageSession", `{"stageArn":"` + stageARN + `","sessionId":"st-1CVugbu2cf2n"}`, nil, []string{"sessionId: Member must have length greater than or equal to 16"}},
		{"sessionId 17", "GetStageSession", `{"stageArn":"` + stageARN + `","sessionId":"st-1CVugbu2cf2n89"}`, nil, []string{"sessionId: Member must have length less than or equal to 16"}},
		{"empty stageArn", "GetStage", `{"arn":""}`, nil, []string{"arn: Member must have length greater than or equal to 1", "arn: Member must satisfy regular expression pattern: arn:aws:ivs:[a-z0-9-]+:[0-9]+:stage/[a-zA-Z0-9-]+"}},

		// Anchored patterns.
		{"pattern prefix bypass", "CreateParticipantToken", `{"stageArn":"xarn:aws:ivs:us-east-1:1:stage/abc"}`, nil, []string{"stageArn: Member must satisfy regular expression pattern: arn:aws:ivs:[a-z0-9-]+:[0-9]+:stage/[a-zA-Z0-9-]+"}},
		{"pattern suffix bypass", "CreateParticipantToken", `{"stageArn":"arn:aws:ivs:us-east-1:1:stage/abc!"}`, nil, []string{"stageArn: Member must satisfy regular expression pattern: arn:aws:ivs:[a-z0-9-]+:[0-9]+:stage/[a-zA-Z0-9-]+"}},
		{"pattern newline bypass", "CreateParticipantToken", `{"stageArn":"arn:aws:ivs:us-east-1:1:stage/abc\n"}`, nil, []string{"stageArn: Member must satisfy regular expression pattern: arn:aws:ivs:[a-z0-9-]+:[0-9]+:stage/[a-zA-Z0-9-]+"}},
		{"star pattern is anchored", "CreateStage", `{"name":"ok then-bad!"}`, nil, []string{"name: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]*"}},
		{"wrong resource type", "GetStage", `{"arn":"arn:aws:ivs:us-east-1:123:public-key/abc"}`, nil, []string{"arn: Member must satisfy regular expression pattern: arn:aws:ivs:[a-z0-9-]+:[0-9]+:stage/[a-zA-Z0-9-]+"}},
		{"sessionId pattern", "GetStageSession", `{"stageArn":"` + stageARN + `","sessionId":"xx-1CVugbu2cf2n8"}`, nil, []string{"sessionId: Member must satisfy regular expression pattern: st-[a-zA-Z0-9]+"}},
		{"participantId pattern", "DisconnectParticipant", `{"stageArn":"` + stageARN + `","participantId":"a b"}`, nil, []string{"participantId: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]*"}},
		{"nextToken pattern", "ListParticipants", `{"stageArn":"` + stageARN + `","sessionId":"` + sessionID + `","nextToken":"a!b"}`, nil, []string{"nextToken: Member must satisfy regular expression pattern: [a-zA-Z0-9+/=_-]*"}},
		{"public key garbage", "ImportPublicKey", `{"publicKeyMaterial":"not a key"}`, nil, []string{"publicKeyMaterial: Member must satisfy regular expression pattern: .*-----BEGIN PUBLIC KEY-----"}},
		{"public key text on a second line", "ImportPublicKey", `{"publicKeyMaterial":` + jsonString(pem+"junk\njunk") + `}`, nil, []string{"publicKeyMaterial: Member must satisfy regular expression pattern: .*-----BEGIN PUBLIC KEY-----"}},
		{"bound resourceArn pattern", "TagResource", `{"tags":{}}`, map[string]any{"resourceArn": "arn:aws:ivs:us-east-1:123:stage"}, []string{"resourceArn: Member must satisfy regular expression pattern: arn:aws:ivs:[a-z0-9-]+:[0-9]+:[a-z-]+/[a-zA-Z0-9-]+"}},
		{"anchored empty-or-arn", "CreateStage", `{"autoParticipantRecordingConfiguration":{"storageConfigurationArn":"x"}}`, nil, []string{"autoParticipantRecordingConfiguration.storageConfigurationArn: Member must satisfy regular expression pattern: ^$|^arn:aws:ivs:[a-z0-9-]+:[0-9]+:storage-configuration/[a-zA-Z0-9-]+$"}},

		// Enums.
		{"enum", "ListParticipants", `{"stageArn":"` + stageARN + `","sessionId":"` + sessionID + `","filterByState":"connected"}`, nil, []string{"filterByState: Member must satisfy enum value set: [CONNECTED, DISCONNECTED]"}},
		{"enum in list", "CreateParticipantToken", `{"stageArn":"` + stageARN + `","capabilities":["PUBLISH","ADMIN"]}`, nil, []string{"capabilities[1]: Member must satisfy enum value set: [PUBLISH, SUBSCRIBE]"}},

		// Ranges.
		{"maxResults 0", "ListParticipants", `{"stageArn":"` + stageARN + `","sessionId":"` + sessionID + `","maxResults":0}`, nil, []string{"maxResults: Member must have value greater than or equal to 1"}},
		{"maxResults 101", "ListParticipants", `{"stageArn":"` + stageARN + `","sessionId":"` + sessionID + `","maxResults":101}`, nil, []string{"maxResults: Member must have value less than or equal to 100"}},
		{"maxResults -1", "ListParticipantEvents", `{"stageArn":"` + stageARN + `","sessionId":"` + sessionID + `","participantId":"p","maxResults":-1}`, nil, []string{"maxResults: Member must have value greater than or equal to 1"}},
		{"duration too long", "CreateParticipantToken", `{"stageArn":"` + stageARN + `","duration":21000}`, nil, []string{"duration: Member must have value less than or equal to 20160"}},
		{"nested duration", "CreateStage", `{"participantTokenConfigurations":[{"duration":0},{"duration":5}]}`, nil, []string{"participantTokenConfigurations[0].duration: Member must have value greater than or equal to 1"}},
		{"nested duration second", "CreateStage", `{"participantTokenConfigurations":[{"duration":5},{"duration":21000}]}`, nil, []string{"participantTokenConfigurations[1].duration: Member must have value less than or equal to 20160"}},
		{"float range", "CreateEncoderConfiguration", `{"video":{"framerate":60.5}}`, nil, []string{"video.framerate: Member must have value less than or equal to 60"}},

		// List item counts and map entry counts, key and value constraints.
		{"capabilities 3", "CreateParticipantToken", `{"stageArn":"` + stageARN + `","capabilities":["PUBLISH","SUBSCRIBE","PUBLISH"]}`, nil, []string{"capabilities: Member must have length less than or equal to 2"}},
		{"nested capabilities 3", "CreateStage", `{"participantTokenConfigurations":[{},{"capabilities":["PUBLISH","SUBSCRIBE","PUBLISH"]}]}`, nil, []string{"participantTokenConfigurations[1].capabilities: Member must have length less than or equal to 2"}},
		{"13 configurations", "CreateStage", `{"participantTokenConfigurations":[` + strings.TrimSuffix(repeat(`{},`, 13), ",") + `]}`, nil, []string{"participantTokenConfigurations: Member must have length less than or equal to 12"}},
		{"51 tags", "TagResource", `{"tags":` + tagsJSON(51) + `}`, bound, []string{"tags: Member must have length less than or equal to 50"}},
		{"51 tags on create", "CreateStage", `{"tags":` + tagsJSON(51) + `}`, nil, []string{"tags: Member must have length less than or equal to 50"}},
		{"empty tag key", "TagResource", `{"tags":{"":"v"}}`, bound, []string{"tags: Map keys must have length greater than or equal to 1"}},
		{"long tag key", "CreateStage", `{"tags":{"` + repeat("k", 129) + `":"v"}}`, nil, []string{"tags: Map keys must have length less than or equal to 128"}},
		{"long tag value", "TagResource", `{"tags":{"k":"` + repeat("v", 257) + `"}}`, bound, []string{"tags.k: Member must have length less than or equal to 256"}},
		{"51 tag keys", "UntagResource", "", tagKeys(manyKeys...), []string{"tagKeys: Member must have length less than or equal to 50"}},
		{"empty bound tag key", "UntagResource", "", tagKeys("a", ""), []string{"tagKeys[1]: Member must have length greater than or equal to 1"}},
		{"list min", "StartComposition", `{"stageArn":"` + stageARN + `","destinations":[]}`, nil, []string{"destinations: Member must have length greater than or equal to 1"}},

		// Wrong JSON types.
		{"string for integer", "ListParticipants", `{"stageArn":"` + stageARN + `","sessionId":"` + sessionID + `","maxResults":"10"}`, nil, []string{"maxResults: expected integer, got string"}},
		{"fraction for integer", "ListParticipants", `{"stageArn":"` + stageARN + `","sessionId":"` + sessionID + `","maxResults":1.5}`, nil, []string{"maxResults: expected integer, got a number with a fractional part"}},
		{"huge integer", "ListParticipants", `{"stageArn":"` + stageARN + `","sessionId":"` + sessionID + `","maxResults":1e20}`, nil, []string{"maxResults: expected integer, got a number outside [-2147483648, 2147483647]"}},
		{"int32 overflow", "ListStages", `{"maxResults":2147483648}`, nil, []string{"maxResults: expected integer, got a number outside [-2147483648, 2147483647]"}},
		{"huge exponent", "ListStages", `{"maxResults":1e999999999999}`, nil, []string{"maxResults: expected integer, got a number outside [-2147483648, 2147483647]"}},
		{"tiny exponent", "ListStages", `{"maxResults":1e-999999999999}`, nil, []string{"maxResults: expected integer, got a number with a fractional part"}},
		{"number for string", "CreateParticipantToken", `{"stageArn":5}`, nil, []string{"stageArn: expected string, got number"}},
		{"object for list", "CreateStage", `{"participantTokenConfigurations":{"duration":5}}`, nil, []string{"participantTokenConfigurations: expected list, got object"}},
		{"string for structure", "CreateStage", `{"participantTokenConfigurations":["x"]}`, nil, []string{"participantTokenConfigurations[0]: expected structure, got string"}},
		{"list for map", "CreateParticipantToken", `{"stageArn":"` + stageARN + `","attributes":["a"]}`, nil, []string{"attributes: expected map, got array"}},
		{"number map value", "CreateParticipantToken", `{"stageArn":"` + stageARN + `","attributes":{"a":1}}`, nil, []string{"attributes.a: expected string, got number"}},
		{"string for boolean", "ListParticipants", `{"stageArn":"` + stageARN + `","sessionId":"` + sessionID + `","filterByPublished":"true"}`, nil, []string{"filterByPublished: expected boolean, got string"}},
		{"bound list not list", "UntagResource", "", map[string]any{"resourceArn": stageARN, "tagKeys": "a"}, []string{"tagKeys: expected list, got string"}},

		// Several problems, in model member order.
		{"several", "ListParticipantEvents", `{"sessionId":"short","maxResults":0}`, nil, []string{
			"stageArn: Member must not be null",
			"sessionId: Member must have length greater than or equal to 16",
			"sessionId: Member must satisfy regular expression pattern: st-[a-zA-Z0-9]+",
			"participantId: Member must not be null",
			"maxResults: Member must have value greater than or equal to 1",
		}},

		// The body as a whole.
		{"malformed", "CreateStage", `{"name":`, nil, []string{": request body is not valid JSON: unexpected end of input"}},
		{"bad token", "CreateStage", `{"name":x}`, nil, []string{": request body is not valid JSON: invalid character 'x' looking for beginning of value"}},
		{"trailing comma", "CreateStage", `{"name":"a",}`, nil, []string{": request body is not valid JSON: invalid character '}' looking for beginning of object key string"}},
		{"trailing garbage", "CreateStage", `{} x`, nil, []string{": request body is not valid JSON: unexpected data after the top-level value"}},
		{"two objects", "CreateStage", `{}{}`, nil, []string{": request body is not valid JSON: unexpected data after the top-level value"}},
		{"array", "CreateStage", `[]`, nil, []string{": request body must be a JSON object, got array"}},
		{"top-level null", "CreateStage", `null`, nil, []string{": request body must be a JSON object, got null"}},
		{"string", "CreateStage", `"x"`, nil, []string{": request body must be a JSON object, got string"}},
		{"invalid UTF-8", "CreateStage", "{\"name\":\"\xff\"}", nil, []string{": request body is not valid JSON: invalid UTF-8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			probs := decodeProblems(t, tc.op, tc.body, tc.bound)
			var got []string
			for _, p := range probs {
				got = append(got, p.Path+": "+constraintOf(p))
				if p.Path != "" && !strings.Contains(p.Message, " at '"+p.Path+"' failed to satisfy constraint: ") {
					t.Errorf("message %q does not name path %q", p.Message, p.Path)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("problem %d:\n  got  %s\n  want %s", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// constraintOf returns the part of a message after "failed to satisfy constraint: ", or all of it.
func constraintOf(p Problem) string {
	if _, c, ok := strings.Cut(p.Message, " failed to satisfy constraint: "); ok {
		return c
	}
	return p.Message
}

// TestMessages checks whole messages and Error() against the AWS format.
func TestMessages(t *testing.T) {
	for _, tc := range []struct {
		op, body string
		want     string
	}{
		{"CreateParticipantToken", `{"stageArn":"` + stageARN + `","duration":21000}`,
			"1 validation error detected: Value '21000' at 'duration' failed to satisfy constraint: Member must have value less than or equal to 20160"},
		{"CreateParticipantToken", `{}`,
			"1 validation error detected: Value null at 'stageArn' failed to satisfy constraint: Member must not be null"},
		{"GetStage", `{"arn":"arn:aws:ivs:us-east-1:1:stage/abc!"}`,
			"1 validation error detected: Value 'arn:aws:ivs:us-east-1:1:stage/abc!' at 'arn' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:aws:ivs:[a-z0-9-]+:[0-9]+:stage/[a-zA-Z0-9-]+"},
		{"CreateStage", `{"name":"` + repeat("a", 129) + `"}`,
			"1 validation error detected: Value '" + repeat("a", 64) + "...' at 'name' failed to satisfy constraint: Member must have length less than or equal to 128"},
		{"CreateParticipantToken", `{"stageArn":"` + stageARN + `","capabilities":["PUBLISH","SUBSCRIBE","PUBLISH"]}`,
			"1 validation error detected: Value '[PUBLISH, SUBSCRIBE, PUBLISH]' at 'capabilities' failed to satisfy constraint: Member must have length less than or equal to 2"},
		{"CreateParticipantToken", `{"stageArn":"` + stageARN + `","capabilities":["ADMIN"]}`,
			"1 validation error detected: Value 'ADMIN' at 'capabilities[0]' failed to satisfy constraint: Member must satisfy enum value set: [PUBLISH, SUBSCRIBE]"},
		{"ListParticipants", `{"sessionId":"` + sessionID + `","maxResults":101}`,
			"2 validation errors detected: Value null at 'stageArn' failed to satisfy constraint: Member must not be null; Value '101' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 100"},
		{"CreateParticipantToken", `{"stageArn":"` + stageARN + `","attributes":{"a":{"b":[1,2]}}}`,
			"1 validation error detected: Value '{b=[1, 2]}' at 'attributes.a' failed to satisfy constraint: expected string, got object"},
		{"CreateStage", `{"name":`,
			"1 validation error detected: request body is not valid JSON: unexpected end of input"},
	} {
		err := Decode(tc.op, []byte(tc.body), nil, nil)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Decode(%s, %s):\n  got  %v\n  want %s", tc.op, tc.body, err, tc.want)
		}
	}
}

func TestEchoTruncatesAndCountsRunes(t *testing.T) {
	probs := decodeProblems(t, "CreateParticipantToken", `{"stageArn":"`+stageARN+`","userId":"`+repeat("é", 200)+`"}`, nil)
	if len(probs) != 1 || !strings.Contains(probs[0].Message, "Value '"+repeat("é", 64)+"...' at 'userId'") {
		t.Fatalf("problems: %+v", probs)
	}
	// A huge list is not rendered whole.
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = "key"
	}
	probs = decodeProblems(t, "UntagResource", "", map[string]any{"resourceArn": stageARN, "tagKeys": keys})
	if len(probs) != 1 || len(probs[0].Message) > 300 {
		t.Fatalf("problems: %+v", probs)
	}
	// Long map keys are cut in paths too.
	probs = decodeProblems(t, "CreateStage", `{"tags":{"`+repeat("k", 300)+`":"`+repeat("v", 300)+`"}}`, nil)
	if len(probs) != 2 || probs[1].Path != "tags."+repeat("k", 64)+"..." {
		t.Fatalf("problems: %+v", probs)
	}
}

// TestSensitiveValuesAreNotEchoed uses synthetic shapes: no input shape of the model is sensitive today
// (only ParticipantTokenString and StreamKey, both output-only), but the table carries the flag.
func TestSensitiveValuesAreNotEchoed(t *testing.T) {
	secret := &shape{Kind: kindString, Sensitive: true, HasMax: true, Max: 3, Regexp: "^(?:x)$", Pattern: "x", name: "Secret"}
	list := &shape{Kind: kindList, HasMax: true, Max: 1, Member: "Secret", member: secret, name: "SecretList"}
	strct := &shape{Kind: kindStructure, name: "Holder", Members: []member{{Name: "key", JSON: "key", Shape: "Secret", shape: secret}}}
	for _, s := range []*shape{secret, list, strct} {
		s.secret = hasSecret(s, map[*shape]bool{})
	}
	secret.re = regexp.MustCompile(secret.Regexp)
	var c checker
	c.value(secret, "hunter2-secret", "streamKey")
	c.value(list, []any{"hunter2-secret", "hunter2-secret"}, "keys")
	c.value(strct, "hunter2-secret", "holder")
	if len(c.problems) != 8 {
		t.Fatalf("problems: %+v", c.problems)
	}
	for _, p := range c.problems {
		if strings.Contains(p.Message, "hunter2") || !strings.HasPrefix(p.Message, "Value '***' at ") {
			t.Errorf("message echoes a sensitive value: %s", p.Message)
		}
	}
}

func TestTooManyProblems(t *testing.T) {
	keys := make([]string, 150)
	err := Decode("UntagResource", nil, map[string]any{"resourceArn": stageARN, "tagKeys": keys}, nil)
	var verr *Error
	if !errors.As(err, &verr) {
		t.Fatalf("err = %v", err)
	}
	if len(verr.Problems) != maxProblems {
		t.Fatalf("%d problems listed, want %d", len(verr.Problems), maxProblems)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "151 validation errors detected: ") || !strings.HasSuffix(msg, "; and 51 more") {
		t.Fatalf("message: %s", msg)
	}
}

// Small structs as handlers would declare them.
type tokenConfig struct {
	Duration     *int32            `json:"duration"`
	UserID       string            `json:"userId"`
	Attributes   map[string]string `json:"attributes"`
	Capabilities []string          `json:"capabilities"`
}

type createStageInput struct {
	Name                           string            `json:"name"`
	ParticipantTokenConfigurations []tokenConfig     `json:"participantTokenConfigurations"`
	Tags                           map[string]string `json:"tags"`
	Bogus                          string            `json:"bogus"`
}

type listParticipantsInput struct {
	StageArn          string `json:"stageArn"`
	SessionID         string `json:"sessionId"`
	FilterByPublished *bool  `json:"filterByPublished"`
	MaxResults        *int32 `json:"maxResults"`
	NextToken         string `json:"nextToken"`
}

type tagResourceInput struct {
	ResourceArn string            `json:"resourceArn"`
	Tags        map[string]string `json:"tags"`
}

type untagResourceInput struct {
	ResourceArn string   `json:"resourceArn"`
	TagKeys     []string `json:"tagKeys"`
}

func TestDecodeIntoStruct(t *testing.T) {
	t.Run("CreateStage", func(t *testing.T) {
		var in createStageInput
		body := `{"name":"s1","bogus":"x","Name":"other","participantTokenConfigurations":[{"duration":6e1,"userId":"é","attributes":{"k":"v"},"capabilities":["PUBLISH"]},{"duration":null}],"tags":{"a":"b"}}`
		if err := Decode("CreateStage", []byte(body), nil, &in); err != nil {
			t.Fatal(err)
		}
		want := createStageInput{
			Name: "s1",
			ParticipantTokenConfigurations: []tokenConfig{
				{Duration: ptr[int32](60), UserID: "é", Attributes: map[string]string{"k": "v"}, Capabilities: []string{"PUBLISH"}},
				{},
			},
			Tags: map[string]string{"a": "b"},
		}
		if !equalJSON(t, in, want) {
			t.Fatalf("got %+v", in)
		}
	})
	t.Run("ListParticipants", func(t *testing.T) {
		var in listParticipantsInput
		body := `{"stageArn":"` + stageARN + `","sessionId":"` + sessionID + `","filterByPublished":false,"maxResults":100.0,"nextToken":null}`
		if err := Decode("ListParticipants", []byte(body), nil, &in); err != nil {
			t.Fatal(err)
		}
		if in.StageArn != stageARN || in.SessionID != sessionID || in.FilterByPublished == nil || *in.FilterByPublished || in.MaxResults == nil || *in.MaxResults != 100 || in.NextToken != "" {
			t.Fatalf("got %+v", in)
		}
	})
	t.Run("TagResource takes resourceArn from the URL only", func(t *testing.T) {
		var in tagResourceInput
		body := `{"resourceArn":"arn:aws:ivs:us-east-1:1:stage/fromBody","tags":{"a":"b"}}`
		if err := Decode("TagResource", []byte(body), map[string]any{"resourceArn": stageARN}, &in); err != nil {
			t.Fatal(err)
		}
		if in.ResourceArn != stageARN || in.Tags["a"] != "b" {
			t.Fatalf("got %+v", in)
		}
	})
	t.Run("UntagResource", func(t *testing.T) {
		var in untagResourceInput
		if err := Decode("UntagResource", nil, map[string]any{"resourceArn": stageARN, "tagKeys": []string{"a", "b"}, "ignored": 1}, &in); err != nil {
			t.Fatal(err)
		}
		if in.ResourceArn != stageARN || !slices.Equal(in.TagKeys, []string{"a", "b"}) {
			t.Fatalf("got %+v", in)
		}
	})
	t.Run("map", func(t *testing.T) {
		var in map[string]any
		if err := Decode("ListStages", []byte(`{"maxResults":1e1,"x":1}`), nil, &in); err != nil {
			t.Fatal(err)
		}
		if len(in) != 1 || in["maxResults"] != float64(10) {
			t.Fatalf("got %#v", in)
		}
	})
	t.Run("invalid leaves dst alone", func(t *testing.T) {
		in := createStageInput{Name: "before"}
		if err := Decode("CreateStage", []byte(`{"name":"bad name"}`), nil, &in); err == nil || in.Name != "before" {
			t.Fatalf("err = %v, in = %+v", err, in)
		}
	})
	t.Run("dst that cannot hold the input", func(t *testing.T) {
		var in struct {
			Name int `json:"name"`
		}
		err := Decode("CreateStage", []byte(`{"name":"s"}`), nil, &in)
		var verr *Error
		if err == nil || errors.As(err, &verr) {
			t.Fatalf("err = %v, want a non-validation error", err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	x, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(x) == string(y)
}

func TestKnown(t *testing.T) {
	ops := modelOperations(t)
	if len(ops) != 39 {
		t.Fatalf("%d operations, want 39", len(ops))
	}
	for _, op := range ops {
		if !Known(op) {
			t.Errorf("Known(%q) = false", op)
		}
		// Every operation accepts a body with nothing wrong in it except missing required members.
		err := Decode(op, []byte("{}"), nil, nil)
		var verr *Error
		if err != nil && !errors.As(err, &verr) {
			t.Errorf("Decode(%s, {}): %v", op, err)
		}
	}
	for _, op := range []string{"", "createStage", "CreateStage ", "CreateStages", "DescribeStage", "ListTagsForResource/x", "ValidationException", "CreateStageRequest"} {
		if Known(op) {
			t.Errorf("Known(%q) = true", op)
		}
		if err := Decode(op, nil, nil, nil); !errors.Is(err, ErrUnknownOperation) {
			t.Errorf("Decode(%q): %v, want ErrUnknownOperation", op, err)
		}
	}
}

// modelOperations lists the operations of the model (the reduced copy go:generate reads).
func modelOperations(t *testing.T) []string {
	var ops []string
	raw, err := os.ReadFile("model/ivs-realtime-2020-07-14.min.json")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Operations map[string]json.RawMessage `json:"operations"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for op := range m.Operations {
		ops = append(ops, op)
	}
	if len(ops) != len(operations) {
		t.Errorf("model has %d operations, table %d", len(ops), len(operations))
	}
	return ops
}

// TestTable checks the table as init resolved it: every pattern compiled and anchored.
func TestTable(t *testing.T) {
	patterns := 0
	for name, s := range shapes {
		if s.Pattern != "" {
			patterns++
			if s.re == nil || !strings.HasPrefix(s.Regexp, "^(?:") || !strings.HasSuffix(s.Regexp, ")$") {
				t.Errorf("%s: pattern not compiled or not anchored: %q", name, s.Regexp)
			}
		}
	}
	if patterns < 20 {
		t.Errorf("only %d patterns", patterns)
	}
	if s := shapes["ResourceArn"]; s.ModelPattern == "" || s.re.MatchString("arn:aws:ivs:us-east-1:1:stage") {
		t.Errorf("ResourceArn: %+v", s)
	}
}

func TestParseInteger(t *testing.T) {
	for _, tc := range []struct {
		lit               string
		v                 int64
		integral, inRange bool
	}{
		{"0", 0, true, true},
		{"-0", 0, true, true},
		{"-0.0e5", 0, true, true},
		{"7", 7, true, true},
		{"1.0", 1, true, true},
		{"1.50", 0, false, true},
		{"1e2", 100, true, true},
		{"1E+2", 100, true, true},
		{"120e-1", 12, true, true},
		{"125e-1", 0, false, true},
		{"0.001e3", 1, true, true},
		{"-9223372036854775808", -9223372036854775808, true, true},
		{"9223372036854775807", 9223372036854775807, true, true},
		{"9223372036854775808", 0, true, false},
		{"9.223372036854775807e18", 9223372036854775807, true, true},
		{"1e19", 0, true, false},
		{"1e20", 0, true, false},
		{"1e99999999999", 0, true, false},
		{"1e-99999999999", 0, false, true},
		{"0e99999999999", 0, true, true},
	} {
		v, integral, inRange := parseInteger(tc.lit)
		if v != tc.v || integral != tc.integral || inRange != tc.inRange {
			t.Errorf("parseInteger(%q) = %d, %v, %v; want %d, %v, %v", tc.lit, v, integral, inRange, tc.v, tc.integral, tc.inRange)
		}
	}
}

func TestFromBound(t *testing.T) {
	var c checker
	max := shapes["MaxParticipantResults"]
	if got := c.value(max, fromBound(max, "100"), "maxResults"); got != int64(100) {
		t.Errorf("bound \"100\": %v", got)
	}
	c.value(max, fromBound(max, "ten"), "maxResults")
	c.value(max, fromBound(max, " 1"), "maxResults")
	if len(c.problems) != 2 || constraintOf(c.problems[0]) != "expected integer, got string" {
		t.Errorf("problems: %+v", c.problems)
	}
	b := shapes["Boolean"]
	if fromBound(b, "true") != true || fromBound(b, "false") != false || fromBound(b, "1") != "1" {
		t.Error("boolean from string")
	}
	if fromBound(shapes["TagKeyList"], []string(nil)) != nil || fromBound(shapes["TagKeyList"], []any(nil)) != nil {
		t.Error("nil slices must be absent")
	}
}

// TestDecodeDirectWhenUnchanged: a body the checker leaves as it is takes the direct path, and any
// reshaping sends it through the document.
func TestDecodeDirectWhenUnchanged(t *testing.T) {
	for body, reshaped := range map[string]bool{
		`{"stageArn":"` + stageARN + `","sessionId":"` + sessionID + `","participantId":"p"}`:                   false,
		`{"stageArn":"` + stageARN + `","sessionId":"` + sessionID + `","participantId":"p","x":1}`:             true,
		`{"stageArn":"` + stageARN + `","sessionId":"` + sessionID + `","participantId":"p","maxResults":null}`: true,
		`{"stageArn":"` + stageARN + `","sessionId":"` + sessionID + `","participantId":"p","maxResults":10}`:   false,
		`{"stageArn":"` + stageARN + `","sessionId":"` + sessionID + `","participantId":"p","maxResults":1e1}`:  true,
	} {
		obj, err := parseBody([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		var c checker
		c.structure(operations["ListParticipantEvents"].input, obj, nil, "")
		if len(c.problems) > 0 || c.reshaped != reshaped {
			t.Errorf("%s: problems %v, reshaped %v, want %v", body, c.problems, c.reshaped, reshaped)
		}
	}
}
