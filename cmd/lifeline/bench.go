package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lifeline-go/lifeline/internal/bench"
	"github.com/lifeline-go/lifeline/internal/proc"
)

// runBench measures conn against the goals; with -role it is one
// of the helper processes a measurement starts.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	var cfg bench.Config
	only := fs.String("only", "", "comma-separated measurements to run: "+strings.Join(bench.Measurements, ", ")+" (default all)")
	fs.IntVar(&cfg.MemSessions, "mem-sessions", 10000, "sessions in the memory measurement")
	fs.IntVar(&cfg.CPUSessions, "cpu-sessions", 19900, "sessions in the CPU measurement (the server's descriptor limit caps it)")
	fs.DurationVar(&cfg.CPUPing, "cpu-ping", 30*time.Second, "ping interval in the CPU measurement")
	fs.DurationVar(&cfg.CPUWindow, "cpu-window", 60*time.Second, "CPU measurement window")
	fs.IntVar(&cfg.ReapVictims, "reap-victims", 20, "client processes killed, and as many stopped, in the reap measurement")
	fs.DurationVar(&cfg.RefusedWindow, "refused-window", 60*time.Second, "how long a client runs against a refused port")
	fs.IntVar(&cfg.HerdClients, "herd-clients", 500, "clients in the restart-herd measurement")
	rssSessions := fs.String("rss-sessions", "5000,19900", "comma-separated session counts of the RSS measurement")
	fs.DurationVar(&cfg.RSSPing, "rss-ping", 3*time.Second, "ping interval of every server in the RSS measurement (weighed after 2.5 intervals)")
	fs.StringVar(&cfg.Peer, "peer", bench.DefaultPeer, "tools/wslibmem server measured beside lifeline in the RSS measurement (lib/mode)")
	fs.StringVar(&cfg.PeerDir, "peer-dir", filepath.Join("tools", "wslibmem"), "directory of the tools/wslibmem module, built for the RSS measurement's peer")
	fs.IntVar(&cfg.EchoSessions, "echo-sessions", 19900, "idle heartbeating sessions in the echo-latency measurement")
	fs.DurationVar(&cfg.EchoPing, "echo-ping", 30*time.Second, "ping interval of the idle sessions in the echo-latency measurement")
	fs.IntVar(&cfg.EchoCount, "echo-count", 3000, "echoes timed in the echo-latency measurement (one every 10ms)")
	var ro bench.RoleOptions
	role := fs.String("role", "", "internal: run as one of a measurement's helper processes")
	fs.StringVar(&ro.Mode, "mode", "", "internal (helper)")
	fs.IntVar(&ro.N, "n", 0, "internal (helper)")
	fs.StringVar(&ro.Addr, "addr", "", "internal (helper)")
	fs.DurationVar(&ro.Ping, "ping", 0, "internal (helper)")
	fs.DurationVar(&ro.Pong, "pong", 0, "internal (helper)")
	fs.DurationVar(&ro.Settle, "settle", 0, "internal (helper)")
	fs.DurationVar(&ro.Window, "window", 0, "internal (helper)")
	fs.DurationVar(&ro.Warmup, "warmup", 0, "internal (helper)")
	fs.IntVar(&ro.Parallel, "parallel", 0, "internal (helper)")
	fs.Float64Var(&ro.Rate, "rate", 0, "internal (helper)")
	// Measurement names may also come as arguments: `lifeline bench herd`.
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if *role != "" {
		rctx, cancel := bench.RoleContext()
		defer cancel()
		return bench.RunRole(rctx, *role, ro)
	}
	for _, f := range strings.Split(*rssSessions, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return usageError{fmt.Errorf("-rss-sessions: %q is not a session count", f)}
		}
		cfg.RSSSessions = append(cfg.RSSSessions, n)
	}
	if *only != "" {
		cfg.Only = strings.Split(*only, ",")
	}
	cfg.Only = append(cfg.Only, fs.Args()...)
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	self := proc.Self{Argv: []string{exe, "bench"}, Env: []string{mainEnv + "=1"}}
	return bench.Run(self, cfg, stdout)
}
