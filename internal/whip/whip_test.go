package whip_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/openstage/openstage/internal/clock"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/media"
	"github.com/openstage/openstage/internal/media/policy"
	"github.com/openstage/openstage/internal/peer"
	"github.com/openstage/openstage/internal/stage"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/store/teststore"
	"github.com/openstage/openstage/internal/token"
	"github.com/openstage/openstage/internal/whip"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type env struct {
	t      *testing.T
	ctx    context.Context
	domain *stage.Service
	sfu    *media.SFU
	whip   *whip.Handler
	srv    *httptest.Server
	arn    string
}

// newEnv starts a stage domain, an SFU and the WHIP handler; pol, if not nil, is the media policy.
func newEnv(t *testing.T, quotas stage.Quotas, pol *policy.Policy) *env {
	t.Helper()
	ctx := context.Background()
	st := teststore.Open(t) // SQLite, or PostgreSQL when OPENSTAGE_TEST_DATABASE is set
	key, _ := token.GenerateKey()
	signer, _ := token.NewSigner(key, token.KeyIDFor(&key.PublicKey))
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if quotas == (stage.Quotas{}) {
		quotas = stage.DefaultQuotas
	}
	domain := stage.New(stage.Config{Account: ivs.Account{Region: "us-east-1", ID: "000000000000"},
		WHIPURL: srv.URL + "/whip", EventsURL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/events",
		SessionEndGrace: 300 * time.Millisecond, Quotas: quotas}, st, clock.Real{}, signer, log)
	codecs := policy.IVS.AllowedVideo
	if pol != nil {
		codecs = pol.AllowedVideo
	}
	mcfg := media.Config{UDPAddr: "127.0.0.1:0", IncludeLoopback: true, PublishCodecs: codecs,
		DisconnectedTimeout: time.Second, FailedTimeout: time.Second, Log: log}
	if pol != nil {
		mcfg.Inspector = func() media.Inspector { return policy.NewStreamInspector(*pol) }
	}
	sfu, err := media.New(mcfg)
	if err != nil {
		t.Fatal(err)
	}
	var offers stage.OfferPolicy
	if pol != nil {
		offers = *pol
	}
	domain.SetMedia(stage.SFUPlane(sfu), offers)
	h, err := whip.New(whip.Config{Domain: domain, WHIPURL: srv.URL + "/whip", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle(h.Base(), h)
	mux.Handle(h.Base()+"/", h)
	mux.HandleFunc("POST /{$}", h.Redirect)
	t.Cleanup(func() {
		srv.Close()
		h.Close()
		_ = domain.Shutdown(ctx)
		_ = sfu.Close()
	})
	e := &env{t: t, ctx: ctx, domain: domain, sfu: sfu, whip: h, srv: srv}
	v, _, err := domain.CreateStage(ctx, "media", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.arn = v.ARN
	return e
}

func (e *env) token(caps ...stage.Capability) stage.ParticipantToken {
	e.t.Helper()
	if caps == nil {
		caps = []stage.Capability{stage.CapPublish, stage.CapSubscribe}
	}
	tok, err := e.domain.CreateParticipantToken(e.ctx, e.arn, stage.TokenSpec{UserID: "u", Capabilities: caps})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *env) opts(tok stage.ParticipantToken) peer.Options {
	return peer.Options{WHIPURL: e.srv.URL + "/whip", Token: tok.Token, PublishPath: "/publish/" + string(tok.ParticipantID)}
}

func (e *env) publish(tok stage.ParticipantToken) *peer.Publisher {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	p, err := peer.Publish(ctx, e.opts(tok))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(p.Close)
	if err := p.WaitConnected(ctx); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) subscribe(tok stage.ParticipantToken, pub ivs.ParticipantID) *peer.Subscriber {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	s, err := peer.Subscribe(ctx, e.opts(tok), string(pub))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(s.Close)
	if err := s.WaitConnected(ctx); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// events lists a participant's events in the stage's latest session, as "NAME[>remote][:code]".
func (e *env) events(pid ivs.ParticipantID) []string {
	e.t.Helper()
	sess, err := e.domain.ListSessions(e.ctx, e.arn, store.Page{Limit: 1})
	if err != nil || len(sess) == 0 {
		return nil
	}
	evs, err := e.domain.ListEvents(e.ctx, e.arn, sess[0].ID, pid, store.Page{Limit: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, ivstest.DomainEvent(ev))
	}
	return out
}

// waitEvents polls until the participant's events are exactly want.
func (e *env) waitEvents(pid ivs.ParticipantID, within time.Duration, want ...string) {
	e.t.Helper()
	ivstest.Eventually(e.t, within, 50*time.Millisecond, func() error {
		if got := e.events(pid); !slices.Equal(got, want) {
			return fmt.Errorf("events of %s\n got %q\nwant %q", pid, got, want)
		}
		return nil
	})
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	ivstest.Eventually(t, within, 20*time.Millisecond, func() error {
		if !cond() {
			return errors.New("waiting for " + what)
		}
		return nil
	})
}

func TestPublishAndSubscribeForwardsRealMedia(t *testing.T) {
	e := newEnv(t, stage.Quotas{}, nil)
	pt := e.token()
	pub := e.publish(pt)
	waitFor(t, 5*time.Second, "PUBLISH_STARTED", func() bool { return e.domain.Publishing(ivs.StageID(ivs.LastSegment(e.arn)), pt.ParticipantID) })

	st := e.token(stage.CapSubscribe)
	sub := e.subscribe(st, pt.ParticipantID)
	defer func() {
		t.Logf("sent v=%d a=%d; got v=%d a=%d kf=%d", pub.SentVideo.Load(), pub.SentAudio.Load(), sub.VideoPackets.Load(), sub.AudioPackets.Load(), sub.Keyframes.Load())
	}()
	waitFor(t, 10*time.Second, "video, audio and a keyframe at the subscriber", func() bool {
		return sub.VideoPackets.Load() > 30 && sub.AudioPackets.Load() > 25 && sub.Keyframes.Load() > 0
	})
	if c, _ := sub.VideoCodec.Load().(string); !strings.EqualFold(c, "video/H264") {
		t.Fatalf("subscriber got %q", c)
	}
	// A late second subscriber gets a keyframe quickly too (PLI relayed to the publisher).
	st2 := e.token(stage.CapSubscribe)
	sub2 := e.subscribe(st2, pt.ParticipantID)
	start := time.Now()
	waitFor(t, 3*time.Second, "a keyframe for the late subscriber", func() bool { return sub2.Keyframes.Load() > 0 })
	t.Logf("late subscriber keyframe after %v; sent video %d audio %d; sub1 got video %d audio %d",
		time.Since(start), pub.SentVideo.Load(), pub.SentAudio.Load(), sub.VideoPackets.Load(), sub.AudioPackets.Load())

	if err := sub.Delete(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.waitEvents(st.ParticipantID, 5*time.Second, "JOINED", "SUBSCRIBE_STARTED>"+string(pt.ParticipantID), "SUBSCRIBE_STOPPED>"+string(pt.ParticipantID), "LEFT")
	if err := pub.Delete(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.waitEvents(pt.ParticipantID, 5*time.Second, "JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT")
	// The publisher's end ends its subscriptions.
	e.waitEvents(st2.ParticipantID, 5*time.Second, "JOINED", "SUBSCRIBE_STARTED>"+string(pt.ParticipantID), "SUBSCRIBE_STOPPED>"+string(pt.ParticipantID), "LEFT")
	waitFor(t, 5*time.Second, "the session's end", func() bool {
		v, err := e.domain.GetStage(e.ctx, e.arn)
		return err == nil && v.ActiveSessionID == ""
	})
	p, err := e.domain.GetParticipant(e.ctx, e.arn, mustSession(t, e), pt.ParticipantID)
	if err != nil || !p.Published || p.State != ivs.StateDisconnected || p.Client.Protocol != ivs.ProtocolWHIP {
		t.Fatalf("publisher record %+v %v", p, err)
	}
}

func mustSession(t *testing.T, e *env) ivs.SessionID {
	t.Helper()
	sess, err := e.domain.ListSessions(e.ctx, e.arn, store.Page{Limit: 1})
	if err != nil || len(sess) == 0 {
		t.Fatalf("no session: %v", err)
	}
	return sess[0].ID
}

func TestWaysToLeave(t *testing.T) {
	cases := []struct {
		name   string
		within time.Duration
		leave  func(e *env, p *peer.Publisher, tok stage.ParticipantToken)
		extra  []string // events between PUBLISH_STARTED and LEFT
	}{
		{"DELETE", 5 * time.Second, func(e *env, p *peer.Publisher, _ stage.ParticipantToken) { _ = p.Delete(e.ctx) }, []string{"PUBLISH_STOPPED"}},
		{"closing the peer connection", 5 * time.Second, func(_ *env, p *peer.Publisher, _ stage.ParticipantToken) { p.Close() }, []string{"PUBLISH_STOPPED"}},
		{"network silence", 10 * time.Second, func(_ *env, p *peer.Publisher, _ stage.ParticipantToken) { p.Vanish() }, []string{"PUBLISH_STOPPED"}},
		{"DisconnectParticipant", 5 * time.Second, func(e *env, _ *peer.Publisher, tok stage.ParticipantToken) {
			if err := e.domain.DisconnectParticipant(e.ctx, e.arn, tok.ParticipantID, "test"); err != nil {
				e.t.Fatal(err)
			}
		}, []string{"PUBLISH_STOPPED"}},
		{"server shutdown", 5 * time.Second, func(e *env, _ *peer.Publisher, _ stage.ParticipantToken) {
			if err := e.domain.Shutdown(e.ctx); err != nil {
				e.t.Fatal(err)
			}
		}, []string{"PUBLISH_STOPPED"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, stage.Quotas{}, nil)
			tok := e.token()
			p := e.publish(tok)
			e.waitEvents(tok.ParticipantID, 5*time.Second, "JOINED", "PUBLISH_STARTED")
			c.leave(e, p, tok)
			want := append(append([]string{"JOINED", "PUBLISH_STARTED"}, c.extra...), "LEFT")
			e.waitEvents(tok.ParticipantID, c.within, want...)
			waitFor(t, 10*time.Second, "the publisher's connection to end", func() bool {
				s := p.State()
				return s == 4 || s == 5 || s == 6 // disconnected, failed, closed
			})
		})
	}
}

func TestDeleteStageAndTokenReuse(t *testing.T) {
	e := newEnv(t, stage.Quotas{}, nil)
	tok := e.token()
	p1 := e.publish(tok)
	waitFor(t, 5*time.Second, "PUBLISH_STARTED", func() bool { return e.domain.Publishing(ivs.StageID(ivs.LastSegment(e.arn)), tok.ParticipantID) })
	p2 := e.publish(tok) // the same token again: the newer connection wins
	waitFor(t, 5*time.Second, "the first publisher to be closed", func() bool { return p1.State() >= 4 })
	if p2.State() != 3 { // connected
		t.Fatalf("second publisher %s", p2.State())
	}
	// The displaced publish's end is in the history; the newer one's start follows.
	e.waitEvents(tok.ParticipantID, 5*time.Second, "JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "PUBLISH_STARTED")
	if err := e.domain.DeleteStage(e.ctx, e.arn); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "DeleteStage to close the publisher", func() bool { return p2.State() >= 4 })
}

func TestRefusals(t *testing.T) {
	e := newEnv(t, stage.Quotas{Stages: 10, PublicKeys: 3, PublishersPerStage: 1, SubscribersPerStage: 10}, nil)
	pub := e.token()
	e.publish(pub)
	waitFor(t, 5*time.Second, "PUBLISH_STARTED", func() bool { return e.domain.Publishing(ivs.StageID(ivs.LastSegment(e.arn)), pub.ParticipantID) })

	subOnly := e.token(stage.CapSubscribe)
	_, err := peer.Publish(e.ctx, e.opts(subOnly))
	var he *peer.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusForbidden || !strings.Contains(he.Body, `"code":2003`) {
		t.Fatalf("publish without PUBLISH: %v", err)
	}
	e.waitEvents(subOnly.ParticipantID, 5*time.Second, "JOINED", "PUBLISH_ERROR:INSUFFICIENT_CAPABILITIES", "LEFT")

	second := e.token()
	_, err = peer.Publish(e.ctx, e.opts(second))
	if !errors.As(err, &he) || !strings.Contains(he.Body, `"code":2005`) {
		t.Fatalf("publisher over the quota: %v", err)
	}
	e.waitEvents(second.ParticipantID, 5*time.Second, "JOINED", "PUBLISH_ERROR:QUOTA_EXCEEDED", "LEFT")

	pubOnly := e.token(stage.CapPublish)
	_, err = peer.Subscribe(e.ctx, e.opts(pubOnly), string(pub.ParticipantID))
	if !errors.As(err, &he) || he.Status != http.StatusForbidden {
		t.Fatalf("subscribe without SUBSCRIBE: %v", err)
	}
	e.waitEvents(pubOnly.ParticipantID, 5*time.Second, "JOINED", "SUBSCRIBE_ERROR>"+string(pub.ParticipantID)+":INSUFFICIENT_CAPABILITIES", "LEFT")

	viewer := e.token(stage.CapSubscribe)
	_, err = peer.Subscribe(e.ctx, e.opts(viewer), "nobody")
	if !errors.As(err, &he) || he.Status != http.StatusNotFound || !strings.Contains(he.Body, `"code":2004`) {
		t.Fatalf("subscribe to a non-publisher: %v", err)
	}
	e.waitEvents(viewer.ParticipantID, 5*time.Second, "JOINED", "SUBSCRIBE_ERROR>nobody:PUBLISHER_NOT_FOUND", "LEFT")

	// Bad tokens make no event and get 401 with a reason.
	o := e.opts(viewer)
	o.Token = "garbage"
	_, err = peer.Publish(e.ctx, o)
	if !errors.As(err, &he) || he.Status != http.StatusUnauthorized {
		t.Fatalf("garbage token: %v", err)
	}
}

func TestRootRedirectAndCORS(t *testing.T) {
	e := newEnv(t, stage.Quotas{}, nil)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Post(e.srv.URL+"/", "application/sdp", strings.NewReader("v=0"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != e.srv.URL+"/whip" {
		t.Fatalf("root POST: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	req, _ := http.NewRequest(http.MethodOptions, e.srv.URL+"/whip/publish/abc", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,x-stages-sdk,x-stages-trace-id")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode/100 != 2 || h.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		h.Get("Access-Control-Allow-Headers") != "authorization,content-type,x-stages-sdk,x-stages-trace-id" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "PATCH") || !strings.Contains(h.Get("Access-Control-Expose-Headers"), "Location") {
		t.Fatalf("preflight %d %v", resp.StatusCode, h)
	}
}

// TestSDKShapedOffer: an offer like the IVS web SDK's (VP8 first, no candidates, Opus fmtp starting with
// ';', audio in mid 0 and video in mid 1) is answered with H.264 and every server candidate.
func TestSDKShapedOffer(t *testing.T) {
	e := newEnv(t, stage.Quotas{}, nil)
	tok := e.token()
	o := e.opts(tok)
	o.SDKLike = true
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	p, err := peer.Publish(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "PUBLISH_STARTED", func() bool { return e.domain.Publishing(ivs.StageID(ivs.LastSegment(e.arn)), tok.ParticipantID) })
	ans := p.AnswerSDP()
	video := ans[strings.Index(ans, "m=video"):]
	if !strings.Contains(video, "H264/90000") || strings.Contains(video, "VP8") || strings.Count(ans, "a=candidate:") == 0 {
		t.Fatalf("answer to a VP8-first offer:\n%s", ans)
	}
	sub := e.subscribe(e.token(stage.CapSubscribe), tok.ParticipantID)
	waitFor(t, 10*time.Second, "H.264 at the subscriber", func() bool { return sub.Keyframes.Load() > 0 })
	if c, _ := sub.VideoCodec.Load().(string); !strings.EqualFold(c, "video/H264") {
		t.Fatalf("codec %q", c)
	}
}

// TestMediaPolicy: each way a publisher can break the media policy ends its publish with the error event
// IVS uses, from the offer (codecs) or from the media itself (SPS resolution, B slices, bitrate, duration).
func TestMediaPolicy(t *testing.T) {
	fixture := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "media", "policy", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	lowBitrate := policy.IVS
	lowBitrate.MaxBitrate, lowBitrate.BitrateWindow = 20_000, time.Second
	short := policy.IVS
	short.MaxDuration = time.Second
	cases := []struct {
		name   string
		pol    policy.Policy
		opts   func(o *peer.Options)
		code   string
		inSDP  bool // refused at the offer: no PUBLISH_STARTED
		status int
	}{
		{"audio only under ivs", policy.IVS, func(o *peer.Options) { o.NoVideo = true }, "INVALID_VIDEO_CODEC", true, http.StatusBadRequest},
		{"VP8 under ivs", policy.IVS, func(o *peer.Options) { o.VideoCodec = "video/VP8" }, "INVALID_VIDEO_CODEC", true, http.StatusBadRequest},
		{"1080p under ivs", policy.IVS, func(o *peer.Options) { o.H264 = fixture("cb_1920x1080.h264") }, "RESOLUTION_EXCEEDED", false, 0},
		{"B-frames under open", policy.Open, func(o *peer.Options) { o.H264 = fixture("high_bframes_640x360.h264") }, "B_FRAME_PRESENT", false, 0},
		{"over the bitrate", lowBitrate, nil, "BITRATE_EXCEEDED", false, 0},
		{"over the duration", short, nil, "STREAM_DURATION_EXCEEDED", false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, stage.Quotas{}, &c.pol)
			tok := e.token()
			o := e.opts(tok)
			if c.opts != nil {
				c.opts(&o)
			}
			ctx, cancel := context.WithTimeout(e.ctx, 15*time.Second)
			defer cancel()
			p, err := peer.Publish(ctx, o)
			if c.inSDP {
				var he *peer.HTTPError
				if !errors.As(err, &he) || he.Status != c.status || !strings.Contains(he.Body, c.code) {
					t.Fatalf("publish: %v", err)
				}
				e.waitEvents(tok.ParticipantID, 5*time.Second, "JOINED", "PUBLISH_ERROR:"+c.code, "LEFT")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			e.waitEvents(tok.ParticipantID, 10*time.Second, "JOINED", "PUBLISH_STARTED", "PUBLISH_ERROR:"+c.code, "PUBLISH_STOPPED", "LEFT")
		})
	}
}

// TestOpenPolicyAcceptsVP8 and audio-only publishers.
func TestOpenPolicyAcceptsVP8AndAudioOnly(t *testing.T) {
	e := newEnv(t, stage.Quotas{}, &policy.Open)
	for _, o := range []func(*peer.Options){func(o *peer.Options) { o.VideoCodec = "video/VP8" }, func(o *peer.Options) { o.NoVideo = true }} {
		tok := e.token()
		opts := e.opts(tok)
		o(&opts)
		ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
		p, err := peer.Publish(ctx, opts)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		e.waitEvents(tok.ParticipantID, 5*time.Second, "JOINED", "PUBLISH_STARTED")
		p.Close()
		cancel()
	}
}

// TestRecvonlyPublishOfferIsRefused: an offer that sends nothing is no publish.
func TestRecvonlyPublishOfferIsRefused(t *testing.T) {
	e := newEnv(t, stage.Quotas{}, nil)
	tok := e.token()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/whip/publish/"+string(tok.ParticipantID), strings.NewReader(offer.SDP))
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "must send media") {
		t.Fatalf("recvonly publish offer: %d %s", resp.StatusCode, body)
	}
	e.waitEvents(tok.ParticipantID, 5*time.Second, "JOINED", "LEFT")
}
