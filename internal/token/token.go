// Package token mints and verifies Amazon IVS Real-Time participant tokens.
//
// A participant token is a JWS compact-serialised JWT signed with ECDSA P-384 / SHA-384 ("ES384"). The server
// signs the tokens it hands out (CreateParticipantToken, CreateStage) with its own key; customers may sign their
// own tokens with a private key whose public half they imported (ImportPublicKey), naming the public key ARN in
// the "kid" header. Both kinds carry the same claims (see Claims) and are verified the same way (see Verifier).
package token

import (
	"errors"
	"fmt"
	"time"
)

// Limits of the IVS participant-token format.
const (
	// MaxLifetime is the longest allowed exp - iat.
	MaxLifetime = 14 * 24 * time.Hour
	// MaxParticipantIDLength is the longest jti (participant id).
	MaxParticipantIDLength = 64
	// MaxUserIDLength is the longest user_id, in characters.
	MaxUserIDLength = 128
	// MaxAttributesSize is the largest total size, in bytes, of the attribute keys and values.
	MaxAttributesSize = 1024
	// TokenVersion is the only accepted value of the version claim.
	TokenVersion = "1.0"
	// MaxTokenLength bounds the length of a raw token accepted by Verify.
	MaxTokenLength = 16 << 10
)

// Capabilities are what a participant may do on the stage.
type Capabilities struct {
	AllowPublish   bool `json:"allow_publish"`
	AllowSubscribe bool `json:"allow_subscribe"`
}

// Claims are the IVS participant-token claims (docs/DESIGN.md §3.1).
type Claims struct {
	ExpiresAt     time.Time         // exp (integer unix seconds on the wire)
	IssuedAt      time.Time         // iat
	ParticipantID string            // jti
	UserID        string            // user_id (optional)
	Resource      string            // resource: stage ARN
	Topic         string            // topic: stage id (last ARN segment)
	EventsURL     string            // events_url
	WhipURL       string            // whip_url
	Capabilities  Capabilities      // capabilities
	Attributes    map[string]string // attributes (optional)
	Version       string            // version, always "1.0"
	KeyID         string            // the kid header it was signed with (filled by Verify)
}

// ErrUnknownKey is returned (possibly wrapped) by a KeyLookup when a kid names no key.
var ErrUnknownKey = errors.New("token: unknown signing key")

// Reason is a machine-readable cause of a token rejection.
type Reason string

// The reasons a token is rejected.
const (
	Malformed    Reason = "malformed"         // not a well-formed JWS/JWT (segments, base64, JSON, header)
	BadAlgorithm Reason = "bad_algorithm"     // alg is not ES384
	UnknownKey   Reason = "unknown_key"       // kid names no key (never issued or deleted)
	BadSignature Reason = "bad_signature"     // the signature does not verify with the key named by kid
	Expired      Reason = "expired"           // exp is not in the future
	NotYetValid  Reason = "not_yet_valid"     // iat (or nbf) is in the future beyond the leeway
	TooLong      Reason = "lifetime_too_long" // exp - iat is more than 14 days
	BadClaims    Reason = "bad_claims"        // a claim is missing, of the wrong type or out of range
)

// Error is a token rejection. Reason is machine-readable; Err says what exactly was wrong.
type Error struct {
	Reason Reason
	Err    error
}

func (e *Error) Error() string {
	var what string
	switch e.Reason {
	case Malformed:
		what = "malformed participant token"
	case BadAlgorithm:
		what = "participant token not signed with ES384"
	case UnknownKey:
		what = "participant token signed with an unknown key"
	case BadSignature:
		what = "participant token signature is invalid"
	case Expired:
		what = "participant token has expired"
	case NotYetValid:
		what = "participant token is not valid yet"
	case TooLong:
		what = "participant token lifetime exceeds 14 days"
	case BadClaims:
		what = "participant token has invalid claims"
	default:
		what = "invalid participant token (" + string(e.Reason) + ")"
	}
	if e.Err == nil {
		return "token: " + what
	}
	return "token: " + what + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of the *Error in err's chain, if there is one.
func ReasonOf(err error) (Reason, bool) {
	var te *Error
	if errors.As(err, &te) {
		return te.Reason, true
	}
	return "", false
}

func fail(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Err: fmt.Errorf(format, args...)}
}
