// Package metrics is openstage's Prometheus instrumentation (docs/DESIGN.md §8): what the API, the media plane and
// the stage domain do, and the process's CPU, served at /metrics. Counters on the forwarding hot path are
// the SFU's own atomics, read here only when scraped.
package metrics

import (
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/openstage/openstage/internal/awserr"
	"github.com/openstage/openstage/internal/cluster"
	"github.com/openstage/openstage/internal/media"
	"github.com/openstage/openstage/internal/recording"
	"github.com/openstage/openstage/internal/token"
)

// Label values come from closed sets only, never from what a client sent: a label value must be valid
// UTF-8 (client_golang panics otherwise), and every distinct value is a series kept for the life of the
// process, so a client's string as a label would let anyone crash a handler or grow the registry without
// bound. Anything outside a set is counted under one fixed value.
const (
	// UnknownOperation labels API calls whose path names no operation of the model.
	UnknownOperation = "unknown"
	// Other labels an error type or a refusal reason outside the known sets.
	Other = "other"
)

// errorTypes are the API error types counted by name: the error table's (awserr), model shapes and AWS common
// authentication errors alike; "" is success. TestErrorTypesCoverTheTable keeps it in step with awserr.
var errorTypes = []awserr.Type{"",
	awserr.Validation, awserr.AccessDenied, awserr.ResourceNotFound, awserr.Conflict, awserr.ServiceQuotaExceeded,
	awserr.InternalServer, awserr.PendingVerification, awserr.MissingAuthenticationToken, awserr.UnrecognizedClient,
	awserr.InvalidSignature, awserr.IncompleteSignature, awserr.UnknownOperation,
}

// rejectReasons are the token refusal labels the transports report, per transport: token.Reason for an
// invalid token, each transport's own (whip.go's authenticate, events.go's authenticate and refusalOf), and
// "throttled" for an address refused by admission before its token was read (server.go's routes). A reason
// added there and not here is counted as Other.
var rejectReasons = map[string][]string{
	"whip": append(tokenReasons(), "missing", "stage_not_found", "revoked", "throttled"),
	"events": append(tokenReasons(), "missing_token", "stage_not_found", "revoked", "stage_mismatch", "quota_exceeded",
		"internal", "unavailable", "throttled"),
}

func tokenReasons() []string {
	var r []string
	for _, x := range []token.Reason{token.Malformed, token.BadAlgorithm, token.UnknownKey, token.BadSignature, token.Expired,
		token.NotYetValid, token.TooLong, token.BadClaims} {
		r = append(r, string(x))
	}
	return r
}

// Metrics holds the collectors of one server.
type Metrics struct {
	reg         *prometheus.Registry
	apiRequests *prometheus.CounterVec
	apiLatency  *prometheus.HistogramVec
	rejected    *prometheus.CounterVec
	// operations and errorTypes map an accepted value to its label value, interned, so that a series
	// never holds on to a request's memory either.
	operations map[string]*apiOperation
	errorTypes map[string]string
}

// apiOperation is one operation's label value and the series its successful calls count in, resolved
// at the first: a WithLabelValues per call (hashing the labels, a locked lookup) was 2-3% of a
// GetParticipant.
type apiOperation struct {
	name     string
	once     sync.Once
	requests prometheus.Counter
	latency  prometheus.Observer
}

// Sources are what the metrics describe; the functions are read at scrape time.
type Sources struct {
	// Operations are the API operations counted by name (api.Operations: every operation of the model);
	// any other operation is counted as UnknownOperation.
	Operations []string
	SFU        *media.SFU
	// Live returns sessions, participants and publishers live on this node.
	Live func() (sessions, participants, publishers int)
	// Stages counts stored stages.
	Stages func() int
	// ParticipantCache, when the store has one (readcache), returns its hits and misses.
	ParticipantCache func() (hits, misses uint64)
	// Cluster, on a node sharing PostgreSQL with others, reads its cluster counters.
	Cluster func() cluster.Stats
	// Recording is the recorders' counters (docs/DESIGN.md §7).
	Recording *recording.Metrics
}

// New registers every collector.
func New(src Sources) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg:        reg,
		operations: map[string]*apiOperation{UnknownOperation: {name: UnknownOperation}},
		errorTypes: map[string]string{Other: Other},
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "openstage_api_requests_total",
			Help: "API requests by operation and AWS error type (\"\" for success)."}, []string{"operation", "error_type"}),
		apiLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "openstage_api_request_duration_seconds",
			Help:    "API request latency by operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"operation"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "openstage_rejected_tokens_total",
			Help: "Participant tokens refused, by transport and reason."}, []string{"transport", "reason"}),
	}
	reg.MustRegister(m.apiRequests, m.apiLatency, m.rejected,
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	for _, op := range src.Operations {
		m.operations[op] = &apiOperation{name: op}
	}
	for _, t := range errorTypes {
		m.errorTypes[string(t)] = string(t)
	}
	// The refusal counters are few and what an operator alerts on, so they exist from the start at 0
	// (a rate over a series that appears only with its first increment misses that increment). The API's
	// are created on first use: operations × error types, with their histograms, would be over 1,200 zero
	// lines in every scrape, and the sets above bound them all the same.
	for transport, reasons := range rejectReasons {
		for _, r := range append(slices.Clone(reasons), Other) {
			m.rejected.WithLabelValues(transport, r)
		}
	}
	if src.SFU != nil {
		st := src.SFU.Stats()
		counter := func(name, help string, f func() uint64) prometheus.Collector {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
		}
		reg.MustRegister(
			counter("openstage_forwarded_packets_total", "RTP packets sent to subscribers (one per subscriber).", st.ForwardedPackets.Load),
			counter("openstage_forwarded_bytes_total", "RTP bytes sent to subscribers.", st.ForwardedBytes.Load),
			counter("openstage_received_packets_total", "RTP packets received from publishers.", st.ReceivedPackets.Load),
			counter("openstage_received_bytes_total", "RTP bytes received from publishers.", st.ReceivedBytes.Load),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "openstage_media_publishers", Help: "Publishers on this node's SFU."},
				func() float64 { p, _ := src.SFU.Counts(); return float64(p) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "openstage_media_subscriptions", Help: "Subscriptions on this node's SFU."},
				func() float64 { _, s := src.SFU.Counts(); return float64(s) }),
		)
		for _, t := range media.Transports() {
			reg.MustRegister(connections(st, t))
		}
		reg.MustRegister(counter("openstage_media_subscriptions_detached_total",
			"Subscriptions that left pion's connection for openstage's own endpoint once established (the direct send path, the default).", st.Detached.Load))
		reg.MustRegister(counter("openstage_media_layer_switches_total",
			"Times a subscriber moved from one simulcast layer of its publisher's video to another.", st.LayerSwitches.Load))
		for i, name := range []string{"low", "mid", "high"} {
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "openstage_media_layer_subscribers",
				Help:        "Subscriptions to simulcast publishers by the layer they receive: the lowest, one in between, the highest.",
				ConstLabels: prometheus.Labels{"layer": name}},
				func() float64 { n := [3]int{}; n[0], n[1], n[2] = src.SFU.LayerSubscribers(); return float64(n[i]) }))
		}
	}
	if src.Live != nil {
		gauge := func(name, help string, pick func(a, b, c int) int) prometheus.Collector {
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(pick(src.Live())) })
		}
		reg.MustRegister(
			gauge("openstage_sessions_active", "Stage sessions live on this node.", func(a, _, _ int) int { return a }),
			gauge("openstage_participants_connected", "Connected participants on this node.", func(_, b, _ int) int { return b }),
			gauge("openstage_publishers", "Publishing participants on this node.", func(_, _, c int) int { return c }),
		)
	}
	if src.Stages != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "openstage_stages", Help: "Stages stored."},
			func() float64 { return float64(src.Stages()) }))
	}
	if src.ParticipantCache != nil {
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "openstage_participant_cache_hits_total",
				Help: "GetParticipant reads answered from the node's participant cache."},
				func() float64 { h, _ := src.ParticipantCache(); return float64(h) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "openstage_participant_cache_misses_total",
				Help: "GetParticipant reads that went to the store."},
				func() float64 { _, m := src.ParticipantCache(); return float64(m) }),
		)
	}
	if r := src.Recording; r != nil {
		rc := func(name, help string, f func() uint64) prometheus.Collector {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
		}
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "openstage_recordings_active",
				Help: "Participant recordings in progress on this node (reconnect windows included)."},
				func() float64 { return float64(r.Active.Load()) }),
			rc("openstage_recordings_started_total", "Participant recordings started.", r.Started.Load),
			rc("openstage_recordings_failed_total", "Participant recordings that ended FAILED.", r.Failed.Load),
			rc("openstage_recording_bytes_written_total", "Bytes of recording objects written (segments, playlists, events, thumbnails).", r.BytesWritten.Load),
			rc("openstage_recording_storage_errors_total", "Recording object writes the bucket refused or that timed out.", r.StorageErrors.Load),
		)
	}
	if src.Cluster != nil {
		cf := func(name, help string, f func(cluster.Stats) uint64) prometheus.Collector {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f(src.Cluster())) })
		}
		reg.MustRegister(
			cf("openstage_cluster_heartbeats_total", "Heartbeats this node wrote to the registry.", func(s cluster.Stats) uint64 { return s.Heartbeats }),
			cf("openstage_cluster_heartbeat_failures_total", "Heartbeats that failed.", func(s cluster.Stats) uint64 { return s.HeartbeatFailures }),
			cf("openstage_cluster_takeovers_total", "Stages this node claimed (no live owner, or a dead one).", func(s cluster.Stats) uint64 { return s.Takeovers }),
			cf("openstage_cluster_fences_total", "Times this node gave up its stages for lack of heartbeats.", func(s cluster.Stats) uint64 { return s.Fences }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "openstage_cluster_owned_stages", Help: "Stages whose lease this node holds."},
				func() float64 { return float64(src.Cluster().Owned) }),
		)
		for _, r := range cluster.Routes() {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "openstage_cluster_forwarded_requests_total",
				Help: "Client requests this node forwarded to a stage's owner, by route.", ConstLabels: prometheus.Labels{"route": r}},
				func() float64 { return float64(src.Cluster().Forwarded[r]) }))
		}
	}
	return m
}

// connections is the counter of peer connections that connected over one transport (the protocol of ICE's
// selected candidate pair): the share of ICE-TCP says how many clients have UDP blocked.
func connections(st *media.Stats, t media.Transport) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "openstage_media_connections_total",
		Help:        "Media peer connections (publishers and subscribers) that connected, by the transport ICE selected.",
		ConstLabels: prometheus.Labels{"transport": t.String()}},
		func() float64 { return float64(st.Connections[t].Load()) })
}

// ObserveAPI records one API call: op outside Sources.Operations counts as UnknownOperation, an error type
// outside the error table as Other.
func (m *Metrics) ObserveAPI(op, errorType string, d time.Duration) {
	o, ok := m.operations[op]
	if !ok {
		o = m.operations[UnknownOperation]
	}
	if errorType == "" {
		o.once.Do(func() {
			o.requests, o.latency = m.apiRequests.WithLabelValues(o.name, ""), m.apiLatency.WithLabelValues(o.name)
		})
		o.requests.Inc()
		o.latency.Observe(d.Seconds())
		return
	}
	e, ok := m.errorTypes[errorType]
	if !ok {
		e = Other
	}
	m.apiRequests.WithLabelValues(o.name, e).Inc()
	m.apiLatency.WithLabelValues(o.name).Observe(d.Seconds())
}

// Rejected returns the token-refusal counter of one transport ("whip" or "events"; any other is counted
// as Other). A reason that transport does not report is counted as Other.
func (m *Metrics) Rejected(transport string) func(reason string) {
	reasons, ok := rejectReasons[transport]
	if !ok {
		transport, reasons = Other, nil
	}
	counters := map[string]prometheus.Counter{}
	for _, r := range append(slices.Clone(reasons), Other) {
		counters[r] = m.rejected.WithLabelValues(transport, r)
	}
	other := counters[Other]
	return func(reason string) {
		if c, ok := counters[reason]; ok {
			c.Inc()
			return
		}
		other.Inc()
	}
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
