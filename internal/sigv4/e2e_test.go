package sigv4

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/smithy-go"
)

// authServer is an httptest server that runs Verify on every request and answers like IVS would:
// 200 with a small JSON body, or 403 with x-amzn-ErrorType.
type authServer struct {
	*httptest.Server
	v *Verifier

	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	method, requestURI, path string
	akid                     string
	canonical                string // the canonical request that matched
	err                      error
}

func newAuthServer(t *testing.T, v *Verifier) *authServer {
	t.Helper()
	s := &authServer{v: v}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *authServer) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	akid, canonical, e := s.v.verify(r, body)
	var verr error
	if e != nil {
		verr = e
	}
	s.mu.Lock()
	s.seen = append(s.seen, seenRequest{method: r.Method, requestURI: r.RequestURI, path: r.URL.Path, akid: akid, canonical: canonical, err: verr})
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-RequestId", "test-request-id")
	if verr != nil {
		var e *Error
		if !errors.As(verr, &e) {
			http.Error(w, "unexpected error type", http.StatusInternalServerError)
			return
		}
		w.Header().Set("x-amzn-ErrorType", string(e.Code))
		w.WriteHeader(e.HTTPStatus())
		_ = json.NewEncoder(w).Encode(map[string]string{"message": e.Message})
		return
	}
	if strings.HasPrefix(r.URL.Path, "/tags/") && r.Method == http.MethodGet {
		_, _ = io.WriteString(w, `{"tags":{}}`)
		return
	}
	_, _ = io.WriteString(w, `{}`)
}

// doubleEncodedARN is the canonical URI segment for encodedARN: the path as sent, URI-encoded again.
const doubleEncodedARN = "arn%253Aaws%253Aivs%253Aus-east-1%253A000000000000%253Astage%252FabcDEF123456"

// canonicalLine returns line i of a canonical request (0 method, 1 URI, 2 query).
func canonicalLine(canonical string, i int) string {
	lines := strings.Split(canonical, "\n")
	if i >= len(lines) {
		return ""
	}
	return lines[i]
}

func (s *authServer) requests() []seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seenRequest(nil), s.seen...)
}

func staticCreds(akid, secret string) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret, Source: "test"}, nil
	})
}

func newIVSClient(baseURL string, creds aws.CredentialsProvider) *ivsrealtime.Client {
	return ivsrealtime.New(ivsrealtime.Options{
		BaseEndpoint:     aws.String(baseURL),
		Region:           "us-east-1",
		Credentials:      creds,
		RetryMaxAttempts: 1,
	})
}

// callAll makes the three calls every e2e case makes; it returns their errors in order.
func callAll(ctx context.Context, c *ivsrealtime.Client) []error {
	_, err1 := c.ListStages(ctx, &ivsrealtime.ListStagesInput{})
	_, err2 := c.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: aws.String(testARN)})
	_, err3 := c.TagResource(ctx, &ivsrealtime.TagResourceInput{
		ResourceArn: aws.String(testARN),
		Tags:        map[string]string{"team": "video streaming", "env": "ci/cd"},
	})
	_, err4 := c.UntagResource(ctx, &ivsrealtime.UntagResourceInput{
		ResourceArn: aws.String(testARN),
		TagKeys:     []string{"team", "env", "a b"},
	})
	return []error{err1, err2, err3, err4}
}

// TestEndToEndGoSDK drives the verifier with the real aws-sdk-go-v2 ivsrealtime client.
func TestEndToEndGoSDK(t *testing.T) {
	tests := []struct {
		name     string
		creds    aws.CredentialsProvider
		skew     time.Duration // server clock minus real clock
		base     string        // path prefix of the base endpoint
		wantCode Code          // "" = success
	}{
		{name: "right key", creds: staticCreds(testAKID, testSecret)},
		{name: "right key, base path", creds: staticCreds(testAKID, testSecret), base: "/ivs/api"},
		{name: "server clock 10 minutes ahead", creds: staticCreds(testAKID, testSecret), skew: 10 * time.Minute},
		{name: "wrong secret", creds: staticCreds(testAKID, "wrong"), wantCode: InvalidSignature},
		{name: "unknown key", creds: staticCreds("AKIDNOBODY", testSecret), wantCode: UnrecognizedClient},
		{name: "anonymous", creds: aws.AnonymousCredentials{}, wantCode: MissingAuthenticationToken},
		{name: "server clock 20 minutes ahead", creds: staticCreds(testAKID, testSecret), skew: 20 * time.Minute, wantCode: InvalidSignature},
		{name: "server clock 20 minutes behind", creds: staticCreds(testAKID, testSecret), skew: -20 * time.Minute, wantCode: InvalidSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := &Verifier{
				Keys:    keys{testAKID: testSecret},
				Service: "ivs",
				Regions: []string{"us-east-1"},
				Now:     func() time.Time { return time.Now().Add(tc.skew) },
			}
			srv := newAuthServer(t, v)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			errs := callAll(ctx, newIVSClient(srv.URL+tc.base, tc.creds))
			for i, err := range errs {
				if tc.wantCode == "" {
					if err != nil {
						t.Fatalf("call %d: %v", i, err)
					}
					continue
				}
				var apiErr smithy.APIError
				if !errors.As(err, &apiErr) {
					t.Fatalf("call %d: error %v is not a smithy.APIError", i, err)
				}
				if apiErr.ErrorCode() != string(tc.wantCode) {
					t.Fatalf("call %d: ErrorCode %q, want %q (%v)", i, apiErr.ErrorCode(), tc.wantCode, err)
				}
				if apiErr.ErrorMessage() == "" {
					t.Errorf("call %d: empty error message", i)
				}
			}
			reqs := srv.requests()
			if len(reqs) != len(errs) {
				t.Fatalf("server saw %d requests, want %d (a retry?)", len(reqs), len(errs))
			}
			// The tag calls must really have exercised an encoded ARN with an encoded '/'.
			for _, r := range reqs[1:] {
				if !strings.HasPrefix(r.requestURI, tc.base+"/tags/arn%3Aaws%3Aivs%3Aus-east-1%3A000000000000%3Astage%2FabcDEF123456") {
					t.Errorf("tag request URI %q", r.requestURI)
				}
				if r.path != tc.base+"/tags/"+testARN {
					t.Errorf("decoded path %q", r.path)
				}
				if tc.wantCode == "" {
					if got := canonicalLine(r.canonical, 1); got != tc.base+"/tags/"+doubleEncodedARN {
						t.Errorf("canonical URI %q", got)
					}
				}
			}
			if tc.wantCode == "" {
				// UntagResource's query, as aws-sdk-go-v2 signs it: sorted and encoded.
				if got := canonicalLine(reqs[3].canonical, 2); got != "tagKeys=a%20b&tagKeys=env&tagKeys=team" {
					t.Errorf("canonical query %q", got)
				}
			}
			if tc.wantCode == "" {
				for _, r := range reqs {
					if r.akid != testAKID {
						t.Errorf("%s %s: akid %q", r.method, r.requestURI, r.akid)
					}
				}
			}
		})
	}
}
