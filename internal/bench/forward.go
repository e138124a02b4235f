package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/openstage/openstage/internal/loadtest"
)

// Scenario is one load test run against the server.
type Scenario struct {
	Name                    string        `json:"name"`
	Publishers              int           `json:"publishers"`
	SubscribersPerPublisher int           `json:"subscribersPerPublisher"`
	PacketRate              int           `json:"packetRate"`
	Duration                time.Duration `json:"duration"`
}

// ForwardRow is a scenario and what the load test measured.
type ForwardRow struct {
	Scenario Scenario         `json:"scenario"`
	Report   *loadtest.Report `json:"report"`
}

// scenarios: a camera-like fan-out, then synthetic streams that push the forwarding rate up. The load
// generator (pion clients, one decrypting peer connection per subscriber) runs on the same cores as the
// server, so the rates stay where the machine can carry both without loss; CPU per forwarded packet is
// what is compared, and that does not depend on the rate.
func scenarios(tiny bool) []Scenario {
	if tiny {
		return []Scenario{{Name: "tiny", Publishers: 1, SubscribersPerPublisher: 2, PacketRate: 100, Duration: time.Second}}
	}
	return []Scenario{
		{Name: "camera 2×20", Publishers: 2, SubscribersPerPublisher: 20, Duration: 8 * time.Second},
		{Name: "synthetic 4×10 @600", Publishers: 4, SubscribersPerPublisher: 10, PacketRate: 600, Duration: 8 * time.Second},
		{Name: "synthetic 2×25 @600", Publishers: 2, SubscribersPerPublisher: 25, PacketRate: 600, Duration: 8 * time.Second},
	}
}

// forward starts a server process and runs the scenarios against it.
func forward(ctx context.Context, o Options, dir string) ([]ForwardRow, error) {
	var rows []ForwardRow
	for i, sc := range scenarios(o.Tiny) {
		// A fresh server per scenario: each profile and each CPU figure is that scenario's alone.
		prof := ""
		if o.ProfileDir != "" {
			prof = filepath.Join(o.ProfileDir, fmt.Sprintf("forward-%d.pprof", i+1))
		}
		url, stop, err := o.Server(ctx, filepath.Join(dir, fmt.Sprintf("server-%d", i+1)), prof)
		if err != nil {
			return rows, err
		}
		o.logf("forward: %s (%d publishers × %d subscribers, %s)", sc.Name, sc.Publishers, sc.SubscribersPerPublisher, sc.Duration)
		warmup := 2 * time.Second
		if o.Tiny {
			warmup = 200 * time.Millisecond
		}
		r, err := loadtest.Run(ctx, loadtest.Config{Endpoint: url, Region: benchRegion, AccessKeyID: benchKeyID, SecretAccessKey: benchSecret,
			Publishers: sc.Publishers, SubscribersPerPublisher: sc.SubscribersPerPublisher, PacketRate: sc.PacketRate,
			Duration: sc.Duration, Warmup: warmup, Progress: o.Log})
		serr := stop()
		if err != nil {
			return rows, fmt.Errorf("forward %s: %w", sc.Name, err)
		}
		if serr != nil {
			return rows, fmt.Errorf("forward %s: the server: %w", sc.Name, serr)
		}
		rows = append(rows, ForwardRow{Scenario: sc, Report: r})
	}
	return rows, nil
}
