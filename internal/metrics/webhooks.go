package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Webhooks measures the webhooks' deliveries (internal/notify). Its endpoint label takes the names of the
// config file's endpoints, a closed set fixed at start.
type Webhooks struct {
	deliveries *prometheus.CounterVec
	lag        *prometheus.HistogramVec
	depth      *prometheus.GaugeVec
}

// Webhooks registers the webhook metrics for the configured endpoints.
func (m *Metrics) Webhooks(endpoints []string) *Webhooks {
	w := &Webhooks{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "openstage_webhook_deliveries_total",
			Help: "Webhook delivery attempts by endpoint and result: delivered, failed (retried) or dead (a dead letter)."},
			[]string{"endpoint", "result"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "openstage_webhook_delivery_lag_seconds",
			Help:    "Time from a notification to its delivery, by endpoint.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800}}, []string{"endpoint"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "openstage_webhook_outbox_depth",
			Help: "Notifications an endpoint has not dealt with yet, as its deliverer last saw."}, []string{"endpoint"}),
	}
	m.reg.MustRegister(w.deliveries, w.lag, w.depth)
	for _, e := range endpoints {
		for _, r := range []string{"delivered", "failed", "dead"} {
			w.deliveries.WithLabelValues(e, r)
		}
		w.depth.WithLabelValues(e)
	}
	return w
}

// Delivery counts one attempt's result (notify.Observer).
func (w *Webhooks) Delivery(endpoint, result string, lag time.Duration) {
	w.deliveries.WithLabelValues(endpoint, result).Inc()
	if result == "delivered" {
		w.lag.WithLabelValues(endpoint).Observe(lag.Seconds())
	}
}

// Depth sets an endpoint's outbox depth (notify.Observer).
func (w *Webhooks) Depth(endpoint string, n int64) { w.depth.WithLabelValues(endpoint).Set(float64(n)) }
