package api_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/openstage/openstage/internal/ivs"
)

// benchRequest is a signed API request that can be served again and again: a signature stays valid for
// the 15 minutes of allowed clock skew.
type benchRequest struct {
	req  *http.Request
	body []byte
}

func (h *harness) signed(b *testing.B, op string, in any) benchRequest {
	body, err := json.Marshal(in)
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/"+op, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(h.ctx, aws.Credentials{AccessKeyID: rootID, SecretAccessKey: rootSecret},
		req, hex.EncodeToString(sum[:]), "ivs", region, time.Now()); err != nil {
		b.Fatal(err)
	}
	return benchRequest{req, body}
}

// serve runs the handler on r, as net/http would, and fails unless it answers 200.
func (r benchRequest) serve(b *testing.B, h http.Handler) {
	r.req.Body = io.NopCloser(bytes.NewReader(r.body))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r.req)
	if w.Code != http.StatusOK {
		b.Fatalf("%d %s", w.Code, w.Body.String())
	}
}

// BenchmarkServe is the API's own cost per call, without the network: SigV4, validation, the store read
// on SQLite, and the JSON answer. The benchmark harness (internal/bench) measures the same operations over
// HTTP against a bare handler; this is where to profile them.
func BenchmarkServe(b *testing.B) {
	h := newHarness(b, opts{})
	arn := *h.createStage("bench").Arn
	pr := h.join(arn, ivs.ClientInfo{OSName: "Linux", BrowserName: "Chrome"})
	for range 150 {
		if err := h.domain.StartPublish(h.ctx, pr); err != nil {
			b.Fatal(err)
		}
		if err := h.domain.StopPublish(h.ctx, pr); err != nil {
			b.Fatal(err)
		}
	}
	for range 120 {
		h.join(arn, ivs.ClientInfo{})
	}
	handler := h.srv.Config.Handler
	part := map[string]any{"stageArn": arn, "sessionId": string(pr.Session), "participantId": string(pr.ID)}
	for _, c := range []struct {
		name string
		op   string
		in   map[string]any
	}{
		{"GetParticipant", "GetParticipant", part},
		{"ListParticipants", "ListParticipants", map[string]any{"stageArn": arn, "sessionId": string(pr.Session), "maxResults": 100}},
		{"ListParticipantEvents", "ListParticipantEvents", map[string]any{"stageArn": arn, "sessionId": string(pr.Session),
			"participantId": string(pr.ID), "maxResults": 100}},
	} {
		b.Run(c.name, func(b *testing.B) {
			r := h.signed(b, c.op, c.in)
			b.ReportAllocs()
			for b.Loop() {
				r.serve(b, handler)
			}
		})
	}
}
