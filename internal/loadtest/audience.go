package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
)

// The audience test: how the stage events protocol scales with the size of one stage (docs/BENCHMARKS.md,
// "The events protocol at 10,000"). Hosts (tokens that may publish) and then viewers (subscribe-only tokens)
// join one stage over the events WebSocket as the IVS web SDK does (topic=<stageId>/publishers), each
// staying connected and reading everything it is sent, and answering nothing but its PINGs. What a join
// costs is read at checkpoints: the bytes every socket has received and the server's CPU
// (process_cpu_seconds_total), per join since the last checkpoint, so the cost of the 10,000th join can be
// set beside that of the 1,000th.

// AudienceConfig configures Audience.
type AudienceConfig struct {
	Config
	Viewers int // subscribe-only participants
	Hosts   int // participants whose token may publish, joined first (none publishes: no media here)
	// Settle is how long the sockets keep reading after the last join before the last checkpoint, so that
	// what the joins caused (coalesced states and counts) is counted. Zero is 2 s.
	Settle time.Duration
}

// AudienceReport is the result of Audience.
type AudienceReport struct {
	Endpoint      string             `json:"endpoint"`
	Hosts         int                `json:"hosts"`
	Viewers       int                `json:"viewers"`
	Concurrency   int                `json:"concurrency"`
	JoinSeconds   float64            `json:"join_seconds"` // first dial to the last join
	JoinsPerSec   float64            `json:"joins_per_second"`
	JoinMs        Percentiles        `json:"join_ms"` // dial to the first STAGE_STATE
	Bytes         int64              `json:"bytes"`   // received by every socket, join phase and settle
	Messages      int64              `json:"messages"`
	StageStates   int64              `json:"stage_states"`
	Counts        int64              `json:"subscriber_counts"` // aws:ivs:SUBSCRIBER_COUNT messages
	CPUSeconds    float64            `json:"server_cpu_seconds"`
	Checkpoints   []AudienceInterval `json:"checkpoints"`
	LastCount     int                `json:"last_subscriber_count"` // the count the first viewer was last told (-1: none)
	LastListedLen int                `json:"last_listed"`           // participants in the first viewer's last STAGE_STATE
	Warnings      []string           `json:"warnings,omitempty"`
}

// AudienceInterval is the cost per join of the joins between two checkpoints.
type AudienceInterval struct {
	Joined       int     `json:"joined"` // participants connected at the end of the interval
	Joins        int     `json:"joins"`
	Seconds      float64 `json:"seconds"`
	BytesPerJoin float64 `json:"bytes_per_join"`
	CPUmsPerJoin float64 `json:"server_cpu_ms_per_join"`
	JoinP99ms    float64 `json:"join_p99_ms"`
}

// audienceSocket is one connected participant; its reader counts what it is sent.
type audienceSocket struct {
	ws *websocket.Conn
}

// audienceCounters are every socket's receipts, summed.
type audienceCounters struct {
	bytes, messages, states, counts atomic.Int64
}

// Audience runs the audience test. The stage it made is deleted before it returns, whatever happened.
func Audience(ctx context.Context, cfg AudienceConfig) (*AudienceReport, error) {
	if cfg.Publishers == 0 {
		cfg.Publishers = 1 // defaults() asks for one; the audience test has none
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if cfg.Viewers < 1 || cfg.Hosts < 0 {
		return nil, errors.New("loadtest: the audience test needs viewers")
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 2 * time.Second
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	r := &AudienceReport{Endpoint: cfg.Endpoint, Hosts: cfg.Hosts, Viewers: cfg.Viewers, Concurrency: cfg.JoinConcurrency, LastCount: -1}
	api := cfg.client()
	out, err := api.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("audience-" + time.Now().UTC().Format("20060102T150405"))})
	if err != nil {
		return nil, fmt.Errorf("loadtest: create stage: %w", err)
	}
	arn := *out.Stage.Arn
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
		defer cancel()
		if _, err := api.DeleteStage(cctx, &ivsrealtime.DeleteStageInput{Arn: aws.String(arn)}); err != nil {
			r.Warnings = append(r.Warnings, fmt.Sprintf("delete stage: %v", err))
		}
	}()
	if out.Stage.Endpoints == nil || out.Stage.Endpoints.Events == nil {
		return nil, errors.New("loadtest: the stage has no events endpoint")
	}
	stageID := arn[strings.LastIndex(arn, "/")+1:]
	// The web SDK's socket URL (docs/DESIGN.md §4.4).
	eventsURL := *out.Stage.Endpoints.Events + "?error_over_ws=1&topic=" + url.QueryEscape(stageID) + "/publishers&traceid=audience"

	n := cfg.Hosts + cfg.Viewers
	tokens := make([]string, n)
	var tokErr error
	var tokMu sync.Mutex
	fmt.Fprintf(progress, "audience: creating %d tokens\n", n)
	parallel(16, n, func(i int) {
		caps := []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}
		if i < cfg.Hosts {
			caps = append(caps, types.ParticipantTokenCapabilityPublish)
		}
		t, err := api.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn),
			UserId: aws.String(fmt.Sprintf("audience-%d", i)), Capabilities: caps})
		tokMu.Lock()
		defer tokMu.Unlock()
		if err != nil {
			tokErr = errors.Join(tokErr, err)
			return
		}
		tokens[i] = *t.ParticipantToken.Token
	})
	if tokErr != nil {
		return nil, fmt.Errorf("loadtest: create tokens: %w", tokErr)
	}

	var ctr audienceCounters
	sockets := make([]atomic.Pointer[audienceSocket], n)
	var readers sync.WaitGroup
	// The first viewer's last STAGE_STATE length and count, to show what a viewer is told.
	var watchMu sync.Mutex
	stopPing := make(chan struct{})
	var pinger sync.WaitGroup
	defer func() {
		close(stopPing)
		pinger.Wait()
		for i := range sockets {
			if s := sockets[i].Load(); s != nil {
				_ = s.ws.CloseNow()
			}
		}
		readers.Wait()
	}()

	// noteListed keeps how many participants a STAGE_STATE of the first viewer listed.
	noteListed := func(b []byte) {
		var m struct {
			Payload struct {
				Participants []json.RawMessage `json:"participants"`
			} `json:"payload"`
		}
		if json.Unmarshal(b, &m) == nil {
			watchMu.Lock()
			r.LastListedLen = len(m.Payload.Participants)
			watchMu.Unlock()
		}
	}
	join := func(i int) (time.Duration, error) {
		start := time.Now()
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(dctx, eventsURL, &websocket.DialOptions{HTTPClient: cfg.HTTP, Subprotocols: []string{tokens[i]}})
		if err != nil {
			return 0, err
		}
		ws.SetReadLimit(64 << 20)
		for {
			_, b, err := ws.Read(dctx)
			if err != nil {
				_ = ws.CloseNow()
				return 0, err
			}
			ctr.bytes.Add(int64(len(b)))
			ctr.messages.Add(1)
			typ := messageType(b)
			if strings.HasSuffix(typ, "JOIN_ERROR") {
				_ = ws.CloseNow()
				return 0, fmt.Errorf("events: %s", b)
			}
			if !strings.HasSuffix(typ, "STAGE_STATE") {
				continue
			}
			ctr.states.Add(1)
			d := time.Since(start)
			sockets[i].Store(&audienceSocket{ws: ws})
			first := i == cfg.Hosts
			readers.Add(1)
			go func() {
				defer readers.Done()
				for {
					_, b, err := ws.Read(context.Background())
					if err != nil {
						return
					}
					ctr.bytes.Add(int64(len(b)))
					ctr.messages.Add(1)
					switch t := messageType(b); {
					case strings.HasSuffix(t, "STAGE_STATE"):
						ctr.states.Add(1)
						if first {
							noteListed(b)
						}
					case t == "aws:ivs:SUBSCRIBER_COUNT":
						ctr.counts.Add(1)
						if first {
							var m struct {
								Payload struct {
									Count int `json:"count"`
								} `json:"payload"`
							}
							if json.Unmarshal(b, &m) == nil {
								watchMu.Lock()
								r.LastCount = m.Payload.Count
								watchMu.Unlock()
							}
						}
					}
				}
			}()
			if first {
				noteListed(b)
			}
			return d, nil
		}
	}

	// Every socket PINGs, as the SDK does every 15 s, so that none reaches the server's idle timeout on a
	// long run. One goroutine pings them all.
	pinger.Add(1)
	go func() {
		defer pinger.Done()
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		ping := []byte(`{"type":"PING"}`)
		for {
			select {
			case <-stopPing:
				return
			case <-t.C:
			}
			for i := range sockets {
				select {
				case <-stopPing:
					return
				default:
				}
				if s := sockets[i].Load(); s != nil {
					wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					_ = s.ws.Write(wctx, websocket.MessageText, ping)
					cancel()
				}
			}
		}
	}()

	// Checkpoints at 10%, 50%, 90% and 100% of the joins (and the hosts, first).
	marks := []int{}
	for _, f := range []float64{0.1, 0.5, 0.9, 1} {
		k := cfg.Hosts + int(f*float64(cfg.Viewers))
		if k > 0 && (len(marks) == 0 || k > marks[len(marks)-1]) {
			marks = append(marks, k)
		}
	}
	durs := make([]time.Duration, n)
	var joinErr error
	var errMu sync.Mutex
	joined := 0
	m0, err := scrape(ctx, cfg.HTTP, cfg.MetricsURL)
	if err != nil {
		return nil, fmt.Errorf("loadtest: scrape: %w", err)
	}
	last, lastBytes, lastAt := m0, int64(0), time.Now()
	start := time.Now()
	fmt.Fprintf(progress, "audience: joining %d hosts and %d viewers, %d at a time\n", cfg.Hosts, cfg.Viewers, cfg.JoinConcurrency)
	for _, mark := range marks {
		joinRange := func(from, to int) {
			parallel(cfg.JoinConcurrency, to-from, func(k int) {
				d, err := join(from + k)
				if err != nil {
					errMu.Lock()
					if joinErr == nil {
						joinErr = fmt.Errorf("join %d: %w", from+k, err)
					}
					errMu.Unlock()
				}
				durs[from+k] = d
			})
		}
		// Hosts join before any viewer, so that every viewer is told of them.
		from := joined
		if from < cfg.Hosts {
			joinRange(from, cfg.Hosts)
			from = cfg.Hosts
		}
		joinRange(from, mark)
		if joinErr != nil {
			return nil, fmt.Errorf("loadtest: %w", joinErr)
		}
		if mark == n {
			r.JoinSeconds = time.Since(start).Seconds()
			if err := sleep(ctx, cfg.Settle); err != nil {
				return nil, err
			}
		}
		m, err := scrape(ctx, cfg.HTTP, cfg.MetricsURL)
		if err != nil {
			return nil, fmt.Errorf("loadtest: scrape: %w", err)
		}
		b := ctr.bytes.Load()
		joins := mark - joined
		iv := AudienceInterval{Joined: mark, Joins: joins, Seconds: time.Since(lastAt).Seconds(),
			BytesPerJoin: float64(b-lastBytes) / float64(joins), CPUmsPerJoin: 1000 * delta(last, m, mCPU) / float64(joins),
			JoinP99ms: percentiles(slices.Clone(durs[joined:mark])).P99}
		r.Checkpoints = append(r.Checkpoints, iv)
		fmt.Fprintf(progress, "audience: %6d joined  %6.1f s  %9.0f B/join  %6.2f ms CPU/join  join p99 %.0f ms\n",
			mark, iv.Seconds, iv.BytesPerJoin, iv.CPUmsPerJoin, iv.JoinP99ms)
		joined, last, lastBytes, lastAt = mark, m, b, time.Now()
	}
	r.JoinsPerSec = float64(n) / r.JoinSeconds
	r.JoinMs = percentiles(durs)
	r.Bytes, r.Messages, r.StageStates, r.Counts = ctr.bytes.Load(), ctr.messages.Load(), ctr.states.Load(), ctr.counts.Load()
	r.CPUSeconds = delta(m0, last, mCPU)
	watchMu.Lock()
	defer watchMu.Unlock()
	return r, nil
}

// messageType reads the "type" of an events message without decoding the rest.
func messageType(b []byte) string {
	var m struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(b, &m)
	return m.Type
}

// WriteText writes the report for people.
func (r *AudienceReport) WriteText(w io.Writer) {
	fmt.Fprintf(w, "audience test against %s: %d hosts, %d viewers on one stage, %d joining at a time\n",
		r.Endpoint, r.Hosts, r.Viewers, r.Concurrency)
	fmt.Fprintf(w, "joins: %.1f s, %.0f joins/s; join (dial to first STAGE_STATE) ms p50 %.1f p90 %.1f p99 %.1f max %.1f\n",
		r.JoinSeconds, r.JoinsPerSec, r.JoinMs.P50, r.JoinMs.P90, r.JoinMs.P99, r.JoinMs.Max)
	fmt.Fprintf(w, "received by all sockets: %d B in %d messages (%d STAGE_STATE, %d SUBSCRIBER_COUNT); server CPU %.2f s\n",
		r.Bytes, r.Messages, r.StageStates, r.Counts, r.CPUSeconds)
	fmt.Fprintf(w, "the first viewer was last told: %d participants listed, subscriber count %d\n", r.LastListedLen, r.LastCount)
	fmt.Fprintf(w, "| joined | joins | seconds | bytes/join | server CPU ms/join | join p99 ms |\n|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range r.Checkpoints {
		fmt.Fprintf(w, "| %d | %d | %.1f | %.0f | %.2f | %.0f |\n", c.Joined, c.Joins, c.Seconds, c.BytesPerJoin, c.CPUmsPerJoin, c.JoinP99ms)
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}
