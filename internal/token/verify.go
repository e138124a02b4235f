package token

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// maxUnix is 9999-12-31T23:59:59Z, the largest exp/iat accepted.
const maxUnix = 253402300799

// maxKeyIDLength bounds the kid header (a public key ARN is about 100 characters).
const maxKeyIDLength = 1024

// KeyLookup resolves a kid to a verification key. It returns ErrUnknownKey (wrapped or not) when the kid names
// no key (never issued, or the imported public key was deleted).
type KeyLookup interface {
	VerificationKey(ctx context.Context, kid string) (*ecdsa.PublicKey, error)
}

// Verifier checks participant tokens.
type Verifier struct {
	Keys   KeyLookup
	Now    func() time.Time // nil = time.Now
	Leeway time.Duration    // clock skew allowed on iat (and nbf); default 0
}

// rawClaims receives the payload with every value kept as raw JSON, so that types are checked here and not
// coerced by a decoder. Unlike a struct, a map matches claim names exactly (case-sensitively).
type rawClaims map[string]json.RawMessage

// rawClaims satisfies jwt.Claims; jwt never validates it (WithoutClaimsValidation), Verify does.
func (*rawClaims) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (*rawClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (*rawClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (*rawClaims) GetIssuer() (string, error)                   { return "", nil }
func (*rawClaims) GetSubject() (string, error)                  { return "", nil }
func (*rawClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

var parser = jwt.NewParser(
	jwt.WithValidMethods([]string{jwt.SigningMethodES384.Alg()}),
	jwt.WithoutClaimsValidation(),
	jwt.WithStrictDecoding(),
)

// Verify parses and checks a token. The stage named by resource/topic is checked for existence by the caller;
// Verify checks everything that needs no store: algorithm (ES384 only), kid, signature, exp/iat/lifetime and the
// form of every claim. A rejected token gives an *Error carrying its Reason. A failure of the KeyLookup other
// than ErrUnknownKey (a store outage, a cancelled ctx) is returned as a plain error: it says nothing about the
// token.
//
// The checks run cheapest first, because anyone may send tokens: the form, the header, then every claim
// (times included), then the key lookup (a store read for an imported key), and only then the P-384
// signature verification, which costs a thousand times more than the rest. So a token that fails in
// several ways is refused for the first of them in that order: a forged token that is also expired is
// Expired, not BadSignature (both are the sender's own doing; neither tells it anything about the key).
func (v *Verifier) Verify(ctx context.Context, raw string) (Claims, error) {
	if v.Keys == nil {
		return Claims{}, errors.New("token: Verifier has no KeyLookup")
	}
	if len(raw) > MaxTokenLength {
		return Claims{}, fail(Malformed, "token is %d bytes, more than %d", len(raw), MaxTokenLength)
	}
	if raw == "" {
		return Claims{}, fail(Malformed, "empty token")
	}

	var (
		rc      = rawClaims{}
		c       Claims // the checked claims, set by the keyfunc before the key is looked up
		kid     string
		keyErr  error // set when the keyfunc itself rejected the token or failed
		keyfunc = func(t *jwt.Token) (any, error) {
			// Parser has already pinned alg to ES384; check again so that a change of options cannot
			// silently widen what is accepted.
			if alg, _ := t.Header["alg"].(string); alg != jwt.SigningMethodES384.Alg() {
				keyErr = fail(BadAlgorithm, "alg %q is not allowed (only ES384)", clip(alg))
				return nil, keyErr
			}
			if _, ok := t.Header["crit"]; ok {
				keyErr = fail(Malformed, "unsupported critical header parameters (crit)")
				return nil, keyErr
			}
			k, ok := t.Header["kid"].(string)
			if !ok || k == "" {
				keyErr = fail(Malformed, "kid header is missing or not a string")
				return nil, keyErr
			}
			if len(k) > maxKeyIDLength {
				keyErr = fail(Malformed, "kid header is too long")
				return nil, keyErr
			}
			// The claims are decoded already: check them before the key lookup and the signature.
			cc, cerr := v.checkClaims(rc)
			if cerr != nil {
				keyErr = cerr
				return nil, keyErr
			}
			c, kid = cc, k
			pub, err := v.Keys.VerificationKey(ctx, k)
			switch {
			case errors.Is(err, ErrUnknownKey):
				keyErr = &Error{Reason: UnknownKey, Err: fmt.Errorf("kid %q: %w", clip(k), err)}
				return nil, keyErr
			case err != nil:
				keyErr = fmt.Errorf("token: looking up key %q: %w", k, err)
				return nil, keyErr
			case pub == nil:
				keyErr = &Error{Reason: UnknownKey, Err: fmt.Errorf("kid %q: %w", clip(k), ErrUnknownKey)}
				return nil, keyErr
			case !isP384(pub):
				keyErr = fmt.Errorf("token: key %q is on curve %s, not P-384", k, curveName(pub))
				return nil, keyErr
			}
			return pub, nil
		}
	)

	tok, err := parser.ParseWithClaims(raw, &rc, keyfunc)
	if err != nil {
		return Claims{}, classifyParseError(tok, err, keyErr)
	}
	if !tok.Valid {
		return Claims{}, fail(BadSignature, "token not verified")
	}
	c.KeyID = kid
	return c, nil
}

func classifyParseError(tok *jwt.Token, err, keyErr error) error {
	if keyErr != nil {
		return keyErr
	}
	if tok == nil || errors.Is(err, jwt.ErrTokenMalformed) {
		return &Error{Reason: Malformed, Err: err}
	}
	if alg, _ := tok.Header["alg"].(string); alg != jwt.SigningMethodES384.Alg() {
		if _, present := tok.Header["alg"]; !present {
			return fail(BadAlgorithm, "alg header is missing")
		}
		return fail(BadAlgorithm, "alg %s is not allowed (only ES384)", clip(fmt.Sprint(tok.Header["alg"])))
	}
	if errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		return &Error{Reason: BadSignature, Err: err}
	}
	return &Error{Reason: Malformed, Err: err}
}

func (v *Verifier) checkClaims(rc rawClaims) (Claims, *Error) {
	exp, err := intClaim(rc, "exp")
	if err != nil {
		return Claims{}, err
	}
	iat, err := intClaim(rc, "iat")
	if err != nil {
		return Claims{}, err
	}
	var nbf int64
	hasNBF := present(rc, "nbf")
	if hasNBF {
		if nbf, err = intClaim(rc, "nbf"); err != nil {
			return Claims{}, err
		}
	}

	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	t := now()
	leeway := max(v.Leeway, 0)
	expT, iatT := time.Unix(exp, 0).UTC(), time.Unix(iat, 0).UTC()
	if !t.Before(expT) {
		return Claims{}, fail(Expired, "expired at %s", expT.Format(time.RFC3339))
	}
	if iatT.After(t.Add(leeway)) {
		return Claims{}, fail(NotYetValid, "issued in the future (iat %s)", iatT.Format(time.RFC3339))
	}
	if hasNBF {
		if nbfT := time.Unix(nbf, 0); nbfT.After(t.Add(leeway)) {
			return Claims{}, fail(NotYetValid, "not before %s", nbfT.UTC().Format(time.RFC3339))
		}
	}
	if err := checkLifetime(exp, iat); err != nil {
		return Claims{}, err
	}

	c := Claims{ExpiresAt: expT, IssuedAt: iatT}
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"version", &c.Version},
		{"jti", &c.ParticipantID},
		{"resource", &c.Resource},
		{"topic", &c.Topic},
		{"events_url", &c.EventsURL},
		{"whip_url", &c.WhipURL},
	} {
		s, err := stringClaim(rc, f.name, true)
		if err != nil {
			return Claims{}, err
		}
		*f.dst = s
	}
	if c.UserID, err = stringClaim(rc, "user_id", false); err != nil {
		return Claims{}, err
	}
	if c.Capabilities, err = capabilitiesClaim(rc); err != nil {
		return Claims{}, err
	}
	if c.Attributes, err = attributesClaim(rc); err != nil {
		return Claims{}, err
	}
	if err := checkStatic(&c); err != nil {
		return Claims{}, err
	}
	return c, nil
}

// present reports whether name is in the payload with a non-null value.
func present(rc rawClaims, name string) bool {
	r, ok := rc[name]
	return ok && jsonKind(r) != kindNull
}

// JSON value kinds, worded for error messages ("must be a string, not a number").
const (
	kindNothing = "nothing"
	kindString  = "a string"
	kindObject  = "an object"
	kindArray   = "an array"
	kindBoolean = "a boolean"
	kindNull    = "null"
	kindNumber  = "a number"
)

// jsonKind tells the kind of a raw JSON value from its first byte (the value is known to be valid JSON).
func jsonKind(r json.RawMessage) string {
	r = bytes.TrimSpace(r)
	if len(r) == 0 {
		return kindNothing
	}
	switch r[0] {
	case '"':
		return kindString
	case '{':
		return kindObject
	case '[':
		return kindArray
	case 't', 'f':
		return kindBoolean
	case 'n':
		return kindNull
	default:
		return kindNumber
	}
}

// intClaim reads a required NumericDate claim. It must be a JSON integer (a number written with a fraction of
// zeros only, such as 1700000000.0, is accepted; exponents and non-zero fractions are not) in [0, year 9999].
func intClaim(rc rawClaims, name string) (int64, *Error) {
	if !present(rc, name) {
		return 0, fail(BadClaims, "%s is required", name)
	}
	r := rc[name]
	if k := jsonKind(r); k != kindNumber {
		return 0, fail(BadClaims, "%s must be an integer, not %s", name, k)
	}
	s := string(bytes.TrimSpace(r))
	intPart, frac, hasFrac := strings.Cut(s, ".")
	if hasFrac && strings.Trim(frac, "0") != "" {
		return 0, fail(BadClaims, "%s must be an integer, got %s", name, s)
	}
	if strings.ContainsAny(intPart, "eE") {
		return 0, fail(BadClaims, "%s must be a plain integer, got %s", name, s)
	}
	n, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil || n < 0 || n > maxUnix {
		return 0, fail(BadClaims, "%s is out of range", name)
	}
	return n, nil
}

// stringClaim reads a string claim; an optional claim that is absent or null gives "".
func stringClaim(rc rawClaims, name string, required bool) (string, *Error) {
	if !present(rc, name) {
		if required {
			return "", fail(BadClaims, "%s is required", name)
		}
		return "", nil
	}
	r := rc[name]
	if k := jsonKind(r); k != kindString {
		return "", fail(BadClaims, "%s must be a string, not %s", name, k)
	}
	var s string
	if err := json.Unmarshal(r, &s); err != nil {
		return "", fail(BadClaims, "%s: %v", name, err)
	}
	return s, nil
}

// objectClaim decodes a JSON object into its members, kept raw.
func objectClaim(r json.RawMessage, name string) (map[string]json.RawMessage, *Error) {
	if k := jsonKind(r); k != kindObject {
		return nil, fail(BadClaims, "%s must be an object, not %s", name, k)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r, &m); err != nil {
		return nil, fail(BadClaims, "%s: %v", name, err)
	}
	return m, nil
}

// capabilitiesClaim reads the required capabilities object; a missing member means false, a present one must be
// a boolean. Unknown members are ignored.
func capabilitiesClaim(rc rawClaims) (Capabilities, *Error) {
	if !present(rc, "capabilities") {
		return Capabilities{}, fail(BadClaims, "capabilities is required")
	}
	m, err := objectClaim(rc["capabilities"], "capabilities")
	if err != nil {
		return Capabilities{}, err
	}
	var c Capabilities
	for _, f := range []struct {
		name string
		dst  *bool
	}{
		{"allow_publish", &c.AllowPublish},
		{"allow_subscribe", &c.AllowSubscribe},
	} {
		r, ok := m[f.name]
		if !ok {
			continue
		}
		switch s := string(bytes.TrimSpace(r)); s {
		case "true":
			*f.dst = true
		case "false":
		default:
			return Capabilities{}, fail(BadClaims, "capabilities.%s must be a boolean, not %s", f.name, jsonKind(r))
		}
	}
	return c, nil
}

// attributesClaim reads the optional attributes object, whose members must all be strings.
func attributesClaim(rc rawClaims) (map[string]string, *Error) {
	if !present(rc, "attributes") {
		return nil, nil
	}
	m, err := objectClaim(rc["attributes"], "attributes")
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(m))
	for k, r := range m {
		if kind := jsonKind(r); kind != kindString {
			return nil, fail(BadClaims, "attributes[%q] must be a string, not %s", clip(k), kind)
		}
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			return nil, fail(BadClaims, "attributes[%q]: %v", clip(k), err)
		}
		out[k] = s
	}
	return out, nil
}
