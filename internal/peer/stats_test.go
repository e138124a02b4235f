package peer

import (
	"math"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// TestSeqTrackerLossAndWrap: expected packets follow the extended sequence number across the 16-bit
// wrap; late and duplicate packets do not move it; loss is what is missing.
func TestSeqTrackerLossAndWrap(t *testing.T) {
	tr := newSeqTracker(90000)
	now := time.Now()
	seqs := []uint16{65530, 65531, 65533, 65534, 65535, 0, 1, 65532 /* late */, 1 /* duplicate */, 4}
	for _, s := range seqs {
		tr.update(&rtp.Header{SequenceNumber: s, Timestamp: 1000}, now)
	}
	st := tr.snapshot()
	// 65530 .. 4 (extended 65530 .. 65540) is 11 packets; 10 arrived (one twice), 2 and 3 never did.
	if st.Expected != 11 || st.Packets != 10 || st.Lost != 1 {
		t.Fatalf("%+v", st)
	}
}

// TestSeqTrackerJitter: packets sent every 20 ms and received every 20 ms have no jitter; received with
// alternating 0 and 10 ms of extra delay, the estimate converges towards 10 ms (RFC 3550 A.8).
func TestSeqTrackerJitter(t *testing.T) {
	for _, c := range []struct {
		extra  time.Duration
		lo, hi float64
	}{{0, 0, 1e-9}, {10 * time.Millisecond, 0.008, 0.0101}} {
		tr := newSeqTracker(48000)
		start := time.Now()
		for i := range 400 {
			arrival := start.Add(time.Duration(i) * 20 * time.Millisecond)
			if i%2 == 1 {
				arrival = arrival.Add(c.extra)
			}
			tr.update(&rtp.Header{SequenceNumber: uint16(i), Timestamp: uint32(i * 960)}, arrival)
		}
		if j := tr.snapshot().Jitter; j < c.lo || j > c.hi || math.IsNaN(j) {
			t.Errorf("extra delay %s: jitter %.6f s, want in [%g, %g]", c.extra, j, c.lo, c.hi)
		}
	}
}
