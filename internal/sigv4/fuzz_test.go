package sigv4

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// fuzzSecret is the secret of the fuzz verifier's keys; no error may contain it.
const fuzzSecret = "fuzz-s3cr3t-ZQ7"

// FuzzParseAuthorization: the Authorization header parser, and Verify around it, never panic, and
// what the parser accepts is well formed.
func FuzzParseAuthorization(f *testing.F) {
	sig := strings.Repeat("ab", 32)
	for _, seed := range []struct{ header, requestURI string }{
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/ivs/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=" + sig, "/ListStages"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/ivs/aws4_request,SignedHeaders=host;x-amz-date,Signature=" + sig, "/tags/" + encodedARN + "?tagKeys=a&tagKeys=b"},
		{"AWS4-HMAC-SHA256 Credential=A/20240101//ivs/aws4_request, SignedHeaders=host, Signature=00", "/a/./b/../c?x=%zz&y=+"},
		{"AWS4-HMAC-SHA256 Credential=A/2/3, Signature=, SignedHeaders=;;", "//"},
		{"AWS4-HMAC-SHA256\tCredential=a=b=c,,, ,Signature==", "/?X-Amz-Signature=1"},
		{"Bearer x", "*"},
		{"", ""},
		{"AWS4-HMAC-SHA256 ", "http://h/x"},
		{"\x00AWS4-HMAC-SHA256 Credential=\xff/\xfe", "/%"},
		{"20240229T235959Z", "/"}, {"20230229T120000Z", "/"}, {"20240431T000000Z", "/"}, {"2024010 T000000Z", "/"},
		{"20240101T240000Z", "/"}, {"20241301T000000Z", "/"}, {"20240101T000060Z", "/"}, {"a/b/c/d/e", "/"}, {"a/b/c/d/e/", "/"},
	} {
		f.Add(seed.header, seed.requestURI)
	}
	v := &Verifier{
		Keys:    keys{"AKIDEXAMPLE": fuzzSecret, "A": fuzzSecret},
		Service: "ivs",
		Now:     func() time.Time { return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) },
	}
	f.Fuzz(func(t *testing.T, header, requestURI string) {
		// nextAuthField splits as strings.FieldsFuncSeq does, rune by rune.
		var want, got []string
		for field := range strings.FieldsFuncSeq(header, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			want = append(want, field)
		}
		for field, rest := nextAuthField(header); field != ""; field, rest = nextAuthField(rest) {
			got = append(got, field)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%q: fields %q, strings.FieldsFuncSeq %q", header, got, want)
		}
		// parseCredential takes exactly what has five slash-delimited elements.
		if _, cerr := parseCredential(header); (cerr == nil || cerr.Message != msgCredentialElements) != (len(strings.Split(header, "/")) == 5) {
			t.Fatalf("%q: parseCredential %v", header, cerr)
		}
		// parseAmzDate takes what time.Parse takes, with a two-digit hour.
		pt, perr := time.Parse(amzDateLayout, header)
		ft, ok := parseAmzDate(header)
		if ok != (perr == nil && len(header) == len(amzDateLayout)) || (ok && !ft.Equal(pt)) {
			t.Fatalf("%q: parseAmzDate %v %v, time.Parse %v %v", header, ft, ok, pt, perr)
		}

		a, err := parseAuthorization(header)
		if err == nil {
			if a.Algorithm != algorithm || a.Credential == "" || a.Signature == "" || len(a.SignedHeaders) == 0 {
				t.Fatalf("accepted incomplete header %q: %+v", header, a)
			}
			if !signs(a.SignedHeaders, "host") {
				t.Fatalf("accepted header without host: %q", header)
			}
			if c, cerr := parseCredential(a.Credential); cerr == nil {
				if c.AccessKeyID == "" || !isDate8(c.Date) || c.scope() == "" {
					t.Fatalf("bad credential accepted: %+v", c)
				}
			}
		} else if err.Code != IncompleteSignature || err.Message == "" {
			t.Fatalf("parse error %+v", err)
		}

		u, perr := url.ParseRequestURI(requestURI)
		if perr != nil {
			u = &url.URL{Path: "/"}
		}
		r := &http.Request{
			Method:     "POST",
			URL:        u,
			RequestURI: requestURI,
			Host:       "127.0.0.1:8080",
			Header: http.Header{
				"Authorization": {header},
				"X-Amz-Date":    {"20240101T000000Z"},
				"Content-Type":  {"application/json"},
			},
			ContentLength: 2,
		}
		id, verr := v.Verify(r, []byte("{}"))
		if verr == nil && id == "" {
			t.Fatal("accepted with an empty access key id")
		}
		if verr != nil && id != "" {
			t.Fatal("access key id returned with an error")
		}
		if verr != nil && strings.Contains(verr.Error(), fuzzSecret) {
			t.Fatalf("error mentions the secret: %v", verr)
		}
	})
}
