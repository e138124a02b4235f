// Package sigv4 verifies AWS Signature Version 4 signatures on incoming HTTP requests, server side:
// the Authorization header form and the presigned query form, as produced by aws-sdk-go-v2, botocore
// (the AWS CLI) and the AWS SDK for JavaScript v3.
//
// Specification: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
// (canonical request, string to sign, signing key) and
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-authentication-methods.html
// (header and query-string authentication).
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// KeyStore looks up the secret for an access key id.
type KeyStore interface {
	Secret(accessKeyID string) (secret string, ok bool)
}

// Verifier checks SigV4 signatures. Its fields are read-only once in use; it is safe for concurrent use.
type Verifier struct {
	Keys    KeyStore
	Service string           // signing name, "ivs"
	Regions []string         // accepted regions in the credential scope; empty = any
	Now     func() time.Time // nil = time.Now
	MaxSkew time.Duration    // 0 = 15 minutes

	derived keyCache
}

// keyCache keeps the derived signing keys: deriving one takes four HMACs, a quarter of a verification
// (profiled), and a key only changes with its date, region and service, so a client reuses it all day.
// Each key comes with keyed HMAC states to reuse: Reset returns one to its keyed state without hashing
// the key's pads again or allocating (hmac.New per request was a fifth of a verification, profiled).
type keyCache struct {
	mu sync.Mutex
	m  map[keyID]*signingMAC
}

type keyID struct {
	accessKeyID, secret string
	scope               credentialScope
}

// signingMAC computes HMAC-SHA256 under one derived signing key; safe for concurrent use. scope is the
// key's credential scope as the string to sign holds it (credentialScope.scope).
type signingMAC struct {
	pool  sync.Pool
	scope string
}

func newSigningMAC(key []byte, scope string) *signingMAC {
	m := &signingMAC{scope: scope}
	m.pool.New = func() any { return hmac.New(sha256.New, key) }
	return m
}

// sum writes HMAC-SHA256(key, data) to out.
func (m *signingMAC) sum(data []byte, out *[sha256.Size]byte) {
	h := m.pool.Get().(hash.Hash)
	h.Reset()
	h.Write(data)
	h.Sum(out[:0])
	m.pool.Put(h)
}

// maxDerivedKeys bounds the cache (keys × regions × days); past it, it starts over.
const maxDerivedKeys = 1024

func (c *keyCache) get(accessKeyID, secret string, scope credentialScope) *signingMAC {
	id := keyID{accessKeyID, secret, scope}
	c.mu.Lock()
	k, ok := c.m[id]
	c.mu.Unlock()
	if ok {
		return k
	}
	k = newSigningMAC(signingKey(secret, scope), scope.scope())
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxDerivedKeys {
		c.m = make(map[keyID]*signingMAC)
	}
	c.m[id] = k
	c.mu.Unlock()
	return k
}

// DefaultMaxSkew is how far the request time may be from the server's clock, as AWS allows.
const DefaultMaxSkew = 15 * time.Minute

// maxPresignExpires is the longest X-Amz-Expires AWS accepts: 7 days.
const maxPresignExpires = 7 * 24 * 60 * 60

const (
	amzDateLayout   = "20060102T150405Z"
	unsignedPayload = "UNSIGNED-PAYLOAD"

	headerAmzDate        = "X-Amz-Date"
	headerContentSHA256  = "X-Amz-Content-Sha256"
	queryAlgorithm       = "X-Amz-Algorithm"
	queryCredential      = "X-Amz-Credential"
	queryDate            = "X-Amz-Date"
	querySignedHeaders   = "X-Amz-SignedHeaders"
	querySignature       = "X-Amz-Signature"
	queryExpires         = "X-Amz-Expires"
	queryContentSHA256   = "X-Amz-Content-Sha256"
	authorizationHeader  = "Authorization"
	dateHeader           = "Date"
	contentLengthHeader  = "content-length"
	transferEncodingName = "transfer-encoding"
)

// Verify checks the request's SigV4 signature. body is the full request body (already read by the
// caller; the server hashes it itself because aws-sdk-go-v2 sends no X-Amz-Content-Sha256). It returns
// the access key id the request was signed with. Every error is an *Error.
func (v *Verifier) Verify(r *http.Request, body []byte) (accessKeyID string, err error) {
	id, _, e := v.verifyRequest(r, body, false)
	if e != nil {
		return "", e
	}
	return id, nil
}

// signedRequest is what the two authentication forms have in common once parsed.
type signedRequest struct {
	auth      authorization
	cred      credentialScope
	timeStr   string    // the request time as used in the string to sign
	time      time.Time // the request time
	presigned bool
	expires   time.Duration // presigned only; 0 = not given
	// payloadHashes are the payload hashes the client may have signed with.
	payloadHashes []string
}

// verify does the work of Verify; it also returns the canonical request that matched (tests use it to
// see which canonical form each client produces; it holds no secret).
func (v *Verifier) verify(r *http.Request, body []byte) (string, string, *Error) {
	return v.verifyRequest(r, body, true)
}

// verifyRequest is verify; the matched canonical request is returned only when keep is set.
func (v *Verifier) verifyRequest(r *http.Request, body []byte, keep bool) (string, string, *Error) {
	if r.URL == nil { // never so for a server request; be safe for hand-built ones
		r2 := *r
		r2.URL = &url.URL{}
		r = &r2
	}
	sr, e := v.parseRequest(r, body)
	if e != nil {
		return "", "", e
	}
	secret, ok := "", false
	if v.Keys != nil {
		secret, ok = v.Keys.Secret(sr.cred.AccessKeyID)
	}
	if !ok || secret == "" {
		return "", "", newError(UnrecognizedClient, msgUnrecognized)
	}
	if e := v.checkScope(sr); e != nil {
		return "", "", e
	}
	if e := v.checkTime(sr); e != nil {
		return "", "", e
	}
	var want [sha256.Size]byte
	if len(sr.auth.Signature) != 2*sha256.Size {
		return "", "", invalid(msgSignatureInvalid)
	}
	if !decodeHex(want[:], sr.auth.Signature) {
		return "", "", invalid(msgSignatureInvalid)
	}

	key := v.derived.get(sr.cred.AccessKeyID, secret, sr.cred)
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	sc := scratches.Get().(*scratch)
	defer scratches.Put(sc)
	var mac [sha256.Size]byte
	toSign := append(sc.toSign[:0], algorithm...)
	toSign = append(append(append(append(append(toSign, '\n'), sr.timeStr...), '\n'), key.scope...), '\n')
	prefix := len(toSign)

	// An ordinary request has one canonical form, built without the general path's variants (ordinary.go).
	if canonical, ok := ordinaryCanonical(sc.canonical[:0], r, len(body), &sr, method); ok {
		sum := sha256.Sum256(canonical)
		toSign = hex.AppendEncode(toSign[:prefix], sum[:])
		sc.canonical, sc.toSign = canonical, toSign
		key.sum(toSign, &mac)
		if !hmac.Equal(mac[:], want[:]) {
			return "", "", invalid(msgSignatureInvalid)
		}
		matched := ""
		if keep {
			matched = string(canonical)
		}
		return sr.cred.AccessKeyID, matched, nil
	}
	sc.toSign = toSign
	exclude := ""
	if sr.presigned {
		exclude = querySignature
	}
	uris := canonicalURIs(requestPath(r.RequestURI, r.URL))
	queries := canonicalQueries(splitQuery(r.URL.RawQuery, exclude))
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	headers := canonicalHeaderBlocks(sr.auth.SignedHeaders, headerValues(r, len(body)), hostCandidates(host))
	signedHeaders := strings.Join(sr.auth.SignedHeaders, ";")

	// Try every canonical form (normally exactly one); compare each in constant time and without an
	// early exit so the timing does not say which part differed.
	matched := ""
	n := 0
tryAll:
	for _, uri := range uris {
		for _, query := range queries {
			for _, hdrs := range headers {
				for _, payload := range sr.payloadHashes {
					if n++; n > maxVariants { // cannot happen (at most 2*3*4*2 forms); a guard all the same
						break tryAll
					}
					canonical := method + "\n" + uri + "\n" + query + "\n" + hdrs + "\n" + signedHeaders + "\n" + payload
					sum := sha256.Sum256([]byte(canonical))
					toSign = hex.AppendEncode(toSign[:prefix], sum[:])
					key.sum(toSign, &mac)
					if hmac.Equal(mac[:], want[:]) && matched == "" {
						matched = canonical
					}
				}
			}
		}
	}
	if matched == "" {
		return "", "", invalid(msgSignatureInvalid)
	}
	return sr.cred.AccessKeyID, matched, nil
}

// parseRequest reads the authentication parameters from the Authorization header or the query.
func (v *Verifier) parseRequest(r *http.Request, body []byte) (signedRequest, *Error) {
	var sr signedRequest
	authHeaders := r.Header.Values(authorizationHeader)
	var query url.Values
	if r.URL.RawQuery != "" { // the usual API call has none: no map to make
		query = r.URL.Query()
	}
	presigned := query.Has(queryAlgorithm) || query.Has(queryCredential) || query.Has(querySignature)
	switch {
	case len(authHeaders) == 0 && !presigned:
		return sr, newError(MissingAuthenticationToken, msgMissingToken)
	case len(authHeaders) > 0 && presigned:
		return sr, incomplete("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified.")
	case len(authHeaders) > 1:
		return sr, incomplete("Only one Authorization header is allowed.")
	}

	bodyHash := sha256.Sum256(body)
	computed := hex.EncodeToString(bodyHash[:])

	if presigned {
		sr.presigned = true
		if e := parsePresigned(&sr, query); e != nil {
			return sr, e
		}
		claimed, present := firstOf(r.Header.Values(headerContentSHA256), query[queryContentSHA256])
		if e := setPayloadHashes(&sr, computed, claimed, present); e != nil {
			return sr, e
		}
		return sr, nil
	}

	a, e := parseAuthorization(authHeaders[0])
	if e != nil {
		return sr, e
	}
	sr.auth = a
	if sr.cred, e = parseCredential(a.Credential); e != nil {
		return sr, e
	}
	// The request time: X-Amz-Date, else Date; whichever is used must be signed.
	if d := r.Header.Get(headerAmzDate); d != "" {
		t, ok := parseAmzDate(d)
		if !ok {
			return sr, incomplete(msgAmzDateFormat)
		}
		if !signs(a.SignedHeaders, "x-amz-date") {
			return sr, incomplete("The 'X-Amz-Date' header must be a 'SignedHeader' in the AWS Authorization.")
		}
		sr.time = t
		sr.timeStr = d // the string to sign holds the header's own value (it parsed, so it is the long format)
	} else if d := r.Header.Get(dateHeader); d != "" {
		t, err := http.ParseTime(d)
		if err != nil {
			return sr, incomplete("The 'Date' header is not a valid HTTP date.")
		}
		if !signs(a.SignedHeaders, "date") {
			return sr, incomplete("The 'Date' header must be a 'SignedHeader' in the AWS Authorization.")
		}
		sr.time = t.UTC()
	} else {
		return sr, incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	if sr.timeStr == "" {
		sr.timeStr = sr.time.Format(amzDateLayout)
	}

	claimed, present := firstOf(r.Header.Values(headerContentSHA256), nil)
	if e := setPayloadHashes(&sr, computed, claimed, present); e != nil {
		return sr, e
	}
	return sr, nil
}

const msgAmzDateFormat = "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"."

// parseAmzDate parses the ISO 8601 basic format of X-Amz-Date (the header or the presigned query
// parameter), yyyyMMdd'T'HHmmss'Z', as time.Parse(amzDateLayout, d) does and requiring the two-digit
// hour that Parse does not: the same answer (TestParseAmzDate), at a tenth of the cost (time.Parse was 4%
// of a GetParticipant's handler).
func parseAmzDate(d string) (time.Time, bool) {
	if len(d) != len(amzDateLayout) || d[8] != 'T' || d[15] != 'Z' {
		return time.Time{}, false
	}
	ok := true
	num := func(from, to int) int {
		n := 0
		for _, c := range []byte(d[from:to]) {
			if c < '0' || c > '9' {
				ok = false
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(0, 4), num(4, 6), num(6, 8)
	hour, minute, second := num(9, 11), num(11, 13), num(13, 15)
	if !ok || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, second, 0, time.UTC)
	if t.Day() != day { // the 31st of a 30-day month, the 29th of February in a common year
		return time.Time{}, false
	}
	return t, true
}

// parsePresigned reads the X-Amz-* query parameters of a presigned URL.
func parsePresigned(sr *signedRequest, query url.Values) *Error {
	var missing []string
	get := func(name string) string {
		vals := query[name]
		if len(vals) == 0 || vals[0] == "" {
			missing = append(missing, name)
			return ""
		}
		return vals[0]
	}
	alg := get(queryAlgorithm)
	cred := get(queryCredential)
	date := get(queryDate)
	signedHeaders := get(querySignedHeaders)
	sig := get(querySignature)
	if len(missing) > 0 {
		return incomplete("AWS query-string parameters must include " + strings.Join(missing, ", ") + ".")
	}
	for _, name := range []string{queryAlgorithm, queryCredential, queryDate, querySignedHeaders, querySignature, queryExpires} {
		if len(query[name]) > 1 {
			return incomplete("Query-string parameter " + name + " is given more than once.")
		}
	}
	if alg != algorithm {
		return incomplete("Unsupported AWS 'algorithm': only '" + algorithm + "' is supported.")
	}
	sr.auth = authorization{Algorithm: alg, Credential: cred, SignedHeaders: splitSignedHeaders(signedHeaders), Signature: sig}
	if e := checkSignedHeaders(sr.auth.SignedHeaders); e != nil {
		return e
	}
	var e *Error
	if sr.cred, e = parseCredential(cred); e != nil {
		return e
	}
	t, ok := parseAmzDate(date)
	if !ok {
		return incomplete(msgAmzDateFormat)
	}
	sr.time, sr.timeStr = t, date
	if exp := query.Get(queryExpires); exp != "" {
		n, err := strconv.Atoi(exp)
		if err != nil || n < 1 || n > maxPresignExpires {
			return incomplete("X-Amz-Expires must be a whole number of seconds between 1 and " + strconv.Itoa(maxPresignExpires) + ".")
		}
		sr.expires = time.Duration(n) * time.Second
	}
	return nil
}

// setPayloadHashes decides which payload hashes the signature may cover. A client that sends
// X-Amz-Content-Sha256 signs with that value: it must equal the hash of the body, or be
// UNSIGNED-PAYLOAD. Without it the server's own hash is used; a presigned URL may also have been
// signed with UNSIGNED-PAYLOAD (as S3-style presigners do) since the body is not known when signing.
func setPayloadHashes(sr *signedRequest, computed, claimed string, present bool) *Error {
	switch {
	case !present:
		sr.payloadHashes = []string{computed}
		if sr.presigned {
			sr.payloadHashes = append(sr.payloadHashes, unsignedPayload)
		}
	case claimed == unsignedPayload:
		sr.payloadHashes = []string{unsignedPayload}
	case claimed == computed:
		sr.payloadHashes = []string{computed}
	default:
		return invalid("The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	return nil
}

// checkScope checks the credential scope's values against the verifier's configuration and the
// request time. AWS answers these with InvalidSignatureException (the scope is well formed, it is
// just not valid here); the messages are AWS's.
func (v *Verifier) checkScope(sr signedRequest) *Error {
	c := sr.cred
	if c.Terminator != scopeTerminator {
		return invalid("Credential should be scoped with a valid terminator: '" + scopeTerminator + "', not '" + printable(c.Terminator) + "'.")
	}
	if c.Service != v.Service {
		return invalid("Credential should be scoped to correct service: '" + v.Service + "'.")
	}
	if len(v.Regions) > 0 && !slices.Contains(v.Regions, c.Region) {
		return invalid("Credential should be scoped to a valid region, not '" + printable(c.Region) + "'.")
	}
	if !sameDay(c.Date, sr.time.UTC()) {
		day := sr.time.UTC().Format("20060102")
		return invalid(fmt.Sprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			c.Date, day, sr.timeStr))
	}
	return nil
}

// decodeHex decodes s, 2*len(dst) hex digits of either case, into dst, as hex.Decode does, without
// converting s to a byte slice first.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := hexDigit(s[2*i])
		lo, ok2 := hexDigit(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// sameDay reports whether date (YYYYMMDD) is t's day, as t.Format("20060102") == date without the string.
func sameDay(date string, t time.Time) bool {
	y, m, d := t.Date()
	if len(date) != 8 || y < 0 || y > 9999 {
		return date == t.Format("20060102")
	}
	var b [8]byte
	b[0], b[1], b[2], b[3] = byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10)
	b[4], b[5], b[6], b[7] = byte('0'+int(m)/10), byte('0'+int(m)%10), byte('0'+d/10), byte('0'+d%10)
	return string(b[:]) == date
}

// checkTime checks the request time against the server clock: within MaxSkew either way, and for a
// presigned URL not past X-Amz-Date + X-Amz-Expires.
func (v *Verifier) checkTime(sr signedRequest) *Error {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	t, n := sr.time.UTC(), now().UTC()
	if sr.presigned && sr.expires > 0 {
		if end := t.Add(sr.expires); n.After(end) {
			return invalid(fmt.Sprintf("Signature expired: the presigned request was valid until %s (X-Amz-Date %s + X-Amz-Expires %d), it is now %s.",
				end.Format(amzDateLayout), sr.timeStr, int64(sr.expires/time.Second), n.Format(amzDateLayout)))
		}
	} else if earliest := n.Add(-skew); t.Before(earliest) {
		return invalid(fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %s.)",
			sr.timeStr, earliest.Format(amzDateLayout), n.Format(amzDateLayout), skewText(skew)))
	}
	if latest := n.Add(skew); t.After(latest) {
		return invalid(fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %s.)",
			sr.timeStr, latest.Format(amzDateLayout), n.Format(amzDateLayout), skewText(skew)))
	}
	return nil
}

func skewText(d time.Duration) string {
	if d%time.Minute == 0 {
		return strconv.FormatInt(int64(d/time.Minute), 10) + " min"
	}
	return d.String()
}

// headerValues is headerValue as a headerSource.
func headerValues(r *http.Request, bodyLen int) headerSource {
	return func(lower string) []string { return headerValue(r, lower, bodyLen) }
}

// signingKey derives the SigV4 signing key:
// HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request").
func signingKey(secret string, c credentialScope) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), c.Date)
	k = hmacSHA256(k, c.Region)
	k = hmacSHA256(k, c.Service)
	return hmacSHA256(k, c.Terminator)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func signs(signedHeaders []string, name string) bool {
	for _, h := range signedHeaders {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

func firstOf(a, b []string) (string, bool) {
	if len(a) > 0 {
		return a[0], true
	}
	if len(b) > 0 {
		return b[0], true
	}
	return "", false
}

// printable shortens and sanitises a client-supplied value before it goes into a message.
func printable(s string) string {
	const limit = 64
	if len(s) > limit {
		s = s[:limit] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\'' {
			return '?'
		}
		return r
	}, s)
}
