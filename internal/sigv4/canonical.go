package sigv4

// Canonical request construction, per the AWS SigV4 specification
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html, "Create a canonical request").
//
// The specification leaves room for interpretation in a few corners and the AWS clients differ there.
// Rather than pick one client, each part of the canonical request is computed in every form some AWS
// client produces; Verify accepts the request if the signature matches any combination. For ordinary
// requests all forms coincide and exactly one canonical request is built. The forms:
//
//   - URI. Every non-S3 client URI-encodes the path *as sent* (already percent-encoded) once more, so
//     %3A becomes %253A. aws-sdk-go-v2 uses the path verbatim; botocore and the JS v3 SDK first remove
//     "." and ".." segments and empty segments ("//").
//   - Query. aws-sdk-go-v2 decodes the query ('+' meaning space), sorts by decoded name and value and
//     re-encodes; JS v3 sorts by encoded name and value; botocore sorts the raw pairs as sent without
//     re-encoding. They differ only for unusual characters.
//   - Header values. aws-sdk-go-v2 collapses runs of spaces only; botocore and JS v3 collapse any
//     whitespace. The Go client signs host without a default port (:80/:443) but may send it with one.

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// maxVariants bounds the number of canonical requests tried for one request.
const maxVariants = 64

// requestPath returns the request's path exactly as the client sent it (still percent-encoded).
func requestPath(rawRequestURI string, u *url.URL) string {
	p := ""
	switch {
	case strings.HasPrefix(rawRequestURI, "/"):
		p = rawRequestURI
		if i := strings.IndexByte(p, '?'); i >= 0 {
			p = p[:i]
		}
	case strings.Contains(rawRequestURI, "://"): // absolute-form request target
		rest := rawRequestURI[strings.Index(rawRequestURI, "://")+3:]
		if i := strings.IndexAny(rest, "/?"); i >= 0 && rest[i] == '/' {
			p = rest[i:]
			if j := strings.IndexByte(p, '?'); j >= 0 {
				p = p[:j]
			}
		}
	case u != nil:
		if u.Opaque != "" {
			// Opaque "//host/path": the path starts at the first slash after the host.
			o := strings.TrimPrefix(u.Opaque, "//")
			if i := strings.IndexByte(o, '/'); i >= 0 {
				p = o[i:]
			}
		} else {
			p = u.EscapedPath()
		}
	}
	if p == "" {
		p = "/"
	}
	return p
}

// canonicalURIs returns the canonical URI forms for a path as sent.
func canonicalURIs(path string) []string {
	return dedupe(uriEncode(path, false), uriEncode(removeDotSegments(path), false))
}

// removeDotSegments removes "." and ".." segments (RFC 3986 section 5.2.4) and empty segments, keeping
// a leading and a trailing slash, as botocore and the JS v3 signer do before encoding.
func removeDotSegments(p string) string {
	if p == "" {
		return "/"
	}
	var out []string
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	var b strings.Builder
	if p[0] == '/' {
		b.WriteByte('/')
	}
	b.WriteString(strings.Join(out, "/"))
	if len(out) > 0 && p[len(p)-1] == '/' {
		b.WriteByte('/')
	}
	return b.String()
}

// uriEncode percent-encodes every byte except the unreserved characters A-Z a-z 0-9 - . _ ~ (and '/'
// unless encodeSlash), with upper-case hex, as the SigV4 specification's UriEncode.
func uriEncode(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) && (encodeSlash || s[i] != '/') {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || (!encodeSlash && c == '/') {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
	}
	return string(b)
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// queryPair is one name=value of a raw query string.
type queryPair struct{ rawKey, rawValue string }

// splitQuery splits a raw query string into pairs, dropping empty pairs and any pair whose decoded
// name is in exclude (X-Amz-Signature for presigned requests).
func splitQuery(rawQuery string, exclude string) []queryPair {
	var pairs []queryPair
	for _, s := range strings.Split(rawQuery, "&") {
		if s == "" {
			continue
		}
		k, v, _ := strings.Cut(s, "=")
		if exclude != "" {
			if dk, err := url.QueryUnescape(k); err == nil && dk == exclude {
				continue
			}
		}
		pairs = append(pairs, queryPair{k, v})
	}
	return pairs
}

// canonicalQueries returns the canonical query string forms (see the comment at the top of the file).
func canonicalQueries(pairs []queryPair) []string {
	if len(pairs) == 0 {
		return []string{""}
	}
	type kv struct{ k, v string }
	// encodePairs decodes each pair and re-encodes it. goStyle mimics url.URL.Query, which aws-sdk-go-v2
	// signs: '+' is a space, pairs containing ';' or a bad escape are silently dropped, and the sort is
	// on decoded names and values. Otherwise '+' is literal, a bad escape rules the form out, and the
	// sort is on the encoded forms.
	encodePairs := func(goStyle bool) (string, bool) {
		decode, sortDecoded := url.PathUnescape, false
		if goStyle {
			decode, sortDecoded = url.QueryUnescape, true
		}
		list := make([]kv, 0, len(pairs))
		for _, p := range pairs {
			if goStyle && (strings.Contains(p.rawKey, ";") || strings.Contains(p.rawValue, ";")) {
				continue
			}
			k, err1 := decode(p.rawKey)
			v, err2 := decode(p.rawValue)
			if err1 != nil || err2 != nil {
				if goStyle {
					continue
				}
				return "", false
			}
			if sortDecoded {
				list = append(list, kv{k, v})
			} else {
				list = append(list, kv{uriEncode(k, true), uriEncode(v, true)})
			}
		}
		sort.SliceStable(list, func(i, j int) bool {
			if list[i].k != list[j].k {
				return list[i].k < list[j].k
			}
			return list[i].v < list[j].v
		})
		parts := make([]string, len(list))
		for i, p := range list {
			if sortDecoded {
				parts[i] = uriEncode(p.k, true) + "=" + uriEncode(p.v, true)
			} else {
				parts[i] = p.k + "=" + p.v
			}
		}
		return strings.Join(parts, "&"), true
	}
	var forms []string
	// aws-sdk-go-v2.
	if s, ok := encodePairs(true); ok {
		forms = append(forms, s)
	}
	// JS v3 and the specification: sorted by encoded name, then encoded value.
	if s, ok := encodePairs(false); ok {
		forms = append(forms, s)
	}
	// botocore: the raw pairs as sent, sorted, not re-encoded.
	raw := make([]string, len(pairs))
	sorted := append([]queryPair(nil), pairs...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].rawKey != sorted[j].rawKey {
			return sorted[i].rawKey < sorted[j].rawKey
		}
		return sorted[i].rawValue < sorted[j].rawValue
	})
	for i, p := range sorted {
		raw[i] = p.rawKey + "=" + p.rawValue
	}
	forms = append(forms, strings.Join(raw, "&"))
	return dedupe(forms...)
}

// headerSource gives the values of one signed header, in the order received.
type headerSource func(name string) []string

// canonicalHeaderBlocks returns the canonical headers block ("name:value\n" for each signed header, in
// the order of SignedHeaders) in each whitespace form, for each candidate host. The values are read once,
// and the second whitespace form is only built when some value could differ under it: for ordinary
// headers both forms are the same block, and building it twice was a tenth of a verification (profiled).
func canonicalHeaderBlocks(signed []string, values headerSource, hosts []string) []string {
	lower := make([]string, len(signed))
	vals := make([][]string, len(signed))
	plainValues := true
	for i, name := range signed {
		lower[i] = strings.ToLower(name)
		if lower[i] == "host" {
			continue
		}
		vals[i] = values(lower[i])
		for _, v := range vals[i] {
			plainValues = plainValues && plain(v)
		}
	}
	var blocks []string
	for _, host := range hosts {
		trims := []func(string) string{trimSpacesGo, trimWhitespace}
		if plainValues && plain(host) {
			trims = trims[:1]
		}
		for _, trim := range trims {
			var b strings.Builder
			for i := range signed {
				b.WriteString(lower[i])
				b.WriteByte(':')
				if lower[i] == "host" {
					b.WriteString(trim(host))
				} else {
					for j, v := range vals[i] {
						if j > 0 {
							b.WriteByte(',')
						}
						b.WriteString(trim(v))
					}
				}
				b.WriteByte('\n')
			}
			blocks = append(blocks, b.String())
		}
	}
	return dedupe(blocks...)
}

// plain reports whether both whitespace forms leave v as it is: printable ASCII, no space at either end,
// no two spaces in a row.
func plain(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 || c > 0x7e || c == ' ' && (i == 0 || i == len(v)-1 || v[i-1] == ' ') {
			return false
		}
	}
	return true
}

// trimSpacesGo trims leading and trailing whitespace and collapses runs of ' ' (only) into one, as
// aws-sdk-go-v2 does.
func trimSpacesGo(v string) string {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "  ") {
		return v
	}
	var b strings.Builder
	prevSpace := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' {
			if prevSpace {
				continue
			}
			prevSpace = true
		} else {
			prevSpace = false
		}
		b.WriteByte(c)
	}
	return b.String()
}

// trimWhitespace trims and collapses every run of whitespace into one space, as botocore and JS v3 do.
func trimWhitespace(v string) string { return strings.Join(strings.Fields(v), " ") }

// hostCandidates: the Host as received, and without a default port (:80 or :443), which the AWS
// clients drop when signing but which may still be sent.
func hostCandidates(host string) []string {
	forms := []string{host}
	for _, port := range []string{":80", ":443"} {
		if h, ok := strings.CutSuffix(host, port); ok && h != "" {
			forms = append(forms, h)
		}
	}
	return dedupe(forms...)
}

func contentLengthValue(header []string, contentLength int64, bodyLen int) []string {
	if len(header) > 0 {
		return header
	}
	if contentLength >= 0 {
		return []string{strconv.FormatInt(contentLength, 10)}
	}
	return []string{strconv.Itoa(bodyLen)}
}

// dedupe returns the distinct strings, first occurrence first.
func dedupe(in ...string) []string {
	out := in[:0:0]
	for _, s := range in {
		dup := false
		for _, o := range out {
			if o == s {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, s)
		}
	}
	return out
}
