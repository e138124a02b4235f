package token

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"
)

// BenchmarkVerify measures what each kind of token costs the verifier: a valid one, and the bad tokens an
// anonymous client can send as fast as it likes (a forged signature over valid-looking claims, an expired
// token, garbage, a kid naming no key). The cheap rejections must stay cheap: only a token whose claims
// pass is worth a P-384 verification.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	p := payload()
	hdr := es384Header(customerKID)
	valid := handToken(b, hdr, p, signECDSA(b, f.customerKey))
	expired := handToken(b, hdr, with(p, func(m map[string]any) {
		m["iat"], m["exp"] = testNow.Add(-2*time.Hour).Unix(), testNow.Add(-time.Hour).Unix()
	}), signECDSA(b, f.customerKey))
	forged := func() string { // a fresh random signature every time, as a flood sends them
		sig := make([]byte, 96)
		_, _ = rand.Read(sig)
		parts := strings.Split(valid, ".")
		return parts[0] + "." + parts[1] + "." + b64(sig)
	}
	expiredForged := func() string {
		sig := make([]byte, 96)
		_, _ = rand.Read(sig)
		parts := strings.Split(expired, ".")
		return parts[0] + "." + parts[1] + "." + b64(sig)
	}
	unknownKID := handToken(b, es384Header("arn:aws:ivs:us-west-2:123456789012:public-key/nope"), p, signECDSA(b, f.customerKey))
	for _, bm := range []struct {
		name string
		tok  func() string
		ok   bool
	}{
		{"valid", func() string { return valid }, true},
		{"forged_signature", forged, false},
		{"expired_signed", func() string { return expired }, false},
		{"expired_forged", expiredForged, false},
		{"unknown_kid", func() string { return unknownKID }, false},
		{"garbage", func() string { return "eyJhbGciOiJFUzM4NCJ9.garbage.garbage" }, false},
	} {
		b.Run(bm.name, func(b *testing.B) {
			toks := make([]string, 64)
			for i := range toks {
				toks[i] = bm.tok()
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				_, err := f.verifier.Verify(ctx, toks[i%len(toks)])
				if (err == nil) != bm.ok {
					b.Fatalf("%s: %v", bm.name, err)
				}
			}
		})
	}
}
