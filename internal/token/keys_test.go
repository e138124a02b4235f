package token

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"regexp"
	"strings"
	"testing"
)

func TestPrivateKeyPEM(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := MarshalPrivateKeyPEM(k)
	if err != nil {
		t.Fatal(err)
	}
	secDER, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	sec1 := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: secDER})
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22}})

	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p256DER, _ := x509.MarshalPKCS8PrivateKey(p256)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	pubPEM, _ := MarshalPublicKeyPEM(&k.PublicKey)

	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"PKCS#8", pkcs8, true},
		{"SEC 1", sec1, true},
		{"openssl ecparam -genkey output", append(append([]byte{}, params...), sec1...), true},
		{"CRLF line endings", bytes.ReplaceAll(pkcs8, []byte("\n"), []byte("\r\n")), true},
		{"P-256 PKCS#8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p256DER}), false},
		{"RSA PKCS#8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER}), false},
		{"public key", pubPEM, false},
		{"two keys", append(append([]byte{}, pkcs8...), sec1...), false},
		{"trailing garbage", append(append([]byte{}, pkcs8...), "junk"...), false},
		{"empty", nil, false},
		{"garbage", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), false},
		{"encrypted", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: secDER}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePrivateKeyPEM(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && !got.Equal(k) {
				t.Error("parsed key differs")
			}
		})
	}

	if _, err := MarshalPrivateKeyPEM(p256); err == nil {
		t.Error("MarshalPrivateKeyPEM accepted a P-256 key")
	}
	if _, err := MarshalPrivateKeyPEM(nil); err == nil {
		t.Error("MarshalPrivateKeyPEM accepted nil")
	}
}

func TestParsePublicKeyPEM(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	// `openssl ec -in key.pem -pubout` writes exactly this: a PKIX SubjectPublicKeyInfo, base64 in 64-column
	// lines, between BEGIN/END PUBLIC KEY.
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	opensslStyle := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if got, _ := MarshalPublicKeyPEM(&k.PublicKey); string(got) != opensslStyle {
		t.Errorf("MarshalPublicKeyPEM = %q, want %q", got, opensslStyle)
	}

	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p256DER, _ := x509.MarshalPKIXPublicKey(&p256.PublicKey)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	p521DER, _ := x509.MarshalPKIXPublicKey(&p521.PublicKey)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKIXPublicKey(edPub)
	privDER, _ := x509.MarshalPKCS8PrivateKey(k)
	enc := func(typ string, b []byte) string { return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b})) }

	tests := []struct {
		name    string
		in      string
		wantErr string // "" = accepted; else a substring of the message
	}{
		{"openssl -pubout P-384", opensslStyle, ""},
		{"surrounding white space", "\n  " + opensslStyle + "\n\n", ""},
		{"CRLF", strings.ReplaceAll(opensslStyle, "\n", "\r\n"), ""},
		{"no final newline", strings.TrimSuffix(opensslStyle, "\n"), ""},
		{"P-256", enc("PUBLIC KEY", p256DER), "P-256"},
		{"P-521", enc("PUBLIC KEY", p521DER), "P-521"},
		{"RSA", enc("PUBLIC KEY", rsaDER), "RSA"},
		{"Ed25519", enc("PUBLIC KEY", edDER), "not supported"},
		{"RSA PKCS#1 block", enc("RSA PUBLIC KEY", rsaDER), "PEM type"},
		{"private key", enc("PRIVATE KEY", privDER), "private key"},
		{"empty", "", "empty"},
		{"blank", " \n\t", "empty"},
		{"garbage", "hello world", "not PEM"},
		{"leading text", "key: " + opensslStyle, "not PEM"},
		{"trailing data", opensslStyle + "junk", "after the PEM block"},
		{"two blocks", opensslStyle + opensslStyle, "after the PEM block"},
		{"bad base64", "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n", "not valid PEM"},
		{"bad DER", enc("PUBLIC KEY", []byte{0x30, 0x03, 0x02, 0x01, 0x01}), "not a valid public key"},
		{"DER with trailing bytes", enc("PUBLIC KEY", append(append([]byte{}, der...), 0)), "not a valid public key"},
		{"missing END", strings.Split(opensslStyle, "-----END")[0], "not valid PEM"},
		{"PEM headers", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"X": "y"}, Bytes: der})), "headers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePublicKeyPEM(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !got.Equal(&k.PublicKey) {
					t.Error("parsed key differs")
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestFingerprintAndKeyID(t *testing.T) {
	k1, _ := GenerateKey()
	k2, _ := GenerateKey()
	fpRE := regexp.MustCompile(`^[0-9a-f]{2}(:[0-9a-f]{2}){15}$`)
	kidRE := regexp.MustCompile(`^openstage:[0-9a-f]{16}$`)
	for _, k := range []*ecdsa.PublicKey{&k1.PublicKey, &k2.PublicKey} {
		if fp := Fingerprint(k); !fpRE.MatchString(fp) {
			t.Errorf("fingerprint %q", fp)
		}
		if id := KeyIDFor(k); !kidRE.MatchString(id) {
			t.Errorf("key id %q", id)
		}
	}
	if Fingerprint(&k1.PublicKey) == Fingerprint(&k2.PublicKey) || KeyIDFor(&k1.PublicKey) == KeyIDFor(&k2.PublicKey) {
		t.Error("different keys, same fingerprint or key id")
	}
	// Stable across a PEM round trip (ImportPublicKey then GetPublicKey).
	b, _ := MarshalPublicKeyPEM(&k1.PublicKey)
	again, err := ParsePublicKeyPEM(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if Fingerprint(again) != Fingerprint(&k1.PublicKey) || KeyIDFor(again) != KeyIDFor(&k1.PublicKey) {
		t.Error("fingerprint/key id changed across a PEM round trip")
	}
	if Fingerprint(nil) != "" || KeyIDFor(nil) != "" {
		t.Error("nil key")
	}
}

// TestFingerprintKnownValue pins the algorithm (MD5 of the DER SubjectPublicKeyInfo) on a fixed key.
func TestFingerprintKnownValue(t *testing.T) {
	// A fixed P-384 public key (the generator point G), so the expected value can be checked independently with
	// `openssl pkey -pubin -outform DER | openssl md5`.
	params := elliptic.P384().Params()
	uncompressed := append([]byte{4}, append(params.Gx.FillBytes(make([]byte, 48)), params.Gy.FillBytes(make([]byte, 48))...)...)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P384(), uncompressed)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if len(der) != 120 {
		t.Fatalf("DER SPKI of a P-384 key is %d bytes, want 120", len(der))
	}
	got := Fingerprint(pub)
	if got != fingerprintOfG {
		t.Errorf("Fingerprint(G) = %s, want %s", got, fingerprintOfG)
	}
}

// fingerprintOfG is `openssl pkey -pubin -outform DER | openssl md5 -c` of the P-384 generator point as a key.
const fingerprintOfG = "89:5b:3c:15:0f:c9:0e:af:f0:2d:a3:e6:1e:0c:f5:45"

// opensslPubKey was produced by `openssl ecparam -name secp384r1 -genkey -noout -out k.pem` and
// `openssl ec -in k.pem -pubout`; opensslPubKeyMD5 by `openssl pkey -in k.pem -pubout -outform DER | openssl md5 -c`.
const (
	opensslPubKey = `-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE94zaxfLBYxwdIFFoG8fem0xakXYEwjwz
l4KaqYlNUKwAQHiZuCnbfPI8ZKabZM3RziCPjTo5ygLGYXr3bmlnnzWfHFdqxNog
xPhwNUz4OKC3qoTaYcUwwYa1W3FnZ8xE
-----END PUBLIC KEY-----
`
	opensslPubKeyMD5 = "3e:82:44:6a:d8:31:d5:9f:e5:d1:78:fa:15:d7:9d:9b"
)

func TestOpenSSLPublicKey(t *testing.T) {
	pub, err := ParsePublicKeyPEM(opensslPubKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := Fingerprint(pub); got != opensslPubKeyMD5 {
		t.Errorf("Fingerprint = %s, want %s", got, opensslPubKeyMD5)
	}
	if b, _ := MarshalPublicKeyPEM(pub); string(b) != opensslPubKey {
		t.Errorf("MarshalPublicKeyPEM does not reproduce the openssl PEM:\n%s", b)
	}
}
