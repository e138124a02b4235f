package events

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/openstage/openstage/internal/clock"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/stage"
	"github.com/openstage/openstage/internal/store/sqlite"
	"github.com/openstage/openstage/internal/token"
)

// BenchmarkStageStateChange is the server's cost of one change of a large stage's listed participants as its
// events sockets see it: a participant mutes, and each of the sockets that wake up takes the stage state
// and the STAGE_STATE participants' JSON to send (what sendState does, without the socket write). With
// one snapshot per change shared by every socket, the O(N log N) build and the O(N) encoding happen once
// per change, not once per socket. 10,000 participants is IVS's quota for one stage.
//
// Its setup joins every participant through the domain (a store transaction each, about a minute on a
// 2-core machine); with -short, as scripts/test runs every benchmark once, it joins 200.
func BenchmarkStageStateChange(b *testing.B) {
	participants := 10_000
	if testing.Short() {
		participants = 200
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "openstage.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	key, _ := token.GenerateKey()
	signer, _ := token.NewSigner(key, token.KeyIDFor(&key.PublicKey))
	svc := stage.New(stage.Config{Account: ivs.Account{Region: "us-east-1", ID: "000000000000"},
		WHIPURL: "http://127.0.0.1/whip", EventsURL: "ws://127.0.0.1/events"}, st, clock.Real{}, signer, nil)
	defer func() { _ = svc.Shutdown(ctx) }()
	v, _, err := svc.CreateStage(ctx, "big", nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	id := ivs.StageID(ivs.LastSegment(v.ARN))
	var first *stage.Presence
	for i := range participants {
		// Participants that may publish: they are listed (docs/DESIGN.md §4.3). Subscribe-only ones would cost
		// a change nothing to show, which is the point of not listing them, not what this measures.
		c := token.Claims{ParticipantID: fmt.Sprintf("p%011d", i), Topic: string(id), Resource: v.ARN, UserID: "u",
			Attributes: map[string]string{"name": "someone"}, Capabilities: token.Capabilities{AllowPublish: true, AllowSubscribe: true}}
		pr, err := svc.Join(ctx, stage.JoinRequest{Claims: c, Kind: stage.ConnEvents})
		if err != nil {
			b.Fatal(err)
		}
		if first == nil {
			first = pr
		}
	}
	for _, sockets := range []int{1, 100} {
		b.Run(fmt.Sprintf("participants=%d/sockets=%d", participants, sockets), func(b *testing.B) {
			muted := false
			for b.Loop() {
				muted = !muted
				if err := svc.SetMediaState(first, stage.MediaState{AudioMuted: muted}); err != nil {
					b.Fatal(err)
				}
				for range sockets {
					snap := svc.StageState(id)
					if len(snap.Participants) != participants || len(snap.Encoded(encodeParticipants)) == 0 {
						b.Fatalf("the state lists %d participants, want %d", len(snap.Participants), participants)
					}
				}
			}
		})
	}
}
