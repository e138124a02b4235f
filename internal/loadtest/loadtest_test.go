package loadtest

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/peer"
)

func TestParseMetrics(t *testing.T) {
	s, err := parseMetrics(strings.NewReader(`# HELP openstage_forwarded_packets_total RTP packets sent to subscribers.
# TYPE openstage_forwarded_packets_total counter
openstage_forwarded_packets_total 1.2345e+06
openstage_forwarded_bytes_total 1000
process_cpu_seconds_total 12.5
openstage_api_requests_total{operation="GetStage",error_type=""} 3
openstage_received_packets_total{a="}{"} 7
openstage_received_packets_total{a="b"} 3
openstage_forwarded_packets_totalx 99
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{mForwardedPackets: 1234500, mForwardedBytes: 1000, mCPU: 12.5, mReceivedPackets: 10}
	for k, v := range want {
		if s.Values[k] != v {
			t.Errorf("%s = %v, want %v", k, s.Values[k], v)
		}
	}
	if len(s.Values) != len(want) {
		t.Errorf("parsed %v", s.Values)
	}
}

// TestReportFigures: expected is what each publisher sent in the window once per subscriber, delivered
// what the subscribers got, and the server's CPU per packet the ratio of the two counters' deltas.
func TestReportFigures(t *testing.T) {
	c0 := counts{sent: []int64{100, 50}, recv: [][]peer.StreamStats{{{Packets: 90}, {Packets: 95}}, {{Packets: 40}}}}
	c1 := counts{sent: []int64{1100, 550}, recv: [][]peer.StreamStats{
		{{Packets: 1090, Lost: 2, Jitter: 0.001}, {Packets: 1095, Jitter: 0.003}}, {{Packets: 530, Jitter: 0.002}}}}
	r := &Report{}
	r.media(c0, c1)
	if r.Expected != 2*1000+500 || r.Delivered != 1000+1000+490 || r.SeqLost != 2 {
		t.Fatalf("%+v", r)
	}
	if r.Loss < 0.0039 || r.Loss > 0.0041 || r.JitterMaxMs != 3 || r.JitterMeanMs < 1.99 || r.JitterMeanMs > 2.01 {
		t.Fatalf("loss %v jitter %v / %v", r.Loss, r.JitterMeanMs, r.JitterMaxMs)
	}
	at := time.Now()
	m0 := Scrape{At: at, Values: map[string]float64{mForwardedPackets: 0, mCPU: 1, mForwardedBytes: 0, mReceivedPackets: 0}}
	m1 := Scrape{At: at.Add(2 * time.Second), Values: map[string]float64{mForwardedPackets: 100000, mCPU: 2, mForwardedBytes: 1.2e8, mReceivedPackets: 10000}}
	r.server(m0, m1)
	s := r.Server
	if s.ForwardedPerSecond != 50000 || s.CPUPerPacket != 1e-5 || math.Abs(s.PacketsPerCoreSecond-100000) > 1e-6 || s.Cores != 0.5 || s.ForwardedBitrate != 4.8e8 {
		t.Fatalf("%+v", s)
	}
	// Memory: the medians of the window's gauges less the reading before the subscribers, per subscription.
	before := Scrape{Values: map[string]float64{mRSS: 40 << 20, mHeapInuse: 10 << 20, mStackInuse: 1 << 20, mGoroutines: 20}}
	window := []Scrape{
		{Values: map[string]float64{mRSS: 60 << 20, mHeapInuse: 30 << 20, mStackInuse: 2 << 20, mGoroutines: 120}},
		{Values: map[string]float64{mRSS: 50 << 20, mHeapInuse: 20 << 20, mStackInuse: 2 << 20, mGoroutines: 120}},
		{Values: map[string]float64{mRSS: 99 << 20, mHeapInuse: 15 << 20, mStackInuse: 3 << 20, mGoroutines: 121}},
	}
	r.memory(before, window, 10)
	m := r.Memory
	if m.RSSAfter != 60<<20 || m.RSSPerSubscription != 2<<20 || m.HeapPerSubscription != 1<<20 || m.StackPerSubscription != float64(1<<20)/10 ||
		m.GoroutinesPerSubscription != 10 {
		t.Fatalf("%+v", m)
	}
	r.SubscriberJoinRate = 12.5
	var out bytes.Buffer
	r.WriteText(&out)
	for _, want := range []string{"10.00 µs per forwarded packet", "subscriber joins   12.5/s",
		"server memory per subscription  2048 KB RSS (40.0 → 60.0 MB for 10 subscriptions); Go heap in use 1024 KB, stacks 102 KB; 10.0 goroutines (20 → 120)"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("no %q in the report:\n%s", want, out.String())
		}
	}
}
