// Package recording records a publisher's media as IVS's individual participant recording does (docs/
// DESIGN.md §7): HLS with fragmented-MP4 segments of the H.264 and Opus as published, no transcoding, laid
// out in a bucket as IVS lays it out:
//
//	<stageId>/<sessionId>/<participantId>/<start epoch ms>/
//	    events/recording-started.json, then recording-ended.json or recording-failed.json
//	    media/hls/multivariant.m3u8
//	    media/hls/high/playlist.m3u8, init-<n>.mp4, <n>.mp4
//	    media/thumbnails/high/<n>.jpg and/or latest.jpg
//
// A Recorder is one participant's recording. The stage domain starts it when the participant publishes on
// a recording stage, attaches each publish of the participant to it (a publish within the reconnect
// window continues the recording), and stops it. The SFU hands it a copy of every packet on the forwarding
// goroutine (WriteRTP), which never waits: packets go through a bounded queue, and a recorder that falls
// behind (a slow or failing bucket) fails rather than slow the subscribers.
package recording

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/openstage/openstage/internal/recording/bucket"
	"github.com/openstage/openstage/internal/recording/hls"
)

// State is the model's RecordingState of a participant.
type State string

const (
	StateStarting State = "STARTING" // recording-started.json written, no segment yet
	StateActive   State = "ACTIVE"   // the first segment is written
	StateStopping State = "STOPPING" // the publisher is gone; the last files are being written
	StateStopped  State = "STOPPED"
	StateFailed   State = "FAILED" // storage refused a write, or the recorder fell behind
)

// Terminal reports whether no other state follows.
func (s State) Terminal() bool { return s == StateStopped || s == StateFailed }

// Source is the publish a recorder takes packets from: it can be asked for a keyframe (the recorder starts
// at one, cuts segments at them, and restarts at one after a loss).
type Source interface {
	RequestKeyframe()
}

// Thumbnails is a stage's thumbnailConfiguration, as the recorder applies it. The zero value makes none.
type Thumbnails struct {
	Interval   time.Duration // 0: no thumbnails
	Sequential bool          // <n>.jpg, one per interval
	Latest     bool          // latest.jpg, overwritten each interval
}

// Config is one recording.
type Config struct {
	Store  bucket.Store
	Bucket string
	// Prefix is <stageId>/<sessionId>/<participantId>/<start epoch ms>: the participant's recordingS3Prefix.
	Prefix string
	// What recording-started.json names.
	StageARN, SessionID, ParticipantID string
	// Video records the video; without it (AUDIO_ONLY) only the audio is.
	Video bool
	// Target is hlsConfiguration.targetSegmentDurationSeconds.
	Target     time.Duration
	Thumbnails Thumbnails
	// FFmpeg is the path of the ffmpeg that makes thumbnails ("" when there is none: thumbnails asked for
	// are then skipped, and recording-started.json and the log say so).
	FFmpeg string
	// OnState reports each state change, in order, from the recorder's goroutine.
	OnState func(State)
	Log     *slog.Logger
	Metrics *Metrics // nil counts nothing
	Now     func() time.Time
}

// QueueLength bounds the packets waiting for the recorder: about 4 s of a 2.5 Mbps video. A recorder that
// has this many waiting has fallen behind its bucket and fails (WriteRTP never blocks).
const QueueLength = 4096

// putTimeout bounds one object write.
const putTimeout = 30 * time.Second

// Recorder is one participant's recording.
type Recorder struct {
	cfg Config
	log *slog.Logger

	queue   chan item
	control chan struct{} // a 1-slot wake-up: Attach, Detach, Stop
	gen     atomic.Uint32 // the current publish (run) number; packets carry it
	overrun atomic.Bool   // the queue was full: the recorder fails
	stopped atomic.Bool   // Stop was called: WriteRTP drops

	mu       sync.Mutex
	src      Source
	detached uint32 // the run Detach ended (0 none)
	stopping bool

	done chan struct{}

	// The rest belongs to the recorder's goroutine.
	w *writer
}

type item struct {
	gen   uint32
	video bool
	at    time.Time
	buf   *[]byte
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1500); return &b }}

// Start begins a recording: recording-started.json is written at once (FAILED if the bucket refuses it),
// and packets are recorded once a source is attached. The recording ends with Stop.
func Start(cfg Config) *Recorder {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Target <= 0 {
		cfg.Target = 6 * time.Second
	}
	r := &Recorder{cfg: cfg, log: cfg.Log.With("bucket", cfg.Bucket, "prefix", cfg.Prefix),
		queue: make(chan item, QueueLength), control: make(chan struct{}, 1), done: make(chan struct{})}
	r.w = newWriter(r)
	cfg.Metrics.started()
	go r.run()
	return r
}

// Attach makes src the publish the following packets come from. A second Attach (the participant
// published again within the reconnect window) continues the recording after a discontinuity.
func (r *Recorder) Attach(src Source) {
	r.mu.Lock()
	r.src = src
	r.gen.Add(1)
	r.mu.Unlock()
	src.RequestKeyframe()
	r.wake()
}

// Detach tells the recorder the current publish ended: what it sent is written out, so that a recording
// whose publisher does not come back is complete up to its last packet.
func (r *Recorder) Detach() {
	r.mu.Lock()
	r.detached = r.gen.Load()
	r.src = nil
	r.mu.Unlock()
	r.wake()
}

// Stop ends the recording (STOPPING, then STOPPED or FAILED) and waits until its files are written or
// ctx ends.
func (r *Recorder) Stop(ctx context.Context) {
	r.stopped.Store(true)
	r.mu.Lock()
	r.stopping = true
	r.mu.Unlock()
	r.wake()
	select {
	case <-r.done:
	case <-ctx.Done():
	}
}

// Done is closed when the recording has ended.
func (r *Recorder) Done() <-chan struct{} { return r.done }

func (r *Recorder) wake() {
	select {
	case r.control <- struct{}{}:
	default:
	}
}

// WriteRTP takes a copy of one packet of the attached publish (video or audio; the SFU admits only H.264
// and Opus, docs/DESIGN.md §4.8). It is called on the forwarding goroutine and never blocks: when the queue
// is full the recording fails.
func (r *Recorder) WriteRTP(video bool, raw []byte) {
	if r.stopped.Load() || r.overrun.Load() || (video && !r.cfg.Video) {
		return
	}
	b := bufPool.Get().(*[]byte)
	*b = append((*b)[:0], raw...)
	select {
	case r.queue <- item{gen: r.gen.Load(), video: video, at: time.Now(), buf: b}:
	default:
		bufPool.Put(b)
		if r.overrun.CompareAndSwap(false, true) {
			r.wake()
		}
	}
}

func (r *Recorder) requestKeyframe() {
	r.mu.Lock()
	src := r.src
	r.mu.Unlock()
	if src != nil {
		src.RequestKeyframe()
	}
}

func (r *Recorder) run() {
	defer close(r.done)
	w := r.w
	defer w.thumbs.close()
	if err := w.started(); err != nil {
		w.fail(err)
		r.drain()
		return
	}
	for {
		select {
		case it := <-r.queue:
			r.handle(it)
		case <-r.control:
			if r.overrun.Load() {
				r.drain()
				w.fail(fmt.Errorf("recording: fell behind: %d packets were waiting for the bucket", QueueLength))
				return
			}
			r.mu.Lock()
			detached, stopping := r.detached, r.stopping
			r.mu.Unlock()
			if detached != 0 || stopping {
				// Packets the publish sent before it ended are in the queue ahead of this: write them.
				r.drainInto()
			}
			if stopping {
				w.finish()
				return
			}
			if detached != 0 && detached == w.gen {
				if err := w.endRun(); err != nil {
					w.fail(err)
					r.drain()
					return
				}
			}
		}
		if w.failed {
			r.drain()
			return
		}
	}
}

// handle records one packet.
func (r *Recorder) handle(it item) {
	defer bufPool.Put(it.buf)
	if r.w.failed {
		return
	}
	var p rtp.Packet
	if err := p.Unmarshal(*it.buf); err != nil {
		return
	}
	if err := r.w.packet(it.gen, it.video, it.at, &p); err != nil {
		r.w.fail(err)
	}
}

// drainInto handles what is queued now.
func (r *Recorder) drainInto() {
	for {
		select {
		case it := <-r.queue:
			r.handle(it)
		default:
			return
		}
	}
}

// drain drops what is queued (after a failure) and keeps dropping until Stop.
func (r *Recorder) drain() {
	r.stopped.Store(true)
	for {
		select {
		case it := <-r.queue:
			bufPool.Put(it.buf)
		default:
			return
		}
	}
}

// Keys of the IVS layout, under the recording's prefix.
const (
	keyStarted      = "events/recording-started.json"
	keyEnded        = "events/recording-ended.json"
	keyFailed       = "events/recording-failed.json"
	keyMultivariant = "media/hls/multivariant.m3u8"
	renditionDir    = "media/hls/high/"
	keyPlaylist     = renditionDir + "playlist.m3u8"
	thumbnailDir    = "media/thumbnails/high/"
)

// Key returns the object key of name under a recording's prefix.
func Key(prefix, name string) string { return prefix + "/" + name }

// put writes one object, counting it.
func (r *Recorder) put(name string, body []byte, contentType string) error {
	ctx, cancel := context.WithTimeout(context.Background(), putTimeout)
	defer cancel()
	err := r.cfg.Store.Put(ctx, r.cfg.Bucket, Key(r.cfg.Prefix, name), bytes.NewReader(body), contentType)
	if err != nil {
		r.cfg.Metrics.storageError()
		return fmt.Errorf("recording: write %s: %w", name, err)
	}
	r.cfg.Metrics.wrote(len(body))
	return nil
}

// event is the JSON of the events/ objects. IVS documents their names, not their contents; these carry
// what a consumer needs to find the media (paths relative to the prefix) and why a recording ended.
type event struct {
	Version       string      `json:"version"`
	Event         string      `json:"event"`
	StageARN      string      `json:"stage_arn"`
	SessionID     string      `json:"session_id"`
	ParticipantID string      `json:"participant_id"`
	Time          string      `json:"event_time"`
	Media         *eventMedia `json:"media,omitempty"`
	Reason        string      `json:"reason,omitempty"`
}

type eventMedia struct {
	HLS        eventHLS         `json:"hls"`
	Thumbnails *eventThumbnails `json:"thumbnails,omitempty"`
}

type eventHLS struct {
	Path              string `json:"path"`
	Playlist          string `json:"playlist"`
	Rendition         string `json:"rendition"`
	MediaTypes        string `json:"media_types"`
	DurationMs        int64  `json:"duration_ms,omitempty"`
	Segments          int    `json:"segments,omitempty"`
	TargetSegmentSecs int    `json:"target_segment_duration_seconds"`
}

type eventThumbnails struct {
	Path            string `json:"path"`
	IntervalSeconds int    `json:"interval_seconds,omitempty"`
	Storage         string `json:"storage,omitempty"`
	// Unavailable says why thumbnails asked for are not made (no ffmpeg on the server).
	Unavailable string `json:"unavailable,omitempty"`
}

func (r *Recorder) event(name string, media *eventMedia, reason string) ([]byte, error) {
	e := event{Version: "v1", Event: name, StageARN: r.cfg.StageARN, SessionID: r.cfg.SessionID,
		ParticipantID: r.cfg.ParticipantID, Time: r.cfg.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		Media: media, Reason: reason}
	return json.MarshalIndent(e, "", "  ")
}

func (r *Recorder) mediaTypes() string {
	if r.cfg.Video {
		return "AUDIO_VIDEO"
	}
	return "AUDIO_ONLY"
}

func (r *Recorder) eventMedia(p *hls.MediaPlaylist) *eventMedia {
	m := &eventMedia{HLS: eventHLS{Path: "media/hls", Playlist: "multivariant.m3u8", Rendition: "high",
		MediaTypes: r.mediaTypes(), TargetSegmentSecs: int(r.cfg.Target / time.Second)}}
	if p != nil {
		m.HLS.DurationMs, m.HLS.Segments = p.Duration().Milliseconds(), len(p.Entries)
	}
	if t := r.cfg.Thumbnails; t.Interval > 0 && r.cfg.Video {
		th := &eventThumbnails{Path: "media/thumbnails/high", IntervalSeconds: int(t.Interval / time.Second)}
		switch {
		case t.Sequential && t.Latest:
			th.Storage = "SEQUENTIAL,LATEST"
		case t.Latest:
			th.Storage = "LATEST"
		default:
			th.Storage = "SEQUENTIAL"
		}
		if r.cfg.FFmpeg == "" {
			th.Unavailable = "this server has no ffmpeg: the recording has no thumbnails"
		}
		m.Thumbnails = th
	}
	return m
}

var errNoMedia = errors.New("recording: no media was recorded")

func itoa(n int) string { return strconv.Itoa(n) }
