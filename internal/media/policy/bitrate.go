package policy

import (
	"time"

	"github.com/openstage/openstage/internal/ivs"
)

// bitrateBuckets is how finely the window is divided. The measured interval is between
// (bitrateBuckets−1)/bitrateBuckets of the window and the whole window, depending on where in the current
// bucket the measurement falls.
const bitrateBuckets = 20

// BitrateMeter measures a stream's bitrate over a sliding window and reports BITRATE_EXCEEDED when the
// average over a whole window is over the limit. Averaging over seconds, and judging only once a whole window
// has been seen, lets a keyframe (a burst several times the average, IVS recommends one every 1-2 s) pass while
// a stream that stays over the limit is caught within a window.
//
// Add is on the forwarding path and allocates nothing. A BitrateMeter is not safe for concurrent use.
type BitrateMeter struct {
	limit  int64 // bits per second; 0: measure only
	window time.Duration
	bucket time.Duration
	name   string

	started bool
	start   time.Time
	cur     int64 // index of the current bucket, counted from start
	buckets [bitrateBuckets]int64
	sum     int64 // bytes in buckets
	v       *Violation
}

// NewBitrateMeter makes a meter for a limit in bits per second (0: no limit, Rate still works) judged over
// window (0: DefaultBitrateWindow).
func NewBitrateMeter(limit int64, window time.Duration) *BitrateMeter {
	if window <= 0 {
		window = DefaultBitrateWindow
	}
	bucket := window / bitrateBuckets
	if bucket <= 0 {
		bucket = 1
	}
	return &BitrateMeter{limit: limit, window: bucket * bitrateBuckets, bucket: bucket}
}

// NewBitrateMeterFor makes a meter for a policy's MaxBitrate and BitrateWindow.
func NewBitrateMeterFor(p Policy) *BitrateMeter {
	m := NewBitrateMeter(p.MaxBitrate, p.bitrateWindow())
	m.name = p.Name
	return m
}

// advance moves the window to now, emptying the buckets that fell out of it.
func (m *BitrateMeter) advance(now time.Time) {
	if !m.started {
		m.started, m.start = true, now
		return
	}
	idx := int64(now.Sub(m.start) / m.bucket)
	if idx <= m.cur { // same bucket, or a clock that went backwards: count it in the current bucket
		return
	}
	steps := min(idx-m.cur, bitrateBuckets)
	for i := int64(1); i <= steps; i++ {
		b := &m.buckets[(m.cur+i)%bitrateBuckets]
		m.sum -= *b
		*b = 0
	}
	m.cur = idx
}

// Add counts n bytes (an RTP payload) received at now. It returns the violation once the average over a
// whole window has exceeded the limit, and keeps returning it.
func (m *BitrateMeter) Add(n int, now time.Time) *Violation {
	m.advance(now)
	if n > 0 {
		m.buckets[m.cur%bitrateBuckets] += int64(n)
		m.sum += int64(n)
	}
	if m.v == nil && m.limit > 0 && m.cur >= bitrateBuckets-1 {
		if rate := m.rate(now); rate > float64(m.limit) {
			m.v = violation(ivs.ErrBitrateExceeded, "the stream averaged %.2f Mbps over %s; %s allows %.2f Mbps",
				rate/1e6, m.window, policyText(m.name), float64(m.limit)/1e6)
		}
	}
	return m.v
}

// rate is the average in bits per second over the interval the buckets cover: from the start of the oldest
// bucket (or of the measurement) to now.
func (m *BitrateMeter) rate(now time.Time) float64 {
	if !m.started {
		return 0
	}
	oldest := max(m.cur-(bitrateBuckets-1), 0)
	span := now.Sub(m.start) - time.Duration(oldest)*m.bucket
	if span < m.bucket { // too short to mean anything; measure over one bucket at least
		span = m.bucket
	}
	return float64(m.sum) * 8 / span.Seconds()
}

// Rate returns the average bitrate in bits per second over the last window (or since the first Add, if that
// is shorter).
func (m *BitrateMeter) Rate(now time.Time) int64 {
	m.advance(now)
	return int64(m.rate(now))
}

// Violation returns the violation found, or nil.
func (m *BitrateMeter) Violation() *Violation { return m.v }
