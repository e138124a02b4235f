package stage_test

import (
	"testing"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/stage"
)

// TestClientInfoFilledInLate: a browser joins by the events socket, which carries no SDK header and counts
// as protocol UNKNOWN; its first WHIP request completes the record (docs/DESIGN.md §4.6).
// What is known is never replaced, and a rejoin in the same session completes the record too.
func TestClientInfoFilledInLate(t *testing.T) {
	e := newEnv(t, stage.Quotas{})
	tok, err := e.svc.CreateParticipantToken(e.ctx, e.arn, stage.TokenSpec{UserID: "web", Capabilities: both})
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.svc.Authenticate(e.ctx, tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	join := func(kind stage.ConnKind, ci ivs.ClientInfo) *stage.Presence {
		t.Helper()
		pr, err := e.svc.Join(e.ctx, stage.JoinRequest{Claims: c, Kind: kind, Client: ci})
		if err != nil {
			t.Fatal(err)
		}
		return pr
	}
	ws := join(stage.ConnEvents, ivs.ClientInfo{Protocol: ivs.ProtocolUnknown, BrowserName: "Chrome", BrowserVersion: "156.0.0", OSName: "Linux"})
	if p := e.participant(ws); p.Client.Protocol != ivs.ProtocolUnknown || p.Client.SDKVersion != "" {
		t.Fatalf("after the socket: %+v", p.Client)
	}
	pub := join(stage.ConnPublish, ivs.ClientInfo{Protocol: ivs.ProtocolWHIP, BrowserName: "Firefox", OSName: "Linux", SDKVersion: "openstage-web-0.1.0"})
	wantClient := ivs.ClientInfo{Protocol: ivs.ProtocolWHIP, BrowserName: "Chrome", BrowserVersion: "156.0.0", OSName: "Linux", SDKVersion: "openstage-web-0.1.0"}
	if p := e.participant(pub); p.Client != wantClient {
		t.Fatalf("after the publish\n got %+v\nwant %+v", p.Client, wantClient)
	}
	// A later connection with other values changes nothing.
	sub := join(stage.ConnSubscribe, ivs.ClientInfo{Protocol: ivs.ProtocolWHIP, SDKVersion: "1.41.0", OSVersion: "6.1"})
	wantClient.OSVersion = "6.1" // unknown until now: filled
	if p := e.participant(sub); p.Client != wantClient {
		t.Fatalf("after the subscribe\n got %+v\nwant %+v", p.Client, wantClient)
	}
	for _, pr := range []*stage.Presence{sub, pub, ws} {
		if err := pr.Leave(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	want(t, e.events(ws), []string{"JOINED", "LEFT"})

	// Rejoining inside the session's grace window by the socket, then WHIP: the same record is completed.
	e.clk.Advance(time.Second)
	tok2, err := e.svc.CreateParticipantToken(e.ctx, e.arn, stage.TokenSpec{UserID: "web2", Capabilities: both})
	if err != nil {
		t.Fatal(err)
	}
	if c, err = e.svc.Authenticate(e.ctx, tok2.Token); err != nil {
		t.Fatal(err)
	}
	a := join(stage.ConnEvents, ivs.ClientInfo{})
	if p := e.participant(a); p.Client.Protocol != ivs.ProtocolUnknown {
		t.Fatalf("no protocol should read UNKNOWN: %+v", p.Client)
	}
	_ = a.Leave(e.ctx)
	b := join(stage.ConnSubscribe, ivs.ClientInfo{Protocol: ivs.ProtocolWHIP, SDKVersion: "1.41.0"})
	if p := e.participant(b); p.Client.Protocol != ivs.ProtocolWHIP || p.Client.SDKVersion != "1.41.0" || b.Session != a.Session {
		t.Fatalf("after the rejoin: %+v (session %s, was %s)", p.Client, b.Session, a.Session)
	}
	_ = b.Leave(e.ctx)
}
