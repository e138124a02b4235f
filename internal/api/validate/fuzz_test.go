package validate

import (
	"encoding/json"
	"errors"
	"testing"
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
