package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/openstage/openstage/internal/bench"
	"github.com/openstage/openstage/internal/config"
)

func benchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure this machine's ceilings and openstage against them; print a markdown table",
		Long: `bench runs, on this machine and in this one run, the ceilings (a bare net/http handler, AES-GCM seal
plus a loopback UDP send, a raw SQLite keyset page, raw SQLite batch inserts) and openstage's API, store
and media forwarding, and prints the results as a markdown table with the ratios to the ceilings
(docs/BENCHMARKS.md explains the method). The media part starts this binary as a server process and
loads it with the load test, so that the server's CPU is its own.`,
		Args: cobra.NoArgs,
	}
	o := bench.Options{}
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", "", "scratch directory for the databases (default: a temporary directory on the disk of the working directory)")
	f.StringSliceVar(&o.Only, "only", nil, "run only these parts: ceilings, api, ingest, forward")
	f.BoolVar(&o.Tiny, "tiny", false, "tiny sizes and durations: checks that the harness works, measures nothing")
	f.StringVar(&o.ProfileDir, "profile", "", "write CPU profiles (pprof) of each part into this directory")
	f.IntVar(&o.Participants, "participants", 10_000, "participants seeded in the API benchmark's session")
	f.IntVar(&o.Events, "events", 1_000_000, "events of the one participant whose history is paged")
	serverConfig := f.String("server-config", "", "a config file (--config) for the server process the forwarding part loads, e.g. with webhooks")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		self, err := os.Executable()
		if err != nil {
			return err
		}
		args := []string{"bench", "server"}
		if *serverConfig != "" {
			args = append(args, "--config", *serverConfig)
		}
		o.Server = bench.ExecServer(self, args...)
		o.Log = cmd.ErrOrStderr()
		res, err := bench.Run(ctx, o)
		if err != nil {
			return err
		}
		res.Markdown(cmd.OutOrStdout())
		return nil
	}
	cmd.AddCommand(benchServerCmd())
	return cmd
}

// benchServerCmd is `openstage serve` with profiling: the server the media benchmark loads.
func benchServerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:    "server",
		Short:  "Run a server as serve does, optionally writing a CPU profile until it stops (used by bench)",
		Args:   cobra.NoArgs,
		Hidden: true,
	}
	cfg := config.Flags(cmd.Flags())
	cpuprofile := cmd.Flags().String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	pprofListen := cmd.Flags().String("pprof-listen", "", "serve Go's /debug/pprof (heap, goroutine, ...) on this loopback address, e.g. 127.0.0.1:6060")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *pprofListen != "" {
			stop, err := servePprof(*pprofListen)
			if err != nil {
				return err
			}
			defer stop()
		}
		return runServer(cmd, cfg, *cpuprofile)
	}
	return cmd
}

// servePprof serves net/http/pprof's handlers on addr, a loopback address only (profiles show the
// server's memory), for a profile of the heap at rest while a load test holds its subscribers
// (docs/BENCHMARKS.md). The returned func stops it.
func servePprof(addr string) (func(), error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof-listen: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("--pprof-listen %s: a loopback address only", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return func() { _ = srv.Close(); <-done }, nil
}
