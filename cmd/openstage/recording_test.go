package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/peer"
	"github.com/openstage/openstage/internal/recording/bucket/buckettest"
)

// Individual participant recording end to end (docs/DESIGN.md §7): a real server process, the AWS SDK, a
// pion publisher sending the camera-like H.264 fixture and Opus, and the recording played back by ffprobe
// and ffmpeg.

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

// recordingStage makes a storage configuration for bucket and a stage recording to it.
func recordingStage(ctx context.Context, t *testing.T, c *ivsrealtime.Client, bucketName string, rec types.AutoParticipantRecordingConfiguration, users ...string) (*string, string, []types.ParticipantToken) {
	t.Helper()
	sc, err := c.CreateStorageConfiguration(ctx, &ivsrealtime.CreateStorageConfigurationInput{Name: aws.String("rec"),
		S3: &types.S3StorageConfiguration{BucketName: aws.String(bucketName)}})
	if err != nil {
		t.Fatal(err)
	}
	rec.StorageConfigurationArn = sc.StorageConfiguration.Arn
	var tcs []types.ParticipantTokenConfiguration
	for _, u := range users {
		tcs = append(tcs, types.ParticipantTokenConfiguration{UserId: aws.String(u)})
	}
	out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("rec"), AutoParticipantRecordingConfiguration: &rec,
		ParticipantTokenConfigurations: tcs})
	if err != nil {
		t.Fatal(err)
	}
	return out.Stage.Arn, *out.Stage.Endpoints.Whip, out.ParticipantTokens
}

// waitRecording polls GetParticipant (through the SDK) until the participant's recordingState is want.
func waitRecording(ctx context.Context, t *testing.T, c *ivsrealtime.Client, arn *string, session, pid string, want types.ParticipantRecordingState) *types.Participant {
	t.Helper()
	var p *types.Participant
	ivstest.Eventually(t, ivstest.Until(ctx, time.Minute), 50*time.Millisecond, func() error {
		out, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: arn, SessionId: &session, ParticipantId: &pid})
		if err != nil {
			return err
		}
		p = out.Participant
		if p.RecordingState != want {
			return fmt.Errorf("recordingState %s, want %s", p.RecordingState, want)
		}
		return nil
	})
	return p
}

type probed struct {
	video, audio string
	width        int
	height       int
	duration     time.Duration
	frames       int
}

// playback reads the multivariant playlist with ffprobe (codecs, size, duration, decoded video frames) and
// decodes every frame with ffmpeg, which must print no error.
func playback(t *testing.T, playlist string) probed {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_entries",
		"stream=codec_name,codec_type,width,height,nb_read_frames:format=duration", "-of", "json", playlist).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", playlist, err, out)
	}
	var p struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			CodecType string `json:"codec_type"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
			Frames    string `json:"nb_read_frames"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	var r probed
	for _, s := range p.Streams {
		switch s.CodecType {
		case "video":
			r.video, r.width, r.height = s.CodecName, s.Width, s.Height
			r.frames, _ = strconv.Atoi(s.Frames)
		case "audio":
			r.audio = s.CodecName
		}
	}
	secs, err := strconv.ParseFloat(p.Format.Duration, 64)
	if err != nil {
		t.Fatalf("ffprobe duration %q: %v", p.Format.Duration, err)
	}
	r.duration = time.Duration(secs * float64(time.Second))
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
	return r
}

// checkPublished compares a recording with what the publisher sent: H.264 320x180 and Opus, every
// recorded frame decoded, the duration that of the frames recorded (15 fps, within 5%), and no more than
// one GOP (1 s) of what was sent missing (the recording starts at a keyframe).
func checkPublished(t *testing.T, r probed, sent int64, audioOnly bool) {
	t.Helper()
	if audioOnly {
		if r.video != "" || r.audio != "opus" {
			t.Fatalf("recording %+v, want Opus only", r)
		}
		return
	}
	if r.video != "h264" || r.audio != "opus" || r.width != 320 || r.height != 180 {
		t.Fatalf("recording %+v, want H.264 320x180 and Opus", r)
	}
	want := time.Duration(r.frames) * time.Second / 15
	if d := r.duration - want; d < -want/20 || d > want/20 {
		t.Fatalf("duration %v for %d frames at 15 fps (%v): more than 5%% apart", r.duration, r.frames, want)
	}
	if int64(r.frames) > sent || int64(r.frames) < sent-16 {
		t.Fatalf("%d frames recorded of %d sent", r.frames, sent)
	}
}

var prefixRE = regexp.MustCompile(`^([A-Za-z0-9]+)/([A-Za-z0-9-]+)/([A-Za-z0-9]+)/(\d{13})$`)

// TestRecording records a pion publisher to the data dir and, the same, to versitygw (a real S3 server):
// recordingState through the SDK, the IVS layout, thumbnails, ffprobe and ffmpeg playback, the UpdateStage
// conflict while recording, and filterByRecordingState.
func TestRecording(t *testing.T) {
	needFFmpeg(t)
	for _, backend := range []string{"dir", "s3"} {
		t.Run(backend, func(t *testing.T) {
			dataDir := t.TempDir()
			var extra []string
			root := filepath.Join(dataDir, "recordings")
			if backend == "s3" {
				srv := buckettest.StartS3(t)
				srv.MakeBucket(t, "recordings-e2e")
				root = srv.Root
				extra = []string{"--s3-endpoint", srv.URL, "--s3-region", "us-east-1", "--s3-path-style",
					"--s3-access-key-id", srv.AccessKey, "--s3-secret-access-key", srv.SecretKey}
			}
			p := start(t, dataDir, append(extra, "--session-end-grace", "1s")...)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			c := p.client()
			arn, whipURL, tokens := recordingStage(ctx, t, c, "recordings-e2e", types.AutoParticipantRecordingConfiguration{
				HlsConfiguration: &types.ParticipantRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)},
				ThumbnailConfiguration: &types.ParticipantThumbnailConfiguration{RecordingMode: types.ThumbnailRecordingModeInterval,
					TargetIntervalSeconds: aws.Int32(1), Storage: []types.ThumbnailStorageType{types.ThumbnailStorageTypeSequential, types.ThumbnailStorageTypeLatest}},
			}, "host")
			host := tokens[0]
			pub, err := peer.Publish(ctx, peer.Options{WHIPURL: whipURL, Token: *host.Token})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			session := ""
			ivstest.Eventually(t, ivstest.Until(ctx, time.Minute), 20*time.Millisecond, func() error {
				st, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: arn})
				if err != nil || st.Stage.ActiveSessionId == nil {
					return fmt.Errorf("no session yet: %v", err)
				}
				session = *st.Stage.ActiveSessionId
				return nil
			})
			hp := waitRecording(ctx, t, c, arn, session, *host.ParticipantId, types.ParticipantRecordingStateActive)
			if aws.ToString(hp.RecordingS3BucketName) != "recordings-e2e" {
				t.Fatalf("recordingS3BucketName %q", aws.ToString(hp.RecordingS3BucketName))
			}
			prefix := aws.ToString(hp.RecordingS3Prefix)
			if m := prefixRE.FindStringSubmatch(prefix); m == nil || m[1] != ivsID(*arn) || m[2] != session || m[3] != *host.ParticipantId {
				t.Fatalf("recordingS3Prefix %q is not <stageId>/<sessionId>/<participantId>/<epoch ms>", prefix)
			}
			// The model: the recording configuration cannot be updated while recording is active.
			_, err = c.UpdateStage(ctx, &ivsrealtime.UpdateStageInput{Arn: arn, AutoParticipantRecordingConfiguration: &types.AutoParticipantRecordingConfiguration{
				StorageConfigurationArn: aws.String("")}})
			var conflict *types.ConflictException
			if !errors.As(err, &conflict) {
				t.Fatalf("UpdateStage while recording: %v, want ConflictException", err)
			}
			if n := metric(t, p, "openstage_recordings_active"); n != 1 {
				t.Fatalf("openstage_recordings_active %v while recording one publisher", n)
			}
			list, err := c.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{StageArn: arn, SessionId: &session,
				FilterByRecordingState: types.ParticipantRecordingFilterByRecordingStateActive})
			if err != nil || len(list.Participants) != 1 || aws.ToString(list.Participants[0].ParticipantId) != *host.ParticipantId {
				t.Fatalf("filterByRecordingState ACTIVE: %+v %v", list, err)
			}

			time.Sleep(6 * time.Second)
			pub.StopSending()
			time.Sleep(300 * time.Millisecond) // what is in flight arrives
			sent := pub.SentVideo.Load()
			if err := pub.Delete(ctx); err != nil {
				t.Fatal(err)
			}
			waitRecording(ctx, t, c, arn, session, *host.ParticipantId, types.ParticipantRecordingStateStopped)
			if n, b := metric(t, p, "openstage_recordings_active"), metric(t, p, "openstage_recording_bytes_written_total"); n != 0 || b < 10000 {
				t.Fatalf("after the recording: openstage_recordings_active %v, openstage_recording_bytes_written_total %v", n, b)
			}
			list, err = c.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{StageArn: arn, SessionId: &session,
				FilterByRecordingState: types.ParticipantRecordingFilterByRecordingStateStopped})
			if err != nil || len(list.Participants) != 1 {
				t.Fatalf("filterByRecordingState STOPPED: %+v %v", list, err)
			}

			dir := filepath.Join(root, "recordings-e2e", filepath.FromSlash(prefix))
			for _, f := range []string{"events/recording-started.json", "events/recording-ended.json", "media/hls/multivariant.m3u8",
				"media/hls/high/playlist.m3u8", "media/thumbnails/high/1.jpg", "media/thumbnails/high/latest.jpg"} {
				if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f))); err != nil {
					t.Fatalf("layout: %v", err)
				}
			}
			checkPublished(t, playback(t, filepath.Join(dir, "media", "hls", "multivariant.m3u8")), sent, false)
			if _, err := c.UpdateStage(ctx, &ivsrealtime.UpdateStageInput{Arn: arn, AutoParticipantRecordingConfiguration: &types.AutoParticipantRecordingConfiguration{
				StorageConfigurationArn: aws.String("")}}); err != nil {
				t.Fatalf("UpdateStage after the recording: %v", err)
			}
		})
	}
}

// TestRecordingReconnectWindowAndAudioOnly: an AUDIO_ONLY recording with a reconnect window; the publisher
// publishes twice within it, and the two publishes are one recording (one prefix, a discontinuity).
func TestRecordingReconnectWindowAndAudioOnly(t *testing.T) {
	needFFmpeg(t)
	dataDir := t.TempDir()
	p := start(t, dataDir, "--session-end-grace", "20s")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := p.client()
	arn, whipURL, tokens := recordingStage(ctx, t, c, "recordings-rw", types.AutoParticipantRecordingConfiguration{
		MediaTypes:                      []types.ParticipantRecordingMediaType{types.ParticipantRecordingMediaTypeAudioOnly},
		RecordingReconnectWindowSeconds: 4,
		HlsConfiguration:                &types.ParticipantRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)},
	}, "host")
	host := tokens[0]
	var prefix, session string
	for i := range 2 {
		pub, err := peer.Publish(ctx, peer.Options{WHIPURL: whipURL, Token: *host.Token})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			ivstest.Eventually(t, ivstest.Until(ctx, time.Minute), 20*time.Millisecond, func() error {
				st, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: arn})
				if err != nil || st.Stage.ActiveSessionId == nil {
					return fmt.Errorf("no session yet: %v", err)
				}
				session = *st.Stage.ActiveSessionId
				return nil
			})
		}
		hp := waitRecording(ctx, t, c, arn, session, *host.ParticipantId, types.ParticipantRecordingStateActive)
		if i == 0 {
			prefix = aws.ToString(hp.RecordingS3Prefix)
		} else if got := aws.ToString(hp.RecordingS3Prefix); got != prefix {
			t.Fatalf("the publish within the reconnect window started recording %q, want %q continued", got, prefix)
		}
		time.Sleep(3 * time.Second)
		if err := pub.Delete(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // within the window
	}
	waitRecording(ctx, t, c, arn, session, *host.ParticipantId, types.ParticipantRecordingStateStopped)
	dir := filepath.Join(dataDir, "recordings", "recordings-rw", filepath.FromSlash(prefix))
	pl, err := os.ReadFile(filepath.Join(dir, "media", "hls", "high", "playlist.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(pl, []byte("#EXT-X-DISCONTINUITY")) != 1 || !bytes.HasSuffix(pl, []byte("#EXT-X-ENDLIST\n")) {
		t.Fatalf("playlist of two publishes:\n%s", pl)
	}
	r := playback(t, filepath.Join(dir, "media", "hls", "multivariant.m3u8"))
	checkPublished(t, r, 0, true)
	if r.duration < 5*time.Second || r.duration > 8*time.Second {
		t.Fatalf("two publishes of about 3 s recorded as %v", r.duration)
	}
}

// TestRecordingSurvivesKill: kill -9 mid-recording, restart: the playlist lists the segments written
// before the kill, plays, and is made VOD-complete; the participant's recordingState is FAILED, not ACTIVE.
func TestRecordingSurvivesKill(t *testing.T) {
	needFFmpeg(t)
	dataDir := t.TempDir()
	p := start(t, dataDir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := p.client()
	arn, whipURL, tokens := recordingStage(ctx, t, c, "recordings-kill", types.AutoParticipantRecordingConfiguration{
		HlsConfiguration: &types.ParticipantRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)}}, "host")
	host := tokens[0]
	pub, err := peer.Publish(ctx, peer.Options{WHIPURL: whipURL, Token: *host.Token})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	var session string
	ivstest.Eventually(t, ivstest.Until(ctx, time.Minute), 20*time.Millisecond, func() error {
		st, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: arn})
		if err != nil || st.Stage.ActiveSessionId == nil {
			return fmt.Errorf("no session yet: %v", err)
		}
		session = *st.Stage.ActiveSessionId
		return nil
	})
	hp := waitRecording(ctx, t, c, arn, session, *host.ParticipantId, types.ParticipantRecordingStateActive)
	dir := filepath.Join(dataDir, "recordings", "recordings-kill", filepath.FromSlash(aws.ToString(hp.RecordingS3Prefix)))
	playlist := filepath.Join(dir, "media", "hls", "high", "playlist.m3u8")
	ivstest.Eventually(t, ivstest.Until(ctx, time.Minute), 50*time.Millisecond, func() error {
		b, err := os.ReadFile(playlist)
		if err != nil || bytes.Count(b, []byte("#EXTINF")) < 3 {
			return fmt.Errorf("fewer than 3 segments yet: %v", err)
		}
		return nil
	})
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p.wait(t)
	before, err := os.ReadFile(playlist)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(before, []byte("#EXT-X-ENDLIST")) {
		t.Fatalf("a killed recording's playlist already ended:\n%s", before)
	}
	// Every segment the playlist lists was written before it was listed.
	for _, line := range strings.Split(string(before), "\n") {
		if strings.HasSuffix(line, ".mp4") && !strings.HasPrefix(line, "#") {
			if _, err := os.Stat(filepath.Join(dir, "media", "hls", "high", line)); err != nil {
				t.Fatalf("listed segment missing after kill: %v", err)
			}
		}
	}
	pub.Close()

	p2 := start(t, dataDir)
	c2 := p2.client()
	waitRecording(ctx, t, c2, arn, session, *host.ParticipantId, types.ParticipantRecordingStateFailed)
	var after []byte
	// With PostgreSQL the stage's new owner finishes the files when it adopts the stage, beside the state.
	ivstest.Eventually(t, ivstest.Until(ctx, 30*time.Second), 50*time.Millisecond, func() error {
		after, err = os.ReadFile(playlist)
		if err != nil || !bytes.HasSuffix(after, []byte("#EXT-X-ENDLIST\n")) {
			return fmt.Errorf("playlist not finished yet: %v", err)
		}
		return nil
	})
	// The same segments, now a VOD playlist with its end.
	want := append(bytes.Replace(before, []byte("#EXT-X-PLAYLIST-TYPE:EVENT"), []byte("#EXT-X-PLAYLIST-TYPE:VOD"), 1), "#EXT-X-ENDLIST\n"...)
	if !bytes.Equal(after, want) {
		t.Fatalf("recovered playlist:\n%s\nbefore the restart:\n%s", after, before)
	}
	if _, err := os.Stat(filepath.Join(dir, "events", "recording-failed.json")); err != nil {
		t.Fatal(err)
	}
	r := playback(t, filepath.Join(dir, "media", "hls", "multivariant.m3u8"))
	if r.video != "h264" || r.audio != "opus" || r.duration < 4*time.Second {
		t.Fatalf("recovered recording %+v", r)
	}
}

// TestAiortcPublishIsRecorded: aiortc (Python, its own H.264 encoder) publishes over WHIP on a recording
// stage; the recording plays in ffprobe and ffmpeg.
func TestAiortcPublishIsRecorded(t *testing.T) {
	needFFmpeg(t)
	needClient(t, aiortcCheck())
	dataDir := t.TempDir()
	p := start(t, dataDir, "--session-end-grace", "1s")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := p.client()
	arn, whipURL, tokens := recordingStage(ctx, t, c, "recordings-aiortc", types.AutoParticipantRecordingConfiguration{
		HlsConfiguration: &types.ParticipantRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)}}, "aiortc")
	tok := tokens[0]
	s := runScript(ctx, t, "aiortc_publish.py", pythonEnv, systemPython, clientScript(t, "aiortc_publish.py"), whipURL, *tok.Token, "--seconds", "6")
	session := waitPublishing(ctx, t, c, arn, *tok.ParticipantId, s)
	hp := waitRecording(ctx, t, c, arn, session, *tok.ParticipantId, types.ParticipantRecordingStateActive)
	s.wait(t)
	waitRecording(ctx, t, c, arn, session, *tok.ParticipantId, types.ParticipantRecordingStateStopped)
	playlist := filepath.Join(dataDir, "recordings", "recordings-aiortc", filepath.FromSlash(aws.ToString(hp.RecordingS3Prefix)), "media", "hls", "multivariant.m3u8")
	r := playback(t, playlist)
	if r.video != "h264" || r.audio != "opus" || r.duration < 3*time.Second {
		t.Fatalf("aiortc's recording: %+v", r)
	}
	t.Logf("aiortc's publish recorded: %+v", r)
}

// TestRecordingSimulcast: of a simulcast publisher (three RID layers), the highest layer is recorded, and
// plays.
func TestRecordingSimulcast(t *testing.T) {
	needFFmpeg(t)
	dataDir := t.TempDir()
	p := start(t, dataDir, "--session-end-grace", "1s")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := p.client()
	arn, whipURL, tokens := recordingStage(ctx, t, c, "recordings-simulcast", types.AutoParticipantRecordingConfiguration{
		HlsConfiguration: &types.ParticipantRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)}}, "host")
	host := tokens[0]
	pub, err := peer.Publish(ctx, peer.Options{WHIPURL: whipURL, Token: *host.Token, Simulcast: []string{"q", "h", "f"}})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	session := waitPublishing(ctx, t, c, arn, *host.ParticipantId, nil)
	hp := waitRecording(ctx, t, c, arn, session, *host.ParticipantId, types.ParticipantRecordingStateActive)
	time.Sleep(4 * time.Second)
	if err := pub.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	waitRecording(ctx, t, c, arn, session, *host.ParticipantId, types.ParticipantRecordingStateStopped)
	dir := filepath.Join(dataDir, "recordings", "recordings-simulcast", filepath.FromSlash(aws.ToString(hp.RecordingS3Prefix)))
	r := playback(t, filepath.Join(dir, "media", "hls", "multivariant.m3u8"))
	if r.video != "h264" || r.audio != "opus" || r.duration < 3*time.Second {
		t.Fatalf("simulcast recording: %+v", r)
	}
	// The highest layer carries the most filler data (peer.Options.Simulcast), which the recorder drops:
	// what is left is the fixture's frames, 15 a second, each once.
	want := time.Duration(r.frames) * time.Second / 15
	if d := r.duration - want; d < -want/20 || d > want/20 {
		t.Fatalf("%d frames in %v: frames of more than one layer recorded?", r.frames, r.duration)
	}
}
