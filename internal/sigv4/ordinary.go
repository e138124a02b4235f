package sigv4

import (
	"net/http"
	"net/textproto"
	"strings"
	"sync"
)

// The canonical request of an ordinary request, built without the variants.
//
// canonical.go computes each part of the canonical request in every form some AWS client produces and
// verify tries every combination. For an ordinary API call (a path of unreserved characters without dot
// or empty segments, no query, a Host without a default port, header values of printable ASCII without
// runs of spaces, one payload hash) every part has exactly one form, and the general path's many small
// strings and slices were most of a verification's allocations (profiled; docs/BENCHMARKS.md, issue 16).
// ordinaryCanonical appends that one canonical request to a reused buffer, or declines, and the general
// path runs. TestOrdinaryCanonicalIsTheGeneralOne checks that whenever it does not decline it builds
// exactly the one canonical request the general path builds.

// scratch is the reused memory of one verification.
type scratch struct{ canonical, toSign []byte }

var scratches = sync.Pool{New: func() any {
	return &scratch{canonical: make([]byte, 0, 512), toSign: make([]byte, 0, 256)}
}}

// ordinaryCanonical appends the canonical request of r to b when each of its parts has only one form,
// and reports whether it did.
func ordinaryCanonical(b []byte, r *http.Request, bodyLen int, sr *signedRequest, method string) ([]byte, bool) {
	if sr.presigned || r.URL.RawQuery != "" || len(sr.payloadHashes) != 1 {
		return b, false
	}
	path := requestPath(r.RequestURI, r.URL)
	if !plainPath(path) {
		return b, false
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	if !plain(host) || strings.HasSuffix(host, ":80") || strings.HasSuffix(host, ":443") {
		return b, false
	}
	b = append(b, method...)
	b = append(b, '\n')
	b = append(b, path...)
	b = append(b, '\n', '\n') // the empty canonical query
	for _, name := range sr.auth.SignedHeaders {
		lower := strings.ToLower(name)
		b = append(b, lower...)
		b = append(b, ':')
		if lower == "host" {
			b = append(b, host...)
		} else {
			for j, v := range headerValue(r, lower, bodyLen) {
				if !plain(v) {
					return b, false
				}
				if j > 0 {
					b = append(b, ',')
				}
				b = append(b, v...)
			}
		}
		b = append(b, '\n')
	}
	b = append(b, '\n')
	for i, name := range sr.auth.SignedHeaders {
		if i > 0 {
			b = append(b, ';')
		}
		b = append(b, name...)
	}
	b = append(b, '\n')
	return append(b, sr.payloadHashes[0]...), true
}

// plainPath reports whether both canonical URI forms of p are p itself: an absolute path of unreserved
// characters with no empty segment and no segment starting with a dot (so no "." or ".." segment).
func plainPath(p string) bool {
	if p == "" || p[0] != '/' || strings.Contains(p, "//") || strings.Contains(p, "/.") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c != '/' && !unreserved(c) {
			return false
		}
	}
	return true
}

// headerValue returns the received values of a signed header (lower-case name). Go's server moves some
// headers out of r.Header; they are put back from the request fields.
func headerValue(r *http.Request, lower string, bodyLen int) []string {
	vals := r.Header[canonicalHeaderName(lower)]
	switch lower {
	case contentLengthHeader:
		return contentLengthValue(vals, r.ContentLength, bodyLen)
	case transferEncodingName:
		if len(vals) == 0 && len(r.TransferEncoding) > 0 {
			return []string{strings.Join(r.TransferEncoding, ",")}
		}
	}
	if len(vals) == 0 {
		// Not canonicalisable names (e.g. with '_') are stored as received.
		for k, vs := range r.Header {
			if strings.EqualFold(k, lower) {
				return vs
			}
		}
	}
	return vals
}

// canonicalHeaderName is textproto.CanonicalMIMEHeaderKey(lower), the key of r.Header that Header.Values
// reads, without an allocation for the headers the SDKs sign.
func canonicalHeaderName(lower string) string {
	switch lower {
	case "content-type":
		return "Content-Type"
	case "content-length":
		return "Content-Length"
	case "x-amz-date":
		return "X-Amz-Date"
	case "x-amz-content-sha256":
		return "X-Amz-Content-Sha256"
	case "x-amz-security-token":
		return "X-Amz-Security-Token"
	case "x-amz-user-agent":
		return "X-Amz-User-Agent"
	case "amz-sdk-invocation-id":
		return "Amz-Sdk-Invocation-Id"
	case "amz-sdk-request":
		return "Amz-Sdk-Request"
	case "user-agent":
		return "User-Agent"
	case "date":
		return "Date"
	case "accept":
		return "Accept"
	case "content-encoding":
		return "Content-Encoding"
	}
	return textproto.CanonicalMIMEHeaderKey(lower)
}
