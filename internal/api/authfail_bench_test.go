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
)

// BenchmarkServeRefused is what a refused API call costs the server, without the network: a wrong secret
// (the signature is computed and compared: HMACs), an unknown access key, no signature at all. Each is
// answered 403. Compare with BenchmarkServe/GetParticipant, and with a participant token's P-384
// verification (internal/token BenchmarkVerify): API refusals need no per-address limit to stay cheap.
func BenchmarkServeRefused(b *testing.B) {
	h := newHarness(b, opts{})
	arn := *h.createStage("bench").Arn
	body, err := json.Marshal(map[string]any{"arn": arn})
	if err != nil {
		b.Fatal(err)
	}
	handler := h.srv.Config.Handler
	for _, c := range []struct {
		name, id, secret string
	}{
		{"wrong_secret", rootID, "not-the-secret"},
		{"unknown_key", "AKOSNOSUCHKEY", "whatever"},
		{"unsigned", "", ""},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/GetStage", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if c.id != "" {
				sum := sha256.Sum256(body)
				if err := v4.NewSigner().SignHTTP(h.ctx, aws.Credentials{AccessKeyID: c.id, SecretAccessKey: c.secret},
					req, hex.EncodeToString(sum[:]), "ivs", region, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				req.Body = io.NopCloser(bytes.NewReader(body))
				w := httptest.NewRecorder()
				handler.ServeHTTP(w, req)
				if w.Code != http.StatusForbidden {
					b.Fatalf("%d %s", w.Code, w.Body.String())
				}
			}
		})
	}
}
