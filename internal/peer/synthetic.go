package peer

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
)

const (
	defaultPacketSize = 1200
	rtpHeaderSize     = 12
	fillerNAL         = 12 // H.264 filler data (ITU-T H.264 §7.3.2.7): decoders drop it
)

var (
	accessUnitsOnce sync.Once
	accessUnits     [][]byte // the fixture's frames, Annex-B, SPS and PPS in front of each IDR
)

// fixtureAccessUnits splits the H.264 fixture into access units, once.
func fixtureAccessUnits() [][]byte {
	accessUnitsOnce.Do(func() { accessUnits = splitAccessUnits(h264Fixture) })
	return accessUnits
}

// splitAccessUnits splits an Annex-B H.264 stream with one slice per picture into access units, each with
// the parameter sets that came before its slice; it stops at the first error.
func splitAccessUnits(src []byte) [][]byte {
	r, err := h264reader.NewReader(bytes.NewReader(src))
	if err != nil {
		return nil
	}
	var aus [][]byte
	var au []byte
	for {
		nal, err := r.NextNAL()
		if err != nil { // io.EOF at the end
			return aus
		}
		au = append(au, 0, 0, 0, 1)
		au = append(au, nal.Data...)
		if nal.UnitType == h264reader.NalUnitTypeCodedSliceIdr || nal.UnitType == h264reader.NalUnitTypeCodedSliceNonIdr {
			aus = append(aus, au)
			au = nil
		}
	}
}

// sendSynthetic sends rate packets per second of size bytes on track: the fixture's frames at 15 fps,
// packetized at size, and filler NAL units in between to make up the rate. Timestamps follow the send
// clock (90 kHz), so a subscriber's jitter measures the network and the SFU, not the pacing.
func (p *Publisher) sendSynthetic(track *webrtc.TrackLocalStaticRTP, rate, size int) {
	defer p.wg.Done()
	if !p.waitToSend() {
		return
	}
	if size <= rtpHeaderSize+2 {
		size = defaultPacketSize
	}
	frames := fixtureAccessUnits()
	payloader := &codecs.H264Payloader{}
	filler := make([]byte, size-rtpHeaderSize)
	filler[0] = fillerNAL
	for i := 1; i < len(filler)-1; i++ {
		filler[i] = 0xff
	}
	filler[len(filler)-1] = 0x80 // rbsp_trailing_bits

	seq := uint16(rand.Uint32())
	pkt := rtp.Packet{Header: rtp.Header{Version: 2}}
	write := func(payload []byte, ts uint32, marker bool) bool {
		pkt.SequenceNumber, pkt.Timestamp, pkt.Marker, pkt.Payload = seq, ts, marker, payload
		seq++
		return track.WriteRTP(&pkt) == nil
	}

	const frameEvery = time.Second / 15
	// Packets go out in bursts every 5 ms, as a browser's pacer sends them; one packet per wakeup would
	// cost both ends a wakeup per packet, which a real sender does not.
	period := max(5*time.Millisecond, time.Second/time.Duration(rate))
	tick := time.NewTicker(period)
	defer tick.Stop()
	start := time.Now()
	tsBase := rand.Uint32()
	sent, frame := 0, 0
	maxLag := max(rate/25, 1) // 40 ms of packets
	for {
		select {
		case <-p.closed:
			return
		case <-p.stopSend:
			return
		case <-tick.C:
		}
		elapsed := time.Since(start)
		ts := tsBase + uint32(elapsed.Seconds()*90000)
		if len(frames) > 0 && time.Duration(frame)*frameEvery <= elapsed {
			payloads := payloader.Payload(uint16(size-rtpHeaderSize), frames[frame%len(frames)])
			for i, pl := range payloads {
				if !write(pl, ts, i == len(payloads)-1) {
					return
				}
			}
			sent += len(payloads)
			frame++
			p.SentVideo.Add(1)
		}
		// Catch up to the rate: a late tick sends more, so the average holds; but a sender starved for
		// longer than maxLag skips what it missed rather than flood the network in one burst.
		due := int(elapsed.Seconds() * float64(rate))
		if lag := due - sent; lag > maxLag {
			sent = due - maxLag
		}
		for ; sent < due; sent++ {
			if !write(filler, ts, false) {
				return
			}
		}
	}
}
