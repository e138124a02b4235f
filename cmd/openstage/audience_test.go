package main

import (
	"encoding/json"
	"testing"
)

// TestLoadtestAudienceCommand runs `openstage loadtest --audience` at a tiny size against a server process:
// the hosts and the viewers join over the events socket as the web SDK does; every socket gets exactly one
// STAGE_STATE per change of a participant who may publish (the viewers change nobody's list, docs/DESIGN.md
// §4.3), the first viewer sees the two hosts and itself, and the count it is told reaches every viewer.
// The numbers mean nothing at this size.
func TestLoadtestAudienceCommand(t *testing.T) {
	p := start(t, t.TempDir())
	out, _ := run(t, []string{"AWS_ACCESS_KEY_ID=AKOSTEST", "AWS_SECRET_ACCESS_KEY=secret"},
		"loadtest", "--endpoint", p.url, "--audience", "20", "--audience-hosts", "2", "--join-concurrency", "5", "--json")
	var r struct {
		Hosts       int `json:"hosts"`
		Viewers     int `json:"viewers"`
		StageStates int `json:"stage_states"`
		Counts      int `json:"subscriber_counts"`
		LastCount   int `json:"last_subscriber_count"`
		LastListed  int `json:"last_listed"`
		JoinMs      struct {
			N int `json:"n"`
		} `json:"join_ms"`
		Checkpoints []struct {
			Joined int `json:"joined"`
		} `json:"checkpoints"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// Each socket is told once on joining; the first host, if it joined before the second (they join
	// concurrently), once more when the second did. The viewers' joins send no state to anyone.
	if r.Hosts != 2 || r.Viewers != 20 || r.JoinMs.N != 22 || r.StageStates < 22 || r.StageStates > 23 {
		t.Fatalf("report %s", out)
	}
	if r.LastListed != 3 || r.LastCount != 20 || r.Counts < 21 {
		t.Fatalf("the viewers were told %d participants and a count of %d (%d counts in all): %s", r.LastListed, r.LastCount, r.Counts, out)
	}
	if len(r.Checkpoints) == 0 || r.Checkpoints[len(r.Checkpoints)-1].Joined != 22 {
		t.Fatalf("checkpoints %s", out)
	}
}
