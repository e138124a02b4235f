package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	testAKID   = "AKIDEXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	testRegion = "us-east-1"
	testARN    = "arn:aws:ivs:us-east-1:000000000000:stage/abcDEF123456"
)

// encodedARN is testARN as the SDKs put it in the path: ':' and '/' percent-encoded.
const encodedARN = "arn%3Aaws%3Aivs%3Aus-east-1%3A000000000000%3Astage%2FabcDEF123456"

// keys is a map KeyStore for tests.
type keys map[string]string

func (k keys) Secret(id string) (string, bool) { s, ok := k[id]; return s, ok }

var testNow = time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)

func newTestVerifier(now time.Time) *Verifier {
	return &Verifier{
		Keys:    keys{testAKID: testSecret, "OTHERKEY": "other-secret"},
		Service: "ivs",
		Regions: []string{"us-east-1", "eu-west-1"},
		Now:     func() time.Time { return now },
	}
}

func hashHex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// signOpts describes how the oracle (aws-sdk-go-v2's signer) signs a request.
type signOpts struct {
	akid, secret, token string
	service, region     string
	at                  time.Time
	payloadHash         string // "" = hash of the body
}

func defaultSignOpts() signOpts {
	return signOpts{akid: testAKID, secret: testSecret, service: "ivs", region: testRegion, at: testNow}
}

// newClientRequest builds a client-side request as an SDK would.
func newClientRequest(t *testing.T, method, rawURL string, body []byte, header map[string][]string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	return req
}

// signWithOracle signs req in place with aws-sdk-go-v2's SigV4 signer.
func signWithOracle(t *testing.T, req *http.Request, body []byte, o signOpts) {
	t.Helper()
	ph := o.payloadHash
	if ph == "" {
		ph = hashHex(body)
	}
	creds := aws.Credentials{AccessKeyID: o.akid, SecretAccessKey: o.secret, SessionToken: o.token}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, ph, o.service, o.region, o.at); err != nil {
		t.Fatal(err)
	}
}

// presignWithOracle returns a presigned request (URL and headers to send) for req.
func presignWithOracle(t *testing.T, req *http.Request, body []byte, o signOpts) *http.Request {
	t.Helper()
	ph := o.payloadHash
	if ph == "" {
		ph = hashHex(body)
	}
	creds := aws.Credentials{AccessKeyID: o.akid, SecretAccessKey: o.secret}
	signedURL, signedHeader, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, ph, o.service, o.region, o.at)
	if err != nil {
		t.Fatal(err)
	}
	out := newClientRequest(t, req.Method, signedURL, body, nil)
	for k, vs := range signedHeader {
		if strings.EqualFold(k, "host") {
			continue
		}
		out.Header[k] = vs
	}
	return out
}

// toServer puts a client request through the HTTP/1.1 wire format and reads it back as a server
// would, so Verify sees exactly what a server sees (RequestURI, Host, header canonicalisation).
func toServer(t *testing.T, req *http.Request) (*http.Request, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		t.Fatal(err)
	}
	sreq, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(sreq.Body)
	if err != nil {
		t.Fatal(err)
	}
	return sreq, body
}

func codeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

var jsonHeader = map[string][]string{"Content-Type": {"application/json"}}

// TestVerifyAcceptsOracle: requests signed by aws-sdk-go-v2's signer are accepted.
func TestVerifyAcceptsOracle(t *testing.T) {
	tagsURL := "http://127.0.0.1:8080/tags/" + encodedARN
	tests := []struct {
		name   string
		method string
		url    string
		body   []byte
		header map[string][]string
		opts   func(*signOpts)
	}{
		{name: "POST CreateStage JSON", method: "POST", url: "http://127.0.0.1:8080/CreateStage",
			body: []byte(`{"name":"my stage","tags":{"a":"b"}}`), header: jsonHeader},
		{name: "POST empty JSON object", method: "POST", url: "http://localhost:8080/ListStages", body: []byte(`{}`), header: jsonHeader},
		{name: "GET tags encoded ARN", method: "GET", url: tagsURL},
		{name: "GET tags with tagKeys", method: "GET", url: tagsURL + "?tagKeys=a&tagKeys=b"},
		{name: "DELETE tags tagKeys unsorted", method: "DELETE", url: tagsURL + "?tagKeys=zeta&tagKeys=alpha&tagKeys=m%20n"},
		{name: "POST tags", method: "POST", url: tagsURL, body: []byte(`{"tags":{"k":"v"}}`), header: jsonHeader},
		{name: "base path prefix", method: "POST", url: "http://127.0.0.1:8080/base/prefix/ListParticipants",
			body: []byte(`{"stageArn":"x","sessionId":"y"}`), header: jsonHeader},
		{name: "base path prefix and tags", method: "GET", url: "http://127.0.0.1:8080/api/v1/tags/" + encodedARN},
		{name: "root path", method: "GET", url: "http://127.0.0.1:8080"},
		{name: "odd query characters", method: "GET",
			url: "http://127.0.0.1:8080/x?b=%2B%20&a=%7E&a=%21&c=%C3%A9&empty=&plus=a+b&slash=%2F"},
		{name: "header whitespace and repeated values", method: "POST", url: "http://127.0.0.1:8080/UpdateStage",
			body: []byte(`{}`), header: map[string][]string{
				"Content-Type": {"application/json"},
				"X-Custom":     {"  a   b  c ", "second"},
			}},
		{name: "session token", method: "POST", url: "http://127.0.0.1:8080/GetStage", body: []byte(`{"arn":"a"}`),
			header: jsonHeader, opts: func(o *signOpts) { o.token = "session-token" }},
		{name: "region eu-west-1", method: "POST", url: "http://127.0.0.1:8080/GetStage", body: []byte(`{}`),
			header: jsonHeader, opts: func(o *signOpts) { o.region = "eu-west-1" }},
		{name: "signed 14 minutes ago", method: "POST", url: "http://127.0.0.1:8080/ListStages", body: []byte(`{}`),
			opts: func(o *signOpts) { o.at = testNow.Add(-14 * time.Minute) }},
		{name: "signed 14 minutes ahead across midnight", method: "POST", url: "http://127.0.0.1:8080/ListStages", body: []byte(`{}`),
			opts: func(o *signOpts) { o.at = time.Date(2024, 1, 2, 0, 2, 0, 0, time.UTC) }},
		{name: "unsigned payload header", method: "POST", url: "http://127.0.0.1:8080/ListStages", body: []byte(`{"x":1}`),
			header: map[string][]string{"X-Amz-Content-Sha256": {"UNSIGNED-PAYLOAD"}},
			opts:   func(o *signOpts) { o.payloadHash = "UNSIGNED-PAYLOAD" }},
		{name: "content sha256 header", method: "POST", url: "http://127.0.0.1:8080/ListStages", body: []byte(`{"x":1}`),
			header: map[string][]string{"X-Amz-Content-Sha256": {hashHex([]byte(`{"x":1}`))}}},
		{name: "default port", method: "POST", url: "http://example.com:80/ListStages", body: []byte(`{}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := defaultSignOpts()
			if tc.opts != nil {
				tc.opts(&o)
			}
			now := testNow
			if tc.name == "signed 14 minutes ahead across midnight" {
				now = time.Date(2024, 1, 1, 23, 48, 0, 0, time.UTC)
			}
			req := newClientRequest(t, tc.method, tc.url, tc.body, tc.header)
			signWithOracle(t, req, tc.body, o)
			sreq, body := toServer(t, req)
			id, err := newTestVerifier(now).Verify(sreq, body)
			if err != nil {
				t.Fatalf("Verify: %v\nrequest URI %q\nAuthorization %q", err, sreq.RequestURI, sreq.Header.Get("Authorization"))
			}
			if id != testAKID {
				t.Fatalf("access key id = %q, want %q", id, testAKID)
			}
		})
	}
}

// TestVerifyPresigned: presigned URLs from the oracle.
func TestVerifyPresigned(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		url       string
		body      []byte
		unsigned  bool
		expires   int
		now       time.Time
		wantCode  Code
		tamperURL func(string) string
	}{
		{name: "GET tags, body hash", method: "GET", url: "http://127.0.0.1:8080/tags/" + encodedARN + "?tagKeys=a&tagKeys=b", expires: 300, now: testNow},
		{name: "GET unsigned payload", method: "GET", url: "http://127.0.0.1:8080/ListStages", unsigned: true, expires: 300, now: testNow},
		{name: "POST with body", method: "POST", url: "http://127.0.0.1:8080/ListStages", body: []byte(`{}`), expires: 60, now: testNow},
		{name: "no X-Amz-Expires", method: "GET", url: "http://127.0.0.1:8080/ListStages", now: testNow.Add(10 * time.Minute)},
		{name: "long expiry still valid after skew", method: "GET", url: "http://127.0.0.1:8080/ListStages", expires: 3600, now: testNow.Add(50 * time.Minute)},
		{name: "expired", method: "GET", url: "http://127.0.0.1:8080/ListStages", expires: 60, now: testNow.Add(2 * time.Minute), wantCode: InvalidSignature},
		{name: "not yet valid", method: "GET", url: "http://127.0.0.1:8080/ListStages", expires: 60, now: testNow.Add(-20 * time.Minute), wantCode: InvalidSignature},
		{name: "tampered query", method: "GET", url: "http://127.0.0.1:8080/tags/" + encodedARN + "?tagKeys=a", expires: 300, now: testNow,
			wantCode: InvalidSignature, tamperURL: func(s string) string { return s + "&tagKeys=b" }},
		{name: "tampered expiry", method: "GET", url: "http://127.0.0.1:8080/ListStages", expires: 300, now: testNow,
			wantCode: InvalidSignature, tamperURL: func(s string) string { return strings.Replace(s, "X-Amz-Expires=300", "X-Amz-Expires=3000", 1) }},
		{name: "bad expiry", method: "GET", url: "http://127.0.0.1:8080/ListStages", expires: 300, now: testNow,
			wantCode: IncompleteSignature, tamperURL: func(s string) string { return strings.Replace(s, "X-Amz-Expires=300", "X-Amz-Expires=999999999", 1) }},
		{name: "no signature", method: "GET", url: "http://127.0.0.1:8080/ListStages", expires: 300, now: testNow,
			wantCode: IncompleteSignature, tamperURL: func(s string) string { return s[:strings.Index(s, "&X-Amz-Signature=")] }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := newClientRequest(t, tc.method, tc.url, tc.body, nil)
			if tc.expires > 0 {
				q := req.URL.Query()
				q.Set("X-Amz-Expires", strconv.Itoa(tc.expires))
				req.URL.RawQuery = q.Encode()
			}
			o := defaultSignOpts()
			if tc.unsigned {
				o.payloadHash = "UNSIGNED-PAYLOAD"
			}
			pre := presignWithOracle(t, req, tc.body, o)
			if pre.Header.Get("Authorization") != "" {
				t.Fatal("presigned request has an Authorization header")
			}
			if tc.tamperURL != nil {
				pre = newClientRequest(t, pre.Method, tc.tamperURL(pre.URL.String()), tc.body, nil)
			}
			sreq, body := toServer(t, pre)
			_, err := newTestVerifier(tc.now).Verify(sreq, body)
			if got := codeOf(err); got != tc.wantCode {
				t.Fatalf("code = %q, want %q (err %v)", got, tc.wantCode, err)
			}
		})
	}
}

// TestVerifyRejects: negative cases. Each case signs a good request with the oracle, then changes it.
func TestVerifyRejects(t *testing.T) {
	body := []byte(`{"name":"stage"}`)
	replaceAuth := func(old, new string) func(*http.Request) {
		return func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), old, new, 1))
		}
	}
	setAuth := func(v string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", v) }
	}
	goodSig := strings.Repeat("ab", 32)
	goodCred := testAKID + "/20240101/us-east-1/ivs/aws4_request"
	tests := []struct {
		name       string
		opts       func(*signOpts)
		tamper     func(*http.Request) // on the signed client request
		tamperBody func([]byte) []byte // on the body the server sees
		now        time.Time
		verifier   func(*Verifier)
		wantCode   Code
		wantMsg    string // substring of the message
	}{
		{name: "no Authorization", tamper: func(r *http.Request) { r.Header.Del("Authorization") }, wantCode: MissingAuthenticationToken},
		{name: "unknown access key", opts: func(o *signOpts) { o.akid = "AKIDUNKNOWN" }, wantCode: UnrecognizedClient,
			wantMsg: "The security token included in the request is invalid."},
		{name: "wrong secret", opts: func(o *signOpts) { o.secret = "not-the-secret" }, wantCode: InvalidSignature,
			wantMsg: "The request signature we calculated does not match the signature you provided."},
		{name: "another key's secret", opts: func(o *signOpts) { o.akid = "OTHERKEY" }, wantCode: InvalidSignature},
		{name: "nil KeyStore", verifier: func(v *Verifier) { v.Keys = nil }, wantCode: UnrecognizedClient},
		{name: "empty secret in KeyStore", verifier: func(v *Verifier) { v.Keys = keys{testAKID: ""} }, wantCode: UnrecognizedClient},
		{name: "tampered body", tamperBody: func(b []byte) []byte { return bytes.Replace(b, []byte("stage"), []byte("stagf"), 1) }, wantCode: InvalidSignature},
		{name: "truncated body", tamperBody: func(b []byte) []byte { return b[:len(b)-1] }, wantCode: InvalidSignature},
		{name: "tampered signed header", tamper: func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, wantCode: InvalidSignature},
		{name: "added value to signed header", tamper: func(r *http.Request) { r.Header.Add("Content-Type", "text/plain") }, wantCode: InvalidSignature},
		{name: "tampered path", tamper: func(r *http.Request) { r.URL.Path = "/DeleteStage" }, wantCode: InvalidSignature},
		{name: "tampered method", tamper: func(r *http.Request) { r.Method = "PUT" }, wantCode: InvalidSignature},
		{name: "added query", tamper: func(r *http.Request) { r.URL.RawQuery = "a=b" }, wantCode: InvalidSignature},
		{name: "tampered host", tamper: func(r *http.Request) { r.Host = "evil.example:8080" }, wantCode: InvalidSignature},
		{name: "tampered X-Amz-Date", tamper: func(r *http.Request) { r.Header.Set("X-Amz-Date", "20240101T120001Z") }, wantCode: InvalidSignature},
		{name: "tampered signature", tamper: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:len(a)-4]+"0000")
		}, wantCode: InvalidSignature},
		{name: "signature not hex", tamper: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:len(a)-4]+"zzzz")
		}, wantCode: InvalidSignature},
		{name: "short signature", tamper: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:len(a)-2])
		}, wantCode: InvalidSignature},
		{name: "content sha256 mismatch", tamper: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", hashHex([]byte("other"))) },
			wantCode: InvalidSignature, wantMsg: "x-amz-content-sha256"},
		{name: "content sha256 streaming", tamper: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") },
			wantCode: InvalidSignature},
		{name: "unsigned payload claimed after signing with hash", tamper: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD") },
			wantCode: InvalidSignature},
		{name: "wrong service", opts: func(o *signOpts) { o.service = "execute-api" }, wantCode: InvalidSignature,
			wantMsg: "Credential should be scoped to correct service: 'ivs'."},
		{name: "wrong region", opts: func(o *signOpts) { o.region = "ap-south-1" }, wantCode: InvalidSignature,
			wantMsg: "Credential should be scoped to a valid region, not 'ap-south-1'."},
		{name: "empty region", opts: func(o *signOpts) { o.region = "" }, wantCode: InvalidSignature},
		{name: "scope date differs", tamper: replaceAuth("/20240101/", "/20240102/"), wantCode: InvalidSignature,
			wantMsg: "Date in Credential scope does not match"},
		{name: "scope date malformed", tamper: replaceAuth("/20240101/", "/2024-01-01/"), wantCode: IncompleteSignature},
		{name: "scope terminator", tamper: replaceAuth("/aws4_request", "/aws5_request"), wantCode: InvalidSignature, wantMsg: "terminator"},
		{name: "scope too few parts", tamper: replaceAuth("/us-east-1/ivs/", "/ivs/"), wantCode: IncompleteSignature},
		{name: "scope too many parts", tamper: replaceAuth("/ivs/", "/ivs/x/"), wantCode: IncompleteSignature},
		{name: "stale by 16 minutes", opts: func(o *signOpts) { o.at = testNow.Add(-16 * time.Minute) }, wantCode: InvalidSignature,
			wantMsg: "Signature expired: 20240101T114400Z is now earlier than 20240101T114500Z (20240101T120000Z - 15 min.)"},
		{name: "future by 16 minutes", opts: func(o *signOpts) { o.at = testNow.Add(16 * time.Minute) }, wantCode: InvalidSignature,
			wantMsg: "Signature not yet current: 20240101T121600Z is still later than 20240101T121500Z (20240101T120000Z + 15 min.)"},
		{name: "stale with custom skew", opts: func(o *signOpts) { o.at = testNow.Add(-2 * time.Minute) },
			verifier: func(v *Verifier) { v.MaxSkew = time.Minute }, wantCode: InvalidSignature, wantMsg: "- 1 min.)"},
		{name: "missing X-Amz-Date", tamper: func(r *http.Request) { r.Header.Del("X-Amz-Date") }, wantCode: IncompleteSignature,
			wantMsg: "'X-Amz-Date' or a 'Date'"},
		{name: "malformed X-Amz-Date", tamper: func(r *http.Request) { r.Header.Set("X-Amz-Date", "2024-01-01T12:00:00Z") }, wantCode: IncompleteSignature},
		{name: "X-Amz-Date with a one-digit hour", tamper: func(r *http.Request) { r.Header.Set("X-Amz-Date", "20240101T90000Z") }, wantCode: IncompleteSignature},
		{name: "X-Amz-Date not signed", tamper: replaceAuth(";x-amz-date", ""), wantCode: IncompleteSignature},
		{name: "host not signed", tamper: replaceAuth("host;", ""), wantCode: IncompleteSignature, wantMsg: "'Host'"},
		{name: "wrong algorithm", tamper: replaceAuth("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512"), wantCode: IncompleteSignature},
		{name: "SigV4a", tamper: replaceAuth("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"), wantCode: IncompleteSignature},
		{name: "bearer token", tamper: setAuth("Bearer abc.def.ghi"), wantCode: IncompleteSignature},
		{name: "empty Authorization", tamper: setAuth(""), wantCode: IncompleteSignature},
		{name: "only algorithm", tamper: setAuth("AWS4-HMAC-SHA256"), wantCode: IncompleteSignature, wantMsg: "requires 'Credential'"},
		{name: "missing Credential", tamper: setAuth("AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=" + goodSig),
			wantCode: IncompleteSignature, wantMsg: "requires 'Credential'"},
		{name: "missing SignedHeaders", tamper: setAuth("AWS4-HMAC-SHA256 Credential=" + goodCred + ", Signature=" + goodSig),
			wantCode: IncompleteSignature, wantMsg: "requires 'SignedHeaders'"},
		{name: "missing Signature", tamper: setAuth("AWS4-HMAC-SHA256 Credential=" + goodCred + ", SignedHeaders=host;x-amz-date"),
			wantCode: IncompleteSignature, wantMsg: "requires 'Signature'"},
		{name: "pair without equals", tamper: setAuth("AWS4-HMAC-SHA256 Credential, SignedHeaders=host, Signature=" + goodSig),
			wantCode: IncompleteSignature},
		{name: "duplicate Signature", tamper: replaceAuth("Signature=", "Signature="+goodSig+", Signature="), wantCode: IncompleteSignature},
		{name: "unknown parameter", tamper: replaceAuth("Signature=", "Foo=bar, Signature="), wantCode: IncompleteSignature},
		{name: "empty signed header name", tamper: replaceAuth("SignedHeaders=", "SignedHeaders=;"), wantCode: IncompleteSignature},
		{name: "two Authorization headers", tamper: func(r *http.Request) { r.Header.Add("Authorization", r.Header.Get("Authorization")) },
			wantCode: IncompleteSignature},
		{name: "header and query auth", tamper: func(r *http.Request) {
			r.URL.RawQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=" + goodSig
		}, wantCode: IncompleteSignature},
		{name: "presigned X-Amz-Date with a one-digit hour", tamper: func(r *http.Request) {
			r.Header.Del("Authorization")
			r.URL.RawQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + url.QueryEscape(goodCred) +
				"&X-Amz-Date=20240101T90000Z&X-Amz-SignedHeaders=host&X-Amz-Signature=" + goodSig
		}, wantCode: IncompleteSignature, wantMsg: "ISO8601 Long Format"},
		{name: "empty access key id", tamper: setAuth("AWS4-HMAC-SHA256 Credential=/20240101/us-east-1/ivs/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + goodSig),
			wantCode: IncompleteSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := defaultSignOpts()
			if tc.opts != nil {
				tc.opts(&o)
			}
			req := newClientRequest(t, "POST", "http://127.0.0.1:8080/CreateStage", body, jsonHeader)
			signWithOracle(t, req, body, o)
			if tc.tamper != nil {
				tc.tamper(req)
			}
			sreq, got := toServer(t, req)
			if tc.tamperBody != nil {
				got = tc.tamperBody(got)
			}
			now := testNow
			if !tc.now.IsZero() {
				now = tc.now
			}
			v := newTestVerifier(now)
			if tc.verifier != nil {
				tc.verifier(v)
			}
			id, err := v.Verify(sreq, got)
			if err == nil {
				t.Fatalf("Verify accepted the request (key %q)", id)
			}
			if id != "" {
				t.Errorf("access key id %q returned with an error", id)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error", err)
			}
			if e.Code != tc.wantCode {
				t.Fatalf("code = %s, want %s (message %q)", e.Code, tc.wantCode, e.Message)
			}
			if e.HTTPStatus() != http.StatusForbidden {
				t.Errorf("status %d", e.HTTPStatus())
			}
			if tc.wantMsg != "" && !strings.Contains(e.Message, tc.wantMsg) {
				t.Errorf("message %q does not contain %q", e.Message, tc.wantMsg)
			}
			for _, secret := range []string{testSecret, "not-the-secret", "other-secret"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error leaks a secret: %q", err.Error())
				}
			}
		})
	}
}

// TestRegionsAny: an empty Regions list accepts any region, including the empty one aws-sdk-go-v2 signs
// with when no region is configured.
func TestRegionsAny(t *testing.T) {
	for _, region := range []string{"us-east-1", "mars-north-7", ""} {
		t.Run("region="+region, func(t *testing.T) {
			o := defaultSignOpts()
			o.region = region
			req := newClientRequest(t, "POST", "http://127.0.0.1:8080/ListStages", []byte(`{}`), jsonHeader)
			signWithOracle(t, req, []byte(`{}`), o)
			sreq, body := toServer(t, req)
			v := newTestVerifier(testNow)
			v.Regions = nil
			if _, err := v.Verify(sreq, body); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDateHeaderFallback: without X-Amz-Date the Date header gives the request time. No AWS client
// signs this way any more, so the request is signed here by hand, following the specification.
func TestDateHeaderFallback(t *testing.T) {
	body := []byte(`{}`)
	httpDate := testNow.Format(http.TimeFormat)
	canonical := strings.Join([]string{
		"POST", "/ListStages", "",
		"date:" + httpDate, "host:127.0.0.1:8080", "",
		"date;host", hashHex(body),
	}, "\n")
	scope := "20240101/us-east-1/ivs/aws4_request"
	toSign := "AWS4-HMAC-SHA256\n20240101T120000Z\n" + scope + "\n" + hashHex([]byte(canonical))
	key := []byte("AWS4" + testSecret)
	for _, s := range []string{"20240101", "us-east-1", "ivs", "aws4_request"} {
		key = hmacSHA256(key, s)
	}
	sig := hex.EncodeToString(hmacSHA256(key, toSign))

	build := func(signed, date string) *http.Request {
		req := newClientRequest(t, "POST", "http://127.0.0.1:8080/ListStages", body, nil)
		req.Header.Set("Date", date)
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testAKID+"/"+scope+", SignedHeaders="+signed+", Signature="+sig)
		return req
	}
	tests := []struct {
		name     string
		req      *http.Request
		wantCode Code
	}{
		{"good", build("date;host", httpDate), ""},
		{"Date not signed", build("host", httpDate), IncompleteSignature},
		{"Date malformed", build("date;host", "yesterday"), IncompleteSignature},
		{"Date changed", build("date;host", testNow.Add(time.Second).Format(http.TimeFormat)), InvalidSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sreq, got := toServer(t, tc.req)
			_, err := newTestVerifier(testNow).Verify(sreq, got)
			if c := codeOf(err); c != tc.wantCode {
				t.Fatalf("code %q, want %q (%v)", c, tc.wantCode, err)
			}
		})
	}
}

// TestVerifyDirectRequest: Verify also works on a request that never went through a server (no
// RequestURI), e.g. one built by httptest.NewRequest or by a client.
func TestVerifyDirectRequest(t *testing.T) {
	body := []byte(`{}`)
	req := newClientRequest(t, "GET", "http://127.0.0.1:8080/tags/"+encodedARN+"?tagKeys=a", nil, nil)
	signWithOracle(t, req, nil, defaultSignOpts())
	if _, err := newTestVerifier(testNow).Verify(req, nil); err != nil {
		t.Fatal(err)
	}
	req = newClientRequest(t, "POST", "http://127.0.0.1:8080/ListStages", body, jsonHeader)
	signWithOracle(t, req, body, defaultSignOpts())
	if _, err := newTestVerifier(testNow).Verify(req, body); err != nil {
		t.Fatal(err)
	}
}

// TestCanonicalURI pins the canonical URI computed for paths as sent on the wire.
func TestCanonicalURI(t *testing.T) {
	tests := []struct {
		path string
		want []string // first: verbatim (aws-sdk-go-v2); second if any: dot segments removed (botocore, JS v3)
	}{
		{"/CreateStage", []string{"/CreateStage"}},
		{"/tags/" + encodedARN, []string{"/tags/arn%253Aaws%253Aivs%253Aus-east-1%253A000000000000%253Astage%252FabcDEF123456"}},
		{"/", []string{"/"}},
		{"/a b", []string{"/a%20b"}},
		{"/a%20b", []string{"/a%2520b"}},
		{"/~user/_x-y.z", []string{"/~user/_x-y.z"}},
		{"/a/./b/../c", []string{"/a/./b/../c", "/a/c"}},
		{"//a//b/", []string{"//a//b/", "/a/b/"}},
		{"/a/%2E%2E/b", []string{"/a/%252E%252E/b"}},
	}
	for _, tc := range tests {
		got := canonicalURIs(tc.path)
		if strings.Join(got, " | ") != strings.Join(tc.want, " | ") {
			t.Errorf("canonicalURIs(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

func TestRequestPath(t *testing.T) {
	u, _ := url.Parse("http://h/tags/" + encodedARN + "?x=1")
	tests := []struct {
		requestURI string
		u          *url.URL
		want       string
	}{
		{"/tags/" + encodedARN + "?x=1", nil, "/tags/" + encodedARN},
		{"http://h:80/a%2Fb?c", nil, "/a%2Fb"},
		{"http://h", nil, "/"},
		{"", u, "/tags/" + encodedARN},
		{"", &url.URL{Opaque: "//h/a%3Ab"}, "/a%3Ab"},
		{"*", nil, "/"},
	}
	for _, tc := range tests {
		if got := requestPath(tc.requestURI, tc.u); got != tc.want {
			t.Errorf("requestPath(%q) = %q, want %q", tc.requestURI, got, tc.want)
		}
	}
}

func TestCanonicalQuery(t *testing.T) {
	tests := []struct {
		raw     string
		exclude string
		want    []string
	}{
		{"", "", []string{""}},
		{"tagKeys=b&tagKeys=a", "", []string{"tagKeys=a&tagKeys=b"}},
		{"b=1&a=2&a=1", "", []string{"a=1&a=2&b=1"}},
		{"a=x%20y", "", []string{"a=x%20y"}},
		{"flag", "", []string{"flag="}},
		{"a=1&X-Amz-Signature=abc&b=2", "X-Amz-Signature", []string{"a=1&b=2"}},
		// '+' is a space to Go, literal to JS; botocore signs it as sent.
		{"a=x+y", "", []string{"a=x%20y", "a=x%2By", "a=x+y"}},
		// lower-case escapes are re-encoded upper-case by Go and JS, kept by botocore.
		{"a=%2f", "", []string{"a=%2F", "a=%2f"}},
		// a bad escape: Go drops the pair, JS cannot send it, botocore signs it as is.
		{"a=%zz&b=1", "", []string{"b=1", "a=%zz&b=1"}},
		// sort order of decoded vs encoded names differs for non-ASCII.
		{"%C3%A9=1&~=2", "", []string{"~=2&%C3%A9=1", "%C3%A9=1&~=2"}},
	}
	for _, tc := range tests {
		got := canonicalQueries(splitQuery(tc.raw, tc.exclude))
		if strings.Join(got, " | ") != strings.Join(tc.want, " | ") {
			t.Errorf("canonicalQueries(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

func TestTrimHeaderValue(t *testing.T) {
	tests := []struct{ in, goForm, otherForm string }{
		{"  a   b  ", "a b", "a b"},
		{"a\t\tb", "a\t\tb", "a b"},
		{"", "", ""},
	}
	for _, tc := range tests {
		if got := trimSpacesGo(tc.in); got != tc.goForm {
			t.Errorf("trimSpacesGo(%q) = %q, want %q", tc.in, got, tc.goForm)
		}
		if got := trimWhitespace(tc.in); got != tc.otherForm {
			t.Errorf("trimWhitespace(%q) = %q, want %q", tc.in, got, tc.otherForm)
		}
	}
}

func TestParseAuthorization(t *testing.T) {
	sig := strings.Repeat("0f", 32)
	tests := []struct {
		name     string
		header   string
		wantCred string
		wantSH   []string
		wantErr  bool
	}{
		{"AWS SDK form", "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ivs/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=" + sig,
			"AKID/20240101/us-east-1/ivs/aws4_request", []string{"content-type", "host", "x-amz-date"}, false},
		{"commas only", "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ivs/aws4_request,SignedHeaders=host,Signature=" + sig,
			"AKID/20240101/us-east-1/ivs/aws4_request", []string{"host"}, false},
		{"extra spaces and order", "  AWS4-HMAC-SHA256   Signature=" + sig + " ,  SignedHeaders=host;x-amz-date ,Credential=A/20240101/r/ivs/aws4_request  ",
			"A/20240101/r/ivs/aws4_request", []string{"host", "x-amz-date"}, false},
		{"tab after algorithm", "AWS4-HMAC-SHA256\tCredential=A/1/2/3/4, SignedHeaders=host, Signature=x", "A/1/2/3/4", []string{"host"}, false},
		{"lower-case algorithm", "aws4-hmac-sha256 Credential=A/1/2/3/4, SignedHeaders=host, Signature=x", "", nil, true},
		{"no host", "AWS4-HMAC-SHA256 Credential=A/1/2/3/4, SignedHeaders=x-amz-date, Signature=x", "", nil, true},
		{"empty values", "AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=", "", nil, true},
		{"garbage", "\x00\xff===,,,", "", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := parseAuthorization(tc.header)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				if err.Code != IncompleteSignature {
					t.Fatalf("code %s", err.Code)
				}
				return
			}
			if a.Credential != tc.wantCred || strings.Join(a.SignedHeaders, ";") != strings.Join(tc.wantSH, ";") {
				t.Fatalf("got %+v", a)
			}
		})
	}
}

// TestConcurrentVerify runs Verify from many goroutines (for -race).
func TestConcurrentVerify(t *testing.T) {
	v := newTestVerifier(testNow)
	body := []byte(`{}`)
	req := newClientRequest(t, "POST", "http://127.0.0.1:8080/ListStages", body, jsonHeader)
	signWithOracle(t, req, body, defaultSignOpts())
	sreq, got := toServer(t, req)
	done := make(chan error, 16)
	for range 16 {
		go func() {
			_, err := v.Verify(sreq, got)
			done <- err
		}()
	}
	for range 16 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestDerivedKeyCache: a cached signing key signs as the one derivation gives, per key, secret and scope,
// also when its HMAC state is reused.
func TestDerivedKeyCache(t *testing.T) {
	var c keyCache
	scopes := []credentialScope{
		{AccessKeyID: "A", Date: "20260101", Region: "us-east-1", Service: "ivs", Terminator: scopeTerminator},
		{AccessKeyID: "A", Date: "20260102", Region: "us-east-1", Service: "ivs", Terminator: scopeTerminator},
		{AccessKeyID: "A", Date: "20260101", Region: "eu-west-1", Service: "ivs", Terminator: scopeTerminator},
	}
	for range 2 { // the second round comes from the cache
		for _, sc := range scopes {
			for _, secret := range []string{"s1", "s2"} {
				var got [32]byte
				c.get(sc.AccessKeyID, secret, sc).sum([]byte("string to sign"), &got)
				if want := hmacSHA256(signingKey(secret, sc), "string to sign"); !bytes.Equal(got[:], want) {
					t.Fatalf("%+v %s: the cached key signs differently", sc, secret)
				}
			}
		}
	}
	for i := range maxDerivedKeys + 10 { // the cache stays bounded
		sc := scopes[0]
		sc.Date = fmt.Sprintf("2026%04d", i)
		c.get("A", "s", sc)
	}
	if n := len(c.m); n > maxDerivedKeys {
		t.Fatalf("%d keys cached", n)
	}
}

// FuzzPlainHeaderValue: a value plain() accepts is one both whitespace forms leave unchanged, so one
// canonical headers block covers both.
func FuzzPlainHeaderValue(f *testing.F) {
	for _, s := range []string{"", "a", "a b", "a  b", " a", "a ", "a\tb", "application/json", "\u00a0x", "x\u0085"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if plain(v) && (trimSpacesGo(v) != v || trimWhitespace(v) != v) {
			t.Fatalf("plain(%q), but the forms give %q and %q", v, trimSpacesGo(v), trimWhitespace(v))
		}
	})
}
