package clientinfo

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/openstage/openstage/internal/ivs"
)

// modelPattern is the API model's ParticipantClientAttribute pattern, anchored, with its length limit.
var modelPattern = regexp.MustCompile(`^[a-zA-Z0-9\-_.,:;\s]*$`)

func checkAttr(t *testing.T, field, v string) {
	t.Helper()
	if len(v) > MaxAttributeLen || !modelPattern.MatchString(v) {
		t.Errorf("%s = %q breaks ParticipantClientAttribute", field, v)
	}
}

func checkInfo(t *testing.T, ci ivs.ClientInfo) {
	t.Helper()
	checkAttr(t, "ISPName", ci.ISPName)
	checkAttr(t, "OSName", ci.OSName)
	checkAttr(t, "OSVersion", ci.OSVersion)
	checkAttr(t, "BrowserName", ci.BrowserName)
	checkAttr(t, "BrowserVersion", ci.BrowserVersion)
	checkAttr(t, "SDKVersion", ci.SDKVersion)
}

func TestUserAgents(t *testing.T) {
	r, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tests := []struct {
		name, ua                       string
		browser, browserVer, os, osVer string
	}{
		{
			name:    "headless Chromium 156 on Linux (the IVS web SDK test rig)",
			ua:      "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36",
			browser: "HeadlessChrome", browserVer: "156.0.0", os: "Linux",
		},
		{
			name:    "Chrome on Windows 10",
			ua:      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.207 Safari/537.36",
			browser: "Chrome", browserVer: "124.0.6367", os: "Windows", osVer: "10",
		},
		{
			name:    "Chrome on macOS (frozen OS version of UA reduction)",
			ua:      "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
			browser: "Chrome", browserVer: "131.0.0", os: "Mac OS X", osVer: "10.15.7",
		},
		{
			name:    "Chrome on Android",
			ua:      "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.6422.113 Mobile Safari/537.36",
			browser: "Chrome Mobile", browserVer: "125.0.6422", os: "Android", osVer: "14",
		},
		{
			name:    "Firefox on Windows",
			ua:      "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
			browser: "Firefox", browserVer: "128.0", os: "Windows", osVer: "10",
		},
		{
			name:    "Firefox on Ubuntu",
			ua:      "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0",
			browser: "Firefox", browserVer: "126.0", os: "Ubuntu",
		},
		{
			name:    "Safari on iOS",
			ua:      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
			browser: "Mobile Safari", browserVer: "17.5", os: "iOS", osVer: "17.5",
		},
		{
			name:    "Safari on macOS",
			ua:      "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
			browser: "Safari", browserVer: "17.4.1", os: "Mac OS X", osVer: "10.15.7",
		},
		{
			name:    "Edge on Windows",
			ua:      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36 Edg/125.0.2535.51",
			browser: "Edge", browserVer: "125.0.2535", os: "Windows", osVer: "10",
		},
		{
			name:    "Go WHIP client (pion samples, whip-broadcast-go)",
			ua:      "Go-http-client/1.1",
			browser: "Go-http-client", browserVer: "1.1",
		},
		{
			name:    "python aiohttp (AWS aiortc samples)",
			ua:      "Python/3.11 aiohttp/3.9.5",
			browser: "Python aiohttp", browserVer: "3.9.5",
		},
		{
			name: "GStreamer souphttpsrc",
			ua:   "GStreamer souphttpsrc 1.22.0 libsoup/3.2.2",
			// ua-parser knows libsoup only as part of browsers' UAs; it reports nothing, and neither do we.
		},
		{
			name: "OBS Studio WHIP output",
			ua:   "Mozilla/5.0 (OBS-Studio/30.1.2; Windows x86_64; en-US)",
			os:   "Windows",
		},
		{
			name: "FFmpeg WHIP muxer",
			ua:   "Lavf/61.7.100",
			// uap-core files libavformat's UA under Windows Media Player, which streams through it. We
			// report what the maintained parser says rather than keep our own exceptions.
			browser: "WMPlayer",
		},
		{
			name: "no User-Agent",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/whip/publish/abc", nil)
			if tc.ua != "" {
				req.Header.Set("User-Agent", tc.ua)
			} else {
				req.Header["User-Agent"] = nil
			}
			got := r.FromRequest(req, ivs.ProtocolWHIP)
			checkInfo(t, got)
			want := ivs.ClientInfo{
				BrowserName: tc.browser, BrowserVersion: tc.browserVer,
				OSName: tc.os, OSVersion: tc.osVer, Protocol: ivs.ProtocolWHIP,
			}
			if got != want {
				t.Errorf("UA %q\n got %+v\nwant %+v", tc.ua, got, want)
			}
		})
	}
}

func TestSDKHeaders(t *testing.T) {
	r, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/whip/publish/abc", nil)
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36")
	req.Header.Set("X-Stages-SDK", "1.41.0")
	req.Header.Set("X-Stages-Platform", "web")
	got := r.FromRequest(req, ivs.ProtocolUnknown)
	if got.SDKVersion != "1.41.0" || got.OSName != "Linux" || got.Protocol != ivs.ProtocolUnknown {
		t.Errorf("got %+v", got)
	}

	// A native SDK whose HTTP library says nothing of the OS: the platform header fills osName.
	req = httptest.NewRequest(http.MethodPost, "/whip/publish/abc", nil)
	req.Header.Set("User-Agent", "okhttp/4.12.0")
	req.Header.Set("X-Stages-SDK", "1.24.0")
	req.Header.Set("X-Stages-Platform", "Android")
	got = r.FromRequest(req, ivs.ProtocolWHIP)
	if got.OSName != "Android" || got.SDKVersion != "1.24.0" {
		t.Errorf("got %+v", got)
	}

	// A hostile SDK header is cut down to what the model allows.
	req = httptest.NewRequest(http.MethodPost, "/", nil)
	req.Header.Set("X-Stages-SDK", "1.0<script>alert(1)</script>"+strings.Repeat("9", 300))
	got = r.FromRequest(req, ivs.ProtocolWHIP)
	checkInfo(t, got)
	if !strings.HasPrefix(got.SDKVersion, "1.0scriptalert1script999") || len(got.SDKVersion) != MaxAttributeLen {
		t.Errorf("SDKVersion = %q (%d)", got.SDKVersion, len(got.SDKVersion))
	}
}

func TestSanitize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"1.41.0", "1.41.0"},
		{"Comcast Cable Communications, LLC", "Comcast Cable Communications, LLC"},
		{"AT&T Services, Inc.", "ATT Services, Inc."},
		{"Telefónica de España", "Telefonica de Espana"},
		{"Deutsche Telekom AG (DTAG)", "Deutsche Telekom AG DTAG"},
		{"Mobile Safari UI/WKWebView", "Mobile Safari UIWKWebView"},
		{"  tabs\tand\r\nnewlines  ", "tabs and newlines"},
		{"Łódź Świętokrzyska Straße Œuvre", "Lodz Swietokrzyska Strasse OEuvre"},
		{"日本電信電話", ""},
		{"a\x00b\xffc", "abc"},
		{strings.Repeat("x", 200), strings.Repeat("x", 128)},
		{strings.Repeat("x", 127) + "ß", strings.Repeat("x", 127) + "s"},
		{strings.Repeat("x", 127) + " y", strings.Repeat("x", 127)},
	}
	for _, tc := range tests {
		got := Sanitize(tc.in)
		if got != tc.want {
			t.Errorf("Sanitize(%q) = %q, want %q", tc.in, got, tc.want)
		}
		checkAttr(t, "Sanitize", got)
	}
}

func FuzzSanitize(f *testing.F) {
	f.Add("Telefónica, S.A. & co")
	f.Add(strings.Repeat("ß", 100))
	f.Fuzz(func(t *testing.T, s string) {
		checkAttr(t, "Sanitize", Sanitize(s))
	})
}

// writeDB writes a small MaxMind database of the given type, one record per network, to a temporary file.
func writeDB(t *testing.T, typ string, records map[string]mmdbtype.Map) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: typ, RecordSize: 24})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range records {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(n, rec); err != nil {
			t.Fatalf("insert %s: %v", cidr, err)
		}
	}
	path := filepath.Join(t.TempDir(), typ+".mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestISPDatabases(t *testing.T) {
	ispDB := writeDB(t, "GeoIP2-ISP", map[string]mmdbtype.Map{
		"81.2.69.0/24": {
			"isp":                            mmdbtype.String("Telefónica de España"),
			"organization":                   mmdbtype.String("Movistar"),
			"autonomous_system_number":       mmdbtype.Uint32(3352),
			"autonomous_system_organization": mmdbtype.String("TELEFONICA_DE_ESPANA"),
		},
		"89.160.20.0/24": { // no isp: organization is next
			"organization":                   mmdbtype.String("Bredband2 AB"),
			"autonomous_system_organization": mmdbtype.String("Bredband2 AB AS"),
		},
		"2a02:ec80::/32": {
			"isp": mmdbtype.String("AT&T Services, Inc."),
		},
	})
	asnDB := writeDB(t, "GeoLite2-ASN", map[string]mmdbtype.Map{
		"1.128.0.0/11": {
			"autonomous_system_number":       mmdbtype.Uint32(1221),
			"autonomous_system_organization": mmdbtype.String("Telstra Pty Ltd"),
		},
	})
	entDB := writeDB(t, "GeoIP2-Enterprise", map[string]mmdbtype.Map{
		"216.160.83.0/24": {
			"traits": mmdbtype.Map{"isp": mmdbtype.String("Century Link"), "organization": mmdbtype.String("Lariat Software")},
		},
	})

	tests := []struct {
		db, remote, want string
	}{
		{ispDB, "81.2.69.160:51000", "Telefonica de Espana"},
		{ispDB, "[::ffff:81.2.69.160]:51000", "Telefonica de Espana"}, // v4-mapped, as a dual-stack listener reports it
		{ispDB, "89.160.20.112:443", "Bredband2 AB"},
		{ispDB, "[2a02:ec80:600::1]:9000", "ATT Services, Inc."},
		{ispDB, "8.8.8.8:1234", ""}, // outside every network
		{ispDB, "[2001:db8::1]:1234", ""},
		{ispDB, "not an address", ""},
		{asnDB, "1.128.0.1:5000", "Telstra Pty Ltd"},
		{asnDB, "81.2.69.160:51000", ""},
		{entDB, "216.160.83.56:5000", "Century Link"},
	}
	for _, tc := range tests {
		r, err := New(tc.db)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/whip", nil)
		req.RemoteAddr = tc.remote
		got := r.FromRequest(req, ivs.ProtocolWHIP)
		if got.ISPName != tc.want {
			t.Errorf("%s %s: ISPName = %q, want %q", filepath.Base(tc.db), tc.remote, got.ISPName, tc.want)
		}
		checkInfo(t, got)
		if err := r.Close(); err != nil {
			t.Error(err)
		}
		if got := r.ISP(netip.MustParseAddr("81.2.69.160")); got != "" {
			t.Errorf("after Close: ISP = %q", got)
		}
	}
}

func TestTrustProxy(t *testing.T) {
	db := writeDB(t, "GeoLite2-ASN", map[string]mmdbtype.Map{
		"1.128.0.0/11":   {"autonomous_system_organization": mmdbtype.String("Telstra Pty Ltd")},
		"81.2.69.0/24":   {"autonomous_system_organization": mmdbtype.String("Spoofed")},
		"89.160.20.0/24": {"autonomous_system_organization": mmdbtype.String("Bredband2 AB")},
	})
	r, err := New(db)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	mk := func(xff []string, realIP string) *http.Request {
		req := httptest.NewRequest(http.MethodPost, "/whip", nil)
		req.RemoteAddr = "127.0.0.1:40000" // the reverse proxy
		for _, v := range xff {
			req.Header.Add("X-Forwarded-For", v)
		}
		if realIP != "" {
			req.Header.Set("X-Real-IP", realIP)
		}
		return req
	}
	// Not trusted: the headers are ignored, and loopback has no ISP.
	if got := r.FromRequest(mk([]string{"1.128.0.1"}, ""), ivs.ProtocolWHIP).ISPName; got != "" {
		t.Errorf("untrusted X-Forwarded-For used: %q", got)
	}
	r.TrustProxy = true
	tests := []struct {
		xff    []string
		realIP string
		want   string
	}{
		{[]string{"1.128.0.1"}, "", "Telstra Pty Ltd"},
		// The client wrote the first entry; the proxy appended the last.
		{[]string{"81.2.69.1, 1.128.0.1"}, "", "Telstra Pty Ltd"},
		{[]string{"81.2.69.1", "89.160.20.5"}, "", "Bredband2 AB"},
		{[]string{"[2001:db8::1]:443"}, "", ""},
		{nil, "1.128.0.9", "Telstra Pty Ltd"},
		{[]string{"garbage"}, "89.160.20.5", "Bredband2 AB"},
		{[]string{"garbage"}, "", ""}, // falls back to the connection: loopback
	}
	for _, tc := range tests {
		if got := r.FromRequest(mk(tc.xff, tc.realIP), ivs.ProtocolWHIP).ISPName; got != tc.want {
			t.Errorf("X-Forwarded-For %q X-Real-IP %q: ISPName = %q, want %q", tc.xff, tc.realIP, got, tc.want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(filepath.Join(t.TempDir(), "missing.mmdb")); err == nil || !strings.Contains(err.Error(), "missing.mmdb") {
		t.Errorf("missing file: err = %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty.mmdb")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(empty); err == nil {
		t.Error("empty file accepted")
	}
	junk := filepath.Join(t.TempDir(), "junk.mmdb")
	if err := os.WriteFile(junk, []byte(strings.Repeat("not a maxmind database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(junk); err == nil {
		t.Error("junk file accepted")
	}
	city := writeDB(t, "GeoLite2-City", map[string]mmdbtype.Map{
		"81.2.69.0/24": {"city": mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String("London")}}},
	})
	if _, err := New(city); err == nil || !strings.Contains(err.Error(), "GeoLite2-City") {
		t.Errorf("City database: err = %v", err)
	}
}

func TestConcurrent(t *testing.T) {
	db := writeDB(t, "GeoLite2-ASN", map[string]mmdbtype.Map{
		"1.128.0.0/11": {"autonomous_system_organization": mmdbtype.String("Telstra Pty Ltd")},
	})
	r, err := New(db)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	uas := []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
		"Go-http-client/1.1",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36",
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				req := httptest.NewRequest(http.MethodPost, "/whip", nil)
				req.Header.Set("User-Agent", uas[(i+j)%len(uas)])
				req.RemoteAddr = "1.128.0.1:1"
				if got := r.FromRequest(req, ivs.ProtocolWHIP); got.ISPName != "Telstra Pty Ltd" || got.BrowserName == "" {
					t.Errorf("got %+v", got)
					return
				}
			}
		})
	}
	wg.Wait()
}
