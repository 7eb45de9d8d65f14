package bench

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/lifeline-go/lifeline/internal/proc"
)

// Heartbeat of the memory measurement: short, so that several rounds run
// before the heap is weighed; the interval does not change what a session
// holds.
const (
	memPing   = 2 * time.Second
	memPong   = time.Second
	memSettle = 5 * time.Second
)

// runMem weighs an idle session of the naive echo server and of
// conn.Server, each in a fresh server process with its own client process.
func runMem(self proc.Self, cfg Config, w io.Writer) error {
	fmt.Fprintf(w, "memory per idle session: %d sessions, heap in use + stack in use after GC, minus the same before any session\n", cfg.MemSessions)
	fmt.Fprintf(w, "lifeline: conn.Server, ping every %s, pong timeout %s, weighed after %s of heartbeats\n", memPing, memPong, memSettle)
	res := map[string]memResult{}
	for _, mode := range []string{"naive", "lifeline-goroutine", "lifeline"} {
		r, err := measureMem(self, mode, cfg.MemSessions)
		if err != nil {
			return err
		}
		res[mode] = r
		fmt.Fprintf(w, "mem %s sessions=%d bytes/session=%.0f heap/session=%.0f stack/session=%.0f goroutines=%d reaped=%d\n",
			mode, r.Sessions, r.PerSession, r.HeapPer, r.StackPer, r.Goroutines, r.Reaped)
	}
	n, l := res["naive"], res["lifeline"]
	verdict := "met"
	if l.PerSession > 5*1024 || n.PerSession/l.PerSession < 3 {
		verdict = "NOT met"
	}
	fmt.Fprintf(w, "summary: lifeline %.2f KiB/session vs naive %.2f KiB/session: %.2fx less (goal <= 5 KiB and >= 3x: %s)\n",
		l.PerSession/1024, n.PerSession/1024, n.PerSession/l.PerSession, verdict)
	g := res["lifeline-goroutine"]
	fmt.Fprintf(w, "engine: poll %.0f B/session vs goroutine %.0f B/session: %.2fx less\n", l.PerSession, g.PerSession, g.PerSession/l.PerSession)
	return nil
}

// startMemServer starts a server process of mode (roles.go's memServer):
// it serves n sessions with liveness ping/pong, lets them heartbeat for
// settle, weighs itself, prints "mem <memResult>" and holds its sessions
// until killed.
func startMemServer(self proc.Self, mode string, n int, ping, pong, settle time.Duration) (*proc.Child, error) {
	return self.Start(os.Stderr, "-role", "mem-server", "-mode", mode, "-n", fmt.Sprint(n),
		"-ping", ping.String(), "-pong", pong.String(), "-settle", settle.String())
}

func measureMem(self proc.Self, mode string, n int) (memResult, error) {
	srv, err := startMemServer(self, mode, n, memPing, memPong, memSettle)
	if err != nil {
		return memResult{}, err
	}
	defer srv.Kill()
	_, fleets, err := loadServer(self, srv, n, nil)
	defer killAll(fleets)
	if err != nil {
		return memResult{}, err
	}
	line, err := srv.Line("mem ", 5*time.Minute)
	if err != nil {
		return memResult{}, err
	}
	return decode[memResult](line)
}
