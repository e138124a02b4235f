package main

import (
	"encoding/json"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/openstage/openstage/internal/loadtest"
)

func loadtestCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "loadtest",
		Short: "Load an openstage (this one or any other) with real WebRTC publishers and subscribers and report",
		Long: `loadtest makes a stage and tokens through the API (AWS SigV4, as any SDK), connects N publishers
and M subscribers per publisher over WHIP with pion (DTLS-SRTP, NACK, RTCP), lets media flow for the
duration, and reports join times and the subscribers' join rate, delivered/expected packets, loss, jitter,
the server's CPU seconds per forwarded packet from two scrapes of its /metrics, and its memory (RSS, Go heap,
stacks) and goroutines per subscription, read before the subscribers join and while they receive. It
deletes its stages at the end.

Credentials come from the flags or, as with the AWS CLI, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN and AWS_DEFAULT_REGION (or AWS_REGION).

Publishers send a camera-like H.264 320x180 15 fps stream and Opus. For more load, --packet-rate makes
each publisher send that many synthetic H.264 video packets a second (the same frames plus filler-data
NAL units, real SRTP): mind the server's media policy bitrate limit (8.5 Mbps with "ivs", that is about
880 packets/s of 1200 bytes), and use more publishers and subscribers rather than one fast stream.

--flood N measures something else: what a flood of bad participant tokens does to real participants.
One publisher and --flood-subscribers subscribers run from --local-addr (127.0.0.1) while new subscribers
and events sockets join one after another and an API caller calls GetStage, first for --duration without
an attack, then for --duration while N attackers, from --flood-from (127.0.0.2), send bad tokens (forged
signatures, each fresh; expired; garbage; a deleted stage's) to WHIP publish, WHIP subscribe and the events
socket, --flood-rate requests a second in all (0: as fast as they can); --flood-rounds times. It reports
join times, delivered packets, GetStage latency and the server's CPU in the quiet and the flooded phases
and their ratios. It runs against a loopback endpoint only.

--audience N measures the stage events protocol on a large stage instead: --audience-hosts participants
whose token may publish, then N subscribe-only viewers join one stage over the events WebSocket as the IVS
web SDK does, --join-concurrency at a time, each staying connected and reading all it is sent. It reports
joins/s, join times (dial to the first STAGE_STATE), and at 10%, 50%, 90% and 100% of the joins the bytes
every socket received and the server's CPU per join since the last checkpoint. The server must allow that
many connections (serve --http-max-conns) and both processes that many open files (ulimit -n).`,
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	cfg := loadtest.Config{}
	f.StringVar(&cfg.Endpoint, "endpoint", "http://127.0.0.1:8080", "the openstage API URL")
	f.StringVar(&cfg.MetricsURL, "metrics-url", "", "the server's Prometheus metrics (default <endpoint>/metrics)")
	f.StringVar(&cfg.Region, "region", firstEnv("AWS_DEFAULT_REGION", "AWS_REGION"), "SigV4 region (default us-east-1)")
	f.StringVar(&cfg.AccessKeyID, "access-key-id", os.Getenv("AWS_ACCESS_KEY_ID"), "API access key id")
	f.StringVar(&cfg.SecretAccessKey, "secret-access-key", os.Getenv("AWS_SECRET_ACCESS_KEY"), "API secret access key")
	f.IntVar(&cfg.Publishers, "publishers", 1, "publishers")
	f.IntVar(&cfg.SubscribersPerPublisher, "subscribers-per-publisher", 1, "subscribers of each publisher (each its own participant)")
	f.IntVar(&cfg.PublishersPerStage, "publishers-per-stage", 12, "publishers per stage (the server's per-stage quota)")
	f.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to measure")
	f.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "how long media flows before the measurement starts")
	f.IntVar(&cfg.PacketRate, "packet-rate", 0, "synthetic video packets per second per publisher (0: the 15 fps fixture)")
	f.IntVar(&cfg.PacketSize, "packet-size", 1200, "size of the synthetic video packets, RTP header included")
	f.BoolVar(&cfg.Record, "record", false, "record every publisher (individual participant recording to a storage configuration made for the run)")
	f.StringVar(&cfg.RecordBucket, "record-bucket", "loadtest-recordings", "the bucket of --record")
	f.IntVar(&cfg.JoinConcurrency, "join-concurrency", 8, "peers negotiating at once")
	f.StringVar(&cfg.LocalAddr, "local-addr", "127.0.0.1", "IP the peers' UDP sockets bind (0.0.0.0 for a server on another host)")
	flood := loadtest.FloodConfig{}
	f.IntVar(&flood.Attackers, "flood", 0, "measure a flood of bad tokens with this many attackers instead (see above)")
	f.Float64Var(&flood.AttackRate, "flood-rate", 2500, "bad requests per second the attackers send in all (0: as fast as they can)")
	f.StringVar(&flood.AttackFrom, "flood-from", "127.0.0.2", "loopback address the attackers connect from")
	f.IntVar(&flood.Subscribers, "flood-subscribers", 2, "subscribers receiving the publisher's media throughout the flood test")
	f.IntVar(&flood.Rounds, "flood-rounds", 3, "rounds of a quiet and a flooded phase, each --duration long")
	f.BoolVar(&flood.AttackOpen, "flood-open", false, "attackers do not wait for answers: requests start at --flood-rate regardless (up to 1024 in flight)")
	audience := loadtest.AudienceConfig{}
	f.IntVar(&audience.Viewers, "audience", 0, "measure the events protocol instead: this many subscribe-only participants join one stage over the events WebSocket, --join-concurrency at a time (see above)")
	f.IntVar(&audience.Hosts, "audience-hosts", 2, "participants whose token may publish, joined before the --audience viewers")
	asJSON := f.Bool("json", false, "print the report as JSON")
	cpuprofile := f.String("cpuprofile", "", "write a CPU profile of the load generator to this file")
	_ = f.MarkHidden("cpuprofile")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg.SessionToken = os.Getenv("AWS_SESSION_TOKEN")
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if !*asJSON {
			cfg.Progress = cmd.ErrOrStderr()
		}
		if *cpuprofile != "" {
			pf, err := os.Create(*cpuprofile)
			if err != nil {
				return err
			}
			defer pf.Close()
			if err := pprof.StartCPUProfile(pf); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		var r interface{ WriteText(io.Writer) }
		var err error
		switch {
		case audience.Viewers > 0:
			audience.Config = cfg
			r, err = loadtest.Audience(ctx, audience)
		case flood.Attackers > 0:
			flood.Config = cfg
			r, err = loadtest.Flood(ctx, flood)
		default:
			r, err = loadtest.Run(ctx, cfg)
		}
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(r)
		}
		r.WriteText(cmd.OutOrStdout())
		return nil
	}
	return cmd
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}
