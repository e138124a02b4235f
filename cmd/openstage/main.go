// Command openstage is a self-hosted server for real-time stages that speaks the Amazon IVS Real-Time API.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/spf13/cobra"

	"github.com/openstage/openstage/internal/config"
	"github.com/openstage/openstage/internal/server"
)

func main() {
	if err := root().Execute(); err != nil {
		os.Exit(1)
	}
}

func root() *cobra.Command {
	cmd := &cobra.Command{
		Use:           "openstage",
		Short:         "A self-hosted server for real-time stages that speaks the Amazon IVS Real-Time API",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	cmd.AddCommand(serveCmd())
	cmd.AddCommand(loadtestCmd())
	cmd.AddCommand(benchCmd())
	cmd.AddCommand(webhooksCmd())
	return cmd
}

func serveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the server with its embedded store",
		Args:  cobra.NoArgs,
	}
	cfg := config.Flags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return runServer(cmd, cfg, "") }
	return cmd
}

// runServer is serve's work, shared with `bench server`: resolve the settings, start the server, run it until
// SIGINT or SIGTERM. With cpuprofile set, a CPU profile of the whole run is written there.
func runServer(cmd *cobra.Command, cfg *config.Config, cpuprofile string) error {
	if err := config.Resolve(cmd.Flags(), cfg, os.Getenv); err != nil {
		return err
	}
	log, err := newLogger(cfg)
	if err != nil {
		return err
	}
	setMemoryLimit(log)
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	return srv.Run(ctx, cmd.OutOrStdout(), nil)
}

// setMemoryLimit gives the Go runtime a soft memory limit of 90% of the container's (the cgroup's memory
// limit), unless GOMEMLIMIT is set or AUTOMEMLIMIT=off: near the limit the collector then works harder
// instead of the kernel killing the process, and a subscription costs about 0.19 MB at rest instead of 0.30
// (docs/BENCHMARKS.md, "Fifth pass"). Without a cgroup limit, nothing changes.
func setMemoryLimit(log *slog.Logger) {
	_, _ = memlimit.Set(memlimit.WithProvider(memlimit.FromCgroup), memlimit.WithRatio(0.9),
		memlimit.WithLogger(log.With("component", "memlimit")))
}

func newLogger(cfg *config.Config) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch cfg.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", cfg.LogFormat)
	}
}
