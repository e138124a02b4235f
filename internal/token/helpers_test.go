package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash"
	"maps"
	"sync"
	"testing"
	"time"
)

// Test fixtures shared by the tests in this package.
var (
	testNow      = time.Unix(1_750_000_000, 0).UTC()
	testStageARN = "arn:aws:ivs:us-west-2:123456789012:stage/Mo8OQbtDjR"
	testStageID  = "Mo8OQbtDjR"
	customerKID  = "arn:aws:ivs:us-west-2:123456789012:public-key/f99cde61-c2b0-4df3-8941-ca7d38acca1a"
)

// memKeys is a KeyLookup backed by a map, whose entries can be removed (DeletePublicKey).
type memKeys struct {
	mu   sync.Mutex
	keys map[string]*ecdsa.PublicKey
	err  error // returned for every lookup when set (store outage)
}

func newMemKeys() *memKeys { return &memKeys{keys: map[string]*ecdsa.PublicKey{}} }

func (m *memKeys) put(kid string, k *ecdsa.PublicKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys[kid] = k
}

func (m *memKeys) del(kid string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.keys, kid)
}

func (m *memKeys) VerificationKey(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	k, ok := m.keys[kid]
	if !ok {
		return nil, ErrUnknownKey
	}
	return k, nil
}

// fixture holds keys for one test: the server's own key and a customer's imported key.
type fixture struct {
	serverKey   *ecdsa.PrivateKey
	serverKID   string
	signer      *Signer
	customerKey *ecdsa.PrivateKey
	customerPEM []byte // public half, as given to ImportPublicKey
	keys        *memKeys
	verifier    *Verifier
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{keys: newMemKeys()}
	var err error
	if f.serverKey, err = GenerateKey(); err != nil {
		t.Fatal(err)
	}
	f.serverKID = KeyIDFor(&f.serverKey.PublicKey)
	if f.signer, err = NewSigner(f.serverKey, f.serverKID); err != nil {
		t.Fatal(err)
	}
	f.keys.put(f.serverKID, f.signer.PublicKey())

	if f.customerKey, err = GenerateKey(); err != nil {
		t.Fatal(err)
	}
	if f.customerPEM, err = MarshalPublicKeyPEM(&f.customerKey.PublicKey); err != nil {
		t.Fatal(err)
	}
	imported, err := ParsePublicKeyPEM(string(f.customerPEM)) // what ImportPublicKey does
	if err != nil {
		t.Fatal(err)
	}
	f.keys.put(customerKID, imported)

	f.verifier = &Verifier{Keys: f.keys, Now: func() time.Time { return testNow }}
	return f
}

// payload returns a valid self-signed-token payload (as in the IVS documentation), to be modified by a test.
func payload() map[string]any {
	return map[string]any{
		"exp":        testNow.Add(12 * time.Hour).Unix(),
		"iat":        testNow.Add(-time.Minute).Unix(),
		"jti":        "Mx6clRRHODPy",
		"user_id":    "alice",
		"resource":   testStageARN,
		"topic":      testStageID,
		"events_url": "wss://global.events.live-video.net",
		"whip_url":   "https://114ddfabadaf.global-bm.whip.live-video.net",
		"capabilities": map[string]any{
			"allow_publish":   true,
			"allow_subscribe": true,
		},
		"attributes": map[string]any{"optional_field_1": "abcd1234"},
		"version":    "1.0",
	}
}

func with(p map[string]any, edit func(map[string]any)) map[string]any {
	p = maps.Clone(p)
	edit(p)
	return p
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	if s, ok := v.(string); ok {
		return []byte(s)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// handToken assembles a compact JWS from a header and payload (maps, or raw JSON strings) and a signing
// function over the signing input, exactly as a third-party JWT library would.
func handToken(t testing.TB, header, claims any, sign func(input []byte) []byte) string {
	t.Helper()
	input := b64(mustJSON(t, header)) + "." + b64(mustJSON(t, claims))
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + b64(sig)
}

func es384Header(kid string) map[string]any {
	return map[string]any{"alg": "ES384", "typ": "JWT", "kid": kid}
}

// signECDSA produces a JOSE (raw R||S) ECDSA signature with the hash matching the key's curve.
func signECDSA(t testing.TB, key *ecdsa.PrivateKey) func([]byte) []byte {
	return func(input []byte) []byte {
		var h hash.Hash
		switch key.Curve {
		case elliptic.P256():
			h = sha256.New()
		case elliptic.P384():
			h = sha512.New384()
		default:
			h = sha512.New()
		}
		h.Write(input)
		r, s, err := ecdsa.Sign(rand.Reader, key, h.Sum(nil))
		if err != nil {
			t.Fatal(err)
		}
		size := (key.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out
	}
}

// signECDSADER produces an ASN.1 DER ECDSA P-384 signature (the form of the IVS "KMS" sample token).
func signECDSADER(t testing.TB, key *ecdsa.PrivateKey) func([]byte) []byte {
	return func(input []byte) []byte {
		sum := sha512.Sum384(input)
		sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
}

func signHMAC(newHash func() hash.Hash, secret []byte) func([]byte) []byte {
	return func(input []byte) []byte {
		m := hmac.New(newHash, secret)
		m.Write(input)
		return m.Sum(nil)
	}
}

func signRSA(t testing.TB, key *rsa.PrivateKey, pss bool) func([]byte) []byte {
	return func(input []byte) []byte {
		sum := sha256.Sum256(input)
		var sig []byte
		var err error
		if pss {
			sig, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, sum[:], nil)
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
		}
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
}

func signEd25519(key ed25519.PrivateKey) func([]byte) []byte {
	return func(input []byte) []byte { return ed25519.Sign(key, input) }
}

// wantReason fails the test unless err is an *Error with reason want (want "" means err must be nil).
func wantReason(t *testing.T, err error, want Reason) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("accepted; want rejection %q", want)
	}
	var te *Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T) is not a *token.Error; want %q", err, err, want)
	}
	if te.Reason != want {
		t.Fatalf("reason %q (%v); want %q", te.Reason, err, want)
	}
	if err.Error() == "" {
		t.Fatal("empty error message")
	}
}
