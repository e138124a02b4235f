package peer

import (
	"bytes"
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

// TestSPSSize: the picture size is read from an SPS sent as a single NAL unit or inside a STAP-A, as the
// fixture's 320x180; other payloads (a slice, a FU-A, a truncated STAP-A) give none.
func TestSPSSize(t *testing.T) {
	var sps, pps []byte
	for _, nal := range bytes.Split(h264Fixture, []byte{0, 0, 1}) {
		nal = bytes.TrimRight(nal, "\x00") // the next unit's four-byte start code
		if len(nal) > 0 && nal[0]&0x1f == 7 && sps == nil {
			sps = nal
		}
		if len(nal) > 0 && nal[0]&0x1f == 8 && pps == nil {
			pps = nal
		}
	}
	if sps == nil || pps == nil {
		t.Fatal("the fixture has no SPS and PPS")
	}
	stap := append([]byte{24, byte(len(sps) >> 8), byte(len(sps))}, sps...)
	stap = append(append(stap, byte(len(pps)>>8), byte(len(pps))), pps...)
	for _, c := range []struct {
		name string
		p    []byte
		ok   bool
	}{
		{"SPS", sps, true},
		{"STAP-A of SPS and PPS", stap, true},
		{"PPS", pps, false},
		{"P slice", []byte{0x41, 0x9a, 0x00}, false},
		{"FU-A", []byte{0x7c, 0x85, 0x00}, false},
		{"truncated STAP-A", stap[:len(sps)/2], false},
		{"empty", nil, false},
	} {
		w, h, ok := spsSize(c.p)
		if ok != c.ok || (ok && (w != 320 || h != 180)) {
			t.Errorf("%s: %dx%d %v, want 320x180 %v", c.name, w, h, ok, c.ok)
		}
	}
}
