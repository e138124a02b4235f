package token

import (
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

var stageARNPattern = regexp.MustCompile(`^arn:aws:ivs:[a-z0-9-]+:[0-9]+:stage/[a-zA-Z0-9-]+$`)

// StageIDFromARN returns the stage id (the last segment) of a stage ARN, and whether s is a stage ARN at all.
func StageIDFromARN(s string) (string, bool) {
	if !stageARNPattern.MatchString(s) {
		return "", false
	}
	return s[strings.LastIndexByte(s, '/')+1:], true
}

// ValidParticipantID reports whether s is a usable jti: 1 to 64 characters of [A-Za-z0-9_-].
func ValidParticipantID(s string) bool {
	if len(s) == 0 || len(s) > MaxParticipantIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// AttributesSize is the size counted against MaxAttributesSize: the bytes of all keys and values.
func AttributesSize(attrs map[string]string) int {
	n := 0
	for k, v := range attrs {
		n += len(k) + len(v)
	}
	return n
}

// checkLifetime checks exp against iat (both unix seconds).
func checkLifetime(exp, iat int64) *Error {
	if exp <= iat {
		return fail(BadClaims, "exp (%d) is not after iat (%d)", exp, iat)
	}
	if d := exp - iat; d > int64(MaxLifetime/time.Second) {
		return fail(TooLong, "exp - iat is %d seconds, more than %d (14 days)", d, int64(MaxLifetime/time.Second))
	}
	return nil
}

// checkStatic checks the claims that do not depend on the clock or on the signature.
func checkStatic(c *Claims) *Error {
	if c.Version != TokenVersion {
		return fail(BadClaims, "version is %q, want %q", clip(c.Version), TokenVersion)
	}
	if !ValidParticipantID(c.ParticipantID) {
		return fail(BadClaims, "jti must be 1 to %d characters of [A-Za-z0-9_-]", MaxParticipantIDLength)
	}
	stageID, ok := StageIDFromARN(c.Resource)
	if !ok {
		return fail(BadClaims, "resource %q is not a stage ARN", clip(c.Resource))
	}
	if c.Topic != stageID {
		return fail(BadClaims, "topic %q does not match the stage of resource %q", clip(c.Topic), clip(c.Resource))
	}
	if n := utf8.RuneCountInString(c.UserID); n > MaxUserIDLength {
		return fail(BadClaims, "user_id is %d characters, more than %d", n, MaxUserIDLength)
	}
	if n := AttributesSize(c.Attributes); n > MaxAttributesSize {
		return fail(BadClaims, "attributes are %d bytes, more than %d", n, MaxAttributesSize)
	}
	return nil
}

// clip shortens an untrusted value quoted in an error message.
func clip(s string) string {
	const limit = 160
	if len(s) <= limit {
		return s
	}
	return strings.ToValidUTF8(s[:limit], "") + "…"
}
