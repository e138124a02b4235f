package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/coder/websocket"

	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/peer"
)

// TestMediaEndToEnd drives the real binary as a user would: the AWS SDK makes a stage and tokens, pion
// peers publish and subscribe over WHIP with the tokens' whip_url, a participant joins the events socket
// at the tokens' events_url, and the SDK then reads what happened.
func TestMediaEndToEnd(t *testing.T) {
	p := start(t, t.TempDir(), "--session-end-grace", "500ms")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := p.client()
	out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("e2e"),
		ParticipantTokenConfigurations: []types.ParticipantTokenConfiguration{
			{UserId: aws.String("host")},
			{UserId: aws.String("viewer"), Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	arn := out.Stage.Arn
	host, viewer := out.ParticipantTokens[0], out.ParticipantTokens[1]
	whipURL := *out.Stage.Endpoints.Whip
	if !strings.HasPrefix(whipURL, p.url) {
		t.Fatalf("whip endpoint %s is not on %s", whipURL, p.url)
	}

	// The viewer holds the events socket, as the IVS web SDK does, and sees the host publish.
	ws, _, err := websocket.Dial(ctx, *out.Stage.Endpoints.Events+"?error_over_ws=1&topic="+ivsID(*arn)+"/publishers",
		&websocket.DialOptions{Subprotocols: []string{*viewer.Token}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()

	hdr := map[string][]string{"User-Agent": {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.8078.73 Safari/537.36"},
		"X-Stages-Sdk": {"1.41.0"}}
	pub, err := peer.Publish(ctx, peer.Options{WHIPURL: whipURL, Token: *host.Token, PublishPath: "/publish/" + *host.ParticipantId, Header: hdr, SDKLike: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	waitState(ctx, t, ws, *host.ParticipantId)

	sub, err := peer.Subscribe(ctx, peer.Options{WHIPURL: whipURL, Token: *viewer.Token}, *host.ParticipantId)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ivstest.Eventually(t, ivstest.Until(ctx, time.Minute), 20*time.Millisecond, func() error {
		if sub.VideoPackets.Load() < 20 || sub.AudioPackets.Load() < 20 || sub.Keyframes.Load() == 0 {
			return fmt.Errorf("media did not flow: video %d audio %d keyframes %d", sub.VideoPackets.Load(), sub.AudioPackets.Load(), sub.Keyframes.Load())
		}
		return nil
	})
	sub.Close() // no DELETE, as AWS's samples
	if err := pub.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	ws.Close(websocket.StatusNormalClosure, "")

	// The session ends after the grace window; then the SDK reads the history.
	session := ivstest.WaitSessionEnded(ctx, t, c, arn, 1)
	parts, err := c.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{StageArn: arn, SessionId: &session})
	if err != nil || len(parts.Participants) != 2 {
		t.Fatalf("participants %+v %v", parts, err)
	}
	hp, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: arn, SessionId: &session, ParticipantId: host.ParticipantId})
	if err != nil {
		t.Fatal(err)
	}
	h := hp.Participant
	if !h.Published || h.State != types.ParticipantStateDisconnected || h.Protocol != types.ParticipantProtocolWhip ||
		aws.ToString(h.SdkVersion) != "1.41.0" || aws.ToString(h.BrowserName) != "Chrome" || aws.ToString(h.OsName) != "Linux" || aws.ToString(h.UserId) != "host" {
		t.Fatalf("host participant %+v", h)
	}
	want := map[string][]string{
		*host.ParticipantId:   {"JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT"},
		*viewer.ParticipantId: {"JOINED", "SUBSCRIBE_STARTED>" + *host.ParticipantId, "SUBSCRIBE_STOPPED>" + *host.ParticipantId, "LEFT"},
	}
	for pid, w := range want {
		got := ivstest.Events(ctx, t, c, arn, session, pid)
		if strings.Join(got, " ") != strings.Join(w, " ") {
			t.Fatalf("events of %s\n got %q\nwant %q", pid, got, w)
		}
	}
}

func ivsID(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

// waitState reads STAGE_STATE messages until participant id is publishing.
func waitState(ctx context.Context, t *testing.T, ws *websocket.Conn, id string) {
	t.Helper()
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("events socket: %v", err)
		}
		var m struct {
			Type    string `json:"type"`
			Payload struct {
				Participants []struct {
					ID           string `json:"id"`
					IsPublishing bool   `json:"isPublishing"`
				} `json:"participants"`
			} `json:"payload"`
		}
		if json.Unmarshal(b, &m) != nil || m.Type != "STAGE_STATE" {
			continue
		}
		for _, p := range m.Payload.Participants {
			if p.ID == id && p.IsPublishing {
				return
			}
		}
	}
}
