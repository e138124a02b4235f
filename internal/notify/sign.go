package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries a delivery's signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">
// keyed with the endpoint's secret. The time is signed with the body, so a receiver that refuses old
// times (ReplayWindow) cannot be fed a captured delivery later.
const SignatureHeader = "X-Openstage-Signature"

// IDHeader carries the notification's id, the same on every attempt: the receiver's idempotency key.
const IDHeader = "X-Openstage-Event-Id"

// ReplayWindow is how old a signature a receiver should accept (Verify's tolerance in the README).
const ReplayWindow = 5 * time.Minute

// Sign returns the signature header's value for body sent at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

var (
	ErrBadSignature = errors.New("notify: bad signature")
	ErrStale        = errors.New("notify: signature outside the replay window")
)

// Verify checks a signature header against body: one of its v1 values must match and its time must be
// within tolerance of now. It is what a receiver does (README), and what the tests' receivers do.
func Verify(secret, header string, body []byte, tolerance time.Duration, now time.Time) error {
	var ts string
	var sigs []string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if got, err := hex.DecodeString(s); err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrBadSignature
}
