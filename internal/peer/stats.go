package peer

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// StreamStats is what a subscriber measured on one received stream, in the terms of RFC 3550 §6.4.1 and
// appendix A.3 and A.8.
type StreamStats struct {
	// Packets is every RTP packet read, retransmissions included.
	Packets int64
	// Expected is how many packets the sequence numbers say were sent since the first one received:
	// extended highest sequence number - first + 1 (RFC 3550 A.3).
	Expected int64
	// Lost is Expected - Packets, clamped at 0 (duplicates can make Packets exceed Expected).
	Lost int64
	// Jitter is the interarrival jitter estimate (RFC 3550 A.8), in seconds.
	Jitter float64
}

// Add sums two streams' counts; the jitter kept is the larger (jitter does not add).
func (s StreamStats) Add(o StreamStats) StreamStats {
	return StreamStats{Packets: s.Packets + o.Packets, Expected: s.Expected + o.Expected, Lost: s.Lost + o.Lost,
		Jitter: max(s.Jitter, o.Jitter)}
}

// seqTracker follows one stream's sequence numbers and transit times. update runs on the stream's read
// goroutine, snapshot on any; a mutex that is almost never contended keeps the two apart.
type seqTracker struct {
	mu        sync.Mutex
	clockRate float64
	started   bool
	base      uint32 // first sequence number, extended
	maxSeq    uint16
	cycles    uint32 // wraps of the 16-bit sequence number, times 65536
	packets   int64
	lastTrans float64 // transit time of the previous packet, in RTP clock units
	jitter    float64 // in RTP clock units, as RFC 3550 A.8 keeps it
	origin    time.Time
}

func newSeqTracker(clockRate uint32) *seqTracker {
	if clockRate == 0 {
		clockRate = 90000
	}
	return &seqTracker{clockRate: float64(clockRate), origin: time.Now()}
}

// update counts a packet received at now.
func (t *seqTracker) update(h *rtp.Header, now time.Time) {
	arrival := now.Sub(t.origin).Seconds() * t.clockRate
	t.mu.Lock()
	defer t.mu.Unlock()
	t.packets++
	transit := arrival - float64(h.Timestamp)
	if !t.started {
		t.started = true
		t.base, t.maxSeq, t.lastTrans = uint32(h.SequenceNumber), h.SequenceNumber, transit
		return
	}
	// A.1: a sequence number ahead of the highest by less than half the space is new, possibly after a
	// wrap; anything else is late, a duplicate or a retransmission and leaves the highest alone.
	if delta := h.SequenceNumber - t.maxSeq; delta != 0 && delta < 1<<15 {
		if h.SequenceNumber < t.maxSeq {
			t.cycles += 1 << 16
		}
		t.maxSeq = h.SequenceNumber
	}
	// A.8: J += (|D| - J) / 16, with D the difference of the transit times of consecutive packets. The
	// timestamp wraps with uint32 arithmetic when it is converted, so compare modulo 2^32.
	d := transit - t.lastTrans
	for d > 1<<31 {
		d -= 1 << 32
	}
	for d < -(1 << 31) {
		d += 1 << 32
	}
	t.lastTrans = transit
	if d < 0 {
		d = -d
	}
	t.jitter += (d - t.jitter) / 16
}

func (t *seqTracker) snapshot() StreamStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.started {
		return StreamStats{}
	}
	expected := int64(t.cycles+uint32(t.maxSeq)) - int64(t.base) + 1
	return StreamStats{Packets: t.packets, Expected: expected, Lost: max(expected-t.packets, 0), Jitter: t.jitter / t.clockRate}
}

// sendCounter is an interceptor that counts the RTP packets a publisher sends, per kind, before any
// retransmission: it is registered after the NACK responder, so it wraps the tracks' writes and sees
// each original packet once.
type sendCounter struct {
	interceptor.NoOp
	video, audio *atomic.Int64
}

func (c *sendCounter) NewInterceptor(string) (interceptor.Interceptor, error) { return c, nil }

func (c *sendCounter) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	n := c.audio
	if strings.HasPrefix(strings.ToLower(info.MimeType), "video/") {
		n = c.video
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		written, err := w.Write(h, payload, a)
		if err == nil {
			n.Add(1)
		}
		return written, err
	})
}
