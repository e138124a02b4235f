package recording

import (
	"bytes"
	"fmt"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/openstage/openstage/internal/recording/hls"
)

// The writer is the recorder's goroutine's state: it turns packets into segments and writes them.
//
// Time: every sample has a place on the recording's timeline, a duration since an origin the recorder
// chooses. A track's first packet of a publish is placed by its arrival (the publish's first packet
// arrives at the run's offset), the following ones by their RTP timestamps; so audio and video line up to
// within their arrival jitter, without RTCP sender reports. Output time 0 is the first keyframe (the
// recording starts at one; what came before cannot be decoded), or the first audio packet of an audio-only
// recording. A later publish of the reconnect window starts where the last segment ended.
//
// Crash safety (SPEC §7 "nothing acknowledged is lost"): a segment is written before the playlist that
// lists it, and the playlist is rewritten after every segment, so a process killed at any moment leaves a
// playlist whose every segment exists (recovery, Finish, adds the EXT-X-ENDLIST).

type vframe struct {
	t      int64 // timeline, 90 kHz
	sample []byte
	idr    bool
}

type aframe struct {
	t    int64 // timeline, 48 kHz
	data []byte
}

// The segment-cutting rule: a segment ends at the first keyframe at least cutSlack short of the target
// (so a stream whose keyframes fall exactly on the target cuts there, not one GOP later), and a segment
// that reaches the target without one asks the publisher for a keyframe (PLI).
const (
	cutSlack          = 250 * time.Millisecond
	keyframeRetry     = time.Second
	defaultOpusFrame  = 960 // 20 ms at 48 kHz, WebRTC's usual Opus packet (RFC 7587 §4.2)
	audioOnlyFallback = 2 * time.Second
)

type writer struct {
	r      *Recorder
	state  State
	failed bool

	// The current publish (run).
	gen       uint32
	runs      int
	runStart  time.Time
	runOffset time.Duration // timeline position of the run's first packet
	vclk      clock
	aclk      clock
	vbase     int64 // timeline (90 kHz) of the run's video timestamp 0
	abase     int64 // timeline (48 kHz) of the run's audio timestamp 0
	vstarted  bool
	astarted  bool
	asm       *h264Assembler
	opus      codecs.OpusPacket
	waitKey   bool
	lastKeyRq time.Time

	zeroSet   bool
	zero      time.Duration // timeline position of output time 0
	videoSeen bool          // a video packet arrived (AUDIO_VIDEO)
	audioOnly bool          // AUDIO_ONLY, or AUDIO_VIDEO from a publisher that sends no video
	early     []aframe      // audio before the first keyframe, kept while it is unclear whether video comes

	sps, pps      []byte
	tracks        hls.Tracks
	initName      string
	inits         int
	needInit      bool
	discontinuity bool

	vframes []vframe
	aframes []aframe
	keyAsk  bool // a keyframe was asked for in this segment

	playlist  hls.MediaPlaylist
	segments  int
	peakBps   int
	end       time.Duration // timeline end of the last segment written
	wroteMV   bool
	mvBps     int
	thumbs    *thumbnailer
	thumbNext time.Duration // output time of the next thumbnail
}

func newWriter(r *Recorder) *writer {
	return &writer{r: r, state: StateStarting, audioOnly: !r.cfg.Video,
		playlist: hls.MediaPlaylist{Target: r.cfg.Target}, thumbs: newThumbnailer(r)}
}

func (w *writer) setState(s State) {
	if w.state == s {
		return
	}
	w.state = s
	if w.r.cfg.OnState != nil {
		w.r.cfg.OnState(s)
	}
}

// started writes recording-started.json.
func (w *writer) started() error {
	if t := w.r.cfg.Thumbnails; t.Interval > 0 && w.r.cfg.Video && w.r.cfg.FFmpeg == "" {
		w.r.log.Warn("recording: the stage asks for thumbnails but this server has no ffmpeg: recording without them")
	}
	b, err := w.r.event("recording_started", w.r.eventMedia(nil), "")
	if err != nil {
		return err
	}
	return w.r.put(keyStarted, b, "application/json")
}

func units(d time.Duration, clock int64) int64 {
	return (int64(d)*clock + int64(time.Second)/2) / int64(time.Second)
}

func duration(u, clock int64) time.Duration {
	return time.Duration(u * int64(time.Second) / clock)
}

// packet records one packet of publish gen, which arrived at at.
func (w *writer) packet(gen uint32, video bool, at time.Time, p *rtp.Packet) error {
	if gen != w.gen {
		if err := w.newRun(gen, at); err != nil {
			return err
		}
	}
	if video {
		w.videoSeen = true
		ext, gap := w.vclk.advance(&p.Header)
		if !w.vstarted {
			w.vstarted = true
			w.vbase = units(w.runOffset+at.Sub(w.runStart), videoClock) - ext
		}
		if gap && w.asm != nil {
			w.lostVideo()
		}
		if w.audioOnly {
			return nil
		}
		au, ok := w.asm.push(p, w.vbase+ext, gap)
		if !ok {
			return nil
		}
		return w.frame(au)
	}
	ext, _ := w.aclk.advance(&p.Header)
	if !w.astarted {
		w.astarted = true
		w.abase = units(w.runOffset+at.Sub(w.runStart), audioClock) - ext
	}
	payload, err := w.opus.Unmarshal(p.Payload)
	if err != nil || len(payload) == 0 {
		return nil
	}
	return w.audio(aframe{t: w.abase + ext, data: append([]byte(nil), payload...)})
}

// newRun starts publish gen: its timestamps start again, and a segment after a first one continues the
// recording after a discontinuity (RFC 8216 §4.3.2.3) with its own initialization segment.
func (w *writer) newRun(gen uint32, at time.Time) error {
	if len(w.vframes) > 0 || len(w.aframes) > 0 {
		if err := w.endRun(); err != nil {
			return err
		}
	}
	w.runs++
	w.gen, w.runStart = gen, at
	w.runOffset = w.end
	if !w.zeroSet {
		w.runOffset = 0
	}
	w.vclk, w.aclk = clock{}, clock{}
	w.vstarted, w.astarted = false, false
	w.asm = newH264Assembler()
	w.opus = codecs.OpusPacket{}
	w.waitKey = true
	w.lastKeyRq = time.Time{}
	if w.segments > 0 {
		w.discontinuity, w.needInit = true, true
	}
	return nil
}

// lostVideo: packets of the video were lost; pictures until the next keyframe would be decoded from a
// broken reference, so they are not recorded, and a keyframe is asked for.
func (w *writer) lostVideo() {
	w.waitKey = true
	w.askKeyframe()
}

func (w *writer) askKeyframe() {
	now := time.Now()
	if now.Sub(w.lastKeyRq) < keyframeRetry {
		return
	}
	w.lastKeyRq = now
	w.r.requestKeyframe()
}

// frame records one access unit.
func (w *writer) frame(au accessUnit) error {
	if !au.idr {
		if w.waitKey || len(w.vframes) == 0 {
			w.askKeyframe()
			return nil
		}
		w.vframes = append(w.vframes, vframe{t: au.ts, sample: au.sample})
		w.maybeAskKeyframe()
		return nil
	}
	sps, pps := au.sps, au.pps
	if sps == nil {
		sps = w.sps
	}
	if pps == nil {
		pps = w.pps
	}
	if sps == nil || pps == nil {
		// An IDR picture without parameter sets seen: undecodable; WebRTC senders repeat them before
		// every IDR (RFC 6184 §8.4), so the next keyframe will do.
		w.askKeyframe()
		return nil
	}
	changed := !bytes.Equal(sps, w.sps) || !bytes.Equal(pps, w.pps)
	w.waitKey = false
	if !w.zeroSet {
		w.zeroSet = true
		w.zero = duration(au.ts, videoClock)
		w.early = nil
	}
	if len(w.vframes) > 0 {
		long := duration(au.ts-w.vframes[0].t, videoClock) >= w.r.cfg.Target-cutSlack
		if long || changed {
			if err := w.cut(au.ts); err != nil {
				return err
			}
		}
	}
	if changed {
		w.sps, w.pps = sps, pps
		w.needInit = true
		if w.segments > 0 {
			// New encoding parameters (a new resolution): RFC 8216 §4.3.2.3 asks for a discontinuity.
			w.discontinuity = true
		}
	}
	w.vframes = append(w.vframes, vframe{t: au.ts, sample: au.sample, idr: true})
	w.thumbnail(au.ts)
	return nil
}

// maybeAskKeyframe asks for a keyframe once a segment has reached its target without one.
func (w *writer) maybeAskKeyframe() {
	if w.keyAsk || len(w.vframes) < 2 {
		return
	}
	if duration(w.vframes[len(w.vframes)-1].t-w.vframes[0].t, videoClock) >= w.r.cfg.Target {
		w.keyAsk = true
		w.askKeyframe()
	}
}

// audio records one Opus packet.
func (w *writer) audio(f aframe) error {
	if !w.audioOnly {
		if !w.zeroSet {
			// Before the first keyframe: kept for a while in case the publisher sends no video at all.
			w.early = append(w.early, f)
			if !w.videoSeen && duration(f.t-w.early[0].t, audioClock) >= audioOnlyFallback {
				w.r.log.Info("recording: the publisher sends no video: recording its audio only")
				w.audioOnly = true
				early := w.early
				w.early = nil
				for _, e := range early {
					if err := w.audio(e); err != nil {
						return err
					}
				}
			}
			return nil
		}
		if len(w.vframes) == 0 || f.t < units(w.zero, audioClock) {
			return nil // between publishes, before the run's first keyframe
		}
		w.aframes = append(w.aframes, f)
		return nil
	}
	if !w.zeroSet {
		w.zeroSet = true
		w.zero = duration(f.t, audioClock)
	}
	if len(w.aframes) > 0 && duration(f.t-w.aframes[0].t, audioClock) >= w.r.cfg.Target-cutSlack {
		if err := w.cut(videoUnitsOf(f.t)); err != nil {
			return err
		}
	}
	w.aframes = append(w.aframes, f)
	return nil
}

func videoUnitsOf(audioUnits int64) int64 { return audioUnits * videoClock / audioClock }

// endRun writes what the publish sent as a last segment, ended one frame after its last one.
func (w *writer) endRun() error {
	if len(w.vframes) == 0 && len(w.aframes) == 0 {
		return nil
	}
	var end int64
	if n := len(w.vframes); n > 0 {
		last := w.vframes[n-1].t
		step := int64(videoClock / 30)
		if n > 1 {
			step = max((last-w.vframes[0].t)/int64(n-1), 1)
		}
		end = last + step
	} else {
		end = videoUnitsOf(w.aframes[len(w.aframes)-1].t + defaultOpusFrame)
	}
	if err := w.cut(end); err != nil {
		return err
	}
	w.aframes = nil // what is left came after the last picture
	return nil
}

// cut writes the pending media before end (timeline, 90 kHz) as one segment: the video's pictures and
// the audio before end.
func (w *writer) cut(end int64) error {
	endA := end * audioClock / videoClock
	var vs []hls.Sample
	var vstart uint64
	zeroV, zeroA := units(w.zero, videoClock), units(w.zero, audioClock)
	for i, f := range w.vframes {
		next := end
		if i+1 < len(w.vframes) {
			next = w.vframes[i+1].t
		}
		vs = append(vs, hls.Sample{Data: f.sample, Duration: uint32(max(next-f.t, 1)), Sync: f.idr})
	}
	if len(w.vframes) > 0 {
		vstart = uint64(max(w.vframes[0].t-zeroV, 0))
	}
	n := 0
	for n < len(w.aframes) && w.aframes[n].t < endA {
		n++
	}
	var as []hls.Sample
	var astart uint64
	for i := 0; i < n; i++ {
		f := w.aframes[i]
		d := int64(defaultOpusFrame)
		if i+1 < len(w.aframes) {
			d = w.aframes[i+1].t - f.t
		}
		as = append(as, hls.Sample{Data: f.data, Duration: uint32(min(max(d, 1), audioClock)), Sync: true})
	}
	if n > 0 {
		astart = uint64(max(w.aframes[0].t-zeroA, 0))
	}
	// The segment's duration: its pictures' span, or its audio's for audio only.
	var segDur time.Duration
	switch {
	case len(w.vframes) > 0:
		segDur = duration(end-w.vframes[0].t, videoClock)
	case n > 0:
		last := w.aframes[n-1]
		segDur = duration(last.t+int64(as[n-1].Duration)-w.aframes[0].t, audioClock)
	}
	w.vframes, w.keyAsk = w.vframes[:0], false
	w.aframes = append(w.aframes[:0:0], w.aframes[n:]...)
	if len(vs) == 0 && len(as) == 0 {
		return nil
	}
	if err := w.writeSegment(vs, as, vstart, astart, segDur); err != nil {
		return err
	}
	if e := duration(end, videoClock); e > w.end {
		w.end = e
	}
	return nil
}

// writeSegment writes a segment (and the initialization segment it needs, if new), then the playlist
// that lists it, then the multivariant playlist when its bandwidth grew.
func (w *writer) writeSegment(vs, as []hls.Sample, vstart, astart uint64, d time.Duration) error {
	if w.needInit || w.initName == "" {
		t := hls.Tracks{}
		if !w.audioOnly && w.sps != nil {
			t.Video = &hls.H264{SPS: [][]byte{w.sps}, PPS: [][]byte{w.pps}}
		}
		if len(as) > 0 {
			t.Audio = &hls.Opus{}
		}
		if t.Video == nil && t.Audio == nil {
			return nil
		}
		init, err := t.Init()
		if err != nil {
			return err
		}
		name := fmt.Sprintf("init-%d.mp4", w.inits)
		if err := w.r.put(renditionDir+name, init, "video/mp4"); err != nil {
			return err
		}
		w.inits++
		w.tracks, w.initName, w.needInit = t, name, false
	}
	if w.tracks.Video == nil {
		vs = nil
	}
	if w.tracks.Audio == nil {
		as = nil
	}
	if len(vs) == 0 && len(as) == 0 {
		return nil
	}
	w.segments++
	seg, err := w.tracks.Segment(uint32(w.segments), hls.Run{Start: vstart, Samples: vs}, hls.Run{Start: astart, Samples: as})
	if err != nil {
		return err
	}
	name := itoa(w.segments) + ".mp4"
	if err := w.r.put(renditionDir+name, seg, "video/mp4"); err != nil {
		return err
	}
	w.playlist.Entries = append(w.playlist.Entries, hls.Entry{URI: name, Duration: d, Map: w.initName, Discontinuity: w.discontinuity})
	w.discontinuity = false
	if err := w.r.put(keyPlaylist, w.playlist.Encode(), "application/vnd.apple.mpegurl"); err != nil {
		return err
	}
	if d > 0 {
		w.peakBps = max(w.peakBps, int(float64(len(seg)*8)/d.Seconds()))
	}
	if !w.wroteMV || w.peakBps > w.mvBps {
		if err := w.writeMultivariant(); err != nil {
			return err
		}
	}
	if w.state == StateStarting {
		w.setState(StateActive)
	}
	return nil
}

func (w *writer) writeMultivariant() error {
	codecs, err := w.tracks.Codecs()
	if err != nil {
		return err
	}
	wd, ht, err := w.tracks.Resolution()
	if err != nil {
		return err
	}
	mv := hls.Multivariant(hls.Variant{URI: "high/playlist.m3u8", Bandwidth: w.peakBps, Codecs: codecs, Width: wd, Height: ht})
	if err := w.r.put(keyMultivariant, mv, "application/vnd.apple.mpegurl"); err != nil {
		return err
	}
	w.wroteMV, w.mvBps = true, w.peakBps
	return nil
}

// finish ends the recording: the pending media as a last segment, the playlist made VOD-complete
// (EXT-X-ENDLIST), recording-ended.json, STOPPED.
func (w *writer) finish() {
	w.setState(StateStopping)
	if err := w.endRun(); err != nil {
		w.fail(err)
		return
	}
	w.thumbs.close()
	if w.segments > 0 {
		w.playlist.Ended = true
		if err := w.r.put(keyPlaylist, w.playlist.Encode(), "application/vnd.apple.mpegurl"); err != nil {
			w.fail(err)
			return
		}
	}
	var media *eventMedia
	reason := ""
	if w.segments > 0 {
		media = w.r.eventMedia(&w.playlist)
	} else {
		reason = errNoMedia.Error()
	}
	b, err := w.r.event("recording_ended", media, reason)
	if err == nil {
		err = w.r.put(keyEnded, b, "application/json")
	}
	if err != nil {
		w.fail(err)
		return
	}
	w.r.cfg.Metrics.ended(false)
	w.setState(StateStopped)
}

// fail ends the recording as FAILED: what was written stays playable (the playlist gets its
// EXT-X-ENDLIST if the bucket still takes it), and recording-failed.json says why, if it can be written.
func (w *writer) fail(cause error) {
	if w.failed {
		return
	}
	w.failed = true
	w.r.log.Error("recording: failed", "err", cause)
	if w.segments > 0 {
		w.playlist.Ended = true
		_ = w.r.put(keyPlaylist, w.playlist.Encode(), "application/vnd.apple.mpegurl")
	}
	if b, err := w.r.event("recording_failed", w.r.eventMedia(&w.playlist), cause.Error()); err == nil {
		_ = w.r.put(keyFailed, b, "application/json")
	}
	w.r.cfg.Metrics.ended(true)
	w.setState(StateFailed)
}

// thumbnail makes a thumbnail from the keyframe at t when one is due.
func (w *writer) thumbnail(t int64) {
	if w.thumbs == nil {
		return
	}
	at := duration(t, videoClock) - w.zero
	if at < w.thumbNext {
		return
	}
	w.thumbNext = at + w.r.cfg.Thumbnails.Interval
	w.thumbs.offer(w.sps, w.pps, w.vframes[len(w.vframes)-1].sample)
}
