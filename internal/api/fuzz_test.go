package api_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// FuzzAPI sends signed requests with arbitrary bodies to every supported operation: whatever the body,
// the answer is a 200 or a client error with the restJson1 error shape, never a 5xx or a panic.
func FuzzAPI(f *testing.F) {
	ops := []string{"CreateStage", "GetStage", "UpdateStage", "DeleteStage", "ListStages", "CreateParticipantToken",
		"DisconnectParticipant", "GetStageSession", "ListStageSessions", "GetParticipant", "ListParticipants",
		"ListParticipantEvents", "ImportPublicKey", "GetPublicKey", "ListPublicKeys", "DeletePublicKey"}
	seeds := []string{`{}`, `{"name":"a","participantTokenConfigurations":[{"duration":1,"capabilities":["PUBLISH"]}]}`,
		`{"arn":"arn:aws:ivs:us-east-1:123456789012:stage/abcdefabcdef"}`, `{"maxResults":1,"nextToken":"AQ"}`,
		`{"stageArn":"arn:aws:ivs:us-east-1:123456789012:stage/a","sessionId":"st-0000000000000","participantId":"x"}`,
		`{"publicKeyMaterial":"-----BEGIN PUBLIC KEY-----\nMHY=\n-----END PUBLIC KEY-----"}`, `[`, `null`, `{"maxResults":1e400}`}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	h := newHarness(f, opts{})
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		name := ops[int(op)%len(ops)]
		req := httptest.NewRequest("POST", "/"+name, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(req.Context(), aws.Credentials{AccessKeyID: rootID, SecretAccessKey: rootSecret},
			req, hex.EncodeToString(sum[:]), "ivs", region, time.Now()); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		h.srv.Config.Handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: %d %s", name, body, rec.Code, rec.Body)
		}
		if rec.Code != http.StatusOK {
			var e struct{ ExceptionMessage string }
			if rec.Header().Get("x-amzn-ErrorType") == "" || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.ExceptionMessage == "" {
				t.Fatalf("%s %q: error without the restJson1 shape: %d %v %s", name, body, rec.Code, rec.Header(), rec.Body)
			}
		} else if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %q: 200 with invalid JSON %s", name, body, rec.Body)
		}
	})
}
