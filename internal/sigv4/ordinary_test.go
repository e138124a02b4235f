package sigv4

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
	"time"
)

// generalCanonicals is every canonical request the general path of verify tries for r.
func generalCanonicals(r *http.Request, bodyLen int, sr signedRequest, method string) []string {
	exclude := ""
	if sr.presigned {
		exclude = querySignature
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	var out []string
	for _, uri := range canonicalURIs(requestPath(r.RequestURI, r.URL)) {
		for _, query := range canonicalQueries(splitQuery(r.URL.RawQuery, exclude)) {
			for _, hdrs := range canonicalHeaderBlocks(sr.auth.SignedHeaders, headerValues(r, bodyLen), hostCandidates(host)) {
				for _, payload := range sr.payloadHashes {
					out = append(out, method+"\n"+uri+"\n"+query+"\n"+hdrs+"\n"+strings.Join(sr.auth.SignedHeaders, ";")+"\n"+payload)
				}
			}
		}
	}
	return out
}

// TestOrdinaryCanonicalIsTheGeneralOne: whenever ordinaryCanonical builds a canonical request, the general
// path builds exactly one, and the same.
func TestOrdinaryCanonicalIsTheGeneralOne(t *testing.T) {
	v := newTestVerifier(testNow)
	paths := []string{"/GetParticipant", "/", "/a/b/", "/tags/" + encodedARN, "/a//b", "/./a", "/a/../b", "/.well-known",
		"/a b", "/a%2Fb", "/ä", "/a/.", "/a;b"}
	queries := []string{"", "a=b", "X-Amz-Date=1"}
	hosts := []string{"127.0.0.1:8080", "ivs.us-east-1.amazonaws.com", "example.com:80", "example.com:443", ":80", "h ost", "h\u00e4st"}
	values := [][]string{{"application/json"}, {"a  b"}, {" a"}, {"a\tb"}, {"x", "y"}, {}, {"\u00a0"}}
	signed := [][]string{{"host", "x-amz-date"}, {"content-type", "host", "x-amz-date"}, {"Content-Type", "Host", "X-Amz-Date"},
		{"content-length", "host", "x-amz-date"}, {"host", "x-amz-date", "x_custom"}, {"host", "transfer-encoding", "x-amz-date"},
		{"host", "x-amz-date", "x-amz-content-sha256"}}
	built, declined := 0, 0
	for _, path := range paths {
		for _, query := range queries {
			for _, host := range hosts {
				for vi, vals := range values {
					for _, names := range signed {
						target := path
						if query != "" {
							target += "?" + query
						}
						r := &http.Request{Method: http.MethodPost, RequestURI: target, Host: host, Header: http.Header{},
							ContentLength: 2}
						u, err := url.ParseRequestURI(target)
						if err != nil {
							u = &url.URL{Path: path, RawQuery: query}
						}
						r.URL = u
						r.Header["Content-Type"] = vals
						r.Header["X_custom"] = vals
						r.Header["X-Amz-Date"] = []string{testNow.Format(amzDateLayout)}
						if vi%2 == 0 {
							r.Header["X-Amz-Content-Sha256"] = []string{hashHex([]byte("{}"))}
						}
						if vi == 3 {
							r.TransferEncoding = []string{"chunked"}
						}
						r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testAKID+"/20240101/us-east-1/ivs/aws4_request, SignedHeaders="+
							strings.Join(names, ";")+", Signature="+strings.Repeat("0", 64))
						sr, e := v.parseRequest(r, []byte("{}"))
						if e != nil {
							t.Fatalf("%s %s: %v", target, host, e)
						}
						general := generalCanonicals(r, 2, sr, r.Method)
						got, ok := ordinaryCanonical(nil, r, 2, &sr, r.Method)
						if !ok {
							declined++
							continue
						}
						built++
						if len(general) != 1 || general[0] != string(got) {
							t.Fatalf("%s host %q values %q signed %q:\nordinary %q\ngeneral  %q", target, host, vals, names, got, general)
						}
					}
				}
			}
		}
	}
	if built == 0 || declined == 0 {
		t.Fatalf("built %d, declined %d: the cases do not cover both", built, declined)
	}
	t.Logf("built %d ordinary canonical requests, declined %d", built, declined)
}

func TestCanonicalHeaderName(t *testing.T) {
	for _, lower := range []string{"content-type", "content-length", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token",
		"x-amz-user-agent", "amz-sdk-invocation-id", "amz-sdk-request", "user-agent", "date", "accept", "content-encoding",
		"host", "x_custom", "x-other-header"} {
		if got, want := canonicalHeaderName(lower), textproto.CanonicalMIMEHeaderKey(lower); got != want {
			t.Errorf("%s: %q, want %q", lower, got, want)
		}
	}
}

func TestDecodeHexAndSameDay(t *testing.T) {
	for _, s := range []string{strings.Repeat("0", 64), strings.Repeat("aF", 32), strings.Repeat("g", 64), strings.Repeat("0", 63),
		strings.Repeat("0", 66), "", hashHex([]byte("x")), strings.ToUpper(hashHex([]byte("y"))), strings.Repeat("0", 62) + "0\x00"} {
		var got [32]byte
		ok := decodeHex(got[:], s)
		want, err := hex.DecodeString(s)
		if wantOK := err == nil && len(want) == 32; ok != wantOK || ok && string(got[:]) != string(want) {
			t.Errorf("%q: %x %v, want %x %v", s, got, ok, want, wantOK)
		}
	}
	for _, tm := range []time.Time{testNow, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 0, 0, 0, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)} {
		for _, d := range []string{tm.Format("20060102"), "20240101", "2024010", "00010101"} {
			if got, want := sameDay(d, tm), d == tm.Format("20060102"); got != want {
				t.Errorf("sameDay(%q, %v) = %v", d, tm, got)
			}
		}
	}
}

// TestParseAmzDate compares parseAmzDate with time.Parse over every day number of every month of a
// common and a leap year, and the edges of the time of day.
func TestParseAmzDate(t *testing.T) {
	check := func(d string) {
		pt, perr := time.Parse(amzDateLayout, d)
		ft, ok := parseAmzDate(d)
		if ok != (perr == nil && len(d) == len(amzDateLayout)) || (ok && !ft.Equal(pt)) {
			t.Errorf("%q: parseAmzDate %v %v, time.Parse %v %v", d, ft, ok, pt, perr)
		}
	}
	for _, year := range []int{1900, 2000, 2023, 2024, 9999} {
		for month := 0; month <= 13; month++ {
			for day := 0; day <= 32; day++ {
				check(fmt.Sprintf("%04d%02d%02dT120000Z", year, month, day))
			}
		}
	}
	for _, tod := range []string{"000000", "235959", "240000", "006000", "000060", "0a0000", "-10000", "+10000", " 10000"} {
		check("20240101T" + tod + "Z")
	}
	for _, d := range []string{"20240101t000000Z", "20240101T000000z", "20240101T000000", "20240101T0000000Z", "2024-01-01T00:00:00Z", ""} {
		check(d)
	}
}
