package token

import (
	"context"
	"crypto/sha512"
	"encoding/json"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify: arbitrary token strings never panic, are always rejected with a *token.Error (the lookup never
// fails otherwise), and anything accepted satisfies the claim rules.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	good := handToken(f, es384Header(customerKID), payload(), signECDSA(f, fx.customerKey))
	minted, err := fx.signer.Sign(Claims{ExpiresAt: testNow.Add(1e12), IssuedAt: testNow, ParticipantID: "p",
		Resource: testStageARN, EventsURL: "e", WhipURL: "w"})
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(good, ".")
	for _, s := range []string{
		good, minted, "", ".", "..", "...", "a.b.c", "garbage",
		parts[0] + "." + parts[1] + ".",
		parts[0] + "." + parts[1],
		handToken(f, map[string]any{"alg": "none", "kid": customerKID}, payload(), nil),
		handToken(f, map[string]any{"alg": "HS384", "kid": customerKID}, payload(), signHMAC(sha512.New384, fx.customerPEM)),
		b64([]byte(`{"alg":"ES384","kid":{}}`)) + "." + parts[1] + "." + parts[2],
		b64([]byte(`{"alg":["ES384"]}`)) + "." + b64([]byte(`{"exp":"x"}`)) + ".",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := fx.verifier.Verify(context.Background(), raw)
		if err != nil {
			if _, ok := ReasonOf(err); !ok {
				t.Fatalf("rejection without a Reason: %v", err)
			}
			return
		}
		checkAccepted(t, c)
	})
}

// FuzzVerifyClaims: arbitrary payloads never panic in claim checking and are accepted only if they satisfy the
// claim rules. The payload is decoded exactly as jwt decodes it for Verify; the signature step is left out (an
// ECDSA signature per input would make the fuzzer a hundred times slower), Verify covers it.
func FuzzVerifyClaims(f *testing.F) {
	fx := newFixture(f)
	for _, p := range []any{
		payload(),
		with(payload(), func(m map[string]any) { m["exp"] = "1" }),
		with(payload(), func(m map[string]any) { m["capabilities"] = []int{1} }),
		with(payload(), func(m map[string]any) { m["attributes"] = map[string]any{"a": map[string]any{}} }),
	} {
		f.Add(mustJSON(f, p))
	}
	f.Add([]byte(`{"exp":1e400}`))
	f.Add([]byte(`{"exp":-0.0000,"iat":00}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		rc := rawClaims{}
		var claims jwt.Claims = &rc
		if err := json.Unmarshal(payload, &claims); err != nil {
			return // Verify reports Malformed
		}
		c, cerr := fx.verifier.checkClaims(rc)
		if cerr != nil {
			if cerr.Reason == Malformed || cerr.Reason == BadSignature || cerr.Reason == BadAlgorithm || cerr.Reason == UnknownKey {
				t.Fatalf("claim check gave reason %s: %v", cerr.Reason, cerr)
			}
			return
		}
		c.KeyID = "k"
		checkAccepted(t, c)
	})
}

// TestVerifySignedFuzzCorpus runs the FuzzVerifyClaims seeds end to end, signed, through Verify.
func TestVerifySignedFuzzCorpus(t *testing.T) {
	fx := newFixture(t)
	sign := signECDSA(t, fx.customerKey)
	for _, p := range []string{
		string(mustJSON(t, payload())), `{"exp":1e400}`, `{"exp":-0.0000,"iat":00}`, `null`, `[]`, `{"exp":{}}`,
	} {
		raw := handToken(t, es384Header(customerKID), p, sign)
		c, err := fx.verifier.Verify(context.Background(), raw)
		if err != nil {
			r, ok := ReasonOf(err)
			if !ok || r == BadSignature || r == BadAlgorithm || r == UnknownKey {
				t.Errorf("%s: %v", p, err)
			}
			continue
		}
		checkAccepted(t, c)
	}
}

func checkAccepted(t *testing.T, c Claims) {
	t.Helper()
	if c.Version != TokenVersion || c.KeyID == "" || !ValidParticipantID(c.ParticipantID) {
		t.Fatalf("accepted token with bad claims: %+v", c)
	}
	if id, ok := StageIDFromARN(c.Resource); !ok || id != c.Topic {
		t.Fatalf("accepted token with bad resource/topic: %+v", c)
	}
	if !testNow.Before(c.ExpiresAt) || c.IssuedAt.After(testNow) || c.ExpiresAt.Sub(c.IssuedAt) > MaxLifetime {
		t.Fatalf("accepted token with bad times: %+v", c)
	}
}
