package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSignVerifyRoundTrip(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		in   Claims
		want Claims // expected result, KeyID excluded
	}{
		{
			name: "all claims",
			in: Claims{
				ExpiresAt:     testNow.Add(720 * time.Minute),
				IssuedAt:      testNow,
				ParticipantID: "p_ABC-123",
				UserID:        "user@example.com",
				Resource:      testStageARN,
				Topic:         testStageID,
				EventsURL:     "wss://global.events.live-video.net",
				WhipURL:       "https://example.global-bm.whip.live-video.net",
				Capabilities:  Capabilities{AllowPublish: true, AllowSubscribe: true},
				Attributes:    map[string]string{"role": "host", "ünïcode": "välue"},
				Version:       "1.0",
			},
		},
		{
			name: "defaults: version, topic; subscribe only, no user, no attributes",
			in: Claims{
				ExpiresAt:     testNow.Add(time.Minute),
				IssuedAt:      testNow.Add(-time.Second),
				ParticipantID: "x",
				Resource:      testStageARN,
				EventsURL:     "wss://e",
				WhipURL:       "https://w",
				Capabilities:  Capabilities{AllowSubscribe: true},
			},
			want: Claims{
				ExpiresAt:     testNow.Add(time.Minute),
				IssuedAt:      testNow.Add(-time.Second),
				ParticipantID: "x",
				Resource:      testStageARN,
				Topic:         testStageID,
				EventsURL:     "wss://e",
				WhipURL:       "https://w",
				Capabilities:  Capabilities{AllowSubscribe: true},
				Version:       "1.0",
			},
		},
		{
			name: "maximum lifetime, sub-second times truncated",
			in: Claims{
				ExpiresAt:     testNow.Add(MaxLifetime - time.Minute + 500*time.Millisecond),
				IssuedAt:      testNow.Add(-time.Minute + 900*time.Millisecond),
				ParticipantID: strings.Repeat("a", 64),
				UserID:        strings.Repeat("é", 128),
				Resource:      testStageARN,
				EventsURL:     "wss://e",
				WhipURL:       "https://w",
				Attributes:    map[string]string{"k": strings.Repeat("v", MaxAttributesSize-1)},
			},
			want: Claims{
				ExpiresAt:     testNow.Add(MaxLifetime - time.Minute),
				IssuedAt:      testNow.Add(-time.Minute),
				ParticipantID: strings.Repeat("a", 64),
				UserID:        strings.Repeat("é", 128),
				Resource:      testStageARN,
				Topic:         testStageID,
				EventsURL:     "wss://e",
				WhipURL:       "https://w",
				Attributes:    map[string]string{"k": strings.Repeat("v", MaxAttributesSize-1)},
				Version:       "1.0",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := f.signer.Sign(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			assertHeader(t, raw, f.serverKID)
			got, err := f.verifier.Verify(context.Background(), raw)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want.ParticipantID == "" {
				want = tt.in
			}
			want.KeyID = f.serverKID
			if !got.ExpiresAt.Equal(want.ExpiresAt) || !got.IssuedAt.Equal(want.IssuedAt) {
				t.Errorf("times: got exp %v iat %v, want %v %v", got.ExpiresAt, got.IssuedAt, want.ExpiresAt, want.IssuedAt)
			}
			got.ExpiresAt, got.IssuedAt, want.ExpiresAt, want.IssuedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// assertHeader checks the JOSE header of a minted token and that its payload has integer exp/iat.
func assertHeader(t *testing.T, raw, kid string) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments", len(parts))
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(hb, &h); err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"alg": "ES384", "typ": "JWT", "kid": kid}; !reflect.DeepEqual(h, want) {
		t.Errorf("header %v, want %v", h, want)
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(pb, &p); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"exp", "iat"} {
		if strings.ContainsAny(string(p[c]), ".eE\"") {
			t.Errorf("%s is %s, want an integer", c, p[c])
		}
	}
	if string(p["version"]) != `"1.0"` {
		t.Errorf("version %s", p["version"])
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 96 {
		t.Errorf("signature: %d bytes, %v; want 96 (raw R||S)", len(sig), err)
	}
}

func TestSignDefaultsIssuedAtToNow(t *testing.T) {
	f := newFixture(t)
	before := time.Now().Add(-time.Second)
	raw, err := f.signer.Sign(Claims{
		ExpiresAt: time.Now().Add(time.Hour), ParticipantID: "p", Resource: testStageARN, EventsURL: "e", WhipURL: "w",
	})
	if err != nil {
		t.Fatal(err)
	}
	v := &Verifier{Keys: f.keys} // real clock
	c, err := v.Verify(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if c.IssuedAt.Before(before) || c.IssuedAt.After(time.Now()) {
		t.Errorf("iat %v not about now", c.IssuedAt)
	}
}

func TestSignRejects(t *testing.T) {
	f := newFixture(t)
	good := Claims{
		ExpiresAt: testNow.Add(time.Hour), IssuedAt: testNow, ParticipantID: "p", Resource: testStageARN,
		EventsURL: "e", WhipURL: "w",
	}
	tests := []struct {
		name string
		edit func(*Claims)
		want Reason
	}{
		{"no exp", func(c *Claims) { c.ExpiresAt = time.Time{} }, BadClaims},
		{"exp before iat", func(c *Claims) { c.ExpiresAt = c.IssuedAt.Add(-time.Second) }, BadClaims},
		{"exp equals iat", func(c *Claims) { c.ExpiresAt = c.IssuedAt }, BadClaims},
		{"lifetime over 14 days", func(c *Claims) { c.ExpiresAt = c.IssuedAt.Add(MaxLifetime + time.Second) }, TooLong},
		{"empty jti", func(c *Claims) { c.ParticipantID = "" }, BadClaims},
		{"jti bad char", func(c *Claims) { c.ParticipantID = "a/b" }, BadClaims},
		{"jti too long", func(c *Claims) { c.ParticipantID = strings.Repeat("a", 65) }, BadClaims},
		{"not a stage ARN", func(c *Claims) { c.Resource = "arn:aws:ivs:us-west-2:123456789012:channel/abc" }, BadClaims},
		{"topic mismatch", func(c *Claims) { c.Topic = "other" }, BadClaims},
		{"version", func(c *Claims) { c.Version = "2.0" }, BadClaims},
		{"user_id too long", func(c *Claims) { c.UserID = strings.Repeat("u", 129) }, BadClaims},
		{"attributes too big", func(c *Claims) { c.Attributes = map[string]string{"k": strings.Repeat("v", MaxAttributesSize)} }, BadClaims},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			_, err := f.signer.Sign(c)
			wantReason(t, err, tt.want)
		})
	}
	if _, err := f.signer.Sign(good); err != nil {
		t.Fatalf("good claims: %v", err)
	}
}

func TestNewSigner(t *testing.T) {
	p384, _ := GenerateKey()
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  *ecdsa.PrivateKey
		kid  string
		ok   bool
	}{
		{"P-384", p384, "k", true},
		{"nil key", nil, "k", false},
		{"P-256", p256, "k", false},
		{"P-521", p521, "k", false},
		{"empty kid", p384, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSigner(tt.key, tt.kid)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && (s.KeyID() != tt.kid || !s.PublicKey().Equal(&tt.key.PublicKey)) {
				t.Error("KeyID/PublicKey do not reflect the inputs")
			}
		})
	}
}

// TestSelfSigned covers tokens a customer makes with their own key pair after ImportPublicKey, built the way the
// jsonwebtoken library used by the AWS samples builds them.
func TestSelfSigned(t *testing.T) {
	f := newFixture(t)
	header := `{"alg":"ES384","typ":"JWT","kid":"` + customerKID + `"}`
	raw := handToken(t, header, payload(), signECDSA(t, f.customerKey))
	got, err := f.verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	want := Claims{
		ExpiresAt:     testNow.Add(12 * time.Hour),
		IssuedAt:      testNow.Add(-time.Minute),
		ParticipantID: "Mx6clRRHODPy",
		UserID:        "alice",
		Resource:      testStageARN,
		Topic:         testStageID,
		EventsURL:     "wss://global.events.live-video.net",
		WhipURL:       "https://114ddfabadaf.global-bm.whip.live-video.net",
		Capabilities:  Capabilities{AllowPublish: true, AllowSubscribe: true},
		Attributes:    map[string]string{"optional_field_1": "abcd1234"},
		Version:       "1.0",
		KeyID:         customerKID,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}

	// A Signer over the customer's key with the ARN as kid makes equally valid tokens.
	s, err := NewSigner(f.customerKey, customerKID)
	if err != nil {
		t.Fatal(err)
	}
	raw2, err := s.Sign(Claims{ExpiresAt: testNow.Add(time.Hour), IssuedAt: testNow, ParticipantID: "p2",
		Resource: testStageARN, EventsURL: "e", WhipURL: "w"})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := f.verifier.Verify(context.Background(), raw2); err != nil || c.KeyID != customerKID {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
}

func TestVerifyRejects(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	otherP384, _ := GenerateKey()
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&f.customerKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}

	cust := signECDSA(t, f.customerKey)
	hdr := es384Header(customerKID)
	hdrWith := func(k string, v any) map[string]any {
		h := es384Header(customerKID)
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
		return h
	}
	p := payload()
	ok := handToken(t, hdr, p, cust)
	okParts := strings.Split(ok, ".")
	tamperedPayload := with(p, func(m map[string]any) {
		m["capabilities"] = map[string]any{"allow_publish": true, "allow_subscribe": true, "admin": true}
	})
	iat := testNow.Add(-time.Hour).Unix()

	tests := []struct {
		name  string
		token string
		want  Reason // "" = must verify
	}{
		{"control: valid self-signed token", ok, ""},
		{"control: exactly 14 days", handToken(t, hdr, with(p, func(m map[string]any) {
			m["iat"], m["exp"] = iat, iat+14*24*3600
		}), cust), ""},
		{"control: exp with a zero fraction", handToken(t, hdr, with(p, func(m map[string]any) {
			m["exp"] = json.RawMessage(fmt.Sprintf("%d.0", testNow.Add(time.Hour).Unix()))
		}), cust), ""},
		{"control: capabilities empty object", handToken(t, hdr, with(p, func(m map[string]any) { m["capabilities"] = map[string]any{} }), cust), ""},
		{"control: no user_id nor attributes", handToken(t, hdr, with(p, func(m map[string]any) {
			delete(m, "user_id")
			delete(m, "attributes")
		}), cust), ""},
		{"control: null user_id and attributes", handToken(t, hdr, with(p, func(m map[string]any) {
			m["user_id"], m["attributes"] = nil, nil
		}), cust), ""},

		// Signature and key.
		{"forged: other P-384 key, same kid", handToken(t, hdr, p, signECDSA(t, otherP384)), BadSignature},
		{"payload changed after signing", okParts[0] + "." + b64(mustJSON(t, tamperedPayload)) + "." + okParts[2], BadSignature},
		{"signature of another token", okParts[0] + "." + okParts[1] + "." + strings.Split(handToken(t, hdr, tamperedPayload, cust), ".")[2], BadSignature},
		{"DER signature instead of raw R||S", handToken(t, hdr, p, signECDSADER(t, f.customerKey)), BadSignature},
		{"empty signature", okParts[0] + "." + okParts[1] + ".", BadSignature},
		{"signature truncated by 3 bytes", ok[:len(ok)-4], BadSignature},
		{"server kid, customer signature", handToken(t, es384Header(f.serverKID), p, cust), BadSignature},
		{"kid unknown", handToken(t, es384Header("arn:aws:ivs:us-west-2:123456789012:public-key/nope"), p, cust), UnknownKey},
		{"kid missing", handToken(t, hdrWith("kid", nil), p, cust), Malformed},
		{"kid empty", handToken(t, hdrWith("kid", ""), p, cust), Malformed},
		{"kid not a string", handToken(t, hdrWith("kid", 7), p, cust), Malformed},
		{"crit header", handToken(t, hdrWith("crit", []string{"exp"}), p, cust), Malformed},

		// Algorithms.
		{"alg none", handToken(t, hdrWith("alg", "none"), p, nil), BadAlgorithm},
		{"alg None", handToken(t, hdrWith("alg", "None"), p, nil), BadAlgorithm},
		{"alg none with a signature", handToken(t, hdrWith("alg", "none"), p, cust), BadAlgorithm},
		{"alg missing", handToken(t, hdrWith("alg", nil), p, cust), BadAlgorithm},
		{"alg not a string", handToken(t, hdrWith("alg", 384), p, cust), BadAlgorithm},
		{"alg lower-case es384", handToken(t, hdrWith("alg", "es384"), p, cust), BadAlgorithm},
		{"alg KMS (IVS-minted)", handToken(t, hdrWith("alg", "KMS"), p, signECDSADER(t, f.customerKey)), BadAlgorithm},
		{"HS384 keyed with the public key PEM", handToken(t, hdrWith("alg", "HS384"), p, signHMAC(sha512.New384, f.customerPEM)), BadAlgorithm},
		{"HS384 keyed with the public key DER", handToken(t, hdrWith("alg", "HS384"), p, signHMAC(sha512.New384, pubDER)), BadAlgorithm},
		{"HS256 keyed with the public key PEM", handToken(t, hdrWith("alg", "HS256"), p, signHMAC(sha256.New, f.customerPEM)), BadAlgorithm},
		{"HS512 keyed with the public key PEM", handToken(t, hdrWith("alg", "HS512"), p, signHMAC(sha512.New, f.customerPEM)), BadAlgorithm},
		{"RS256", handToken(t, hdrWith("alg", "RS256"), p, signRSA(t, rsaKey, false)), BadAlgorithm},
		{"PS256", handToken(t, hdrWith("alg", "PS256"), p, signRSA(t, rsaKey, true)), BadAlgorithm},
		{"ES256", handToken(t, hdrWith("alg", "ES256"), p, signECDSA(t, p256)), BadAlgorithm},
		{"ES512", handToken(t, hdrWith("alg", "ES512"), p, signECDSA(t, p521)), BadAlgorithm},
		{"EdDSA", handToken(t, hdrWith("alg", "EdDSA"), p, signEd25519(edKey)), BadAlgorithm},

		// Times.
		{"expired", handToken(t, hdr, with(p, func(m map[string]any) {
			m["iat"], m["exp"] = iat, testNow.Add(-time.Second).Unix()
		}), cust), Expired},
		{"exp is now", handToken(t, hdr, with(p, func(m map[string]any) { m["exp"] = testNow.Unix() }), cust), Expired},
		{"lifetime 14 days + 1 s", handToken(t, hdr, with(p, func(m map[string]any) {
			m["iat"], m["exp"] = iat, iat+14*24*3600+1
		}), cust), TooLong},
		{"iat in the future", handToken(t, hdr, with(p, func(m map[string]any) { m["iat"] = testNow.Add(time.Second).Unix() }), cust), NotYetValid},
		{"nbf in the future", handToken(t, hdr, with(p, func(m map[string]any) { m["nbf"] = testNow.Add(time.Minute).Unix() }), cust), NotYetValid},
		{"exp before iat", handToken(t, hdr, with(p, func(m map[string]any) {
			m["iat"], m["exp"] = testNow.Unix(), testNow.Add(-time.Minute).Unix()
		}), cust), Expired},
		{"exp as string", handToken(t, hdr, with(p, func(m map[string]any) { m["exp"] = fmt.Sprint(testNow.Add(time.Hour).Unix()) }), cust), BadClaims},
		{"exp with a fraction", handToken(t, hdr, with(p, func(m map[string]any) {
			m["exp"] = json.RawMessage(fmt.Sprintf("%d.5", testNow.Add(time.Hour).Unix()))
		}), cust), BadClaims},
		{"exp with an exponent", handToken(t, hdr, with(p, func(m map[string]any) { m["exp"] = json.RawMessage("1.8e9") }), cust), BadClaims},
		{"exp huge", handToken(t, hdr, with(p, func(m map[string]any) { m["exp"] = json.RawMessage("99999999999999999999") }), cust), BadClaims},
		{"exp negative", handToken(t, hdr, with(p, func(m map[string]any) { m["exp"] = -1 }), cust), BadClaims},
		{"exp boolean", handToken(t, hdr, with(p, func(m map[string]any) { m["exp"] = true }), cust), BadClaims},
		{"exp null", handToken(t, hdr, with(p, func(m map[string]any) { m["exp"] = nil }), cust), BadClaims},
		{"exp missing", handToken(t, hdr, with(p, func(m map[string]any) { delete(m, "exp") }), cust), BadClaims},
		{"iat missing", handToken(t, hdr, with(p, func(m map[string]any) { delete(m, "iat") }), cust), BadClaims},
		{"iat as string", handToken(t, hdr, with(p, func(m map[string]any) { m["iat"] = "1749999000" }), cust), BadClaims},

		// Stage.
		{"topic of another stage", handToken(t, hdr, with(p, func(m map[string]any) { m["topic"] = "OtherStage1" }), cust), BadClaims},
		{"topic missing", handToken(t, hdr, with(p, func(m map[string]any) { delete(m, "topic") }), cust), BadClaims},
		{"resource missing", handToken(t, hdr, with(p, func(m map[string]any) { delete(m, "resource") }), cust), BadClaims},
		{"resource a channel ARN", handToken(t, hdr, with(p, func(m map[string]any) {
			m["resource"] = "arn:aws:ivs:us-west-2:123456789012:channel/" + testStageID
		}), cust), BadClaims},
		{"resource with a suffix", handToken(t, hdr, with(p, func(m map[string]any) { m["resource"] = testStageARN + "/x" }), cust), BadClaims},
		{"resource not a string", handToken(t, hdr, with(p, func(m map[string]any) { m["resource"] = []string{testStageARN} }), cust), BadClaims},

		// Version.
		{"version missing", handToken(t, hdr, with(p, func(m map[string]any) { delete(m, "version") }), cust), BadClaims},
		{"version 1.1", handToken(t, hdr, with(p, func(m map[string]any) { m["version"] = "1.1" }), cust), BadClaims},
		{"version as number", handToken(t, hdr, with(p, func(m map[string]any) { m["version"] = json.RawMessage("1.0") }), cust), BadClaims},
		{"version empty", handToken(t, hdr, with(p, func(m map[string]any) { m["version"] = "" }), cust), BadClaims},

		// Capabilities.
		{"capabilities missing", handToken(t, hdr, with(p, func(m map[string]any) { delete(m, "capabilities") }), cust), BadClaims},
		{"capabilities null", handToken(t, hdr, with(p, func(m map[string]any) { m["capabilities"] = nil }), cust), BadClaims},
		{"capabilities a list", handToken(t, hdr, with(p, func(m map[string]any) { m["capabilities"] = []string{"PUBLISH", "SUBSCRIBE"} }), cust), BadClaims},
		{"capabilities a string", handToken(t, hdr, with(p, func(m map[string]any) { m["capabilities"] = "allow_publish" }), cust), BadClaims},
		{"capabilities true", handToken(t, hdr, with(p, func(m map[string]any) { m["capabilities"] = true }), cust), BadClaims},
		{"allow_publish as string", handToken(t, hdr, with(p, func(m map[string]any) {
			m["capabilities"] = map[string]any{"allow_publish": "true"}
		}), cust), BadClaims},
		{"allow_subscribe as number", handToken(t, hdr, with(p, func(m map[string]any) {
			m["capabilities"] = map[string]any{"allow_subscribe": 1}
		}), cust), BadClaims},

		// Participant, user, attributes, URLs.
		{"jti missing", handToken(t, hdr, with(p, func(m map[string]any) { delete(m, "jti") }), cust), BadClaims},
		{"jti empty", handToken(t, hdr, with(p, func(m map[string]any) { m["jti"] = "" }), cust), BadClaims},
		{"jti 65 chars", handToken(t, hdr, with(p, func(m map[string]any) { m["jti"] = strings.Repeat("a", 65) }), cust), BadClaims},
		{"jti with a space", handToken(t, hdr, with(p, func(m map[string]any) { m["jti"] = "a b" }), cust), BadClaims},
		{"jti non-ASCII", handToken(t, hdr, with(p, func(m map[string]any) { m["jti"] = "é" }), cust), BadClaims},
		{"jti a number", handToken(t, hdr, with(p, func(m map[string]any) { m["jti"] = 42 }), cust), BadClaims},
		{"user_id 129 chars", handToken(t, hdr, with(p, func(m map[string]any) { m["user_id"] = strings.Repeat("é", 129) }), cust), BadClaims},
		{"user_id a number", handToken(t, hdr, with(p, func(m map[string]any) { m["user_id"] = 42 }), cust), BadClaims},
		{"attributes a list", handToken(t, hdr, with(p, func(m map[string]any) { m["attributes"] = []string{"a"} }), cust), BadClaims},
		{"attribute not a string", handToken(t, hdr, with(p, func(m map[string]any) { m["attributes"] = map[string]any{"n": 1} }), cust), BadClaims},
		{"attribute null", handToken(t, hdr, with(p, func(m map[string]any) { m["attributes"] = map[string]any{"n": nil} }), cust), BadClaims},
		{"attributes over 1 KB", handToken(t, hdr, with(p, func(m map[string]any) {
			m["attributes"] = map[string]any{"k": strings.Repeat("v", MaxAttributesSize)}
		}), cust), BadClaims},
		{"events_url missing", handToken(t, hdr, with(p, func(m map[string]any) { delete(m, "events_url") }), cust), BadClaims},
		{"whip_url a number", handToken(t, hdr, with(p, func(m map[string]any) { m["whip_url"] = 1 }), cust), BadClaims},

		// Malformed input.
		{"empty", "", Malformed},
		{"garbage", "garbage", Malformed},
		{"garbage with dots", "a.b.c", Malformed},
		{"dots only", "..", Malformed},
		{"four segments", ok + ".x", Malformed},
		{"two segments (signature dropped)", okParts[0] + "." + okParts[1], Malformed},
		{"truncated in the payload", ok[:len(okParts[0])+10], Malformed},
		{"truncated, two dots kept", okParts[0] + "." + okParts[1][:len(okParts[1])/2] + "." + okParts[2], Malformed},
		{"padded base64", okParts[0] + "=." + okParts[1] + "." + okParts[2], Malformed},
		{"standard base64 alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(ok) + "+/", Malformed},
		{"header not JSON", b64([]byte("{alg")) + "." + okParts[1] + "." + okParts[2], Malformed},
		{"header a JSON list", b64([]byte(`["ES384"]`)) + "." + okParts[1] + "." + okParts[2], Malformed},
		{"payload not JSON", handToken(t, hdr, "not json", cust), Malformed},
		{"payload a JSON list", handToken(t, hdr, `[1,2]`, cust), Malformed},
		{"payload a JSON string", handToken(t, hdr, `"x"`, cust), Malformed},
		{"payload null", handToken(t, hdr, `null`, cust), BadClaims},
		{"too long", strings.Repeat("a", MaxTokenLength+1), Malformed},
		{"whitespace around", " " + ok + "\n", Malformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := f.verifier.Verify(ctx, tt.token)
			if err != nil {
				t.Log(err)
			}
			wantReason(t, err, tt.want)
			if tt.want != "" && !reflect.DeepEqual(c, Claims{}) {
				t.Errorf("rejected token returned claims %+v", c)
			}
		})
	}
}

// TestDeletedKey: a key deleted from the lookup (DeletePublicKey) makes its tokens unusable at once.
func TestDeletedKey(t *testing.T) {
	f := newFixture(t)
	raw := handToken(t, es384Header(customerKID), payload(), signECDSA(t, f.customerKey))
	if _, err := f.verifier.Verify(context.Background(), raw); err != nil {
		t.Fatalf("before delete: %v", err)
	}
	f.keys.del(customerKID)
	_, err := f.verifier.Verify(context.Background(), raw)
	wantReason(t, err, UnknownKey)
	if !errors.Is(err, ErrUnknownKey) {
		t.Errorf("errors.Is(%v, ErrUnknownKey) = false", err)
	}
	if r, ok := ReasonOf(fmt.Errorf("wrapped: %w", err)); !ok || r != UnknownKey {
		t.Errorf("ReasonOf = %q, %v", r, ok)
	}
}

type funcKeys func(ctx context.Context, kid string) (*ecdsa.PublicKey, error)

func (f funcKeys) VerificationKey(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
	return f(ctx, kid)
}

func TestKeyLookupOutcomes(t *testing.T) {
	f := newFixture(t)
	raw, err := f.signer.Sign(Claims{ExpiresAt: testNow.Add(time.Hour), IssuedAt: testNow, ParticipantID: "p",
		Resource: testStageARN, EventsURL: "e", WhipURL: "w"})
	if err != nil {
		t.Fatal(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	outage := errors.New("database is locked")
	tests := []struct {
		name       string
		lookup     KeyLookup
		wantReason Reason // "" with wantErr = a non-token error
		wantErr    error
	}{
		{"wrapped ErrUnknownKey", funcKeys(func(context.Context, string) (*ecdsa.PublicKey, error) {
			return nil, fmt.Errorf("store: public key not found: %w", ErrUnknownKey)
		}), UnknownKey, ErrUnknownKey},
		{"nil key, nil error", funcKeys(func(context.Context, string) (*ecdsa.PublicKey, error) { return nil, nil }), UnknownKey, ErrUnknownKey},
		{"store outage", funcKeys(func(context.Context, string) (*ecdsa.PublicKey, error) { return nil, outage }), "", outage},
		{"P-256 key in store", funcKeys(func(context.Context, string) (*ecdsa.PublicKey, error) { return &p256.PublicKey, nil }), "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &Verifier{Keys: tt.lookup, Now: func() time.Time { return testNow }}
			_, err := v.Verify(context.Background(), raw)
			if err == nil {
				t.Fatal("accepted")
			}
			r, isToken := ReasonOf(err)
			if tt.wantReason == "" {
				if isToken {
					t.Errorf("lookup failure reported as token rejection %q: %v", r, err)
				}
			} else if r != tt.wantReason {
				t.Errorf("reason %q, want %q (%v)", r, tt.wantReason, err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantErr)
			}
		})
	}

	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := f.verifier.Verify(ctx, raw)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("no KeyLookup", func(t *testing.T) {
		if _, err := (&Verifier{}).Verify(context.Background(), raw); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("kid passed to lookup", func(t *testing.T) {
		var got string
		v := &Verifier{Now: func() time.Time { return testNow }, Keys: funcKeys(func(_ context.Context, kid string) (*ecdsa.PublicKey, error) {
			got = kid
			return f.signer.PublicKey(), nil
		})}
		if _, err := v.Verify(context.Background(), raw); err != nil || got != f.serverKID {
			t.Fatalf("kid %q, err %v", got, err)
		}
	})
}

func TestLeeway(t *testing.T) {
	f := newFixture(t)
	raw := handToken(t, es384Header(customerKID), with(payload(), func(m map[string]any) {
		m["iat"] = testNow.Add(5 * time.Second).Unix()
	}), signECDSA(t, f.customerKey))
	tests := []struct {
		leeway time.Duration
		want   Reason
	}{
		{0, NotYetValid},
		{4 * time.Second, NotYetValid},
		{5 * time.Second, ""},
		{time.Minute, ""},
		{-time.Minute, NotYetValid},
	}
	for _, tt := range tests {
		t.Run(tt.leeway.String(), func(t *testing.T) {
			v := &Verifier{Keys: f.keys, Now: func() time.Time { return testNow }, Leeway: tt.leeway}
			_, err := v.Verify(context.Background(), raw)
			wantReason(t, err, tt.want)
		})
	}
}

func TestErrorMessages(t *testing.T) {
	inner := errors.New("detail")
	for _, r := range []Reason{Malformed, BadAlgorithm, UnknownKey, BadSignature, Expired, NotYetValid, TooLong, BadClaims, "other"} {
		e := &Error{Reason: r, Err: inner}
		if !strings.HasPrefix(e.Error(), "token: ") || !strings.HasSuffix(e.Error(), ": detail") {
			t.Errorf("%s: message %q", r, e.Error())
		}
		if !errors.Is(e, inner) {
			t.Errorf("%s: Unwrap", r)
		}
		if (&Error{Reason: r}).Error() == "" {
			t.Errorf("%s: empty message without Err", r)
		}
	}
	if _, ok := ReasonOf(errors.New("x")); ok {
		t.Error("ReasonOf of a plain error")
	}
}

// TestVerifyConcurrent exercises one Verifier from many goroutines (for -race).
func TestVerifyConcurrent(t *testing.T) {
	f := newFixture(t)
	good := handToken(t, es384Header(customerKID), payload(), signECDSA(t, f.customerKey))
	bad := handToken(t, es384Header(customerKID), payload(), signECDSA(t, f.serverKey))
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if _, err := f.verifier.Verify(context.Background(), good); err != nil {
					t.Error(err)
				}
				if _, err := f.verifier.Verify(context.Background(), bad); err == nil {
					t.Error("bad token accepted")
				}
				if i%4 == 0 {
					f.keys.put("extra", &f.customerKey.PublicKey)
				}
			}
		}()
	}
	wg.Wait()
}
