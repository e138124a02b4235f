package stage_test

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

// BenchmarkJoinLeave is the domain's write path for one participant's visit: Join (JOINED) then Leave (LEFT),
// each a durable store transaction with its events, their history checks and, since the notification log,
// their notifications; an anchor participant keeps one session open. It is what the notification log costs
// the event path, run against the commit before it (docs/BENCHMARKS.md, "Webhook delivery").
func BenchmarkJoinLeave(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "openstage.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	key, _ := token.GenerateKey()
	signer, _ := token.NewSigner(key, token.KeyIDFor(&key.PublicKey))
	svc := stage.New(stage.Config{Account: ivs.Account{Region: "us-east-1", ID: "000000000000"},
		WHIPURL: "http://127.0.0.1/whip", EventsURL: "ws://127.0.0.1/events", Quotas: stage.Quotas{Stages: 10, SubscribersPerStage: 1 << 20}},
		st, clock.Real{}, signer, nil)
	defer func() { _ = svc.Shutdown(ctx) }()
	v, _, err := svc.CreateStage(ctx, "visits", nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	id := ivs.StageID(ivs.LastSegment(v.ARN))
	join := func(i int) *stage.Presence {
		c := token.Claims{ParticipantID: fmt.Sprintf("p%011d", i), Topic: string(id), Resource: v.ARN, UserID: "u"}
		pr, err := svc.Join(ctx, stage.JoinRequest{Claims: c, Kind: stage.ConnEvents})
		if err != nil {
			b.Fatal(err)
		}
		return pr
	}
	anchor := join(0)
	defer func() { _ = anchor.Leave(ctx) }()
	i := 1
	for b.Loop() {
		if err := join(i).Leave(ctx); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
