package console_test

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/openstage/openstage/internal/console"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/peer"
	"github.com/openstage/openstage/internal/server"
	"github.com/openstage/openstage/internal/store/teststore"
)

// startNode runs an in-process openstage on the shared PostgreSQL dsn: one node of a cluster.
func startNode(t *testing.T, logs io.Writer, dsn string) (*server.Server, string, *ivsrealtime.Client) {
	t.Helper()
	cfg := serverConfig(t, 10)
	cfg.Database, cfg.NodeTTL = dsn, 2*time.Second
	return runServer(t, logs, cfg)
}

// TestBrowserJoinsThroughANonOwner: two nodes on one PostgreSQL; a pion publisher joins through node A,
// which so owns the stage; Chromium opens the join page on node B with a token B made, so the browser client
// (the IVS client protocol of /console/sdk/openstage-stage.js) reaches the stage only through B's front door:
// its WHIP requests and events socket are forwarded to A, its media goes to A directly. It publishes,
// subscribes to the pion publisher, and the API on either node shows it.
func TestBrowserJoinsThroughANonOwner(t *testing.T) {
	dsn := teststore.PostgresDSN(t) // skips without OPENSTAGE_TEST_DATABASE
	chromium(t)
	logs := &ivstest.Buffer{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("DEBUGLOGS") != "" {
			t.Logf("server and page logs:\n%s", logs.String())
		}
	})
	a, baseA, _ := startNode(t, logs, dsn)
	b, baseB, cb := startNode(t, logs, dsn)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := cb.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("through-b"),
		ParticipantTokenConfigurations: []types.ParticipantTokenConfiguration{{UserId: aws.String("camera")}, {UserId: aws.String("browser")}}})
	if err != nil {
		t.Fatal(err)
	}
	arn := *out.Stage.Arn
	stageID := ivs.StageID(arn[strings.LastIndexByte(arn, '/')+1:])
	camera, browser := out.ParticipantTokens[0], out.ParticipantTokens[1]
	whipA, _ := url.JoinPath(baseA, "/whip")
	pub, err := peer.Publish(ctx, peer.Options{WHIPURL: whipA, Token: *camera.Token})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if !a.Domain().Holds(stageID) || b.Domain().Holds(stageID) {
		t.Fatalf("after the first join through a: a holds the stage %v, b %v", a.Domain().Holds(stageID), b.Domain().Holds(stageID))
	}

	br := startBrowser(t, logs)
	tb := br.open("browser", baseB+console.JoinPath+"?token="+*browser.Token)
	tb.click("join")
	tb.waitFor("joining through b", `openstageJoin.stage && openstageJoin.stage.connectionState === "connected"`, 15*time.Second)
	ivstest.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
		s := tb.stats()
		if err := s.receiving(*camera.ParticipantId); err != nil {
			return err
		}
		if s.PublishState != "published" || s.Local["video"].FramesEncoded == 0 {
			return fmt.Errorf("publishing: %s %+v", s.PublishState, s.Local)
		}
		return nil
	})
	if b.Domain().Holds(stageID) {
		t.Fatal("node b holds live state of a stage a owns")
	}
	st, err := cb.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: out.Stage.Arn})
	if err != nil || st.Stage.ActiveSessionId == nil {
		t.Fatalf("GetStage on b: %+v %v", st, err)
	}
	p, err := cb.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: out.Stage.Arn, SessionId: st.Stage.ActiveSessionId, ParticipantId: browser.ParticipantId})
	if err != nil || p.Participant.State != types.ParticipantStateConnected || !p.Participant.Published || !strings.Contains(aws.ToString(p.Participant.BrowserName), "Chrome") {
		if err == nil {
			t.Fatalf("the browser participant, read on b: state %s published %v browser %q", p.Participant.State, p.Participant.Published, aws.ToString(p.Participant.BrowserName))
		}
		t.Fatalf("GetParticipant on b: %v", err)
	}
}
