package recording_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
	"go.uber.org/goleak"

	"github.com/openstage/openstage/internal/recording"
	"github.com/openstage/openstage/internal/recording/bucket"
	"github.com/openstage/openstage/internal/recording/bucket/buckettest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The fixtures the pion publishers of internal/peer send: H.264 constrained baseline 320x180 at 15 fps with
// a keyframe every second, and Opus in 20 ms packets (internal/peer/testdata/README).
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "peer", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func accessUnits(t testing.TB) [][]byte {
	r, err := h264reader.NewReader(bytes.NewReader(fixture(t, "cbp-320x180.h264")))
	if err != nil {
		t.Fatal(err)
	}
	var aus [][]byte
	var au []byte
	for {
		nal, err := r.NextNAL()
		if err != nil {
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

func opusPackets(t testing.TB) [][]byte {
	ogg, _, err := oggreader.NewWith(bytes.NewReader(fixture(t, "sine.ogg")))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		page, hdr, err := ogg.ParseNextPage()
		if err != nil {
			return out
		}
		if hdr.GranulePosition == 0 || bytes.HasPrefix(page, []byte("OpusHead")) || bytes.HasPrefix(page, []byte("OpusTags")) {
			continue
		}
		out = append(out, page)
	}
}

// source is a publisher as the recorder sees it: it counts keyframe requests.
type source struct {
	mu   sync.Mutex
	asks int
}

func (s *source) RequestKeyframe() { s.mu.Lock(); s.asks++; s.mu.Unlock() }

// publish sends d of the fixtures to r as RTP, packetized by pion as a WebRTC sender does (MTU 1200), as
// fast as the recorder's queue takes them: only a track's first packet is placed by its arrival, the rest
// by their timestamps.
func publish(t testing.TB, r *recording.Recorder, d time.Duration, video bool) {
	t.Helper()
	publishLossy(t, r, d, video, 0)
}

// publishLossy is publish losing every lose-th video packet (0: none).
func publishLossy(t testing.TB, r *recording.Recorder, d time.Duration, video bool, lose int) {
	t.Helper()
	nv := 0
	aus, opus := accessUnits(t), opusPackets(t)
	vp := rtp.NewPacketizer(1200, 102, 1111, &codecs.H264Payloader{}, rtp.NewRandomSequencer(), 90000)
	ap := rtp.NewPacketizer(1200, 111, 2222, &codecs.OpusPayloader{}, rtp.NewRandomSequencer(), 48000)
	frames := int(d * 15 / time.Second)
	audio := int(d / (20 * time.Millisecond))
	ai := 0
	send := func(video bool, pkts []*rtp.Packet) {
		for _, p := range pkts {
			if video && lose > 0 {
				if nv++; nv%lose == 0 {
					continue
				}
			}
			b, err := p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			r.WriteRTP(video, b)
		}
		time.Sleep(50 * time.Microsecond) // keep well inside the queue
	}
	for i := 0; i < frames || ai < audio; i++ {
		if video && i < frames {
			send(true, vp.Packetize(aus[i%len(aus)], 6000))
		}
		// 1/15 s of video is 3.33 audio packets: keep the audio's clock level with the video's.
		for ai < audio && (!video || i >= frames || ai*20*15 < (i+1)*1000) {
			send(false, ap.Packetize(opus[ai%len(opus)], 960))
			ai++
		}
	}
}

func needFFmpeg(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found (CI=true: .ci/run installs Debian's ffmpeg)", tool)
			}
			t.Skipf("%s not found: apt-get install ffmpeg", tool)
		}
	}
}

type probe struct {
	Streams []struct {
		CodecName string `json:"codec_name"`
		CodecType string `json:"codec_type"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

// ffprobeHLS reads the multivariant playlist as a player would, and decodes every frame with ffmpeg
// (-v error prints any decoding error).
func ffprobeHLS(t testing.TB, playlist string) (probe, time.Duration) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,codec_type,width,height:format=duration",
		"-of", "json", playlist).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", playlist, err, out)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	secs, err := strconv.ParseFloat(p.Format.Duration, 64)
	if err != nil {
		t.Fatalf("ffprobe duration %q: %v", p.Format.Duration, err)
	}
	dec, err := exec.Command("ffmpeg", "-v", "error", "-i", playlist,
		// Timestamps passed through: a WebRTC recording is variable frame rate, and the default output's
		// conversion to a constant rate reports its own rounding, not the file's. The same for the
		// encoder's time base, 1/frame rate by default: two pictures closer than a frame (Chromium sends
		// them on a busy machine) share a tick there and the null muxer refuses the second (seen in CI,
		// "non monotonically increasing dts"); -1 keeps the file's own 90 kHz timestamps.
		"-fps_mode", "passthrough", "-enc_time_base:v", "-1", "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(dec)) > 0 {
		t.Fatalf("ffmpeg decoding %s: %v\n%s", playlist, err, dec)
	}
	return p, time.Duration(secs * float64(time.Second))
}

func codecsOf(p probe) map[string]string {
	m := map[string]string{}
	for _, s := range p.Streams {
		m[s.CodecType] = s.CodecName
	}
	return m
}

type states struct {
	mu sync.Mutex
	s  []recording.State
}

func (s *states) add(st recording.State) { s.mu.Lock(); s.s = append(s.s, st); s.mu.Unlock() }
func (s *states) get() []recording.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recording.State(nil), s.s...)
}

func record(t *testing.T, store bucket.Store, name string, video bool, d time.Duration) (*states, string) {
	t.Helper()
	ctx := context.Background()
	if err := store.Prepare(ctx, name); err != nil {
		t.Fatal(err)
	}
	st := &states{}
	prefix := "st-1/sess-1/part-1/" + strconv.FormatInt(time.Now().UnixMilli(), 10)
	m := &recording.Metrics{}
	r := recording.Start(recording.Config{Store: store, Bucket: name, Prefix: prefix, StageARN: "arn:aws:ivs:us-east-1:123456789012:stage/st-1",
		SessionID: "sess-1", ParticipantID: "part-1", Video: video, Target: 2 * time.Second, OnState: st.add, Metrics: m})
	src := &source{}
	r.Attach(src)
	publish(t, r, d, video)
	r.Detach()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	r.Stop(ctx)
	select {
	case <-r.Done():
	default:
		t.Fatal("the recorder did not stop")
	}
	if got := st.get(); strings.Join(statesStr(got), ",") != "ACTIVE,STOPPING,STOPPED" {
		t.Fatalf("states %v, want ACTIVE, STOPPING, STOPPED", got)
	}
	if m.Active.Load() != 0 || m.BytesWritten.Load() == 0 || m.StorageErrors.Load() != 0 {
		t.Fatalf("metrics: active %d, bytes %d, errors %d", m.Active.Load(), m.BytesWritten.Load(), m.StorageErrors.Load())
	}
	return st, prefix
}

func statesStr(s []recording.State) []string {
	var out []string
	for _, x := range s {
		out = append(out, string(x))
	}
	return out
}

// TestRecordToDirectory records 8 s of the camera-like fixture to the directory store and plays it back
// with ffprobe and ffmpeg: H.264 and Opus, the duration published, every frame decoded.
func TestRecordToDirectory(t *testing.T) {
	needFFmpeg(t)
	root := t.TempDir()
	store, err := bucket.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	_, prefix := record(t, store, "recordings", true, 8*time.Second)
	dir := filepath.Join(root, "recordings", filepath.FromSlash(prefix))
	checkLayout(t, dir, true)
	p, d := ffprobeHLS(t, filepath.Join(dir, "media", "hls", "multivariant.m3u8"))
	if c := codecsOf(p); c["video"] != "h264" || c["audio"] != "opus" {
		t.Fatalf("streams %+v, want h264 and opus", p.Streams)
	}
	for _, s := range p.Streams {
		if s.CodecType == "video" && (s.Width != 320 || s.Height != 180) {
			t.Fatalf("video %dx%d, want 320x180", s.Width, s.Height)
		}
	}
	if d < 8*time.Second*95/100 || d > 8*time.Second*105/100 {
		t.Fatalf("duration %v, want 8 s ± 5%%", d)
	}
}

// TestRecordAudioOnly: AUDIO_ONLY records the audio of a publisher that also sends video.
func TestRecordAudioOnly(t *testing.T) {
	needFFmpeg(t)
	root := t.TempDir()
	store, err := bucket.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	_, prefix := record(t, store, "recordings", false, 5*time.Second)
	dir := filepath.Join(root, "recordings", filepath.FromSlash(prefix))
	checkLayout(t, dir, false)
	p, d := ffprobeHLS(t, filepath.Join(dir, "media", "hls", "multivariant.m3u8"))
	if c := codecsOf(p); c["video"] != "" || c["audio"] != "opus" {
		t.Fatalf("streams %+v, want opus only", p.Streams)
	}
	if d < 5*time.Second*95/100 || d > 5*time.Second*105/100 {
		t.Fatalf("duration %v, want 5 s ± 5%%", d)
	}
}

// TestRecordToS3 records the same to versitygw, a real S3 server, and plays it from there over HTTP.
func TestRecordToS3(t *testing.T) {
	needFFmpeg(t)
	srv := buckettest.StartS3(t)
	srv.MakeBucket(t, "recordings")
	store, err := bucket.NewS3(context.Background(), bucket.S3Config{Endpoint: srv.URL, Region: "us-east-1", PathStyle: true,
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	_, prefix := record(t, store, "recordings", true, 6*time.Second)
	// The posix backend keeps the objects as files of its root: the same layout as the directory store.
	dir := filepath.Join(srv.Root, "recordings", filepath.FromSlash(prefix))
	checkLayout(t, dir, true)
	p, d := ffprobeHLS(t, filepath.Join(dir, "media", "hls", "multivariant.m3u8"))
	if c := codecsOf(p); c["video"] != "h264" || c["audio"] != "opus" {
		t.Fatalf("streams %+v, want h264 and opus", p.Streams)
	}
	if d < 6*time.Second*95/100 || d > 6*time.Second*105/100 {
		t.Fatalf("duration %v, want 6 s ± 5%%", d)
	}
}

// checkLayout checks the IVS layout under a recording's prefix, and that the playlist is VOD-complete.
func checkLayout(t *testing.T, dir string, video bool) {
	t.Helper()
	for _, f := range []string{"events/recording-started.json", "events/recording-ended.json", "media/hls/multivariant.m3u8",
		"media/hls/high/playlist.m3u8", "media/hls/high/init-0.mp4", "media/hls/high/1.mp4"} {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f))); err != nil {
			t.Fatalf("layout: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "events", "recording-failed.json")); err == nil {
		t.Fatal("recording-failed.json written for a recording that ended well")
	}
	pl, err := os.ReadFile(filepath.Join(dir, "media", "hls", "high", "playlist.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(pl, []byte("#EXT-X-ENDLIST\n")) || !bytes.Contains(pl, []byte("#EXT-X-PLAYLIST-TYPE:VOD")) {
		t.Fatalf("the playlist is not VOD-complete:\n%s", pl)
	}
	mv, err := os.ReadFile(filepath.Join(dir, "media", "hls", "multivariant.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	if video != bytes.Contains(mv, []byte("RESOLUTION=320x180")) {
		t.Fatalf("multivariant playlist:\n%s", mv)
	}
}

// TestThumbnailsWithoutFFmpeg: a recording that asks for thumbnails on a server without ffmpeg records
// without them and says so in recording-started.json.
func TestThumbnailsWithoutFFmpeg(t *testing.T) {
	root := t.TempDir()
	store, err := bucket.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Prepare(context.Background(), "b-1"); err != nil {
		t.Fatal(err)
	}
	r := recording.Start(recording.Config{Store: store, Bucket: "b-1", Prefix: "s/x/p/1", Video: true, Target: 2 * time.Second,
		Thumbnails: recording.Thumbnails{Interval: time.Second, Sequential: true}, FFmpeg: ""})
	r.Attach(&source{})
	publish(t, r, 3*time.Second, true)
	r.Stop(context.Background())
	b, err := os.ReadFile(filepath.Join(root, "b-1", "s", "x", "p", "1", "events", "recording-started.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Media struct {
			Thumbnails struct {
				Unavailable string `json:"unavailable"`
			} `json:"thumbnails"`
		} `json:"media"`
	}
	if err := json.Unmarshal(b, &ev); err != nil || !strings.Contains(ev.Media.Thumbnails.Unavailable, "ffmpeg") {
		t.Fatalf("recording-started.json does not say thumbnails are off: %v\n%s", err, b)
	}
	if _, err := os.Stat(filepath.Join(root, "b-1", "s", "x", "p", "1", "media", "thumbnails")); !os.IsNotExist(err) {
		t.Fatalf("thumbnails written without ffmpeg: %v", err)
	}
}

// TestRecordLossyVideo: with video packets lost, the pictures that would be decoded from a broken
// reference are left out until the next keyframe, which the recorder asks for: what is recorded decodes
// without an error.
func TestRecordLossyVideo(t *testing.T) {
	needFFmpeg(t)
	root := t.TempDir()
	store, err := bucket.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Prepare(context.Background(), "b-1"); err != nil {
		t.Fatal(err)
	}
	src := &source{}
	r := recording.Start(recording.Config{Store: store, Bucket: "b-1", Prefix: "s/x/p/1", Video: true, Target: 2 * time.Second})
	r.Attach(src)
	publishLossy(t, r, 8*time.Second, true, 37)
	r.Stop(context.Background())
	p, d := ffprobeHLS(t, filepath.Join(root, "b-1", "s", "x", "p", "1", "media", "hls", "multivariant.m3u8"))
	if c := codecsOf(p); c["video"] != "h264" || c["audio"] != "opus" || d < 6*time.Second {
		t.Fatalf("lossy recording: %+v, %v", p.Streams, d)
	}
	src.mu.Lock()
	asks := src.asks
	src.mu.Unlock()
	if asks < 2 { // one at the start, then for the losses
		t.Fatalf("%d keyframe requests for a lossy video", asks)
	}
}
