// Package bench measures package conn on real sockets, in several
// processes, against the goals of the conn issue: memory per idle session
// against a naive echo server, CPU of idle heartbeating sessions, reap
// latency after SIGKILL and SIGSTOP of the peer, attempts per minute
// against a refused port, and the spread of a reconnect herd. It backs
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
	"slices"
	"strings"
	"time"

	"github.com/lifeline-go/lifeline/internal/proc"
)

// Config selects and sizes the measurements. Zero fields take the defaults
// given.
type Config struct {
	// Only lists the measurements to run (mem, cpu, reap, refused, herd);
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
	return c
}

// Measurements lists the measurement names in the order Run runs them.
var Measurements = []string{"mem", "cpu", "reap", "refused", "herd"}

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
