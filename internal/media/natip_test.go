package media

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// With NATIP set, every host candidate of an answer (UDP and TCP) announces that address instead of the
// local one: the address clients behind the NAT reach.
func TestNATIPRewritesHostCandidates(t *testing.T) {
	const nat = "203.0.113.7" // TEST-NET-3: only ever written into the SDP, never contacted
	s, err := New(Config{UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0", IncludeLoopback: true, NATIP: nat})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	client, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	offer, err := client.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pub, answer, err := s.Publish(ctx, "stage", "participant", offer.SDP, PublishHooks{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	var hosts []string
	for _, line := range strings.Split(answer, "\n") {
		if strings.HasPrefix(line, "a=candidate:") && strings.Contains(line, " typ host") {
			hosts = append(hosts, strings.TrimSpace(line))
		}
	}
	if len(hosts) == 0 {
		t.Fatalf("no host candidate in the answer:\n%s", answer)
	}
	for _, c := range hosts {
		if !strings.Contains(c, " "+nat+" ") {
			t.Errorf("host candidate without the NAT address: %s", c)
		}
	}
}
