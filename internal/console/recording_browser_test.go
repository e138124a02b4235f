package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/openstage/openstage/internal/console"
	"github.com/openstage/openstage/internal/ivstest"
)

// TestBrowserPublishIsRecorded: Chromium publishes its (fake) camera and microphone from the join page on a
// recording stage; the recording in the data dir is H.264 and Opus that ffprobe reads and ffmpeg decodes
// without an error.
func TestBrowserPublishIsRecorded(t *testing.T) {
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found (CI=true: .ci/run installs Debian's ffmpeg)", tool)
			}
			t.Skipf("%s not found: apt-get install ffmpeg", tool)
		}
	}
	logs := &ivstest.Buffer{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("DEBUGLOGS") != "" {
			t.Logf("server and page logs:\n%s", logs.String())
		}
	})
	dataDir := t.TempDir()
	base, c := startRecordingServer(t, logs, dataDir)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sc, err := c.CreateStorageConfiguration(ctx, &ivsrealtime.CreateStorageConfigurationInput{Name: aws.String("browser"),
		S3: &types.S3StorageConfiguration{BucketName: aws.String("browser-recordings")}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("recorded"),
		AutoParticipantRecordingConfiguration: &types.AutoParticipantRecordingConfiguration{StorageConfigurationArn: sc.StorageConfiguration.Arn,
			HlsConfiguration: &types.ParticipantRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)}},
		ParticipantTokenConfigurations: []types.ParticipantTokenConfiguration{{UserId: aws.String("alice")}}})
	if err != nil {
		t.Fatal(err)
	}
	arn, tok := out.Stage.Arn, out.ParticipantTokens[0]

	b := startBrowser(t, logs)
	tb := b.open("alice", base+console.JoinPath+"?token="+*tok.Token)
	tb.click("join")
	tb.waitFor("joining", `openstageJoin.stage && openstageJoin.stage.connectionState === "connected"`, 10*time.Second)

	var session, prefix string
	ivstest.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
		st, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: arn})
		if err != nil || st.Stage.ActiveSessionId == nil {
			return fmt.Errorf("no session: %v", err)
		}
		session = *st.Stage.ActiveSessionId
		p, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: arn, SessionId: &session, ParticipantId: tok.ParticipantId})
		if err != nil {
			return err
		}
		if p.Participant.RecordingState != types.ParticipantRecordingStateActive {
			return fmt.Errorf("recordingState %s", p.Participant.RecordingState)
		}
		prefix = aws.ToString(p.Participant.RecordingS3Prefix)
		return nil
	})
	time.Sleep(5 * time.Second)
	tb.click("leave")
	ivstest.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
		p, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: arn, SessionId: &session, ParticipantId: tok.ParticipantId})
		if err != nil {
			return err
		}
		if p.Participant.RecordingState != types.ParticipantRecordingStateStopped {
			return fmt.Errorf("recordingState %s", p.Participant.RecordingState)
		}
		return nil
	})

	playlist := filepath.Join(dataDir, "recordings", "browser-recordings", filepath.FromSlash(prefix), "media", "hls", "multivariant.m3u8")
	probe, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,codec_type,width,height:format=duration",
		"-of", "json", playlist).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, probe)
	}
	var p struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			CodecType string `json:"codec_type"`
			Width     int    `json:"width"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(probe, &p); err != nil {
		t.Fatal(err)
	}
	codecs := map[string]string{}
	for _, s := range p.Streams {
		codecs[s.CodecType] = s.CodecName
	}
	secs, _ := strconv.ParseFloat(p.Format.Duration, 64)
	if codecs["video"] != "h264" || codecs["audio"] != "opus" || secs < 3 {
		t.Fatalf("Chromium's recording: %s", probe)
	}
	if dec, err := exec.Command("ffmpeg", "-v", "error", "-i", playlist,
		// Timestamps passed through: a WebRTC recording is variable frame rate, and the default output's
		// conversion to a constant rate reports its own rounding, not the file's. The same for the
		// encoder's time base, 1/frame rate by default: two pictures closer than a frame (Chromium sends
		// them on a busy machine) share a tick there and the null muxer refuses the second (seen in CI,
		// "non monotonically increasing dts"); -1 keeps the file's own 90 kHz timestamps.
		"-fps_mode", "passthrough", "-enc_time_base:v", "-1", "-f", "null", "-").CombinedOutput(); err != nil || len(dec) > 0 {
		// The recording goes to the artifacts, for a look at what the decoder refused.
		if art := os.Getenv("OPENSTAGE_ARTIFACTS"); art != "" {
			_ = os.CopyFS(filepath.Join(art, "browser-recording"), os.DirFS(filepath.Dir(filepath.Dir(filepath.Dir(playlist)))))
		}
		t.Fatalf("ffmpeg decoding Chromium's recording: %v\n%s", err, dec)
	}
	t.Logf("Chromium's publish recorded: %v, %.1f s", codecs, secs)
}

// startRecordingServer is startServer with a data dir the test reads the recordings from.
func startRecordingServer(t *testing.T, logs io.Writer, dataDir string) (string, *ivsrealtime.Client) {
	t.Helper()
	cfg := serverConfig(t, 10)
	cfg.DataDir = dataDir
	_, base, c := runServer(t, logs, cfg)
	return base, c
}
