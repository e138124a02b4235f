// Package metrics is openstage's Prometheus instrumentation (SPEC §8): what the API, the media plane and
// the stage domain do, and the process's CPU, served at /metrics. Counters on the forwarding hot path are
// the SFU's own atomics, read here only when scraped.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/openstage/openstage/internal/media"
)

// Metrics holds the collectors of one server.
type Metrics struct {
	reg          *prometheus.Registry
	apiRequests  *prometheus.CounterVec
	apiLatency   *prometheus.HistogramVec
	rejected     *prometheus.CounterVec
	stagesCreate prometheus.Counter
}

// Sources are read at scrape time.
type Sources struct {
	SFU *media.SFU
	// Live returns sessions, participants and publishers live on this node.
	Live func() (sessions, participants, publishers int)
	// Stages counts stored stages.
	Stages func() int
	// ParticipantCache, when the store has one (readcache), returns its hits and misses.
	ParticipantCache func() (hits, misses uint64)
}

// New registers every collector.
func New(src Sources) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
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
	return m
}

// ObserveAPI records one API call.
func (m *Metrics) ObserveAPI(op, errorType string, d time.Duration) {
	m.apiRequests.WithLabelValues(op, errorType).Inc()
	m.apiLatency.WithLabelValues(op).Observe(d.Seconds())
}

// Rejected returns the token-refusal counter of one transport.
func (m *Metrics) Rejected(transport string) func(reason string) {
	return func(reason string) { m.rejected.WithLabelValues(transport, reason).Inc() }
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
