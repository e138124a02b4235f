package console_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/chromedp/chromedp"

	"github.com/openstage/openstage/internal/console"
	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/peer"
)

// wireTime is how the API writes a timestamp, which the console keeps as it came (data-start, data-end).
const wireTime = "2006-01-02T15:04:05.000Z"

func stamp(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(wireTime)
}

// jsString quotes s for JavaScript.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// login opens the console and logs in with the test server's key.
func login(t *testing.T, b *browser, base string) *tab {
	t.Helper()
	tb := b.open("console", base+console.ConsolePath)
	tb.waitFor("the login form", `document.body.dataset.view === "login"`, 5*time.Second)
	tb.eval(`document.getElementById("akid").value = "AKOSTEST"; document.getElementById("secret").value = "secret"; true`)
	tb.click("login-button")
	tb.waitFor("the stages list", `document.body.dataset.loaded === "stages"`, 10*time.Second)
	return tb
}

// TestConsoleLiveSessionAndTimeline: an operator's console in Chromium watches a stage while pion peers
// join, publish, subscribe, fail and leave; the page follows from the event stream without reloading. Then
// it opens the ended session's timeline, which must draw exactly the participants and events the AWS SDK
// reads from the API.
func TestConsoleLiveSessionAndTimeline(t *testing.T) {
	logs := &ivstest.Buffer{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("DEBUGLOGS") != "" {
			t.Logf("server and page logs:\n%s", logs.String())
		}
	})
	base, c := startServer(t, logs, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	st, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("console")})
	if err != nil {
		t.Fatal(err)
	}
	arn := *st.Stage.Arn
	whip := base + "/whip"
	token := func(user string, caps ...types.ParticipantTokenCapability) (string, string) {
		out, err := c.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: &arn, UserId: aws.String(user), Capabilities: caps})
		if err != nil {
			t.Fatal(err)
		}
		return *out.ParticipantToken.ParticipantId, *out.ParticipantToken.Token
	}
	both := []types.ParticipantTokenCapability{types.ParticipantTokenCapabilityPublish, types.ParticipantTokenCapabilitySubscribe}
	alice, aliceTok := token("alice", both...)
	bob, bobTok := token("bob", both...)
	carol, carolTok := token("carol", types.ParticipantTokenCapabilitySubscribe)

	b := startBrowser(t, logs)
	tb := login(t, b, base)
	tb.waitFor("the stage in the list", fmt.Sprintf(`!!document.querySelector('tr[data-arn=%s]')`, jsString(arn)), 5*time.Second)
	// Open the stage as a person would, by its link; a mark on window tells later that the page never reloaded.
	tb.eval(fmt.Sprintf(`window.__sameDocument = true; document.querySelector('tr[data-arn=%s] a').click(); true`, jsString(arn)))
	tb.waitFor("the stage view with live updates", `document.body.dataset.loaded === "stage" && document.getElementById("live-state").classList.contains("connected")`, 10*time.Second)
	tb.waitFor("no live session yet", `!document.getElementById("no-live").hidden`, 2*time.Second)

	row := func(pid string) string {
		return fmt.Sprintf(`document.querySelector('#live-rows tr[data-participant-id=%s]')`, jsString(pid))
	}
	waitRow := func(what, pid, cond string) {
		t.Helper()
		tb.waitFor(what, fmt.Sprintf(`(r => r && (%s))(%s)`, cond, row(pid)), 15*time.Second)
	}
	opts := func(tok string) peer.Options { return peer.Options{WHIPURL: whip, Token: tok} }

	// alice publishes: she appears, publishing.
	pa, err := peer.Publish(ctx, opts(aliceTok))
	if err != nil {
		t.Fatal(err)
	}
	defer pa.Close()
	waitRow("alice joined and publishing", alice, `r.dataset.state === "CONNECTED" && r.dataset.publishing === "true"`)
	tb.waitFor("the live session", `document.getElementById("live").dataset.sessionId !== ""`, 5*time.Second)
	// bob publishes; carol (subscribe only) receives both and is refused a publish.
	pb, err := peer.Publish(ctx, opts(bobTok))
	if err != nil {
		t.Fatal(err)
	}
	defer pb.Close()
	waitRow("bob publishing", bob, `r.dataset.publishing === "true"`)
	var subs []*peer.Subscriber
	for _, pub := range []string{alice, bob} {
		s, err := peer.Subscribe(ctx, opts(carolTok), pub)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		subs = append(subs, s)
	}
	for _, s := range subs {
		select {
		case <-s.Media():
		case <-ctx.Done():
			t.Fatal("carol receives no media")
		}
	}
	wantSubs := []string{alice, bob}
	slices.Sort(wantSubs)
	waitRow("carol subscribed to alice and bob", carol, fmt.Sprintf(`r.dataset.subscribed === %s && r.dataset.publishing === "false"`, jsString(strings.Join(wantSubs, ","))))
	if _, err := peer.Publish(ctx, opts(carolTok)); err == nil {
		t.Fatal("carol published with a subscribe-only token")
	}
	tb.waitFor("carol's publish error on the live timeline", fmt.Sprintf(
		`!!document.querySelector('#live-timeline .lane[data-participant-id=%s] .marker[data-code="INSUFFICIENT_CAPABILITIES"]')`, jsString(carol)), 10*time.Second)

	writeArtifact(t, "console-live-session.png", screenshot(t, tb, "stage"))

	// A token made from the page, and its join link.
	tb.eval(`document.getElementById("token-user").value = "dave"; document.getElementById("cap-publish").checked = false; true`)
	tb.click("token-create")
	tb.waitFor("the token", `!document.getElementById("token-out").hidden`, 10*time.Second)
	var link, davePID string
	_ = json.Unmarshal(tb.eval(`document.getElementById("join-link").href`), &link)
	_ = json.Unmarshal(tb.eval(`document.getElementById("token-out").dataset.participantId`), &davePID)
	if !strings.HasPrefix(link, base+console.JoinPath+"?token=") || davePID == "" {
		t.Fatalf("join link %q, participant %q", link, davePID)
	}
	join := b.open("join", link)
	join.waitFor("the join page reading the token", `document.getElementById("c-user").textContent === "dave" && document.getElementById("c-caps").textContent.includes("subscribe") && !document.getElementById("c-caps").textContent.includes("publish")`, 5*time.Second)

	// alice leaves: her row says so, and carol's subscription to her ends.
	pa.Close()
	waitRow("alice left", alice, `r.dataset.state === "DISCONNECTED" && r.dataset.publishing === "false"`)
	waitRow("carol's subscription to alice ended", carol, fmt.Sprintf(`r.dataset.subscribed === %s`, jsString(bob)))
	for _, s := range subs {
		s.Close()
	}
	pb.Close()
	waitRow("bob left", bob, `r.dataset.state === "DISCONNECTED"`)
	waitRow("carol left", carol, `r.dataset.state === "DISCONNECTED"`)
	session := ivstest.WaitSessionEnded(ctx, t, c, &arn, 1)
	tb.waitFor("the session ended on the page", fmt.Sprintf(`document.getElementById("live").dataset.sessionId === "" && (r => r && !r.querySelector(".live-dot"))(document.querySelector('#session-rows tr[data-session-id=%s]'))`, jsString(session)), 10*time.Second)
	if string(tb.eval(`window.__sameDocument === true`)) != "true" {
		t.Fatal("the page reloaded")
	}

	// The past session's timeline.
	tb.eval(fmt.Sprintf(`document.querySelector('#session-rows tr[data-session-id=%s] a').click(); true`, jsString(session)))
	tb.waitFor("the timeline", `document.body.dataset.loaded === "session" && document.getElementById("timeline").dataset.ready === "true"`, 10*time.Second)
	writeArtifact(t, "console-session-timeline.png", screenshot(t, tb, "session"))

	// What the page drew, against what the API says.
	var drawn []struct {
		ID      string `json:"id"`
		Spans   []string
		Markers []string
	}
	raw := tb.eval(`[...document.querySelectorAll("#timeline .lane")].map(l => ({
		id: l.dataset.participantId,
		spans: [...l.querySelectorAll(".span")].map(s => [s.dataset.kind, s.dataset.remote || "", s.dataset.start, s.dataset.end].join(" ")),
		markers: [...l.querySelectorAll(".marker")].map(m => [m.dataset.name, m.dataset.code, m.dataset.time].join(" ")),
	}))`)
	if err := json.Unmarshal(raw, &drawn); err != nil {
		t.Fatal(err)
	}
	parts, err := c.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{StageArn: &arn, SessionId: &session})
	if err != nil {
		t.Fatal(err)
	}
	var wantIDs, gotIDs []string
	for _, p := range parts.Participants {
		wantIDs = append(wantIDs, *p.ParticipantId)
	}
	for _, l := range drawn {
		gotIDs = append(gotIDs, l.ID)
	}
	slices.Sort(wantIDs)
	slices.Sort(gotIDs)
	if !slices.Equal(gotIDs, wantIDs) || len(wantIDs) != 3 {
		t.Fatalf("lanes %q, participants %q", gotIDs, wantIDs)
	}
	total := 0
	for _, l := range drawn {
		evs, err := c.ListParticipantEvents(ctx, &ivsrealtime.ListParticipantEventsInput{StageArn: &arn, SessionId: &session, ParticipantId: aws.String(l.ID)})
		if err != nil {
			t.Fatal(err)
		}
		total += len(evs.Events)
		spans, markers := expectedSpans(evs.Events)
		slices.Sort(spans)
		slices.Sort(l.Spans)
		if !slices.Equal(l.Spans, spans) || !slices.Equal(l.Markers, markers) {
			t.Fatalf("lane %s\n drew spans %q markers %q\n want spans %q markers %q", l.ID, l.Spans, l.Markers, spans, markers)
		}
		t.Logf("lane %s: %q %q", l.ID, l.Spans, l.Markers)
	}
	// The table under the timeline lists every event.
	if got := string(tb.eval(`document.querySelectorAll("#event-rows tr").length`)); got != fmt.Sprint(total) {
		t.Fatalf("the event table has %s rows, the API %d events", got, total)
	}
	// The story of the session, in the lanes: alice and bob published; carol received both and was refused
	// a publish.
	lane := map[string][]string{}
	for _, l := range drawn {
		for _, s := range l.Spans {
			lane[l.ID] = append(lane[l.ID], strings.Join(strings.Fields(s)[:min(2, len(strings.Fields(s)))], " "))
		}
		lane[l.ID] = append(lane[l.ID], l.Markers...)
	}
	for _, w := range []struct{ id, has string }{{alice, "publish "}, {bob, "publish "}, {carol, "subscribe " + alice}, {carol, "subscribe " + bob}, {carol, "PUBLISH_ERROR INSUFFICIENT_CAPABILITIES"}} {
		if !slices.ContainsFunc(lane[w.id], func(s string) bool { return strings.HasPrefix(s, w.has) }) {
			t.Fatalf("lane %s has no %q: %q", w.id, w.has, lane[w.id])
		}
	}
	// Every span and marker says what it is in words, for the hover and for screen readers.
	if n := string(tb.eval(`[...document.querySelectorAll("#timeline .span, #timeline .marker")].filter(e => !e.title || e.getAttribute("aria-label") !== e.title).length`)); n != "0" {
		t.Fatalf("%s spans or markers without a text label", n)
	}
}

// screenshot captures the element with that id.
func screenshot(t *testing.T, tb *tab, id string) []byte {
	t.Helper()
	shot, err := chromedp.Run(tb.ctx, chromedp.Screenshot(chromedp.ID(id)))
	if err != nil {
		t.Fatal(err)
	}
	return shot
}

// writeArtifact keeps a file in $OPENSTAGE_ARTIFACTS (a temporary directory without it).
func writeArtifact(t *testing.T, name string, b []byte) {
	t.Helper()
	dir := os.Getenv("OPENSTAGE_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("artifact: %s", p)
}

// expectedSpans is what the timeline should draw from a participant's events: joined→left, publish and
// subscribe spans as "<kind> <remote> <start> <end>" (end "" while open), and the error markers as
// "<name> <code> <time>".
func expectedSpans(evs []types.Event) (spans, markers []string) {
	type open struct{ kind, remote, start string }
	var opened []open
	closeSpan := func(kind, remote, end string) {
		for i, o := range opened {
			if o.kind == kind && o.remote == remote {
				spans = append(spans, fmt.Sprintf("%s %s %s %s", o.kind, o.remote, o.start, end))
				opened = slices.Delete(opened, i, i+1)
				return
			}
		}
	}
	for _, e := range evs {
		at := stamp(e.EventTime)
		remote := aws.ToString(e.RemoteParticipantId)
		switch e.Name {
		case types.EventNameJoined:
			opened = append(opened, open{"present", "", at})
		case types.EventNamePublishStarted:
			opened = append(opened, open{"publish", "", at})
		case types.EventNameSubscribeStarted:
			opened = append(opened, open{"subscribe", remote, at})
		case types.EventNamePublishStopped:
			closeSpan("publish", "", at)
		case types.EventNameSubscribeStopped:
			closeSpan("subscribe", remote, at)
		case types.EventNameLeft:
			for len(opened) > 0 {
				closeSpan(opened[0].kind, opened[0].remote, at)
			}
		default:
			markers = append(markers, fmt.Sprintf("%s %s %s", e.Name, e.ErrorCode, at))
		}
	}
	for _, o := range opened {
		spans = append(spans, fmt.Sprintf("%s %s %s ", o.kind, o.remote, o.start))
	}
	return spans, markers
}

// TestConsoleSigV4 checks the page's signer (web/sigv4.js) in Chromium: it signs as aws-sdk-go-v2 does, the
// server accepts what it signs and refuses a wrong secret, the console's login says so (and corrects for a
// wrong clock), and the SHA-256 and
// HMAC it falls back on without WebCrypto agree with WebCrypto and with Go.
func TestConsoleSigV4(t *testing.T) {
	logs := &ivstest.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server and page logs:\n%s", logs.String())
		}
	})
	base, _ := startServer(t, logs, 3)
	// The console's address as people type it, without the slash.
	hc := &http.Client{Transport: &http.Transport{}}
	res, err := hc.Get(base + "/console")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	hc.CloseIdleConnections()
	if res.StatusCode != 200 || res.Request.URL.Path != console.ConsolePath || !strings.Contains(res.Header.Get("Content-Security-Policy"), "connect-src 'self';") {
		t.Fatalf("GET /console: %d at %s, %v", res.StatusCode, res.Request.URL, res.Header)
	}
	b := startBrowser(t, logs)
	tb := b.open("console", base+console.ConsolePath)
	imp := `const m = await import("/console/sigv4.js");`

	// The same request signed by the page and by aws-sdk-go-v2, at the same instant.
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	body := `{"maxResults":5}`
	var pageAuth string
	js := fmt.Sprintf(`(async () => { %s
		const h = await m.signRequest({accessKeyId: "AKOSTEST", secretAccessKey: "secret", region: "us-east-1", service: "ivs"},
			{method: "POST", url: %s, headers: {"Content-Type": "application/json"}, body: %s, date: new Date(%d)});
		return h.Authorization; })()`, imp, jsString(base+"/ListStages"), jsString(body), at.UnixMilli())
	if err := json.Unmarshal(tb.eval(js), &pageAuth); err != nil {
		t.Fatal(err)
	}
	// No body on the Go side (the hash is given): aws-sdk-go-v2 would sign content-length, which a page
	// cannot (the browser sets it).
	req, _ := http.NewRequest("POST", base+"/ListStages", nil)
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKOSTEST", SecretAccessKey: "secret"}, req,
		hex.EncodeToString(sum[:]), "ivs", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
	if goAuth := req.Header.Get("Authorization"); goAuth != pageAuth {
		t.Fatalf("the page signs\n %s\naws-sdk-go-v2 signs\n %s", pageAuth, goAuth)
	}

	// Signed now, sent by the browser: accepted; with a wrong secret or another region: refused.
	call := func(secret, region string) (status int, errType string) {
		t.Helper()
		var r struct {
			Status int
			Type   string
		}
		js := fmt.Sprintf(`(async () => { %s
			const url = location.origin + "/ListStages", body = "{}";
			const headers = await m.signRequest({accessKeyId: "AKOSTEST", secretAccessKey: %s, region: %s, service: "ivs"},
				{method: "POST", url, headers: {"Content-Type": "application/json"}, body});
			const res = await fetch(url, {method: "POST", headers, body});
			return {status: res.status, type: res.headers.get("x-amzn-ErrorType") || ""}; })()`, imp, jsString(secret), jsString(region))
		if err := json.Unmarshal(tb.eval(js), &r); err != nil {
			t.Fatal(err)
		}
		return r.Status, r.Type
	}
	if s, e := call("secret", "us-east-1"); s != 200 {
		t.Fatalf("signed by the page: %d %s", s, e)
	}
	if s, e := call("not the secret", "us-east-1"); s != 403 || e != "InvalidSignatureException" {
		t.Fatalf("a wrong secret: %d %s", s, e)
	}
	if s, e := call("secret", "eu-west-1"); s != 403 || e != "InvalidSignatureException" {
		t.Fatalf("another region: %d %s", s, e)
	}
	// The event stream takes the page's signature too (a GET, no body).
	js = fmt.Sprintf(`(async () => { %s
		const url = location.origin + "/events/stream", ac = new AbortController();
		const headers = await m.signRequest({accessKeyId: "AKOSTEST", secretAccessKey: "secret", region: "us-east-1", service: "ivs"}, {method: "GET", url});
		const res = await fetch(url, {headers, signal: ac.signal});
		const out = res.status + " " + res.headers.get("Content-Type"); ac.abort(); return out; })()`, imp)
	if got := string(tb.eval(js)); got != `"200 text/event-stream"` {
		t.Fatalf("the event stream signed by the page: %s", got)
	}

	// The login form: a wrong secret is refused and not kept.
	tb.eval(`document.getElementById("akid").value = "AKOSTEST"; document.getElementById("secret").value = "wrong"; true`)
	tb.click("login-button")
	tb.waitFor("the refusal", `document.getElementById("error").textContent.includes("InvalidSignatureException")`, 5*time.Second)
	if got := string(tb.eval(`sessionStorage.length === 0 && document.body.dataset.view === "login"`)); got != "true" {
		t.Fatal("a refused key was kept")
	}

	// A machine whose clock is an hour fast: the first call is refused for its time, the page takes the
	// server's Date and signs again, and the login goes through.
	tb.eval(`window.__realNow = Date.now; Date.now = () => window.__realNow() + 3600e3;
		document.getElementById("secret").value = "secret"; true`)
	tb.click("login-button")
	tb.waitFor("the stages list despite the clock", `document.body.dataset.loaded === "stages" && document.getElementById("live-state").classList.contains("connected")`, 10*time.Second)
	tb.eval(`Date.now = window.__realNow; true`)

	// The SHA-256 and HMAC written for pages without WebCrypto, against WebCrypto, around the block sizes (keys of 1 to 1001 bytes: WebCrypto refuses an empty one).
	var r struct {
		WebCrypto bool
		Mismatch  []string
		HMAC      string
	}
	js = fmt.Sprintf(`(async () => { %s
		const mismatch = [];
		for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000]) {
			const data = new Uint8Array(n).map((_, i) => (i * 31 + 7) & 255);
			const key = new Uint8Array(n + 1).map((_, i) => (i * 17 + 3) & 255);
			if (m.hex(m.sha256Plain(data)) !== m.hex(await m.sha256(data))) mismatch.push("sha256 " + n);
			if (m.hex(m.hmacPlain(key, data)) !== m.hex(await m.hmac(key, data))) mismatch.push("hmac " + n);
		}
		return {webCrypto: m.usesWebCrypto, mismatch, hmac: m.hex(m.hmacPlain("AWS4secret", "20260304"))}; })()`, imp)
	if err := json.Unmarshal(tb.eval(js), &r); err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, []byte("AWS4secret"))
	mac.Write([]byte("20260304"))
	if !r.WebCrypto || len(r.Mismatch) > 0 || r.HMAC != hex.EncodeToString(mac.Sum(nil)) {
		t.Fatalf("webcrypto %v, mismatches %q, hmac %s want %x", r.WebCrypto, r.Mismatch, r.HMAC, mac.Sum(nil))
	}
}

// TestConsoleTimelineSpans: how the timeline pairs a participant's events into spans, on histories the live
// test does not make: a rejoin in the same session, spans still open, a LEFT that ends what is open (a
// history read while the server was writing it), a repeated start, and markers.
func TestConsoleTimelineSpans(t *testing.T) {
	srv := httptest.NewServer(console.Handler())
	defer srv.Close()
	b := startBrowser(t, io.Discard)
	tb := b.open("timeline", srv.URL+console.ConsolePath)
	ev := func(name, at string, more ...string) map[string]string {
		e := map[string]string{"name": name, "eventTime": "2026-01-02T10:42:" + at + "Z"}
		for i := 0; i+1 < len(more); i += 2 {
			e[more[i]] = more[i+1]
		}
		return e
	}
	for _, tc := range []struct {
		name    string
		events  []map[string]string
		spans   []string // kind remote start-second end-second ("" open)
		markers []string // name code second
	}{
		{"rejoin", []map[string]string{ev("JOINED", "01.000"), ev("LEFT", "02.000"), ev("JOINED", "03.000"), ev("LEFT", "04.000")},
			[]string{"present  01 02", "present  03 04"}, nil},
		{"open", []map[string]string{ev("JOINED", "01.000"), ev("PUBLISH_STARTED", "02.000"), ev("SUBSCRIBE_STARTED", "03.000", "remoteParticipantId", "bob")},
			[]string{"present  01 ", "publish  02 ", "subscribe bob 03 "}, nil},
		{"left ends all", []map[string]string{ev("JOINED", "01.000"), ev("SUBSCRIBE_STARTED", "02.000", "remoteParticipantId", "bob"),
			ev("SUBSCRIBE_STARTED", "02.500", "remoteParticipantId", "eve"), ev("SUBSCRIBE_STOPPED", "03.000", "remoteParticipantId", "eve"), ev("LEFT", "05.000")},
			[]string{"present  01 05", "subscribe bob 02 05", "subscribe eve 02.500 03"}, nil},
		{"repeated start", []map[string]string{ev("JOINED", "01.000"), ev("PUBLISH_STARTED", "02.000"), ev("PUBLISH_STARTED", "03.000"), ev("PUBLISH_STOPPED", "04.000"), ev("LEFT", "05.000")},
			[]string{"present  01 05", "publish  02 04"}, nil},
		{"markers", []map[string]string{ev("JOIN_ERROR", "01.000", "errorCode", "QUOTA_EXCEEDED"), ev("JOINED", "02.000"),
			ev("SUBSCRIBE_ERROR", "03.000", "errorCode", "PUBLISHER_NOT_FOUND", "remoteParticipantId", "bob"), ev("LEFT", "04.000")},
			[]string{"present  02 04"}, []string{"JOIN_ERROR QUOTA_EXCEEDED 01", "SUBSCRIBE_ERROR PUBLISHER_NOT_FOUND 03"}},
	} {
		in, _ := json.Marshal(tc.events)
		var got struct{ Spans, Markers []string }
		js := fmt.Sprintf(`(async () => { const m = await import("/console/timeline.js");
			const sec = (t) => t ? t.slice(17, -1).replace(/\.000$/, "") : "";
			const r = m.spansOf(%s);
			return {spans: r.spans.map(s => [s.kind, s.remote, sec(s.start), sec(s.end)].join(" ")),
				markers: r.markers.map(e => [e.name, e.errorCode, sec(e.eventTime)].join(" "))}; })()`, in)
		if err := json.Unmarshal(tb.eval(js), &got); err != nil {
			t.Fatal(err)
		}
		slices.Sort(got.Spans)
		if !slices.Equal(got.Spans, tc.spans) || !slices.Equal(got.Markers, tc.markers) {
			t.Errorf("%s: spans %q markers %q\n want spans %q markers %q", tc.name, got.Spans, got.Markers, tc.spans, tc.markers)
		}
	}
}
