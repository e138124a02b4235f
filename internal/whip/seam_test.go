package whip_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/media/policy"
	"github.com/openstage/openstage/internal/peer"
	"github.com/openstage/openstage/internal/stage"
)

// The domain alone decides which of a participant's publishes is live (docs/DESIGN.md §9). A displaced
// publish whose replacement is refused must leave no phantom publisher: the stage shows none, the quota
// counts none, and the history says PUBLISH_STOPPED; a later good publish is PUBLISH_STARTED again.
func TestDisplacedPublishWithRefusedReplacementLeavesNoPhantom(t *testing.T) {
	pol := policy.IVS
	e := newEnv(t, stage.Quotas{}, &pol)
	tok := e.token()
	stageID := ivs.StageID(ivs.LastSegment(e.arn))
	// The participant holds its events connection throughout, as the IVS SDK does.
	claims, err := e.domain.Authenticate(e.ctx, tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	events, err := e.domain.Join(e.ctx, stage.JoinRequest{Claims: claims, Kind: stage.ConnEvents})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = events.Leave(e.ctx) }()

	first := e.publish(tok)
	waitFor(t, 5*time.Second, "PUBLISH_STARTED", func() bool { return e.domain.Publishing(stageID, tok.ParticipantID) })

	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	o := e.opts(tok)
	o.VideoCodec = "video/VP8" // refused by the ivs policy, after it has displaced the first publish
	_, err = peer.Publish(ctx, o)
	var he *peer.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusBadRequest {
		t.Fatalf("VP8 publish: %v", err)
	}
	waitFor(t, 5*time.Second, "the displaced publisher to be gone from the stage and the quota", func() bool {
		_, _, n := e.domain.LiveCounts()
		return !e.domain.Publishing(stageID, tok.ParticipantID) && n == 0
	})
	for _, p := range e.domain.StageState(stageID).Participants {
		if p.Publishing {
			t.Fatalf("stage state shows %s publishing", p.ID)
		}
	}
	e.waitEvents(tok.ParticipantID, 5*time.Second, "JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "PUBLISH_ERROR:INVALID_VIDEO_CODEC")
	first.Close()

	third := e.publish(tok)
	defer third.Close()
	waitFor(t, 5*time.Second, "PUBLISH_STARTED again", func() bool { return e.domain.Publishing(stageID, tok.ParticipantID) })
	e.waitEvents(tok.ParticipantID, 5*time.Second, "JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "PUBLISH_ERROR:INVALID_VIDEO_CODEC", "PUBLISH_STARTED")
	sub := e.subscribe(e.token(stage.CapSubscribe), tok.ParticipantID)
	waitMedia(t, sub)
}

// Two publishes with one token released at the same instant: whichever the domain takes last wins, and
// exactly one survives, visible to subscribers, with a history that says so.
func TestRacingPublishesOneSurvives(t *testing.T) {
	e := newEnv(t, stage.Quotas{}, nil)
	stageID := ivs.StageID(ivs.LastSegment(e.arn))
	for round := range 5 {
		tok := e.token()
		ctx, cancel := context.WithTimeout(e.ctx, 15*time.Second)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var pubs []*peer.Publisher
		start := make(chan struct{})
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				p, err := peer.Publish(ctx, e.opts(tok))
				if err != nil {
					return // the loser may be refused (409) if it was displaced while negotiating
				}
				mu.Lock()
				pubs = append(pubs, p)
				mu.Unlock()
			}()
		}
		close(start)
		wg.Wait()
		if len(pubs) == 0 {
			t.Fatalf("round %d: both publishes failed", round)
		}
		waitFor(t, 10*time.Second, "a publisher", func() bool { return e.domain.Publishing(stageID, tok.ParticipantID) })
		sub := e.subscribe(e.token(stage.CapSubscribe), tok.ParticipantID)
		waitMedia(t, sub)
		// The survivor keeps publishing: nothing closes it a moment later.
		time.Sleep(300 * time.Millisecond)
		if !e.domain.Publishing(stageID, tok.ParticipantID) {
			t.Fatalf("round %d: the surviving publish was closed", round)
		}
		got := e.events(tok.ParticipantID)
		started := 0
		for _, ev := range got {
			if ev == "PUBLISH_STARTED" {
				started++
			}
		}
		if started == 0 || got[0] != "JOINED" || got[len(got)-1] != "PUBLISH_STARTED" ||
			slices.Contains(got, "LEFT") {
			t.Fatalf("round %d: events %q", round, got)
		}
		sub.Close()
		for _, p := range pubs {
			p.Close()
		}
		cancel()
	}
}

func waitMedia(t *testing.T, sub *peer.Subscriber) {
	t.Helper()
	select {
	case <-sub.Media():
	case <-time.After(10 * time.Second):
		t.Fatal("the subscriber got no media")
	}
}
