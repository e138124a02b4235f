// Package loadtest measures an openstage media plane from the outside, as a user would: it makes stages
// and tokens with the AWS SDK, connects real WebRTC publishers and subscribers (pion, WHIP, SRTP), lets
// media flow for a while, and reports how long joining took, how much of what was sent arrived, the
// jitter, and what the server spent per forwarded packet according to its own /metrics.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/openstage/openstage/internal/peer"
)

// Config says what to load and how.
type Config struct {
	// Endpoint is the API's base URL; MetricsURL the server's Prometheus endpoint ("" = Endpoint + /metrics).
	Endpoint, MetricsURL string
	Region               string
	AccessKeyID          string
	SecretAccessKey      string
	SessionToken         string

	Publishers              int
	SubscribersPerPublisher int
	// PublishersPerStage splits the publishers over several stages (the server's per-stage publisher
	// quota, 12 by default, as IVS).
	PublishersPerStage int
	// Warmup runs before the measurement starts (joins settle, keyframes go out); Duration is measured.
	Warmup, Duration time.Duration
	// PacketRate > 0 makes each publisher send that many synthetic video packets per second of
	// PacketSize bytes (peer.Options); 0 sends the 15 fps camera-like fixture.
	PacketRate, PacketSize int
	// Record makes the stages record every publisher (a storage configuration of bucket RecordBucket, made
	// for the run and deleted after it; on a server with buckets on S3 the bucket must exist there).
	Record       bool
	RecordBucket string // default "loadtest-recordings"
	// JoinConcurrency bounds how many peers negotiate at once.
	JoinConcurrency int
	// LocalAddr is the address the peers' UDP sockets bind (default 127.0.0.1).
	LocalAddr string
	// Progress, if set, gets one line a second while media flows.
	Progress io.Writer
	// HTTP carries the API, WHIP and metrics requests (default: a client with a 30 s timeout).
	HTTP *http.Client
}

func (c *Config) defaults() error {
	if c.Endpoint == "" {
		return errors.New("loadtest: no endpoint")
	}
	c.Endpoint = strings.TrimSuffix(c.Endpoint, "/")
	if c.MetricsURL == "" {
		c.MetricsURL = c.Endpoint + "/metrics"
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return errors.New("loadtest: no credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the flags)")
	}
	if c.Publishers < 1 {
		return errors.New("loadtest: at least one publisher")
	}
	if c.SubscribersPerPublisher < 0 {
		return errors.New("loadtest: subscribers per publisher cannot be negative")
	}
	if c.PublishersPerStage <= 0 {
		c.PublishersPerStage = 12
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Warmup < 0 {
		c.Warmup = 0
	}
	if c.JoinConcurrency <= 0 {
		c.JoinConcurrency = 8
	}
	if c.PacketSize <= 0 {
		c.PacketSize = 1200
	}
	if c.HTTP == nil {
		c.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	return nil
}

func (c *Config) client() *ivsrealtime.Client {
	creds := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	return ivsrealtime.New(ivsrealtime.Options{BaseEndpoint: aws.String(c.Endpoint), Region: c.Region, HTTPClient: c.HTTP,
		RetryMaxAttempts: 3,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return creds, nil
		})})
}

// pubConn is one publisher and its subscribers.
type pubConn struct {
	whip string
	id   string
	pub  *peer.Publisher
	subs []*peer.Subscriber
}

// counts is a reading of every peer's counters.
type counts struct {
	sent []int64              // per publisher: RTP packets sent, audio and video
	recv [][]peer.StreamStats // per publisher, per subscriber: audio and video summed
}

// Run runs the load test and returns its report. The stages it made are deleted before it returns,
// whatever happened.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	r := &Report{Publishers: cfg.Publishers, SubscribersPerPublisher: cfg.SubscribersPerPublisher,
		Duration: cfg.Duration.Seconds(), PacketRate: cfg.PacketRate, PacketSize: cfg.PacketSize, Endpoint: cfg.Endpoint}
	if cfg.PacketRate == 0 {
		r.PacketSize = 0
	}
	api := cfg.client()

	// Stages first; whatever happens next, they are deleted at the end (with a fresh context, so that an
	// interrupted run still cleans up), which also disconnects anyone left.
	var arns []string
	var storageARN *string // Record's storage configuration, deleted after the stages that name it
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for _, arn := range arns {
			if _, err := api.DeleteStage(cctx, &ivsrealtime.DeleteStageInput{Arn: aws.String(arn)}); err != nil {
				r.Warnings = append(r.Warnings, fmt.Sprintf("delete stage %s: %v", arn, err))
			}
		}
		if storageARN != nil {
			if _, err := api.DeleteStorageConfiguration(cctx, &ivsrealtime.DeleteStorageConfigurationInput{Arn: storageARN}); err != nil {
				r.Warnings = append(r.Warnings, fmt.Sprintf("delete storage configuration: %v", err))
			}
		}
	}()
	nStages := (cfg.Publishers + cfg.PublishersPerStage - 1) / cfg.PublishersPerStage
	whips := make([]string, nStages)
	tag := time.Now().UTC().Format("20060102T150405")
	var rec *types.AutoParticipantRecordingConfiguration
	if cfg.Record {
		bucketName := cfg.RecordBucket
		if bucketName == "" {
			bucketName = "loadtest-recordings"
		}
		sc, err := api.CreateStorageConfiguration(ctx, &ivsrealtime.CreateStorageConfigurationInput{Name: aws.String("loadtest-" + tag),
			S3: &types.S3StorageConfiguration{BucketName: aws.String(bucketName)}})
		if err != nil {
			return nil, fmt.Errorf("loadtest: create storage configuration: %w", err)
		}
		storageARN = sc.StorageConfiguration.Arn
		rec = &types.AutoParticipantRecordingConfiguration{StorageConfigurationArn: sc.StorageConfiguration.Arn}
	}
	for i := range nStages {
		out, err := api.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String(fmt.Sprintf("loadtest-%s-%d", tag, i)),
			AutoParticipantRecordingConfiguration: rec})
		if err != nil {
			return nil, fmt.Errorf("loadtest: create stage: %w", err)
		}
		arns = append(arns, *out.Stage.Arn)
		if out.Stage.Endpoints == nil || out.Stage.Endpoints.Whip == nil {
			return nil, errors.New("loadtest: the stage has no WHIP endpoint (is the media plane on?)")
		}
		whips[i] = *out.Stage.Endpoints.Whip
	}
	r.Stages = nStages

	pubs := make([]*pubConn, cfg.Publishers)
	defer func() {
		for _, pc := range pubs {
			if pc == nil {
				continue
			}
			for _, s := range pc.subs {
				if s != nil {
					s.Close()
				}
			}
			if pc.pub != nil {
				pc.pub.Close()
			}
		}
	}()
	token := func(stage int, capability types.ParticipantTokenCapability, user string) (*types.ParticipantToken, error) {
		out, err := api.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arns[stage]),
			UserId: aws.String(user), Capabilities: []types.ParticipantTokenCapability{capability}})
		if err != nil {
			return nil, fmt.Errorf("loadtest: create token: %w", err)
		}
		return out.ParticipantToken, nil
	}
	opts := func(whip, tok string) peer.Options {
		return peer.Options{WHIPURL: whip, Token: tok, HTTP: cfg.HTTP, PacketRate: cfg.PacketRate, PacketSize: cfg.PacketSize,
			LocalAddr: cfg.LocalAddr}
	}

	// Publishers.
	var joinErrs atomic.Int64
	var firstErr error
	var errOnce sync.Once
	fail := func(err error) {
		joinErrs.Add(1)
		errOnce.Do(func() { firstErr = err })
	}
	pubJoin := make([]time.Duration, cfg.Publishers)
	parallel(cfg.JoinConcurrency, cfg.Publishers, func(i int) {
		stage := i / cfg.PublishersPerStage
		tok, err := token(stage, types.ParticipantTokenCapabilityPublish, fmt.Sprintf("pub-%d", i))
		if err != nil {
			fail(err)
			return
		}
		start := time.Now()
		p, err := peer.Publish(ctx, opts(whips[stage], *tok.Token))
		if err != nil {
			fail(fmt.Errorf("publish: %w", err))
			return
		}
		pubs[i] = &pubConn{whip: whips[stage], id: *tok.ParticipantId, pub: p, subs: make([]*peer.Subscriber, cfg.SubscribersPerPublisher)}
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := p.WaitConnected(wctx); err != nil {
			fail(fmt.Errorf("publish: %w", err))
			return
		}
		pubJoin[i] = time.Since(start)
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if firstErr != nil {
		return nil, fmt.Errorf("loadtest: %d of %d publishers failed to connect; first: %w", joinErrs.Load(), cfg.Publishers, firstErr)
	}
	r.PublisherJoin = percentiles(pubJoin)

	// Subscribers: each its own participant, token and peer connection, as M viewers would be. The
	// server's memory is read first, with the publishers alone, to be compared with what it holds once
	// every subscriber receives.
	n := cfg.Publishers * cfg.SubscribersPerPublisher
	memBefore, memErr := scrape(ctx, cfg.HTTP, cfg.MetricsURL)
	subStart := time.Now()
	subJoin := make([]time.Duration, n)
	parallel(cfg.JoinConcurrency, n, func(k int) {
		i, j := k/cfg.SubscribersPerPublisher, k%cfg.SubscribersPerPublisher
		pc := pubs[i]
		tok, err := token(i/cfg.PublishersPerStage, types.ParticipantTokenCapabilitySubscribe, fmt.Sprintf("sub-%d-%d", i, j))
		if err != nil {
			fail(err)
			return
		}
		start := time.Now()
		s, err := subscribe(ctx, opts(pc.whip, *tok.Token), pc.id)
		if err != nil {
			fail(fmt.Errorf("subscribe: %w", err))
			return
		}
		pc.subs[j] = s
		select {
		case <-s.Media():
			subJoin[k] = time.Since(start)
		case <-time.After(20 * time.Second):
			fail(fmt.Errorf("subscribe: no media within 20 s (state %s)", s.State()))
		case <-ctx.Done():
		}
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if firstErr != nil {
		return nil, fmt.Errorf("loadtest: %d peers failed to join; first: %w", joinErrs.Load(), firstErr)
	}
	r.SubscriberJoin = percentiles(subJoin)
	if n > 0 {
		r.SubscriberJoinRate = float64(n) / time.Since(subStart).Seconds()
	}

	if err := sleep(ctx, cfg.Warmup); err != nil {
		return nil, err
	}

	// The measurement: counters and a scrape at the start, a progress line a second, a scrape at the end;
	// then the publishers stop and what is in flight is let arrive before the last count.
	m0, merr := scrape(ctx, cfg.HTTP, cfg.MetricsURL)
	c0 := read(pubs)
	if merr != nil {
		r.Warnings = append(r.Warnings, fmt.Sprintf("metrics unavailable, no server figures: %v", merr))
	}
	var window []Scrape // every scrape of the window, for the memory at rest
	if merr == nil {
		window = append(window, m0)
	}
	start := time.Now()
	tick := time.NewTicker(time.Second)
	prevM, prevC, prevT := m0, c0, start
	for done := false; !done; {
		select {
		case <-ctx.Done():
			tick.Stop()
			return nil, ctx.Err()
		case now := <-tick.C:
			done = now.Sub(start) >= cfg.Duration-time.Millisecond
			c := read(pubs)
			var m Scrape
			if merr == nil {
				var err error
				if m, err = scrape(ctx, cfg.HTTP, cfg.MetricsURL); err == nil {
					window = append(window, m)
				}
			}
			if cfg.Progress != nil {
				fmt.Fprintln(cfg.Progress, progressLine(now.Sub(start), now.Sub(prevT), prevM, m, prevC, c))
			}
			prevM, prevC, prevT = m, c, now
		}
	}
	tick.Stop()
	elapsed := time.Since(start)
	var m1 Scrape
	if merr == nil {
		if m1, merr = scrape(ctx, cfg.HTTP, cfg.MetricsURL); merr != nil {
			r.Warnings = append(r.Warnings, fmt.Sprintf("metrics: %v", merr))
		} else {
			window = append(window, m1)
		}
	}
	if memErr == nil && n > 0 && memBefore.has(mRSS) && len(window) > 0 {
		r.memory(memBefore, window, n)
	}
	for _, pc := range pubs {
		pc.pub.StopSending()
	}
	if err := sleep(ctx, 500*time.Millisecond); err != nil {
		return nil, err
	}
	c1 := read(pubs)
	r.Measured = elapsed.Seconds()
	r.media(c0, c1)
	if merr == nil && m0.has(mForwardedPackets) && m1.has(mForwardedPackets) {
		r.server(m0, m1)
	}
	return r, nil
}

// subscribe subscribes, retrying while the server does not know the publisher yet: a publisher counts as
// publishing from its first packet, a moment after its connection is up (a client would wait for the
// STAGE_STATE that says so).
func subscribe(ctx context.Context, o peer.Options, publisher string) (*peer.Subscriber, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := peer.Subscribe(ctx, o, publisher)
		var he *peer.HTTPError
		if err == nil || !errors.As(err, &he) || he.Status != http.StatusNotFound || time.Now().After(deadline) {
			return s, err
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// parallel runs f(0..n-1) on at most k goroutines at once.
func parallel(k, n int, f func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, k)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func read(pubs []*pubConn) counts {
	c := counts{sent: make([]int64, len(pubs)), recv: make([][]peer.StreamStats, len(pubs))}
	for i, pc := range pubs {
		// Subscribers first: a packet counted as received is then surely counted as sent.
		c.recv[i] = make([]peer.StreamStats, len(pc.subs))
		for j, s := range pc.subs {
			a, v := s.Stats()
			c.recv[i][j] = a.Add(v)
		}
		c.sent[i] = pc.pub.VideoRTP.Load() + pc.pub.AudioRTP.Load()
	}
	return c
}

func (c counts) received() (n int64) {
	for _, subs := range c.recv {
		for _, s := range subs {
			n += s.Packets
		}
	}
	return n
}

func progressLine(t, dt time.Duration, m0, m1 Scrape, c0, c1 counts) string {
	secs := dt.Seconds()
	var b strings.Builder
	fmt.Fprintf(&b, "%4.0fs  received by subscribers %s pkt/s", t.Seconds(), si(float64(c1.received()-c0.received())/secs))
	if m0.has(mForwardedPackets) && m1.has(mForwardedPackets) {
		fwd := delta(m0, m1, mForwardedPackets)
		cpu := delta(m0, m1, mCPU)
		fmt.Fprintf(&b, "  server: forwarded %s pkt/s %sbit/s, CPU %.2f cores", si(fwd/secs), si(8*delta(m0, m1, mForwardedBytes)/secs), cpu/secs)
		if fwd > 0 {
			fmt.Fprintf(&b, ", %.2f µs/pkt", cpu/fwd*1e6)
		}
	}
	return b.String()
}

// si prints a rate with a k/M suffix.
func si(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// percentiles summarises join times (zeros, from failed joins, are left out).
func percentiles(ds []time.Duration) Percentiles {
	var ms []float64
	for _, d := range ds {
		if d > 0 {
			ms = append(ms, float64(d)/float64(time.Millisecond))
		}
	}
	if len(ms) == 0 {
		return Percentiles{}
	}
	slices.Sort(ms)
	q := func(p float64) float64 { return ms[min(len(ms)-1, int(p*float64(len(ms))))] }
	return Percentiles{N: len(ms), P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: ms[len(ms)-1]}
}
