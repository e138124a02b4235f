package main

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/coder/websocket"

	"github.com/openstage/openstage/internal/ivstest"
	"github.com/openstage/openstage/internal/peer"
)

// The cost of the front door (docs/BENCHMARKS.md, "Several nodes"): the same operation made through the
// stage's owner and through another node, on two `openstage serve` processes sharing one PostgreSQL. Run:
//
//	OPENSTAGE_TEST_DATABASE=postgres://... go test -run '^$' -bench BenchmarkClusterFrontDoor -benchtime 200x ./cmd/openstage/
//
// Compare the two sub-benchmarks of an operation as a ratio; they run side by side in one process.
func BenchmarkClusterFrontDoor(b *testing.B) {
	_, nodes, _ := startNodes(b, 2)
	owner, door := nodes[0], nodes[1]
	ctx := context.Background()
	c := owner.client()
	out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("bench"),
		ParticipantTokenConfigurations: []types.ParticipantTokenConfiguration{{UserId: aws.String("anchor")}}})
	if err != nil {
		b.Fatal(err)
	}
	arn, stageID := out.Stage.Arn, ivsID(*out.Stage.Arn)
	whipURL, eventsURL := *out.Stage.Endpoints.Whip, *out.Stage.Endpoints.Events
	// An anchor participant, joined through the owner, keeps one session (and the lease) for the whole run.
	anchor, _, err := websocket.Dial(ctx, via(b, eventsURL, owner), &websocket.DialOptions{Subprotocols: []string{*out.ParticipantTokens[0].Token}})
	if err != nil {
		b.Fatal(err)
	}
	defer anchor.CloseNow()
	waitStageState(ctx, b, anchor, *out.ParticipantTokens[0].ParticipantId)
	go func() { // the anchor's socket must be read for its pings to be answered
		for {
			if _, _, err := anchor.Read(ctx); err != nil {
				return
			}
		}
	}()
	tokens := func(n int, caps ...types.ParticipantTokenCapability) []*types.ParticipantToken {
		var ts []*types.ParticipantToken
		for range n {
			t, err := c.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: arn, Capabilities: caps})
			if err != nil {
				b.Fatal(err)
			}
			ts = append(ts, t.ParticipantToken)
		}
		return ts
	}
	// Each operation through the owner, then through the other node, so that the two run side by side.
	nodesBy := []struct {
		name string
		node *proc
	}{{"owner", owner}, {"front-door", door}}
	for _, through := range nodesBy {
		// A subscribe-only participant joins on the events socket and leaves: dial, the first STAGE_STATE that
		// lists it, close.
		b.Run("events-join/"+through.name, func(b *testing.B) {
			ts := tokens(b.N, types.ParticipantTokenCapabilitySubscribe)
			b.ResetTimer()
			for i := range b.N {
				ws, _, err := websocket.Dial(ctx, via(b, eventsURL, through.node)+"?topic="+stageID+"/publishers",
					&websocket.DialOptions{Subprotocols: []string{*ts[i].Token}})
				if err != nil {
					b.Fatal(err)
				}
				waitStageState(ctx, b, ws, *out.ParticipantTokens[0].ParticipantId, *ts[i].ParticipantId)
				ws.Close(websocket.StatusNormalClosure, "")
			}
		})
	}
	for _, through := range nodesBy {
		// A WHIP publisher (pion): the offer/answer through the node, then ICE and DTLS with the owner.
		b.Run("whip-publish/"+through.name, func(b *testing.B) {
			ts := tokens(b.N, types.ParticipantTokenCapabilityPublish)
			b.ResetTimer()
			for i := range b.N {
				pub, err := peer.Publish(ctx, peer.Options{WHIPURL: via(b, whipURL, through.node), Token: *ts[i].Token})
				if err != nil {
					b.Fatal(err)
				}
				if err := pub.WaitConnected(ctx); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				pub.Close()
				b.StartTimer()
			}
		})
	}
	for _, through := range nodesBy {
		// An API read any node answers from the database (no owner involved) ...
		b.Run("GetStage/"+through.name, func(b *testing.B) {
			cl := through.node.client()
			for range b.N {
				if _, err := cl.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: arn}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, through := range nodesBy {
		// ... and one that must take effect on the owner (a node-to-node call from the front door).
		b.Run("DisconnectParticipant/"+through.name, func(b *testing.B) {
			cl := through.node.client()
			for i := range b.N {
				pid := fmt.Sprintf("absent%06d", i)
				if _, err := cl.DisconnectParticipant(ctx, &ivsrealtime.DisconnectParticipantInput{StageArn: arn, ParticipantId: &pid}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkClusterFailover measures kill -9 of a stage's owner to the LEFT of its participant recorded by a
// survivor, at --node-ttl 1.5s (clusterTTL): each iteration starts a node, joins a participant through it
// (so it owns the stage), kills it and polls the survivor. Reported as ms/failover and as a multiple of the ttl.
//
//	OPENSTAGE_TEST_DATABASE=postgres://... go test -run '^$' -bench BenchmarkClusterFailover -benchtime 5x ./cmd/openstage/
func BenchmarkClusterFailover(b *testing.B) {
	dsn, nodes, _ := startNodes(b, 1)
	survivor := nodes[0]
	ctx := context.Background()
	c := survivor.client()
	var total time.Duration
	for range b.N {
		b.StopTimer()
		owner := startNode(b, dsn, b.TempDir())
		out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{
			ParticipantTokenConfigurations: []types.ParticipantTokenConfiguration{{Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}}}})
		if err != nil {
			b.Fatal(err)
		}
		tok := out.ParticipantTokens[0]
		ws, _, err := websocket.Dial(ctx, via(b, *out.Stage.Endpoints.Events, owner), &websocket.DialOptions{Subprotocols: []string{*tok.Token}})
		if err != nil {
			b.Fatal(err)
		}
		waitStageState(ctx, b, ws, *tok.ParticipantId)
		session := activeSession(ctx, b, c, out.Stage.Arn)
		b.StartTimer()
		killed := time.Now()
		if err := owner.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		ivstest.Eventually(b, time.Minute, 10*time.Millisecond, func() error {
			ev := ivstest.Events(ctx, b, c, out.Stage.Arn, session, *tok.ParticipantId)
			if len(ev) == 0 || ev[len(ev)-1] != "LEFT" {
				return fmt.Errorf("events %v", ev)
			}
			return nil
		})
		total += time.Since(killed)
		b.StopTimer()
		ws.CloseNow()
		_ = owner.wait(b)
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/failover")
	b.ReportMetric(total.Seconds()/float64(b.N)/clusterTTL.Seconds(), "ttl/failover")
}
