// Package clientinfo tells what a join request says about the participant's client: the fields GetParticipant
// returns as osName, osVersion, browserName, browserVersion, sdkVersion and ispName (docs/DESIGN.md §5.4).
//
// Browser and OS come from the User-Agent, parsed by ua-parser (uap-go and its built-in regexes). The SDK
// version comes from X-Stages-SDK, which the IVS client SDKs send on every WHIP request
// (docs/DESIGN.md §4.6). The ISP comes from a MaxMind-format ISP or ASN database, looked up
// by the connection's address. Every value is cut down to the model's ParticipantClientAttribute
// (at most 128 characters of [a-zA-Z0-9-_.,:;\s]) because GetParticipant must never return a value the API
// model forbids.
package clientinfo

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/ua-parser/uap-go/uaparser"

	"github.com/openstage/openstage/internal/ivs"
)

// Headers the IVS client SDKs send on WHIP requests (docs/DESIGN.md §4.6).
const (
	HeaderSDK      = "X-Stages-SDK"
	HeaderPlatform = "X-Stages-Platform"
)

// MaxAttributeLen is the model's maximum length of a ParticipantClientAttribute.
const MaxAttributeLen = 128

// parser is built once per process: compiling uap-go's few hundred regexes takes a noticeable fraction of a
// second, and the parser is safe for concurrent use (its caches are locked, its counters atomic).
var parser = sync.OnceValue(func() *uaparser.Parser {
	p, err := uaparser.New()
	if err != nil {
		// The definitions are compiled into the binary; failing to load them is a build defect.
		panic(fmt.Sprintf("clientinfo: ua-parser definitions: %v", err))
	}
	return p
})

// Resolver turns requests into ivs.ClientInfo. It is safe for concurrent use once configured.
type Resolver struct {
	// TrustProxy takes the client address from X-Forwarded-For (its last entry, the one the proxy in front
	// of openstage appended) or X-Real-IP instead of the connection's address. Set it only behind a reverse
	// proxy that sets these headers: otherwise any client can choose the ISP it is reported with. Set it
	// before the Resolver is used.
	TrustProxy bool

	db *maxminddb.Reader // nil: no ISP lookups
}

// New makes a Resolver. geoipPath names a MaxMind-format database with ISP or ASN records (GeoIP2-ISP,
// GeoLite2-ASN, GeoIP2-Enterprise, or a compatible one such as DB-IP's ASN database); empty means no ISP
// lookups, and ispName stays empty.
func New(geoipPath string) (*Resolver, error) {
	r := &Resolver{}
	_ = parser() // build it now rather than on the first join
	if geoipPath == "" {
		return r, nil
	}
	db, err := maxminddb.Open(geoipPath)
	if err != nil {
		return nil, fmt.Errorf("clientinfo: opening GeoIP database %q: %w", geoipPath, err)
	}
	typ := db.Metadata.DatabaseType
	if !hasISPData(typ) {
		_ = db.Close()
		return nil, fmt.Errorf("clientinfo: GeoIP database %q is of type %q, which has no ISP data; "+
			"use a GeoIP2-ISP, GeoLite2-ASN or GeoIP2-Enterprise database", geoipPath, typ)
	}
	r.db = db
	return r, nil
}

// hasISPData tells whether a database type is one whose records carry isp, organization or
// autonomous_system_organization. City and Country databases have none, and would silently yield "".
func hasISPData(typ string) bool {
	t := strings.ToUpper(typ)
	return strings.Contains(t, "ISP") || strings.Contains(t, "ASN") || strings.Contains(t, "ENTERPRISE")
}

// Close releases the database. The Resolver still parses User-Agents afterwards but finds no ISP.
func (r *Resolver) Close() error {
	if r == nil || r.db == nil {
		return nil
	}
	db := r.db
	r.db = nil
	return db.Close()
}

// FromRequest tells what req says of the client. protocol is recorded as given (WHIP for WHIP joins,
// UNKNOWN for the events socket).
func (r *Resolver) FromRequest(req *http.Request, protocol ivs.Protocol) ivs.ClientInfo {
	info := ivs.ClientInfo{Protocol: protocol}
	if ua := req.UserAgent(); ua != "" {
		p := parser()
		// ParseUserAgent and ParseOs rather than Parse: Parse also runs the device regexes, which
		// ClientInfo has no field for, and starts three goroutines per call to do so.
		b := p.ParseUserAgent(ua)
		if b.Family != "Other" {
			info.BrowserName = Sanitize(b.Family)
			info.BrowserVersion = Sanitize(joinVersion(b.Major, b.Minor, b.Patch))
		}
		o := p.ParseOs(ua)
		if o.Family != "Other" {
			info.OSName = Sanitize(o.Family)
			info.OSVersion = Sanitize(joinVersion(o.Major, o.Minor, o.Patch, o.PatchMinor))
		}
	}
	if info.OSName == "" {
		// The native IVS SDKs name their platform even when their User-Agent is a bare HTTP library's.
		info.OSName = platformOS[strings.ToLower(strings.TrimSpace(req.Header.Get(HeaderPlatform)))]
	}
	info.SDKVersion = Sanitize(req.Header.Get(HeaderSDK))
	if r != nil && r.db != nil {
		if addr, ok := r.clientAddr(req); ok {
			info.ISPName = r.ISP(addr)
		}
	}
	return info
}

// platformOS maps X-Stages-Platform values to the OS names ua-parser uses. "web" says nothing of the OS.
var platformOS = map[string]string{
	"ios":     "iOS",
	"android": "Android",
}

// joinVersion joins the version components ua-parser found, stopping at the first missing one so that
// "17", "" , "1" does not become "17..1".
func joinVersion(parts ...string) string {
	var b strings.Builder
	for i, p := range parts {
		if p == "" {
			break
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

// ISP returns the ISP name the database holds for addr: isp, else organization, else
// autonomous_system_organization (GeoIP2-ISP records have all three; GeoLite2-ASN only the last;
// GeoIP2-Enterprise nests them under traits). It returns "" without a database or a record.
func (r *Resolver) ISP(addr netip.Addr) string {
	if r == nil || r.db == nil || !addr.IsValid() {
		return ""
	}
	var rec ispRecord
	if err := r.db.Lookup(addr.Unmap().WithZone("")).Decode(&rec); err != nil {
		return "" // a damaged record is no reason to fail a join
	}
	for _, s := range []string{rec.ISP, rec.Organization, rec.ASOrganization,
		rec.Traits.ISP, rec.Traits.Organization, rec.Traits.ASOrganization} {
		if v := Sanitize(s); v != "" {
			return v
		}
	}
	return ""
}

type ispFields struct {
	ISP            string `maxminddb:"isp"`
	Organization   string `maxminddb:"organization"`
	ASOrganization string `maxminddb:"autonomous_system_organization"`
}

type ispRecord struct {
	ispFields
	Traits ispFields `maxminddb:"traits"`
}

// clientAddr is the address the ISP is looked up by: the connection's peer, or with TrustProxy what the
// proxy in front says.
func (r *Resolver) clientAddr(req *http.Request) (netip.Addr, bool) {
	if r.TrustProxy {
		if xff := req.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			// Proxies append; the last entry is the one the nearest (trusted) proxy added. Earlier entries
			// come from the client or from hops we know nothing about.
			last := xff[len(xff)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if a, err := parseHostAddr(strings.TrimSpace(last)); err == nil {
				return a, true
			}
		}
		if a, err := parseHostAddr(strings.TrimSpace(req.Header.Get("X-Real-IP"))); err == nil {
			return a, true
		}
	}
	a, err := parseHostAddr(req.RemoteAddr)
	return a, err == nil
}

// parseHostAddr accepts "ip", "ip:port" and "[ipv6]:port".
func parseHostAddr(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, errors.New("empty address")
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a, nil
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}, err
	}
	return netip.ParseAddr(host)
}

// Sanitize cuts s down to the model's ParticipantClientAttribute: at most 128 characters of
// [a-zA-Z0-9-_.,:;\s]. Latin letters with diacritics become their base letter (ISP names such as
// "Telefónica"), whitespace becomes a plain space, every other character is dropped, and the result is
// trimmed of spaces.
func Sanitize(s string) string {
	if s == "" {
		return ""
	}
	var b strings.Builder
	b.Grow(min(len(s), MaxAttributeLen))
	for _, c := range s {
		if b.Len() >= MaxAttributeLen {
			break
		}
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '_', c == '.', c == ',', c == ':', c == ';':
			b.WriteRune(c)
		case c == ' ', c == '\t', c == '\n', c == '\v', c == '\f', c == '\r':
			// \s allows all of these, but a newline or tab in a participant field only harms whoever
			// prints it. Collapse runs and leading spaces here; trailing ones are trimmed below.
			if b.Len() > 0 && !strings.HasSuffix(b.String(), " ") {
				b.WriteByte(' ')
			}
		default:
			if f, ok := foldLatin(c); ok {
				b.WriteString(f)
			}
		}
	}
	out := strings.TrimRight(b.String(), " ")
	if len(out) > MaxAttributeLen { // a two-letter fold ("ß" → "ss") may overshoot by one
		out = strings.TrimRight(out[:MaxAttributeLen], " ")
	}
	return out
}

// foldLatin maps the letters with diacritics of Latin-1 Supplement and Latin Extended-A (U+00C0-U+017F),
// which appear in European ISP and organisation names, to ASCII.
func foldLatin(c rune) (string, bool) {
	if s, ok := latinSpecial[c]; ok {
		return s, true
	}
	if c < 0xC0 || c > 0x17F {
		return "", false
	}
	if b := latinFold[c-0xC0]; b != '?' {
		return latinFold[c-0xC0 : c-0xC0+1], true
	}
	return "", false
}

// latinFold holds one base letter per code point from U+00C0 to U+017F; '?' marks characters that are not
// a letter with one base letter (×, ÷, and the ligatures in latinSpecial).
const latinFold = "" +
	"AAAAAA?CEEEEIIII" + "DNOOOOO?OUUUUY??" + // U+00C0-U+00DF
	"aaaaaa?ceeeeiiii" + "dnooooo?ouuuuy?y" + // U+00E0-U+00FF
	"AaAaAa" + "CcCcCcCc" + "DdDd" + "EeEeEeEeEe" + "GgGgGgGg" + "HhHh" + "IiIiIiIiIi" + // U+0100-U+0131
	"??" + "Jj" + "Kkk" + "LlLlLlLlLl" + "NnNnNnn" + "Nn" + "OoOoOo" + "??" + // U+0132-U+0153
	"RrRrRr" + "SsSsSsSs" + "TtTtTt" + "UuUuUuUuUuUu" + "Ww" + "YyY" + "ZzZzZz" + "s" // U+0154-U+017F

var latinSpecial = map[rune]string{
	'Æ': "AE", 'æ': "ae", 'Þ': "Th", 'ß': "ss", 'þ': "th", 'Ĳ': "IJ", 'ĳ': "ij", 'Œ': "OE", 'œ': "oe",
}
