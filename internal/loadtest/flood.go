package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/coder/websocket"

	"github.com/openstage/openstage/internal/peer"
	"github.com/openstage/openstage/internal/token"
)

// FloodConfig says how to measure what a flood of bad tokens does to real participants: a publisher, its
// subscribers, new subscribers and events sockets joining one after another, and an API caller, first in a
// quiet phase, then while attackers send bad tokens to WHIP publish, WHIP subscribe and the events socket
// from another source address.
type FloodConfig struct {
	// Config is the server, the credentials and the real participants (Publishers and
	// SubscribersPerPublisher are ignored: one publisher and Subscribers subscribers). Duration is the length
	// of each phase, Warmup how long media flows before the first.
	Config
	// Subscribers is how many subscribers receive the publisher's media throughout (delivered/expected).
	Subscribers int
	// Rounds is how many times the pair of phases runs, quiet then flooded, each phase Duration long; the
	// phases of each kind are summed. Alternating them spreads whatever else the machine does over both.
	Rounds int
	// JoinEvery is how often a new participant joins in each phase, alternately a subscriber (WHIP
	// subscribe, POST to the first RTP packet) and an events socket (dial to the first STAGE_STATE).
	JoinEvery time.Duration
	// APIEvery is how often the API caller calls GetStage.
	APIEvery time.Duration
	// Attackers is how many goroutines send bad tokens; AttackRate the bad requests per second they send
	// in all (0: as fast as they can, each waiting for its answer before the next).
	Attackers  int
	AttackRate float64
	// AttackOpen makes the attack open-loop: requests start at AttackRate whether or not the earlier ones
	// were answered, up to MaxOpenInFlight at once (those beyond are counted as skipped); Attackers is
	// then unused.
	AttackOpen bool
	// AttackFrom is the loopback address the attackers' connections come from (default 127.0.0.2); the
	// real participants come from 127.0.0.1.
	AttackFrom string
}

func (c *FloodConfig) floodDefaults() error {
	c.Publishers, c.SubscribersPerPublisher = 1, 0
	if err := c.defaults(); err != nil {
		return err
	}
	if c.Subscribers <= 0 {
		c.Subscribers = 2
	}
	if c.Rounds <= 0 {
		c.Rounds = 3
	}
	if c.JoinEvery <= 0 {
		c.JoinEvery = 400 * time.Millisecond
	}
	if c.APIEvery <= 0 {
		c.APIEvery = 10 * time.Millisecond
	}
	if c.Attackers <= 0 {
		c.Attackers = 32
	}
	if c.AttackFrom == "" {
		c.AttackFrom = "127.0.0.2"
	}
	if c.AttackOpen && c.AttackRate <= 0 {
		return errors.New("loadtest: an open-loop flood needs a rate")
	}
	from := net.ParseIP(c.AttackFrom)
	if from == nil || !from.IsLoopback() {
		return fmt.Errorf("loadtest: the attackers' address %q must be a loopback address", c.AttackFrom)
	}
	// The flood is a measurement of this machine's server: it never leaves loopback.
	u, err := url.Parse(c.Endpoint)
	if err != nil {
		return fmt.Errorf("loadtest: endpoint: %w", err)
	}
	ips, err := net.DefaultResolver.LookupIPAddr(context.Background(), u.Hostname())
	if err != nil || len(ips) == 0 {
		return fmt.Errorf("loadtest: endpoint %s: %v", u.Hostname(), err)
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return fmt.Errorf("loadtest: a flood is sent to a loopback endpoint only, not %s", c.Endpoint)
		}
	}
	return nil
}

// FloodReport compares the real participants' experience in the quiet phase and under the flood.
type FloodReport struct {
	Endpoint    string  `json:"endpoint"`
	Attackers   int     `json:"attackers"`
	AttackRate  float64 `json:"attackRate"` // offered; 0 = as fast as they can
	AttackOpen  bool    `json:"attackOpenLoop,omitempty"`
	AttackFrom  string  `json:"attackFrom"`
	Subscribers int     `json:"subscribers"`
	Rounds      int     `json:"rounds"`
	PacketRate  int     `json:"packetRate,omitempty"`

	Quiet   Phase `json:"quiet"`
	Flooded Phase `json:"flooded"`
	// Ratios are flooded ÷ quiet.
	Ratios FloodRatios `json:"ratios"`

	Warnings []string `json:"warnings,omitempty"`
}

// Phase is what the real participants saw in one kind of phase, over its rounds.
type Phase struct {
	Seconds float64 `json:"seconds"`
	// SubscriberJoin: POST of a new subscriber to its first RTP packet; EventsJoin: dial of a new events
	// socket to its first STAGE_STATE. In milliseconds.
	SubscriberJoin Percentiles `json:"subscriberJoinMs"`
	EventsJoin     Percentiles `json:"eventsJoinMs"`
	JoinFailures   int         `json:"joinFailures"`
	// Expected and Delivered are the long-running subscribers' packets (as in Report).
	Expected  int64 `json:"expectedPackets"`
	Delivered int64 `json:"deliveredPackets"`
	// GetStage latency of the API caller, in milliseconds.
	GetStage       Percentiles `json:"getStageMs"`
	GetStageErrors int         `json:"getStageErrors"`
	// ServerCores is the server's CPU seconds per second (its /metrics), 0 if unknown; ClientCores the
	// load test's own (participants and attackers), which shares the machine's cores with the server.
	ServerCores float64 `json:"serverCores"`
	ClientCores float64 `json:"clientCores"`
	// Attack is what the attackers sent and got (flooded phase only).
	Attack *AttackStats `json:"attack,omitempty"`
}

// DeliveredRatio is Delivered ÷ Expected (1 when nothing was expected).
func (p Phase) DeliveredRatio() float64 {
	if p.Expected == 0 {
		return 1
	}
	return float64(p.Delivered) / float64(p.Expected)
}

// AttackStats counts the bad requests and their answers.
type AttackStats struct {
	Sent      int64            `json:"sent"`
	PerSecond float64          `json:"perSecond"`
	Outcomes  map[string]int64 `json:"outcomes"` // "whip 401", "events 101", "events 429", "error", ...
}

// FloodRatios are flooded ÷ quiet; within 20% is what the issue asks of the joins and the packets.
type FloodRatios struct {
	SubscriberJoinP50 float64 `json:"subscriberJoinP50"`
	SubscriberJoinP90 float64 `json:"subscriberJoinP90"`
	EventsJoinP50     float64 `json:"eventsJoinP50"`
	EventsJoinP90     float64 `json:"eventsJoinP90"`
	Delivered         float64 `json:"delivered"` // of the delivered/expected ratios
	GetStageP50       float64 `json:"getStageP50"`
	GetStageP99       float64 `json:"getStageP99"`
	ServerCores       float64 `json:"serverCores"`
}

// Flood runs the quiet phase, then the flooded phase, and compares them. Everything it made (stages, the
// imported public key) is deleted before it returns.
func Flood(ctx context.Context, cfg FloodConfig) (*FloodReport, error) {
	if err := cfg.floodDefaults(); err != nil {
		return nil, err
	}
	r := &FloodReport{Endpoint: cfg.Endpoint, Attackers: cfg.Attackers, AttackRate: cfg.AttackRate, AttackOpen: cfg.AttackOpen, AttackFrom: cfg.AttackFrom,
		Subscribers: cfg.Subscribers, Rounds: cfg.Rounds, PacketRate: cfg.PacketRate}
	api := cfg.client()
	var cleanups []func(context.Context) error
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for i := len(cleanups) - 1; i >= 0; i-- {
			if err := cleanups[i](cctx); err != nil {
				r.Warnings = append(r.Warnings, "cleanup: "+err.Error())
			}
		}
	}()
	tag := time.Now().UTC().Format("20060102T150405")
	newStage := func(name string) (*types.Stage, error) {
		out, err := api.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String(fmt.Sprintf("flood-%s-%s", tag, name))})
		if err != nil {
			return nil, fmt.Errorf("loadtest: create stage: %w", err)
		}
		arn := *out.Stage.Arn
		cleanups = append(cleanups, func(ctx context.Context) error {
			_, err := api.DeleteStage(ctx, &ivsrealtime.DeleteStageInput{Arn: aws.String(arn)})
			var nf *types.ResourceNotFoundException
			if errors.As(err, &nf) {
				return nil
			}
			return err
		})
		if out.Stage.Endpoints == nil || out.Stage.Endpoints.Whip == nil || out.Stage.Endpoints.Events == nil {
			return nil, errors.New("loadtest: the stage has no WHIP or events endpoint (is the media plane on?)")
		}
		return out.Stage, nil
	}
	st, err := newStage("real")
	if err != nil {
		return nil, err
	}
	whip, eventsURL := *st.Endpoints.Whip, *st.Endpoints.Events
	stageID := lastSegment(*st.Arn)
	tokens := func(n int, capability types.ParticipantTokenCapability, user string) ([]string, []string, error) {
		toks, ids := make([]string, n), make([]string, n)
		for i := range n {
			out, err := api.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: st.Arn,
				UserId: aws.String(fmt.Sprintf("%s-%d", user, i)), Capabilities: []types.ParticipantTokenCapability{capability}})
			if err != nil {
				return nil, nil, fmt.Errorf("loadtest: create token: %w", err)
			}
			toks[i], ids[i] = *out.ParticipantToken.Token, *out.ParticipantToken.ParticipantId
		}
		return toks, ids, nil
	}

	// The bad tokens (made before anything is measured).
	bad, warn, err := makeBadTokens(ctx, api, st, newStage, &cleanups)
	if err != nil {
		return nil, err
	}
	r.Warnings = append(r.Warnings, warn...)

	// The real participants: a publisher and its subscribers, from 127.0.0.1 (or LocalAddr).
	opts := func(tok string) peer.Options {
		return peer.Options{WHIPURL: whip, Token: tok, HTTP: cfg.HTTP, PacketRate: cfg.PacketRate, PacketSize: cfg.PacketSize,
			LocalAddr: cfg.LocalAddr}
	}
	ptok, pid, err := tokens(1, types.ParticipantTokenCapabilityPublish, "publisher")
	if err != nil {
		return nil, err
	}
	pub, err := peer.Publish(ctx, opts(ptok[0]))
	if err != nil {
		return nil, fmt.Errorf("loadtest: publish: %w", err)
	}
	defer pub.Close()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	err = pub.WaitConnected(wctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("loadtest: publish: %w", err)
	}
	pc := &pubConn{whip: whip, id: pid[0], pub: pub, subs: make([]*peer.Subscriber, cfg.Subscribers)}
	defer func() {
		for _, s := range pc.subs {
			if s != nil {
				s.Close()
			}
		}
	}()
	stoks, _, err := tokens(cfg.Subscribers, types.ParticipantTokenCapabilitySubscribe, "subscriber")
	if err != nil {
		return nil, err
	}
	for i, tok := range stoks {
		s, err := subscribe(ctx, opts(tok), pc.id)
		if err != nil {
			return nil, fmt.Errorf("loadtest: subscribe: %w", err)
		}
		pc.subs[i] = s
		select {
		case <-s.Media():
		case <-time.After(20 * time.Second):
			return nil, fmt.Errorf("loadtest: subscribe: no media within 20 s (state %s)", s.State())
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err := sleep(ctx, cfg.Warmup); err != nil {
		return nil, err
	}

	joins := max(2, int(cfg.Duration/cfg.JoinEvery)+1)
	ph := phaser{cfg: &cfg, api: api, pc: pc, stageARN: *st.Arn, eventsURL: eventsURL + "/" + stageID, opts: opts}
	atk := &attack{cfg: &cfg, bad: bad, whip: whip, publisher: pc.id, events: httpURL(eventsURL) + "/" + stageID}
	var quiet, flooded samples
	for round := range cfg.Rounds {
		for i, name := range []string{"quiet", "flooded"} {
			subToks, _, err := tokens(joins/2+1, types.ParticipantTokenCapabilitySubscribe, fmt.Sprintf("%s%d-join", name, round))
			if err != nil {
				return nil, err
			}
			evToks, _, err := tokens(joins/2+1, types.ParticipantTokenCapabilitySubscribe, fmt.Sprintf("%s%d-events", name, round))
			if err != nil {
				return nil, err
			}
			acc, a := &quiet, (*attack)(nil)
			if i == 1 {
				acc, a = &flooded, atk
			}
			if cfg.Progress != nil {
				fmt.Fprintf(cfg.Progress, "loadtest: round %d of %d, %s phase, %s\n", round+1, cfg.Rounds, name, cfg.Duration)
			}
			if err := ph.run(ctx, subToks, evToks, a, acc); err != nil {
				return nil, fmt.Errorf("loadtest: %s phase: %w", name, err)
			}
		}
		// What the flood left (sockets closing, garbage) settles before the next quiet phase.
		if err := sleep(ctx, time.Second); err != nil {
			return nil, err
		}
	}
	r.Quiet, r.Flooded = quiet.phase(), flooded.phase()
	r.ratios()
	return r, nil
}

func httpURL(ws string) string {
	if rest, ok := strings.CutPrefix(ws, "ws"); ok {
		return "http" + rest
	}
	return ws
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func (r *FloodReport) ratios() {
	q, f := r.Quiet, r.Flooded
	r.Ratios = FloodRatios{
		SubscriberJoinP50: ratio(f.SubscriberJoin.P50, q.SubscriberJoin.P50),
		SubscriberJoinP90: ratio(f.SubscriberJoin.P90, q.SubscriberJoin.P90),
		EventsJoinP50:     ratio(f.EventsJoin.P50, q.EventsJoin.P50),
		EventsJoinP90:     ratio(f.EventsJoin.P90, q.EventsJoin.P90),
		Delivered:         ratio(f.DeliveredRatio(), q.DeliveredRatio()),
		GetStageP50:       ratio(f.GetStage.P50, q.GetStage.P50),
		GetStageP99:       ratio(f.GetStage.P99, q.GetStage.P99),
		ServerCores:       ratio(f.ServerCores, q.ServerCores),
	}
}

// phaser runs one phase: joins, GetStage calls, media counted, the server's CPU read, and the attack if
// there is one.
type phaser struct {
	cfg       *FloodConfig
	api       *ivsrealtime.Client
	pc        *pubConn
	stageARN  string
	eventsURL string
	opts      func(tok string) peer.Options
}

// samples accumulates the phases of one kind.
type samples struct {
	seconds, clientCPU        float64
	serverCPU, serverSeconds  float64 // over the phases whose /metrics could be read
	subJoin, evJoin, api      []time.Duration
	expected, delivered       int64
	joinFailures, apiFailures int
	attack                    *AttackStats
	attackSeconds             float64
}

func (s *samples) phase() Phase {
	p := Phase{Seconds: s.seconds, SubscriberJoin: percentiles(s.subJoin), EventsJoin: percentiles(s.evJoin),
		JoinFailures: s.joinFailures, Expected: s.expected, Delivered: s.delivered, GetStage: percentiles(s.api),
		GetStageErrors: s.apiFailures, Attack: s.attack}
	if s.seconds > 0 {
		p.ClientCores = s.clientCPU / s.seconds
	}
	if s.serverSeconds > 0 {
		p.ServerCores = s.serverCPU / s.serverSeconds
	}
	if s.attack != nil && s.attackSeconds > 0 {
		s.attack.PerSecond = float64(s.attack.Sent) / s.attackSeconds
	}
	return p
}

// run runs one phase and adds what it saw to acc.
func (ph *phaser) run(ctx context.Context, subToks, evToks []string, atk *attack, acc *samples) error {
	cfg := ph.cfg
	m0, merr := scrape(ctx, cfg.HTTP, cfg.MetricsURL)
	c0 := read([]*pubConn{ph.pc})
	cpu0 := processCPU()
	start := time.Now()
	pctx, stop := context.WithTimeout(ctx, cfg.Duration)
	defer stop()
	var wg sync.WaitGroup
	var attackStats *AttackStats
	if atk != nil {
		wg.Add(1)
		go func() { defer wg.Done(); attackStats = atk.run(pctx) }()
	}
	// The API caller: GetStage, one call at a time, every APIEvery. No retries: a slow answer is measured.
	var apiLat []time.Duration
	apiFailures := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		client := ivsrealtime.New(ph.api.Options(), func(o *ivsrealtime.Options) { o.RetryMaxAttempts = 1 })
		t := time.NewTicker(cfg.APIEvery)
		defer t.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-t.C:
			}
			t0 := time.Now()
			_, err := client.GetStage(pctx, &ivsrealtime.GetStageInput{Arn: aws.String(ph.stageARN)})
			if pctx.Err() != nil {
				return
			}
			if err != nil {
				apiFailures++
				continue
			}
			apiLat = append(apiLat, time.Since(t0))
		}
	}()
	// Joins, one at a time, alternately a subscriber and an events socket.
	var subJoin, evJoin []time.Duration
	joinFailures := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(cfg.JoinEvery)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-pctx.Done():
				return
			case <-t.C:
			}
			var d time.Duration
			var err error
			switch {
			case i%2 == 0 && i/2 < len(subToks):
				d, err = ph.joinSubscriber(pctx, subToks[i/2])
			case i%2 == 1 && i/2 < len(evToks):
				d, err = ph.joinEvents(pctx, evToks[i/2])
			default:
				continue
			}
			if pctx.Err() != nil {
				return // cut short by the end of the phase: not a sample
			}
			switch {
			case err != nil:
				joinFailures++
			case i%2 == 0:
				subJoin = append(subJoin, d)
			default:
				evJoin = append(evJoin, d)
			}
		}
	}()
	<-pctx.Done()
	elapsed := time.Since(start)
	cpu1 := processCPU()
	c1 := read([]*pubConn{ph.pc})
	var m1 Scrape
	if merr == nil {
		m1, merr = scrape(ctx, cfg.HTTP, cfg.MetricsURL)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	acc.seconds += elapsed.Seconds()
	acc.clientCPU += (cpu1 - cpu0).Seconds()
	var rep Report
	rep.media(c0, c1)
	acc.expected += rep.Expected
	acc.delivered += rep.Delivered
	acc.subJoin, acc.evJoin, acc.api = append(acc.subJoin, subJoin...), append(acc.evJoin, evJoin...), append(acc.api, apiLat...)
	acc.joinFailures += joinFailures
	acc.apiFailures += apiFailures
	if merr == nil && m0.has(mCPU) && m1.has(mCPU) {
		acc.serverCPU += delta(m0, m1, mCPU)
		acc.serverSeconds += m1.At.Sub(m0.At).Seconds()
	}
	if attackStats != nil {
		if acc.attack == nil {
			acc.attack = &AttackStats{Outcomes: map[string]int64{}}
		}
		acc.attack.Sent += attackStats.Sent
		for k, v := range attackStats.Outcomes {
			acc.attack.Outcomes[k] += v
		}
		acc.attackSeconds += elapsed.Seconds()
	}
	return nil
}

// joinSubscriber is a new subscriber: POST to its first RTP packet. It leaves at once.
func (ph *phaser) joinSubscriber(ctx context.Context, tok string) (time.Duration, error) {
	start := time.Now()
	s, err := subscribe(ctx, ph.opts(tok), ph.pc.id)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	select {
	case <-s.Media():
		return time.Since(start), nil
	case <-time.After(10 * time.Second):
		return 0, errors.New("no media within 10 s")
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// joinEvents is a new events socket: dial to the first STAGE_STATE. It leaves at once.
func (ph *phaser) joinEvents(ctx context.Context, tok string) (time.Duration, error) {
	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(dctx, ph.eventsURL, &websocket.DialOptions{HTTPClient: ph.cfg.HTTP, Subprotocols: []string{tok}})
	if err != nil {
		return 0, err
	}
	defer ws.CloseNow()
	for {
		_, b, err := ws.Read(dctx)
		if err != nil {
			return 0, err
		}
		typ := messageType(b)
		switch {
		case strings.HasSuffix(typ, "STAGE_STATE"):
			d := time.Since(start)
			_ = ws.Close(websocket.StatusNormalClosure, "")
			return d, nil
		case strings.HasSuffix(typ, "JOIN_ERROR"):
			return 0, fmt.Errorf("events: %s", b)
		}
	}
}

// badTokens are what the attackers send, one kind after another.
type badTokens struct {
	// forged is a token of the real stage with valid-looking claims, minus its signature: each request
	// gets a fresh random one, so that nothing can be cached.
	forged string
	// expired are validly signed (with an imported public key) but expired.
	expired []string
	// deleted are the server's own tokens for a stage since deleted.
	deleted []string
}

// kinds of bad token, in the order the attackers cycle through them.
var badKinds = []string{"forged", "expired", "garbage", "deleted"}

func (b *badTokens) pick(kind string, i int) string {
	switch kind {
	case "forged":
		return b.forged + randomB64(96)
	case "expired":
		return b.expired[i%len(b.expired)]
	case "deleted":
		return b.deleted[i%len(b.deleted)]
	default:
		return randomB64(36) + "." + randomB64(120) + "." + randomB64(96)
	}
}

func randomB64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// makeBadTokens makes the kinds of bad token: forged from a real token of st; expired ones signed with a
// key it imports (deleted at the end); tokens of a stage it creates and deletes.
func makeBadTokens(ctx context.Context, api *ivsrealtime.Client, st *types.Stage, newStage func(string) (*types.Stage, error),
	cleanups *[]func(context.Context) error) (*badTokens, []string, error) {
	var b badTokens
	var warnings []string
	out, err := api.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: st.Arn,
		Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilityPublish, types.ParticipantTokenCapabilitySubscribe}})
	if err != nil {
		return nil, nil, fmt.Errorf("loadtest: create token: %w", err)
	}
	real := *out.ParticipantToken.Token
	parts := strings.Split(real, ".")
	if len(parts) != 3 {
		return nil, nil, errors.New("loadtest: the server's token is not a JWS")
	}
	b.forged = parts[0] + "." + parts[1] + "."

	// Expired, validly signed: with a key whose public half is imported. Without a key slot (the quota is
	// 3), forged signatures over expired claims stand in.
	key, err := token.GenerateKey()
	if err != nil {
		return nil, nil, err
	}
	pem, err := token.MarshalPublicKeyPEM(&key.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	var claims token.Claims
	if raw, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
		var w struct {
			Resource  string `json:"resource"`
			EventsURL string `json:"events_url"`
			WhipURL   string `json:"whip_url"`
		}
		if json.Unmarshal(raw, &w) == nil {
			claims = token.Claims{Resource: w.Resource, EventsURL: w.EventsURL, WhipURL: w.WhipURL,
				Capabilities: token.Capabilities{AllowPublish: true, AllowSubscribe: true}}
		}
	}
	imp, err := api.ImportPublicKey(ctx, &ivsrealtime.ImportPublicKeyInput{PublicKeyMaterial: aws.String(string(pem)),
		Name: aws.String("flood-" + time.Now().UTC().Format("20060102T150405"))})
	now := time.Now()
	if err == nil {
		arn := *imp.PublicKey.Arn
		*cleanups = append(*cleanups, func(ctx context.Context) error {
			_, err := api.DeletePublicKey(ctx, &ivsrealtime.DeletePublicKeyInput{Arn: aws.String(arn)})
			return err
		})
		signer, err := token.NewSigner(key, arn)
		if err != nil {
			return nil, nil, err
		}
		for i := range 16 {
			c := claims
			c.ParticipantID = fmt.Sprintf("expired%d", i)
			c.IssuedAt, c.ExpiresAt = now.Add(-2*time.Hour), now.Add(-time.Hour)
			tok, err := signer.Sign(c)
			if err != nil {
				return nil, nil, fmt.Errorf("loadtest: sign an expired token: %w", err)
			}
			b.expired = append(b.expired, tok)
		}
	} else {
		warnings = append(warnings, fmt.Sprintf("import public key: %v; expired tokens carry forged signatures", err))
		for i := range 16 {
			p := fmt.Sprintf(`{"exp":%d,"iat":%d,"jti":"expired%d","resource":%q,"topic":%q,"events_url":%q,"whip_url":%q,"capabilities":{"allow_publish":true},"version":"1.0"}`,
				now.Add(-time.Hour).Unix(), now.Add(-2*time.Hour).Unix(), i, claims.Resource, lastSegment(claims.Resource), claims.EventsURL, claims.WhipURL)
			b.expired = append(b.expired, parts[0]+"."+base64.RawURLEncoding.EncodeToString([]byte(p))+"."+randomB64(96))
		}
	}

	// A deleted stage's tokens.
	gone, err := newStage("deleted")
	if err != nil {
		return nil, nil, err
	}
	for i := range 8 {
		out, err := api.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: gone.Arn,
			UserId: aws.String(fmt.Sprintf("gone-%d", i))})
		if err != nil {
			return nil, nil, fmt.Errorf("loadtest: create token: %w", err)
		}
		b.deleted = append(b.deleted, *out.ParticipantToken.Token)
	}
	if _, err := api.DeleteStage(ctx, &ivsrealtime.DeleteStageInput{Arn: gone.Arn}); err != nil {
		return nil, nil, fmt.Errorf("loadtest: delete stage: %w", err)
	}
	return &b, warnings, nil
}

func lastSegment(arn string) string {
	if i := strings.LastIndexByte(arn, '/'); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

// attack sends bad tokens from AttackFrom until its context ends.
type attack struct {
	cfg       *FloodConfig
	bad       *badTokens
	whip      string
	publisher string
	events    string // http URL of the stage's events socket
}

// fakeOffer is the body of the attackers' WHIP requests: a token is checked before the offer is read.
const fakeOffer = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"

// MaxOpenInFlight bounds the requests of an open-loop flood in flight at once.
const MaxOpenInFlight = 1024

func (a *attack) run(ctx context.Context) *AttackStats {
	cfg := a.cfg
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(cfg.AttackFrom)}, Timeout: 5 * time.Second}
	idle := 2 * cfg.Attackers
	if cfg.AttackOpen {
		idle = 256
	}
	tr := &http.Transport{DialContext: dialer.DialContext, MaxIdleConns: idle, MaxIdleConnsPerHost: idle,
		DisableCompression: true, IdleConnTimeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if cfg.AttackOpen {
		return a.runOpen(ctx, client)
	}
	var sent atomic.Int64
	outcomes := make([]map[string]int64, cfg.Attackers)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range cfg.Attackers {
		outcomes[w] = map[string]int64{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var interval time.Duration
			if cfg.AttackRate > 0 {
				interval = time.Duration(float64(cfg.Attackers) / cfg.AttackRate * float64(time.Second))
			}
			next := time.Now().Add(time.Duration(w) * interval / time.Duration(cfg.Attackers))
			for i := w; ctx.Err() == nil; i += cfg.Attackers {
				if interval > 0 {
					now := time.Now()
					if next.After(now) {
						if sleep(ctx, next.Sub(now)) != nil {
							return
						}
					} else if now.Sub(next) > interval {
						next = now // behind: no catching up in a burst
					}
					next = next.Add(interval)
				}
				target := []string{"whip", "subscribe", "events"}[i%3]
				tok := a.bad.pick(badKinds[(i/3)%len(badKinds)], i)
				out := a.one(ctx, client, target, tok)
				if ctx.Err() != nil {
					return
				}
				sent.Add(1)
				outcomes[w][out]++
			}
		}()
	}
	wg.Wait()
	s := &AttackStats{Sent: sent.Load(), Outcomes: map[string]int64{}}
	s.PerSecond = float64(s.Sent) / time.Since(start).Seconds()
	for _, m := range outcomes {
		for k, v := range m {
			s.Outcomes[k] += v
		}
	}
	return s
}

// runOpen starts requests at the attack rate whatever becomes of them, up to MaxOpenInFlight at once.
func (a *attack) runOpen(ctx context.Context, client *http.Client) *AttackStats {
	s := &AttackStats{Outcomes: map[string]int64{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, MaxOpenInFlight)
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond) // requests go out in small bursts: timers are not finer
	defer tick.Stop()
	issued := 0
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		due := int(time.Since(start).Seconds() * a.cfg.AttackRate)
		for ; issued < due && ctx.Err() == nil; issued++ {
			select {
			case sem <- struct{}{}:
			default:
				mu.Lock()
				s.Outcomes["skipped (in flight)"]++
				mu.Unlock()
				continue
			}
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				defer func() { <-sem }()
				target := []string{"whip", "subscribe", "events"}[i%3]
				out := a.one(ctx, client, target, a.bad.pick(badKinds[(i/3)%len(badKinds)], i))
				if ctx.Err() != nil {
					return
				}
				mu.Lock()
				s.Sent++
				s.Outcomes[out]++
				mu.Unlock()
			}(issued)
		}
	}
	wg.Wait()
	s.PerSecond = float64(s.Sent) / time.Since(start).Seconds()
	return s
}

// one sends one bad request and names its outcome.
func (a *attack) one(ctx context.Context, c *http.Client, target, tok string) string {
	var req *http.Request
	var err error
	switch target {
	case "events":
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, a.events, nil)
		if err == nil {
			key := make([]byte, 16)
			_, _ = rand.Read(key)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(key))
			req.Header.Set("Sec-WebSocket-Protocol", tok)
		}
	default:
		u := a.whip
		if target == "subscribe" {
			u += "/subscribe/" + url.PathEscape(a.publisher)
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(fakeOffer))
		if err == nil {
			req.Header.Set("Content-Type", "application/sdp")
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	if err != nil {
		return "error"
	}
	resp, err := c.Do(req)
	if err != nil {
		return "error"
	}
	name := target
	if name == "subscribe" {
		name = "whip"
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The socket was accepted and will carry a JOIN_ERROR: read its first frame, then hang up, as an
		// impatient client does.
		if rw, ok := resp.Body.(io.ReadWriteCloser); ok {
			t := time.AfterFunc(5*time.Second, func() { rw.Close() })
			_, _ = rw.Read(make([]byte, 1024))
			t.Stop()
			rw.Close()
		}
		return name + " 101"
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return fmt.Sprintf("%s %d", name, resp.StatusCode)
}

// WriteText prints the comparison for a human.
func (r *FloodReport) WriteText(w io.Writer) {
	rate := "as fast as they can"
	switch {
	case r.AttackOpen:
		rate = fmt.Sprintf("%.0f bad requests/s started whatever the answers (open loop)", r.AttackRate)
	case r.AttackRate > 0:
		rate = fmt.Sprintf("%.0f bad requests/s offered", r.AttackRate)
	}
	fmt.Fprintf(w, "openstage flood test against %s\n", r.Endpoint)
	fmt.Fprintf(w, "  %d attackers from %s, %s; real participants: 1 publisher, %d subscribers, joins and GetStage\n",
		r.Attackers, r.AttackFrom, rate, r.Subscribers)
	fmt.Fprintf(w, "  %d rounds of a quiet and a flooded phase; measured %.1f s quiet, %.1f s flooded\n", r.Rounds, r.Quiet.Seconds, r.Flooded.Seconds)
	fmt.Fprintf(w, "%-34s %12s %12s %8s\n", "", "quiet", "flooded", "ratio")
	row := func(name string, q, f, ratio float64) {
		fmt.Fprintf(w, "%-34s %12.1f %12.1f %8.2f\n", name, q, f, ratio)
	}
	q, f, x := r.Quiet, r.Flooded, r.Ratios
	row("subscriber join p50 ms", q.SubscriberJoin.P50, f.SubscriberJoin.P50, x.SubscriberJoinP50)
	row("subscriber join p90 ms", q.SubscriberJoin.P90, f.SubscriberJoin.P90, x.SubscriberJoinP90)
	row("events join p50 ms", q.EventsJoin.P50, f.EventsJoin.P50, x.EventsJoinP50)
	row("events join p90 ms", q.EventsJoin.P90, f.EventsJoin.P90, x.EventsJoinP90)
	fmt.Fprintf(w, "%-34s %12s %12s %8.2f\n", "delivered / expected packets",
		fmt.Sprintf("%d/%d", q.Delivered, q.Expected), fmt.Sprintf("%d/%d", f.Delivered, f.Expected), x.Delivered)
	row("GetStage p50 ms", q.GetStage.P50, f.GetStage.P50, x.GetStageP50)
	row("GetStage p99 ms", q.GetStage.P99, f.GetStage.P99, x.GetStageP99)
	fmt.Fprintf(w, "%-34s %12.2f %12.2f %8.2f\n", "server CPU, cores", q.ServerCores, f.ServerCores, x.ServerCores)
	fmt.Fprintf(w, "%-34s %12.2f %12.2f\n", "load test's own CPU, cores", q.ClientCores, f.ClientCores)
	fmt.Fprintf(w, "%-34s %12d %12d\n", "join failures", q.JoinFailures, f.JoinFailures)
	if a := f.Attack; a != nil {
		fmt.Fprintf(w, "attack: %d bad requests, %.0f/s:", a.Sent, a.PerSecond)
		for _, k := range slices.Sorted(maps.Keys(a.Outcomes)) {
			fmt.Fprintf(w, " %s ×%d", k, a.Outcomes[k])
		}
		fmt.Fprintln(w)
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintf(w, "warnings\n  %s\n", strings.Join(r.Warnings, "\n  "))
	}
}
