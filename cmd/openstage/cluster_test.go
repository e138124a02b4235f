package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/pion/webrtc/v4"

	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/peer"
	"github.com/openstage/openstage/internal/store/teststore"
)

// Several nodes on one PostgreSQL (docs/DESIGN.md §6.2), as real `openstage serve` processes on loopback.

// clusterTTL is the nodes' --node-ttl in these tests: short, so that failover fits in a test.
const clusterTTL = 1500 * time.Millisecond

// startNodes starts n nodes on one fresh schema.
func startNodes(t testing.TB, n int, extra ...string) (string, []*proc, []string) {
	t.Helper()
	dsn := teststore.PostgresDSN(t) // skips without OPENSTAGE_TEST_DATABASE
	var nodes []*proc
	var dirs []string
	for range n {
		dir := t.TempDir()
		dirs = append(dirs, dir)
		nodes = append(nodes, startNode(t, dsn, dir, extra...))
	}
	return dsn, nodes, dirs
}

func startNode(t testing.TB, dsn, dir string, extra ...string) *proc {
	t.Helper()
	return start(t, dir, append([]string{"--database", dsn, "--node-ttl", clusterTTL.String(), "--session-end-grace", "500ms"}, extra...)...)
}

// via is u with the scheme and host of node p: the same URL through another front door, as a load balancer
// in front of the nodes would send it.
func via(t testing.TB, u string, p *proc) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	nu, _ := url.Parse(p.url)
	pu.Scheme, pu.Host = nu.Scheme, nu.Host
	return pu.String()
}

// owners reads the leases: stage id → owning node id, and node id → its URL, from the operators' view.
func owners(ctx context.Context, t *testing.T, dsn string) (map[string]string, map[string]string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT node_id, url, stages FROM cluster_nodes`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	own, urls := map[string]string{}, map[string]string{}
	for rows.Next() {
		var node, u string
		var stages []string
		if err := rows.Scan(&node, &u, &stages); err != nil {
			t.Fatal(err)
		}
		urls[node] = u
		for _, s := range stages {
			if prev, dup := own[s]; dup {
				t.Fatalf("stage %s owned by %s and %s", s, prev, node)
			}
			own[s] = node
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return own, urls
}

// ownerOf is the node (of nodes) that owns the stage.
func ownerOf(ctx context.Context, t *testing.T, dsn, stageID string, nodes []*proc) *proc {
	t.Helper()
	own, urls := owners(ctx, t, dsn)
	node, ok := own[stageID]
	if !ok {
		t.Fatalf("stage %s has no owner", stageID)
	}
	for _, p := range nodes {
		if p.url == urls[node] {
			return p
		}
	}
	t.Fatalf("stage %s is owned by %s at %s, none of the nodes", stageID, node, urls[node])
	return nil
}

// stageStateIDs returns the sorted participant ids of a STAGE_STATE message.
func stageStateIDs(b []byte) ([]string, bool) {
	var m struct {
		Type    string `json:"type"`
		Payload struct {
			Participants []struct {
				ID string `json:"id"`
			} `json:"participants"`
		} `json:"payload"`
	}
	if json.Unmarshal(b, &m) != nil || m.Type != "STAGE_STATE" {
		return nil, false
	}
	ids := []string{}
	for _, p := range m.Payload.Participants {
		ids = append(ids, p.ID)
	}
	slices.Sort(ids)
	return ids, true
}

// waitSubscriberCount reads the socket until an aws:ivs:SUBSCRIBER_COUNT says count.
func waitSubscriberCount(ctx context.Context, t testing.TB, ws *websocket.Conn, count int) {
	t.Helper()
	last := -1
	for last != count {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("events socket: %v (last count %d, want %d)", err, last, count)
		}
		var m struct {
			Type    string `json:"type"`
			Payload struct {
				Count int `json:"count"`
			} `json:"payload"`
		}
		if json.Unmarshal(b, &m) == nil && m.Type == "aws:ivs:SUBSCRIBER_COUNT" {
			last = m.Payload.Count
		}
	}
}

// waitStageState reads STAGE_STATE messages until one lists want (ids, any order), and returns.
func waitStageState(ctx context.Context, t testing.TB, ws *websocket.Conn, want ...string) {
	t.Helper()
	slices.Sort(want)
	var last []string
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("events socket: %v (last STAGE_STATE %v, want %v)", err, last, want)
		}
		ids, ok := stageStateIDs(b)
		if !ok {
			continue
		}
		last = ids
		if slices.Equal(ids, want) {
			return
		}
	}
}

// TestClusterFrontDoorAndFailover: a publisher through node A, a subscriber through node B and an events
// socket through node C meet on one owner; media flows; DisconnectParticipant through B kicks the socket held
// through C; a WHIP resource is deleted through a node that does not hold it; then the owner is killed (-9),
// and the survivors end its session with every participant's history closed, within ttl + grace + 5 s; a new
// join starts a new session on a new owner; and restarting a node that owns nothing leaves that session be.
func TestClusterFrontDoorAndFailover(t *testing.T) {
	dsn, nodes, dirs := startNodes(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := c.client().CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("cluster"),
		ParticipantTokenConfigurations: []types.ParticipantTokenConfiguration{
			{UserId: aws.String("host")},
			{UserId: aws.String("viewer"), Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}},
			{UserId: aws.String("watcher"), Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	arn, stageID := out.Stage.Arn, ivsID(*out.Stage.Arn)
	host, viewer, watcher := out.ParticipantTokens[0], out.ParticipantTokens[1], out.ParticipantTokens[2]
	whipURL, eventsURL := *out.Stage.Endpoints.Whip, *out.Stage.Endpoints.Events

	// The first join, through A, makes A the owner.
	pub, err := peer.Publish(ctx, peer.Options{WHIPURL: via(t, whipURL, a), Token: *host.Token})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if got := ownerOf(ctx, t, dsn, stageID, nodes); got != a {
		t.Fatalf("the stage is owned by %s, want a (%s)", got.url, a.url)
	}
	ws, _, err := websocket.Dial(ctx, via(t, eventsURL, c)+"?topic="+stageID+"/publishers",
		&websocket.DialOptions{Subprotocols: []string{*watcher.Token}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	waitState(ctx, t, ws, *host.ParticipantId) // publishing, seen through c
	sub, err := peer.Subscribe(ctx, peer.Options{WHIPURL: via(t, whipURL, b), Token: *viewer.Token}, *host.ParticipantId)
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
	// The three connections, through three nodes, are one stage on one owner: the host is listed (seen
	// above), the viewer and the watcher, subscribe-only, are counted (docs/DESIGN.md §4.3).
	waitSubscriberCount(ctx, t, ws, 2)
	if got := ownerOf(ctx, t, dsn, stageID, nodes); got != a {
		t.Fatalf("the stage moved to %s", got.url)
	}
	// The answer carries the owner's candidates, so media goes straight to it: the subscriber's answer came
	// through B with A's media port.
	if !strings.Contains(sub.AnswerSDP(), mediaPort(t, pub.AnswerSDP())) {
		t.Fatalf("the subscriber's answer (through b) does not carry the owner's media port %s:\n%s", mediaPort(t, pub.AnswerSDP()), sub.AnswerSDP())
	}

	// B's front door forwarded the subscription; A owns one stage.
	if got := metric(t, b, `openstage_cluster_forwarded_requests_total{route="whip"}`); got < 1 {
		t.Fatalf("b forwarded %v WHIP requests", got)
	}
	if got := metric(t, a, "openstage_cluster_owned_stages"); got != 1 {
		t.Fatalf("a owns %v stages", got)
	}

	// DisconnectParticipant through B, for the socket held through C: the owner closes it before B answers.
	if _, err := b.client().DisconnectParticipant(ctx, &ivsrealtime.DisconnectParticipantInput{StageArn: arn,
		ParticipantId: watcher.ParticipantId, Reason: aws.String("kicked through b")}); err != nil {
		t.Fatal(err)
	}
	session := activeSession(ctx, t, c.client(), arn)
	gp, err := c.client().GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: arn, SessionId: &session, ParticipantId: watcher.ParticipantId})
	if err != nil || gp.Participant.State != types.ParticipantStateDisconnected {
		t.Fatalf("the watcher after DisconnectParticipant returned: %+v %v", gp, err)
	}
	readCtx, readCancel := context.WithTimeout(ctx, 5*time.Second)
	for {
		if _, _, err := ws.Read(readCtx); err != nil {
			if readCtx.Err() != nil {
				t.Fatal("the watcher's socket (through c) stayed open after DisconnectParticipant through b")
			}
			break
		}
	}
	readCancel()

	// A second publisher's WHIP resource, made through C and deleted through B: both forward to A.
	second, err := c.client().CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: arn, UserId: aws.String("second"),
		Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilityPublish}})
	if err != nil {
		t.Fatal(err)
	}
	pub2, err := peer.Publish(ctx, peer.Options{WHIPURL: via(t, whipURL, c), Token: *second.ParticipantToken.Token})
	if err != nil {
		t.Fatal(err)
	}
	defer pub2.Close()
	del, _ := http.NewRequestWithContext(ctx, http.MethodDelete, via(t, pub2.Location(), b), nil)
	del.Header.Set("Authorization", "Bearer "+*second.ParticipantToken.Token)
	resp, err := http.DefaultClient.Do(del)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE of the resource through b: %s", resp.Status)
	}
	ivstest.Eventually(t, ivstest.Until(ctx, 10*time.Second), 50*time.Millisecond, func() error {
		got := ivstest.Events(ctx, t, b.client(), arn, session, *second.ParticipantToken.ParticipantId)
		if len(got) == 0 || got[len(got)-1] != "LEFT" {
			return fmt.Errorf("the second publisher's events after its DELETE through b: %v", got)
		}
		return nil
	})

	// kill -9 of the owner: the survivors end what it held.
	killed := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.wait(t)
	ivstest.Eventually(t, clusterTTL+500*time.Millisecond+5*time.Second, 50*time.Millisecond, func() error {
		s, err := b.client().GetStageSession(ctx, &ivsrealtime.GetStageSessionInput{StageArn: arn, SessionId: &session})
		if err != nil {
			return err
		}
		if s.StageSession.EndTime == nil {
			return errors.New("the dead owner's session is still open")
		}
		return nil
	})
	t.Logf("kill -9 of the owner to its session ended by a survivor: %v", time.Since(killed).Round(time.Millisecond))
	want := map[string]string{
		*host.ParticipantId:   "JOINED PUBLISH_STARTED PUBLISH_STOPPED LEFT",
		*viewer.ParticipantId: "JOINED SUBSCRIBE_STARTED>" + *host.ParticipantId + " SUBSCRIBE_STOPPED>" + *host.ParticipantId + " LEFT",
	}
	for pid, w := range want {
		if got := strings.Join(ivstest.Events(ctx, t, c.client(), arn, session, pid), " "); got != w {
			t.Fatalf("events of %s after the owner died\n got %s\nwant %s", pid, got, w)
		}
		gp, err := c.client().GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: arn, SessionId: &session, ParticipantId: &pid})
		if err != nil || gp.Participant.State != types.ParticipantStateDisconnected {
			t.Fatalf("participant %s after the owner died: %+v %v", pid, gp, err)
		}
	}

	// A client that reconnects gets a new owner and a new session.
	pub.Close()
	sub.Close()
	pub3, err := peer.Publish(ctx, peer.Options{WHIPURL: via(t, whipURL, b), Token: *host.Token})
	if err != nil {
		t.Fatal(err)
	}
	defer pub3.Close()
	if got := ownerOf(ctx, t, dsn, stageID, nodes); got != b {
		t.Fatalf("after the failover the stage is owned by %s, want b", got.url)
	}
	newSession := activeSession(ctx, t, c.client(), arn)
	if newSession == session {
		t.Fatal("the reconnect joined the dead owner's session")
	}

	// Restarting C, which owns nothing, leaves B's live session alone.
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.wait(t)
	c = startNode(t, dsn, dirs[2])
	time.Sleep(2 * clusterTTL) // a few of the restarted node's sweeps
	gp, err = c.client().GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: arn, SessionId: &newSession, ParticipantId: host.ParticipantId})
	if err != nil || gp.Participant.State != types.ParticipantStateConnected {
		t.Fatalf("the live publisher after a non-owner restarted: %+v %v", gp, err)
	}
	if s := activeSession(ctx, t, c.client(), arn); s != newSession {
		t.Fatalf("active session %s after a non-owner restarted, want %s", s, newSession)
	}
	if st := pub3.State(); st != webrtc.PeerConnectionStateConnected {
		t.Fatal("the publisher's connection to b dropped when c restarted")
	}

	// SIGTERM of the owner drains its own stage (LEFT, the session ended) and frees it at once.
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := b.wait(t); err != nil {
		t.Fatalf("b's graceful stop: %v\n%s", err, b.log())
	}
	if got := strings.Join(ivstest.Events(ctx, t, c.client(), arn, newSession, *host.ParticipantId), " "); got != "JOINED PUBLISH_STARTED PUBLISH_STOPPED LEFT" {
		t.Fatalf("the publisher after its node stopped: %s", got)
	}
	if own, _ := owners(ctx, t, dsn); own[stageID] != "" {
		t.Fatalf("the stage is still leased to %s after its owner stopped", own[stageID])
	}
}

// metric reads one sample of node p's /metrics (the series named name, labels included); it must be there.
func metric(t testing.TB, p *proc, name string) float64 {
	t.Helper()
	v, ok := ivstest.Sample(t, p.url, name)
	if !ok {
		t.Fatalf("no %s in %s's metrics", name, p.url)
	}
	return v
}

// activeSession is the stage's active session id.
func activeSession(ctx context.Context, t testing.TB, c *ivsrealtime.Client, arn *string) string {
	t.Helper()
	st, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: arn})
	if err != nil || st.Stage.ActiveSessionId == nil {
		t.Fatalf("GetStage: %+v %v", st, err)
	}
	return *st.Stage.ActiveSessionId
}

// mediaPort is the port of the first host candidate of an SDP answer.
func mediaPort(t *testing.T, sdp string) string {
	t.Helper()
	for line := range strings.SplitSeq(sdp, "\n") {
		f := strings.Fields(strings.TrimSpace(line))
		if len(f) >= 8 && strings.HasPrefix(f[0], "a=candidate:") && strings.EqualFold(f[2], "udp") {
			return " " + f[5] + " typ host"
		}
	}
	t.Fatalf("no UDP candidate in the answer:\n%s", sdp)
	return ""
}

// TestClusterOneOwnerUnderRacingJoins races joins on the same stages through three nodes at once: every
// stage ends up with one owner, and every participant of a stage in one session, seen by all its sockets.
func TestClusterOneOwnerUnderRacingJoins(t *testing.T) {
	dsn, nodes, _ := startNodes(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := nodes[0].client()
	const stages = 8
	type joiner struct {
		stage, pid, token, events string
		node                      *proc
	}
	var all []joiner
	arns := map[string]*string{}
	for range stages {
		var cfgs []types.ParticipantTokenConfiguration
		for range nodes {
			// Tokens that may publish: they are listed to each other (subscribe-only ones are only counted,
			// docs/DESIGN.md §4.3), so each socket's state shows the three joins on the one owner.
			cfgs = append(cfgs, types.ParticipantTokenConfiguration{})
		}
		out, err := cl.CreateStage(ctx, &ivsrealtime.CreateStageInput{ParticipantTokenConfigurations: cfgs})
		if err != nil {
			t.Fatal(err)
		}
		id := ivsID(*out.Stage.Arn)
		arns[id] = out.Stage.Arn
		for i, tok := range out.ParticipantTokens {
			all = append(all, joiner{stage: id, pid: *tok.ParticipantId, token: *tok.Token, events: *out.Stage.Endpoints.Events, node: nodes[i]})
		}
	}
	// Every join of every stage at once, each stage's three through the three nodes.
	socks := make([]*websocket.Conn, len(all))
	var wg sync.WaitGroup
	errs := make([]error, len(all))
	start := make(chan struct{})
	for i, j := range all {
		wg.Go(func() {
			<-start
			socks[i], _, errs[i] = websocket.Dial(ctx, via(t, j.events, j.node)+"?topic="+j.stage+"/publishers",
				&websocket.DialOptions{Subprotocols: []string{j.token}})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
		defer socks[i].CloseNow()
	}
	byStage := map[string][]string{}
	for _, j := range all {
		byStage[j.stage] = append(byStage[j.stage], j.pid)
	}
	for i, j := range all {
		waitStageState(ctx, t, socks[i], byStage[j.stage]...)
	}
	own, _ := owners(ctx, t, dsn) // fails on a stage with two owners
	if len(own) != stages {
		t.Fatalf("%d stages owned, want %d: %v", len(own), stages, own)
	}
	for id, arn := range arns {
		sessions, err := cl.ListStageSessions(ctx, &ivsrealtime.ListStageSessionsInput{StageArn: arn})
		if err != nil || len(sessions.StageSessions) != 1 {
			t.Fatalf("stage %s: sessions %+v %v", id, sessions, err)
		}
		parts, err := cl.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{StageArn: arn, SessionId: sessions.StageSessions[0].SessionId})
		if err != nil || len(parts.Participants) != len(nodes) {
			t.Fatalf("stage %s: participants %+v %v", id, parts, err)
		}
	}
}
