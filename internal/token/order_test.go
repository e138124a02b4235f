package token

import (
	"context"
	"crypto/ecdsa"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestCheapChecksFirst: a token that fails on its form, header or claims is refused before its key is
// looked up (a store read for an imported key) and so before its signature is verified, whatever its
// signature; only a token whose claims pass costs a lookup and a P-384 verification.
func TestCheapChecksFirst(t *testing.T) {
	f := newFixture(t)
	var lookups atomic.Int64
	v := &Verifier{Now: func() time.Time { return testNow }, Keys: funcKeys(func(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
		lookups.Add(1)
		return f.keys.VerificationKey(ctx, kid)
	})}
	hdr := es384Header(customerKID)
	noKID := es384Header(customerKID)
	delete(noKID, "kid")
	forge := func(tok string) string { // the same token with someone else's signature
		parts := strings.Split(tok, ".")
		other := strings.Split(handToken(t, hdr, payload(), signECDSA(t, f.serverKey)), ".")
		return parts[0] + "." + parts[1] + "." + other[2]
	}
	good := handToken(t, hdr, payload(), signECDSA(t, f.customerKey))
	expired := handToken(t, hdr, with(payload(), func(m map[string]any) {
		m["iat"], m["exp"] = testNow.Add(-2*time.Hour).Unix(), testNow.Add(-time.Hour).Unix()
	}), signECDSA(t, f.customerKey))
	tests := []struct {
		name    string
		token   string
		want    Reason
		lookups int64
	}{
		{"valid", good, "", 1},
		{"forged signature, valid claims", forge(good), BadSignature, 1},
		{"expired, signed", expired, Expired, 0},
		{"expired, forged", forge(expired), Expired, 0},
		{"lifetime too long, forged", forge(handToken(t, hdr, with(payload(), func(m map[string]any) {
			m["exp"] = testNow.Add(15 * 24 * time.Hour).Unix()
		}), nil)), TooLong, 0},
		{"not yet valid, forged", forge(handToken(t, hdr, with(payload(), func(m map[string]any) {
			m["iat"] = testNow.Add(time.Hour).Unix()
		}), nil)), NotYetValid, 0},
		{"bad claims, forged", forge(handToken(t, hdr, with(payload(), func(m map[string]any) { delete(m, "jti") }), nil)), BadClaims, 0},
		{"garbage", "a.b.c", Malformed, 0},
		{"alg none", handToken(t, map[string]any{"alg": "none", "kid": customerKID}, payload(), nil), BadAlgorithm, 0},
		{"no kid", handToken(t, noKID, payload(), signECDSA(t, f.customerKey)), Malformed, 0},
		{"unknown kid", handToken(t, es384Header("arn:aws:ivs:us-west-2:123456789012:public-key/nope"), payload(), nil), UnknownKey, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookups.Store(0)
			_, err := v.Verify(context.Background(), tt.token)
			wantReason(t, err, tt.want)
			if n := lookups.Load(); n != tt.lookups {
				t.Errorf("%d key lookups, want %d", n, tt.lookups)
			}
		})
	}
}
