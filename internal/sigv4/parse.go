package sigv4

import (
	"strings"
)

// algorithm is the only signing algorithm accepted (SigV4 with HMAC-SHA256; SigV4a is not supported).
const algorithm = "AWS4-HMAC-SHA256"

// scopeTerminator ends every SigV4 credential scope.
const scopeTerminator = "aws4_request"

// authorization is a parsed SigV4 Authorization header (or the equivalent presigned query parameters).
type authorization struct {
	Algorithm     string
	Credential    string   // AKID/date/region/service/aws4_request, as sent
	SignedHeaders []string // as sent, in order
	Signature     string   // hex, as sent
}

// parseAuthorization parses
//
//	AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ivs/aws4_request, SignedHeaders=a;b;c, Signature=hex
//
// The algorithm comes first, separated by whitespace; the three parameters follow in any order,
// separated by commas and/or whitespace (clients send ", " but some send "," alone). Values contain
// neither commas nor whitespace. Errors are IncompleteSignature; the message never echoes the header.
func parseAuthorization(h string) (authorization, *Error) {
	var a authorization
	h = strings.TrimSpace(h)
	alg, rest, _ := strings.Cut(h, " ")
	if i := strings.IndexAny(alg, "\t,"); i >= 0 { // tolerate a tab or a comma right after the algorithm
		alg, rest = alg[:i], alg[i+1:]+" "+rest
	}
	a.Algorithm = alg
	if alg != algorithm {
		return a, incomplete("Unsupported AWS 'algorithm': only '" + algorithm + "' is supported.")
	}
	var seenCredential, seenSignedHeaders, seenSignature bool
	for field, rest := nextAuthField(rest); field != ""; field, rest = nextAuthField(rest) {
		key, value, ok := strings.Cut(field, "=")
		if !ok {
			return a, incomplete("Invalid key=value pair (missing equal-sign) in Authorization header.")
		}
		var seen *bool
		switch key {
		case "Credential":
			seen, a.Credential = &seenCredential, value
		case "SignedHeaders":
			seen, a.SignedHeaders = &seenSignedHeaders, splitSignedHeaders(value)
		case "Signature":
			seen, a.Signature = &seenSignature, value
		default:
			// AWS ignores nothing here either: an unknown parameter means a malformed header.
			return a, incomplete("Unknown parameter in Authorization header: only Credential, SignedHeaders and Signature are allowed.")
		}
		if *seen {
			return a, incomplete("Authorization header has more than one '" + key + "' parameter.")
		}
		*seen = true
	}
	var missing []string
	if a.Credential == "" {
		missing = append(missing, "Authorization header requires 'Credential' parameter.")
	}
	if len(a.SignedHeaders) == 0 {
		missing = append(missing, "Authorization header requires 'SignedHeaders' parameter.")
	}
	if a.Signature == "" {
		missing = append(missing, "Authorization header requires 'Signature' parameter.")
	}
	if len(missing) > 0 {
		return a, incomplete(strings.Join(missing, " "))
	}
	if err := checkSignedHeaders(a.SignedHeaders); err != nil {
		return a, err
	}
	return a, nil
}

// nextAuthField returns the first field of s and what follows it, as strings.FieldsFuncSeq would give them
// splitting at the same separators; "" when there is none. The separators are ASCII, so bytes do (UTF-8
// never has them inside a multi-byte character), without decoding every rune of the header (a tenth of a
// GetParticipant's handler time, profiled; FuzzParseAuthorization compares the two).
func nextAuthField(s string) (field, rest string) {
	start := 0
	for start < len(s) && isAuthSeparatorByte(s[start]) {
		start++
	}
	end := start
	for end < len(s) && !isAuthSeparatorByte(s[end]) {
		end++
	}
	return s[start:end], s[end:]
}

func isAuthSeparatorByte(c byte) bool { return c == ',' || c == ' ' || c == '\t' }

// splitSignedHeaders splits "a;b;c"; an empty string gives nil.
func splitSignedHeaders(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ";")
}

// checkSignedHeaders requires non-empty names and that host is among them (the SigV4 spec makes host
// mandatory: without it a signature could be replayed against another host).
func checkSignedHeaders(names []string) *Error {
	host := false
	for _, n := range names {
		if n == "" {
			return incomplete("'SignedHeaders' contains an empty header name.")
		}
		if strings.EqualFold(n, "host") {
			host = true
		}
	}
	if !host {
		return incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	return nil
}

const msgCredentialElements = "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term."

// credentialScope is the parsed Credential parameter.
type credentialScope struct {
	AccessKeyID string
	Date        string // YYYYMMDD
	Region      string
	Service     string
	Terminator  string
}

// scope is the part of the credential after the access key id, as used in the string to sign.
func (c credentialScope) scope() string {
	return c.Date + "/" + c.Region + "/" + c.Service + "/" + c.Terminator
}

// parseCredential splits AKID/date/region/service/aws4_request. Structural problems are
// IncompleteSignature; whether the values are acceptable is checked by the caller.
func parseCredential(s string) (credentialScope, *Error) {
	// strings.Split without its slice: exactly five elements, so four cuts and no slash in the last.
	var parts [5]string
	rest := s
	for i := range 4 {
		var ok bool
		if parts[i], rest, ok = strings.Cut(rest, "/"); !ok {
			return credentialScope{}, incomplete(msgCredentialElements)
		}
	}
	if strings.Contains(rest, "/") {
		return credentialScope{}, incomplete(msgCredentialElements)
	}
	parts[4] = rest
	c := credentialScope{AccessKeyID: parts[0], Date: parts[1], Region: parts[2], Service: parts[3], Terminator: parts[4]}
	if c.AccessKeyID == "" {
		return c, incomplete("Credential has an empty access key id.")
	}
	if !isDate8(c.Date) {
		return c, incomplete("Credential scope date must be in the form yyyyMMdd.")
	}
	return c, nil
}

func isDate8(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
