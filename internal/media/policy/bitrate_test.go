package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/ivs"
)

// feed sends a stream of rate bits/s in packets of 1200 bytes from t0 for d, calling burst (if any) to add
// extra bytes at given times; it returns the time the meter first reported a violation (zero if never).
func feed(m *BitrateMeter, t0 time.Time, d time.Duration, rate int64, burst func(at time.Duration) int) time.Duration {
	const pkt = 1200
	interval := time.Duration(float64(time.Second) * pkt * 8 / float64(rate))
	var next time.Duration
	for at := time.Duration(0); at < d; at += interval {
		n := pkt
		if burst != nil {
			n += burst(at)
		}
		if v := m.Add(n, t0.Add(at)); v != nil && next == 0 {
			next = at
		}
	}
	return next
}

func TestBitrateSustained(t *testing.T) {
	t0 := time.Now()
	m := NewBitrateMeter(8_500_000, 5*time.Second)
	// 9 Mbps from the start: caught once a whole window has been seen, not before.
	at := feed(m, t0, 10*time.Second, 9_000_000, nil)
	if at < 4750*time.Millisecond || at > 5250*time.Millisecond {
		t.Errorf("9 Mbps caught at %s, want about 5 s", at)
	}
	v := m.Violation()
	if v == nil || v.Code != ivs.ErrBitrateExceeded || !strings.Contains(v.Message, "averaged 9.0") {
		t.Errorf("violation %v", v)
	}
	if r := m.Rate(t0.Add(10 * time.Second)); r < 8_800_000 || r > 9_200_000 {
		t.Errorf("Rate = %d", r)
	}
}

func TestBitrateUnderLimit(t *testing.T) {
	t0 := time.Now()
	m := NewBitrateMeter(8_500_000, 5*time.Second)
	if at := feed(m, t0, 30*time.Second, 8_000_000, nil); at != 0 {
		t.Errorf("8 Mbps flagged at %s", at)
	}
	if r := m.Rate(t0.Add(30 * time.Second)); r < 7_800_000 || r > 8_200_000 {
		t.Errorf("Rate = %d", r)
	}
}

// Keyframes many times the average (a 400 KB IDR every 2 s over 6 Mbps) are bursts of hundreds of Mbps for
// a few milliseconds; the average stays under the limit and nothing is reported.
func TestBitrateKeyframeBursts(t *testing.T) {
	t0 := time.Now()
	m := NewBitrateMeter(8_500_000, 0)
	last := time.Duration(-1)
	burst := func(at time.Duration) int {
		if k := at / (2 * time.Second); k != last {
			last = k
			return 400_000
		}
		return 0
	}
	if at := feed(m, t0, 30*time.Second, 6_000_000, burst); at != 0 {
		t.Errorf("keyframe bursts flagged at %s", at)
	}
	// A burst in the first second over a quiet stream does not trip it either: no whole window yet, and
	// then it is averaged out.
	m = NewBitrateMeter(8_500_000, 0)
	m.Add(2_000_000, t0) // 16 Mbit at once
	if at := feed(m, t0, 20*time.Second, 1_000_000, nil); at != 0 {
		t.Errorf("opening burst flagged at %s", at)
	}
}

// Over the limit for less than a window, then back under: not a violation.
func TestBitrateShortExcursion(t *testing.T) {
	t0 := time.Now()
	m := NewBitrateMeter(8_500_000, 5*time.Second)
	if at := feed(m, t0, 10*time.Second, 4_000_000, nil); at != 0 {
		t.Fatal(at)
	}
	if at := feed(m, t0.Add(10*time.Second), 2*time.Second, 12_000_000, nil); at != 0 {
		t.Errorf("2 s at 12 Mbps flagged at %s", at)
	}
	if at := feed(m, t0.Add(12*time.Second), 10*time.Second, 4_000_000, nil); at != 0 {
		t.Errorf("flagged at %s", at)
	}
	// Staying at 12 Mbps is caught within a window.
	at := feed(m, t0.Add(22*time.Second), 10*time.Second, 12_000_000, nil)
	if at == 0 || at > 5*time.Second {
		t.Errorf("12 Mbps caught at %s", at)
	}
}

func TestBitrateGapsAndClock(t *testing.T) {
	t0 := time.Now()
	m := NewBitrateMeter(1_000_000, time.Second)
	if m.Rate(t0) != 0 {
		t.Error("rate before any data")
	}
	feed(m, t0, 2*time.Second, 800_000, nil)
	// A long silence empties the window.
	if r := m.Rate(t0.Add(time.Minute)); r != 0 {
		t.Errorf("rate after a minute of silence: %d", r)
	}
	// A clock going backwards counts in the current bucket rather than corrupting the ring.
	m.Add(1000, t0.Add(30*time.Second))
	// 8000 bits over 0.95 to 1 s (the window's buckets, the current one just begun).
	if r := m.Rate(t0.Add(time.Minute)); r < 8000 || r > 8422 {
		t.Errorf("rate = %d, want 8000-8421", r)
	}
	if m.Violation() != nil {
		t.Error(m.Violation())
	}
	// No limit: only measures.
	m = NewBitrateMeter(0, 0)
	if at := feed(m, t0, 10*time.Second, 100_000_000, nil); at != 0 || m.Rate(t0.Add(10*time.Second)) < 90_000_000 {
		t.Errorf("unlimited meter: %s, %d", at, m.Rate(t0.Add(10*time.Second)))
	}
	// A tiny window still works.
	m = NewBitrateMeter(1000, 10)
	if at := feed(m, t0, time.Millisecond, 10_000_000, nil); at == 0 {
		t.Error("tiny window never reported")
	}
}

func TestBitrateAllocations(t *testing.T) {
	m := NewBitrateMeterFor(IVS)
	now := time.Now()
	allocs := testing.AllocsPerRun(10000, func() {
		now = now.Add(time.Millisecond)
		m.Add(1200, now)
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per Add", allocs)
	}
}

func BenchmarkBitrateAdd(b *testing.B) {
	m := NewBitrateMeterFor(IVS)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(100 * time.Microsecond)
		m.Add(1200, now)
	}
}

func TestDuration(t *testing.T) {
	t0 := time.Now()
	if v := CheckDuration(IVS, t0, t0.Add(24*time.Hour)); v != nil {
		t.Errorf("exactly 24 h: %v", v)
	}
	v := CheckDuration(IVS, t0, t0.Add(24*time.Hour+time.Second))
	if v == nil || v.Code != ivs.ErrStreamDurationExceeded || !strings.Contains(v.Message, "24h0m1s") {
		t.Errorf("violation %v", v)
	}
	if d, ok := DurationDeadline(IVS, t0); !ok || !d.Equal(t0.Add(24*time.Hour)) {
		t.Errorf("deadline %v %v", d, ok)
	}
	unlimited := Open
	unlimited.MaxDuration = 0
	if CheckDuration(unlimited, t0, t0.Add(1000*time.Hour)) != nil {
		t.Error("no limit, yet a violation")
	}
	if _, ok := DurationDeadline(unlimited, t0); ok {
		t.Error("no limit, yet a deadline")
	}
}
