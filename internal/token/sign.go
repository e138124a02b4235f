package token

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Signer mints tokens with a P-384 private key; header {"alg":"ES384","typ":"JWT","kid":KeyID}.
type Signer struct {
	key *ecdsa.PrivateKey
	kid string
}

// NewSigner returns a Signer for key, which must be on P-384, naming itself keyID (non-empty) in the kid header.
func NewSigner(key *ecdsa.PrivateKey, keyID string) (*Signer, error) {
	if key == nil {
		return nil, errors.New("token: nil signing key")
	}
	if !isP384(&key.PublicKey) {
		return nil, fmt.Errorf("token: signing key is on curve %s; ES384 needs P-384", curveName(&key.PublicKey))
	}
	if keyID == "" {
		return nil, errors.New("token: empty key id")
	}
	return &Signer{key: key, kid: keyID}, nil
}

// KeyID returns the kid the Signer writes into its tokens.
func (s *Signer) KeyID() string { return s.kid }

// PublicKey returns the public half of the signing key.
func (s *Signer) PublicKey() *ecdsa.PublicKey { return &s.key.PublicKey }

// wireClaims is the JSON payload of a token, in the field order of the IVS documentation.
type wireClaims struct {
	Exp          int64             `json:"exp"`
	Iat          int64             `json:"iat"`
	Jti          string            `json:"jti"`
	UserID       string            `json:"user_id,omitempty"`
	Resource     string            `json:"resource"`
	Topic        string            `json:"topic"`
	EventsURL    string            `json:"events_url"`
	WhipURL      string            `json:"whip_url"`
	Capabilities Capabilities      `json:"capabilities"`
	Attributes   map[string]string `json:"attributes,omitempty"`
	Version      string            `json:"version"`
}

// wireClaims satisfies jwt.Claims only so that jwt can serialise it; it is never validated by jwt.
func (wireClaims) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (wireClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (wireClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (wireClaims) GetIssuer() (string, error)                   { return "", nil }
func (wireClaims) GetSubject() (string, error)                  { return "", nil }
func (wireClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

// Sign mints a token carrying c. Defaults: Version "1.0" if empty, IssuedAt now if zero, Topic the stage id of
// Resource if empty. Times are truncated to whole seconds. c.KeyID is ignored (the Signer's key id is used).
// Sign refuses (with an *Error) claims that Verify would reject whatever the time: a missing ExpiresAt, exp not
// after iat, a lifetime over 14 days, a bad jti, resource/topic, version, user_id or attributes.
func (s *Signer) Sign(c Claims) (string, error) {
	if c.Version == "" {
		c.Version = TokenVersion
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = time.Now()
	}
	if c.Topic == "" {
		c.Topic, _ = StageIDFromARN(c.Resource)
	}
	if c.ExpiresAt.IsZero() {
		return "", fail(BadClaims, "ExpiresAt is required")
	}
	exp, iat := c.ExpiresAt.Unix(), c.IssuedAt.Unix()
	if exp < 0 || exp > maxUnix || iat < 0 || iat > maxUnix {
		return "", fail(BadClaims, "ExpiresAt/IssuedAt out of range")
	}
	if err := checkLifetime(exp, iat); err != nil {
		return "", err
	}
	if err := checkStatic(&c); err != nil {
		return "", err
	}
	w := wireClaims{
		Exp:          exp,
		Iat:          iat,
		Jti:          c.ParticipantID,
		UserID:       c.UserID,
		Resource:     c.Resource,
		Topic:        c.Topic,
		EventsURL:    c.EventsURL,
		WhipURL:      c.WhipURL,
		Capabilities: c.Capabilities,
		Attributes:   c.Attributes,
		Version:      c.Version,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES384, w)
	t.Header["kid"] = s.kid
	out, err := t.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("token: signing: %w", err)
	}
	return out, nil
}
