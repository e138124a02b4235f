package token

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// GenerateKey generates a P-384 private key from crypto/rand.
func GenerateKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
}

func isP384(pub *ecdsa.PublicKey) bool {
	return pub != nil && pub.Curve == elliptic.P384()
}

func curveName(pub *ecdsa.PublicKey) string {
	if pub == nil || pub.Curve == nil {
		return "unknown"
	}
	return pub.Curve.Params().Name
}

// MarshalPrivateKeyPEM encodes a P-384 private key as a PKCS#8 "PRIVATE KEY" PEM block.
func MarshalPrivateKeyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	if k == nil {
		return nil, errors.New("token: nil private key")
	}
	if !isP384(&k.PublicKey) {
		return nil, fmt.Errorf("token: private key is on curve %s; only P-384 is supported", curveName(&k.PublicKey))
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("token: encoding private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKeyPEM decodes a P-384 private key from PEM: PKCS#8 ("PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY").
// "EC PARAMETERS" blocks (as written by `openssl ecparam -genkey`) are skipped; exactly one key block is allowed.
func ParsePrivateKeyPEM(b []byte) (*ecdsa.PrivateKey, error) {
	var key *ecdsa.PrivateKey
	rest := b
	for {
		if len(bytes.TrimSpace(rest)) == 0 {
			break
		}
		block, r := pem.Decode(rest)
		if block == nil {
			return nil, errors.New("token: private key: data that is not PEM")
		}
		rest = r
		if block.Type == "EC PARAMETERS" {
			continue
		}
		if key != nil {
			return nil, errors.New("token: private key: more than one key in the PEM data")
		}
		if _, encrypted := block.Headers["Proc-Type"]; encrypted {
			return nil, errors.New("token: private key: encrypted PEM keys are not supported")
		}
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			var k any
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
			if err == nil {
				ek, ok := k.(*ecdsa.PrivateKey)
				if !ok {
					return nil, fmt.Errorf("token: private key is %T; only ECDSA P-384 is supported", k)
				}
				key = ek
			}
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			return nil, fmt.Errorf("token: private key: unexpected PEM block %q (want PRIVATE KEY or EC PRIVATE KEY)", block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("token: private key: %w", err)
		}
	}
	if key == nil {
		return nil, errors.New("token: private key: no PEM key block found")
	}
	if !isP384(&key.PublicKey) {
		return nil, fmt.Errorf("token: private key is on curve %s; only P-384 is supported", curveName(&key.PublicKey))
	}
	return key, nil
}

// KeyIDFor gives a stable key id for the server key: "openstage:" + the first 16 hex digits of the SHA-256 of the
// DER SubjectPublicKeyInfo.
func KeyIDFor(pub *ecdsa.PublicKey) string {
	if pub == nil {
		return ""
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return "openstage:" + hex.EncodeToString(sum[:8])
}

// ParsePublicKeyPEM parses the "-----BEGIN PUBLIC KEY-----" (PKIX SubjectPublicKeyInfo) material given to
// ImportPublicKey. Exactly one PEM block, with nothing but white space around it, is allowed, and the key must
// be ECDSA on P-384.
func ParsePublicKeyPEM(material string) (*ecdsa.PublicKey, error) {
	data := []byte(strings.TrimSpace(material))
	if len(data) == 0 {
		return nil, errors.New("public key material is empty")
	}
	if !bytes.HasPrefix(data, []byte("-----BEGIN ")) {
		return nil, errors.New("public key material is not PEM (expected -----BEGIN PUBLIC KEY-----)")
	}
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("public key material is not valid PEM")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("public key material has data after the PEM block; give exactly one public key")
	}
	switch block.Type {
	case "PUBLIC KEY":
	case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("public key material is a private key (%s); import only the public key", block.Type)
	default:
		return nil, fmt.Errorf("public key material has PEM type %q; expected PUBLIC KEY", block.Type)
	}
	if len(block.Headers) != 0 {
		return nil, errors.New("public key material has PEM headers; expected a plain PUBLIC KEY block")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key material is not a valid public key: %w", err)
	}
	switch pub := k.(type) {
	case *ecdsa.PublicKey:
		if !isP384(pub) {
			return nil, fmt.Errorf("public key is ECDSA on curve %s; only ECDSA P-384 (secp384r1) is supported", curveName(pub))
		}
		return pub, nil
	case *rsa.PublicKey:
		return nil, errors.New("public key is RSA; only ECDSA P-384 (secp384r1) is supported")
	default:
		return nil, fmt.Errorf("public key type %T is not supported; only ECDSA P-384 (secp384r1) is supported", k)
	}
}

// MarshalPublicKeyPEM encodes a public key as a PKIX "PUBLIC KEY" PEM block.
func MarshalPublicKeyPEM(pub *ecdsa.PublicKey) ([]byte, error) {
	if pub == nil {
		return nil, errors.New("token: nil public key")
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("token: encoding public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// Fingerprint returns the MD5 of the DER SubjectPublicKeyInfo as 16 colon-separated lower-case hex bytes,
// e.g. "98:0d:1a:a0:19:96:1e:ea:0a:0a:2c:9a:42:19:2b:e7".
func Fingerprint(pub *ecdsa.PublicKey) string {
	if pub == nil {
		return ""
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := md5.Sum(der)
	var sb strings.Builder
	for i, b := range sum {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(hex.EncodeToString([]byte{b}))
	}
	return sb.String()
}
