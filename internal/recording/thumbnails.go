package recording

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os/exec"
	"sync"
	"time"
)

// Thumbnails (thumbnailConfiguration, recordingMode INTERVAL): a JPEG of a keyframe every interval, made by
// a real H.264 decoder: ffmpeg, run as a child process per thumbnail with the keyframe (its parameter sets
// and IDR picture, as an Annex B byte stream, ITU-T H.264 Annex B) on its stdin and the JPEG on its stdout.
// One thumbnail is made at a time, on a goroutine of the recorder's; a keyframe that comes while one is
// being made is skipped (the next interval's will do), so a slow ffmpeg never holds up the recording.

// LookFFmpeg returns the path of ffmpeg, or "" when the server has none.
func LookFFmpeg() string {
	p, err := exec.LookPath("ffmpeg")
	if err != nil {
		return ""
	}
	return p
}

// thumbnailTimeout bounds one ffmpeg run.
const thumbnailTimeout = 10 * time.Second

type thumbnailer struct {
	r      *Recorder
	jobs   chan []byte
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	n      int // the last SEQUENTIAL number written (the goroutine's)
}

// newThumbnailer returns nil when the recording makes no thumbnails.
func newThumbnailer(r *Recorder) *thumbnailer {
	t := r.cfg.Thumbnails
	if t.Interval <= 0 || !r.cfg.Video || r.cfg.FFmpeg == "" || (!t.Sequential && !t.Latest) {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	th := &thumbnailer{r: r, jobs: make(chan []byte, 1), ctx: ctx, cancel: cancel}
	th.wg.Add(1)
	go th.loop()
	return th
}

// offer hands a keyframe over (AVC length-prefixed sample) unless a thumbnail is being made.
func (t *thumbnailer) offer(sps, pps, sample []byte) {
	if t == nil {
		return
	}
	var b bytes.Buffer
	start := []byte{0, 0, 0, 1}
	for _, n := range [][]byte{sps, pps} {
		b.Write(start)
		b.Write(n)
	}
	for len(sample) >= 4 {
		n := int(binary.BigEndian.Uint32(sample))
		if 4+n > len(sample) {
			break
		}
		b.Write(start)
		b.Write(sample[4 : 4+n])
		sample = sample[4+n:]
	}
	select {
	case t.jobs <- b.Bytes():
	default:
	}
}

// close stops the goroutine, ending a running ffmpeg, and waits for it.
func (t *thumbnailer) close() {
	if t == nil {
		return
	}
	t.once.Do(func() {
		close(t.jobs)
		t.wg.Wait()
		t.cancel()
	})
}

func (t *thumbnailer) loop() {
	defer t.wg.Done()
	for annexB := range t.jobs {
		jpeg, err := t.decode(annexB)
		if err != nil {
			t.r.log.Warn("recording: thumbnail", "err", err)
			continue
		}
		cfg := t.r.cfg.Thumbnails
		if cfg.Sequential {
			t.n++
			if err := t.r.put(fmt.Sprintf("%s%d.jpg", thumbnailDir, t.n), jpeg, "image/jpeg"); err != nil {
				t.r.log.Warn("recording: thumbnail", "err", err)
			}
		}
		if cfg.Latest {
			if err := t.r.put(thumbnailDir+"latest.jpg", jpeg, "image/jpeg"); err != nil {
				t.r.log.Warn("recording: thumbnail", "err", err)
			}
		}
	}
}

func (t *thumbnailer) decode(annexB []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(t.ctx, thumbnailTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, t.r.cfg.FFmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
		"-f", "h264", "-i", "pipe:0", "-frames:v", "1", "-c:v", "mjpeg", "-q:v", "4", "-f", "image2pipe", "pipe:1")
	cmd.Stdin = bytes.NewReader(annexB)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ffmpeg: %w: %s", err, bytes.TrimSpace(errOut.Bytes()))
	}
	if out.Len() == 0 {
		return nil, fmt.Errorf("ffmpeg made no picture: %s", bytes.TrimSpace(errOut.Bytes()))
	}
	return out.Bytes(), nil
}
