package bench

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lifeline-go/lifeline/internal/proc"
)

// fleetMax is how many client connections one fleet process holds: each
// is a descriptor, and the hard limit per process is 20 000.
const fleetMax = 10000

// runCPU measures the CPU a server process spends on cfg.CPUSessions idle
// sessions with heartbeats on: first gorilla's echo server with the
// straightforward heartbeat (a timer per connection), then conn.Server,
// each in a fresh process. The sessions live in one server process, so the
// descriptor limit caps their number; the clients are spread over fleet
// processes.
func runCPU(self proc.Self, cfg Config, w io.Writer) error {
	n, ping := cfg.CPUSessions, cfg.CPUPing
	pong := min(10*time.Second, ping/2)
	warmup := ping // every session has pinged at least once before the window
	fmt.Fprintf(w, "CPU of %d idle sessions in one server process; ping every %s, pong timeout %s; window %s after %s of warm-up\n",
		n, ping, pong, cfg.CPUWindow, warmup)
	fmt.Fprintf(w, "the clients answer pings and send nothing; they run in %d other processes\n", (n+fleetMax-1)/fleetMax)
	res := map[string]cpuResult{}
	for _, mode := range []string{"naive-heartbeat", "lifeline-goroutine", "lifeline"} {
		r, pings, err := measureCPU(self, mode, n, ping, pong, warmup, cfg.CPUWindow)
		if err != nil {
			return fmt.Errorf("%s: %w", mode, err)
		}
		res[mode] = r
		fmt.Fprintf(w, "cpu mode=%s sessions=%d window=%s cpu_seconds=%.3f core_fraction=%.5f reaped=%d goroutines=%d fd_limit=%d pings_answered_in_window=%d\n",
			mode, r.Sessions, r.Window, r.CPUSeconds, r.CoreFrac, r.Reaped, r.Goroutines, r.FDLimit, pings)
	}
	l, nv := res["lifeline"], res["naive-heartbeat"]
	verdict := "met"
	if l.CoreFrac > 0.01 {
		verdict = "NOT met"
	}
	fmt.Fprintf(w, "summary: lifeline %.2f%% of one core for %d idle sessions vs %.2f%% for the naive heartbeat: %.1fx less (goal <= 1%%: %s); sessions capped at %d by the server's descriptor limit %d\n",
		100*l.CoreFrac, l.Sessions, 100*nv.CoreFrac, nv.CoreFrac/l.CoreFrac, verdict, l.Sessions, l.FDLimit)
	g := res["lifeline-goroutine"]
	fmt.Fprintf(w, "engine: poll %.2f%% of one core vs goroutine %.2f%%: %.1fx less\n", 100*l.CoreFrac, 100*g.CoreFrac, g.CoreFrac/l.CoreFrac)
	return nil
}

func measureCPU(self proc.Self, mode string, n int, ping, pong, warmup, window time.Duration) (cpuResult, int64, error) {
	srv, err := self.Start(os.Stderr, "-role", "cpu-server", "-mode", mode, "-n", fmt.Sprint(n),
		"-ping", ping.String(), "-pong", pong.String(), "-window", window.String(), "-warmup", warmup.String())
	if err != nil {
		return cpuResult{}, 0, err
	}
	defer srv.Kill()
	_, fleets, err := loadServer(self, srv, n, nil)
	defer killAll(fleets)
	if err != nil {
		return cpuResult{}, 0, err
	}
	if _, err := srv.Line("window start", 5*time.Minute+warmup); err != nil {
		return cpuResult{}, 0, err
	}
	p0, err := fleetPings(fleets)
	if err != nil {
		return cpuResult{}, 0, err
	}
	line, err := srv.Line("cpu ", window+time.Minute)
	if err != nil {
		return cpuResult{}, 0, err
	}
	p1, err := fleetPings(fleets)
	if err != nil {
		return cpuResult{}, 0, err
	}
	r, err := decode[cpuResult](line)
	return r, p1 - p0, err
}

// loadServer waits for the server process srv to print its address,
// calls listening (if not nil) while no client is connected yet, then
// connects n idle clients with startFleets. The fleets are returned even
// on error, for the caller to kill.
func loadServer(self proc.Self, srv *proc.Child, n int, listening func() error) (string, []*proc.Child, error) {
	addr, err := srv.Line("addr ", 30*time.Second)
	if err != nil {
		return "", nil, err
	}
	addr = strings.TrimSpace(addr)
	if listening != nil {
		if err := listening(); err != nil {
			return "", nil, err
		}
	}
	fleets, err := startFleets(self, addr, n)
	return addr, fleets, err
}

// startFleets connects n idle clients to addr, spread over as many fleet
// processes as the descriptor limit needs, and returns once all are
// connected. The fleets it started are returned even on error, for the
// caller to kill.
func startFleets(self proc.Self, addr string, n int) ([]*proc.Child, error) {
	var fleets []*proc.Child
	for left := n; left > 0; left -= fleetMax {
		f, err := self.Start(os.Stderr, "-role", "fleet", "-addr", addr, "-n", fmt.Sprint(min(left, fleetMax)), "-parallel", "8")
		if err != nil {
			return fleets, err
		}
		fleets = append(fleets, f)
	}
	for _, f := range fleets {
		if _, err := f.Line("ready", 5*time.Minute); err != nil {
			return fleets, err
		}
	}
	return fleets, nil
}

func killAll(cs []*proc.Child) {
	for _, c := range cs {
		c.Kill()
	}
}

// fleetPings asks every fleet how many pings it has answered.
func fleetPings(fleets []*proc.Child) (int64, error) {
	var total int64
	for _, f := range fleets {
		if _, err := f.Signal(syscall.SIGUSR1); err != nil {
			return 0, err
		}
		l, err := f.Line("pings ", 10*time.Second)
		if err != nil {
			return 0, err
		}
		v, err := strconv.ParseInt(strings.TrimSpace(l), 10, 64)
		if err != nil {
			return 0, err
		}
		total += v
	}
	return total, nil
}
