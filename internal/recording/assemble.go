package recording

import (
	"encoding/binary"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

// How RTP becomes samples: each track's packets are put back in order of arrival (the SFU forwards what it
// reads, so the recorder sees what subscribers see), its timestamps unwrapped, and its payloads depacketized
// by pion: H.264 into access units of AVC length-prefixed NAL units (RFC 6184 §5.6–5.8: single NAL unit,
// STAP-A, FU-A), Opus as it is (RFC 7587 §4.2: one Opus packet per RTP packet).

// clockRates are the RTP clocks of the two codecs (RFC 6184 §8.2.1, RFC 7587 §4.1).
const (
	videoClock = 90000
	audioClock = 48000
)

// NAL unit types (ITU-T H.264 Table 7-1) the recorder treats apart.
const (
	naluIDR    = 5
	naluSPS    = 7
	naluPPS    = 8
	naluAUD    = 9
	naluFiller = 12
	naluFUA    = 28 // RFC 6184 §5.8
)

// clock unwraps a track's 32-bit RTP timestamps (RFC 3550 §5.1) into a count that only grows with time,
// and notices lost packets by their sequence numbers.
type clock struct {
	started bool
	lastTS  uint32
	ext     int64 // timestamp units since the track's first packet
	lastSeq uint16
}

// advance takes the packet's header and returns its unwrapped timestamp and whether packets were lost
// just before it (a gap in sequence numbers; a reordered or repeated packet is a "gap" too, and dropped).
func (c *clock) advance(h *rtp.Header) (ext int64, gap bool) {
	if !c.started {
		c.started, c.lastTS, c.lastSeq = true, h.Timestamp, h.SequenceNumber
		return 0, false
	}
	gap = h.SequenceNumber != c.lastSeq+1
	c.lastSeq = h.SequenceNumber
	// A signed difference: a timestamp a little older than the last (a reordered packet) is negative.
	c.ext += int64(int32(h.Timestamp - c.lastTS))
	c.lastTS = h.Timestamp
	return c.ext, gap
}

// accessUnit is one H.264 picture: its NAL units in AVC form, parameter sets included (the sample entry is
// avc3, hls.Init), without access unit delimiters and filler data, and the parameter sets it carried.
type accessUnit struct {
	ts       int64 // unwrapped RTP timestamp
	sample   []byte
	idr      bool
	sps, pps []byte // the last of each the access unit carried, nil when none
}

// h264Assembler gathers a video track's packets into access units: packets of one RTP timestamp are one
// access unit (RFC 6184 §5.1), complete at the marker bit.
type h264Assembler struct {
	depack  codecs.H264Packet
	cur     accessUnit
	pending bool // cur has packets
	broken  bool // a packet of cur was lost: cur is dropped
	inFU    bool // inside a fragmented NAL unit (FU-A) whose start was seen
}

func newH264Assembler() *h264Assembler {
	a := &h264Assembler{}
	a.depack.IsAVC = true
	return a
}

// push takes one packet; it returns the access unit the packet completed, if any. gap reports packets lost
// before this one.
func (a *h264Assembler) push(p *rtp.Packet, ts int64, gap bool) (au accessUnit, ok bool) {
	if a.pending && ts != a.cur.ts {
		// A new timestamp without the last one's marker: the marker packet was lost.
		a.reset()
	}
	if gap {
		a.reset()
		a.broken = true
	}
	if !a.pending {
		a.cur = accessUnit{ts: ts}
		a.pending = true
	}
	if pl := p.Payload; len(pl) >= 2 && pl[0]&0x1f == naluFUA {
		// RFC 6184 §5.8: a fragment without the S bit continues a NAL unit; if its start was not seen (the
		// recording began in the middle of it), the NAL unit pion would assemble is its tail: broken.
		start, end := pl[1]&0x80 != 0, pl[1]&0x40 != 0
		if !start && !a.inFU {
			a.broken = true
		}
		a.inFU = !end
	}
	out, err := a.depack.Unmarshal(p.Payload)
	if err != nil {
		a.broken = true
	} else {
		a.add(out)
	}
	if !p.Marker {
		return accessUnit{}, false
	}
	au, broken := a.cur, a.broken
	a.reset()
	if broken || len(au.sample) == 0 {
		return accessUnit{}, false
	}
	return au, true
}

// reset drops the access unit being gathered, and any half of a fragmented NAL unit.
func (a *h264Assembler) reset() {
	a.cur, a.pending, a.broken, a.inFU = accessUnit{}, false, false, false
	a.depack = codecs.H264Packet{IsAVC: true}
}

// add sorts the length-prefixed NAL units pion returned.
func (a *h264Assembler) add(avc []byte) {
	for len(avc) >= 4 {
		n := int(binary.BigEndian.Uint32(avc))
		if n == 0 || 4+n > len(avc) {
			a.broken = true
			return
		}
		nalu := avc[4 : 4+n]
		switch nalu[0] & 0x1f {
		case naluAUD, naluFiller:
			// Not samples' business: the AUD is implied by the sample, filler data is padding.
		case naluSPS:
			a.cur.sps = append([]byte(nil), nalu...)
			a.cur.sample = append(a.cur.sample, avc[:4+n]...)
		case naluPPS:
			a.cur.pps = append([]byte(nil), nalu...)
			a.cur.sample = append(a.cur.sample, avc[:4+n]...)
		case naluIDR:
			a.cur.idr = true
			a.cur.sample = append(a.cur.sample, avc[:4+n]...)
		default:
			a.cur.sample = append(a.cur.sample, avc[:4+n]...)
		}
		avc = avc[4+n:]
	}
}
