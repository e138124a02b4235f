package loadtest

import (
	"bytes"
	"strings"
	"testing"
)

// TestFloodStaysOnLoopback: a flood is sent to a loopback endpoint only, from a loopback address.
func TestFloodStaysOnLoopback(t *testing.T) {
	for _, tt := range []struct {
		endpoint, from string
		ok             bool
	}{
		{"http://127.0.0.1:8080", "", true},
		{"http://localhost:8080", "127.0.0.2", true},
		{"http://[::1]:8080", "127.0.0.3", true},
		{"http://192.0.2.1:8080", "", false},
		{"http://127.0.0.1:8080", "192.0.2.7", false},
		{"http://127.0.0.1:8080", "not-an-ip", false},
	} {
		c := FloodConfig{Config: Config{Endpoint: tt.endpoint, AccessKeyID: "k", SecretAccessKey: "s"}, AttackFrom: tt.from}
		err := c.floodDefaults()
		if (err == nil) != tt.ok {
			t.Errorf("%s from %q: %v", tt.endpoint, tt.from, err)
		}
		if err == nil && (c.AttackFrom == "" || c.Attackers == 0 || c.Subscribers == 0 || c.Publishers != 1) {
			t.Errorf("defaults: %+v", c)
		}
	}
}

// TestFloodReport: the ratios are flooded ÷ quiet, and the text shows every row.
func TestFloodReport(t *testing.T) {
	r := &FloodReport{Endpoint: "http://127.0.0.1:1", Attackers: 32, AttackRate: 2500, AttackFrom: "127.0.0.2", Subscribers: 2,
		Quiet: Phase{SubscriberJoin: Percentiles{N: 10, P50: 40, P90: 50}, EventsJoin: Percentiles{N: 10, P50: 5, P90: 10},
			Expected: 1000, Delivered: 1000, GetStage: Percentiles{N: 100, P50: 1, P99: 4}, ServerCores: 0.2},
		Flooded: Phase{SubscriberJoin: Percentiles{N: 10, P50: 44, P90: 60}, EventsJoin: Percentiles{N: 10, P50: 6, P90: 12},
			Expected: 1000, Delivered: 990, GetStage: Percentiles{N: 100, P50: 1.5, P99: 6}, ServerCores: 0.3,
			Attack: &AttackStats{Sent: 100, PerSecond: 10, Outcomes: map[string]int64{"whip 429": 60, "events 429": 30, "whip 401": 10}}},
	}
	r.ratios()
	x := r.Ratios
	near := func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
	if !near(x.SubscriberJoinP50, 1.1) || !near(x.SubscriberJoinP90, 1.2) || !near(x.EventsJoinP50, 1.2) || !near(x.Delivered, 0.99) ||
		!near(x.GetStageP99, 1.5) || !near(x.ServerCores, 1.5) {
		t.Fatalf("ratios %+v", x)
	}
	if (Phase{}).DeliveredRatio() != 1 || ratio(1, 0) != 0 {
		t.Error("empty phase")
	}
	var b bytes.Buffer
	r.WriteText(&b)
	for _, want := range []string{"subscriber join p50 ms", "events join p90 ms", "990/1000", "GetStage p99 ms", "server CPU",
		"attack: 100 bad requests", "events 429 ×30 whip 401 ×10 whip 429 ×60", "2500 bad requests/s offered"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the text lacks %q:\n%s", want, b.String())
		}
	}
}
