// Package bench measures package conn on real sockets, in several
// processes, against the goals of the conn issue: memory per idle session
// against a naive echo server, CPU of idle heartbeating sessions, reap
// latency after SIGKILL and SIGSTOP of the peer, attempts per minute
// against a refused port, the spread of a reconnect herd, and (issue 14)
// the server process's RSS per idle session read from outside, against
// the naive server and the best peer library's own echo server, and the
// echo latency of one active client among idle heartbeating ones. It backs
// `lifeline bench`; docs/benchmarks.md has the command, its raw output and
// the ratios.
//
// Servers and clients run in separate processes: each side of 10 000
// connections needs 10 000 descriptors, and the hard limit here is 20 000.
package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lifeline-go/lifeline/internal/proc"
)

// Config selects and sizes the measurements. Zero fields take the defaults
// given.
type Config struct {
	// Only lists the measurements to run (mem, cpu, reap, refused, herd,
	// rss, echo);
	// empty means all.
	Only []string
	// MemSessions is the session count of the memory measurement (10 000).
	MemSessions int
	// CPUSessions is the session count of the CPU measurement (19 900:
	// the server's descriptors are capped at 20 000).
	CPUSessions int
	// CPUPing is the CPU measurement's ping interval (30 s), CPUWindow its
	// window (60 s).
	CPUPing, CPUWindow time.Duration
	// ReapVictims is how many client processes are killed and how many
	// stopped (20 each).
	ReapVictims int
	// RefusedWindow is how long a client runs against a refused port (60 s).
	RefusedWindow time.Duration
	// HerdClients is the fleet restarted under (500, issue 13's figure).
	HerdClients int
	// RSSSessions lists the session counts of the RSS measurement
	// ({5 000, 19 900}: issue 14's goal size and the descriptor limit).
	RSSSessions []int
	// RSSPing is every server's ping interval in the RSS measurement (3 s,
	// tools/wslibmem's); the servers are weighed after 2.5 intervals.
	RSSPing time.Duration
	// Peer is the tools/wslibmem server the RSS measurement runs beside
	// lifeline's (DefaultPeer), built from PeerDir ("tools/wslibmem",
	// relative to the working directory: the repository root). If it
	// cannot be built, the measurement says so and goes on without it.
	Peer, PeerDir string
	// EchoSessions is how many idle sessions heartbeat during the echo
	// measurement (19 900), EchoPing their ping interval (30 s), EchoCount
	// how many echoes are timed (3 000, one every 10 ms).
	EchoSessions int
	EchoPing     time.Duration
	EchoCount    int
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MemSessions, 10000)
	def(&c.CPUSessions, 19900)
	def(&c.ReapVictims, 20)
	def(&c.HerdClients, 500)
	defd(&c.CPUPing, 30*time.Second)
	defd(&c.CPUWindow, 60*time.Second)
	defd(&c.RefusedWindow, 60*time.Second)
	if len(c.RSSSessions) == 0 {
		c.RSSSessions = []int{5000, 19900}
	}
	defd(&c.RSSPing, 3*time.Second)
	if c.Peer == "" {
		c.Peer = DefaultPeer
	}
	if c.PeerDir == "" {
		c.PeerDir = filepath.Join("tools", "wslibmem")
	}
	def(&c.EchoSessions, 19900)
	defd(&c.EchoPing, 30*time.Second)
	def(&c.EchoCount, 3000)
	return c
}

// Measurements lists the measurement names in the order Run runs them.
var Measurements = []string{"mem", "cpu", "reap", "refused", "herd", "rss", "echo"}

// Run runs the selected measurements, writing raw results and a summary
// to w.
func Run(self proc.Self, cfg Config, w io.Writer) error {
	cfg = cfg.withDefaults()
	want := func(name string) bool { return len(cfg.Only) == 0 || slices.Contains(cfg.Only, name) }
	for _, name := range cfg.Only {
		if !slices.Contains(Measurements, name) {
			return fmt.Errorf("unknown measurement %q (want %s)", name, strings.Join(Measurements, ", "))
		}
	}
	steps := []struct {
		name string
		run  func(proc.Self, Config, io.Writer) error
	}{
		{"mem", runMem}, {"cpu", runCPU}, {"reap", runReap}, {"refused", runRefused}, {"herd", runHerd},
		{"rss", runRSS}, {"echo", runEcho},
	}
	for _, s := range steps {
		if !want(s.name) {
			continue
		}
		fmt.Fprintf(w, "\n== %s ==\n", s.name)
		start := time.Now()
		if err := s.run(self, cfg, w); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		fmt.Fprintf(w, "(%s took %s)\n", s.name, time.Since(start).Round(time.Second))
	}
	return nil
}

func decode[T any](line string) (T, error) {
	var v T
	err := json.Unmarshal([]byte(line), &v)
	return v, err
}
