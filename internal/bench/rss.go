package bench

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lifeline-go/lifeline/internal/proc"
)

// rssSettle is how long the RSS measurement lets the heartbeat run once
// all sessions are up, before the server is weighed: two and a half
// rounds, as tools/wslibmem waits, so every ping path has run.
func rssSettle(ping time.Duration) time.Duration { return 2*ping + ping/2 }

// rssPong is lifeline's pong timeout in the RSS measurement: two thirds
// of the interval, so a 19 900-session server on a loaded machine is not
// reaping live sessions while it is weighed.
func rssPong(ping time.Duration) time.Duration { return ping * 2 / 3 }

// DefaultPeer is the peer server the RSS measurement runs from
// tools/wslibmem: the candidate with the lowest RSS per idle connection
// in its comparison (docs/decisions.md, "scale: the candidates").
const DefaultPeer = "gobwas/epoll"

// rssResult is one server's row of the RSS measurement.
type rssResult struct {
	Server   string // the server measured, as the output names it
	Sessions int64  // sessions open at the weighing
	// RSSPer is the growth of the server process's VmRSS, read from
	// outside, between "listening, no client" and "all sessions up,
	// rssSettle of heartbeats, two GCs", ÷ Sessions.
	RSSPer float64
	// HeapStackPer is the server's own heap + stack in use after GC, the
	// same way, ÷ Sessions.
	HeapStackPer float64
	// Goroutines is the server's goroutine count at the weighing.
	Goroutines int
	// Pings is how many pings the clients answered before the weighing:
	// proof that the heartbeat ran.
	Pings int64
}

// PerGiB is how many such sessions one GiB of RSS holds.
func (r rssResult) PerGiB() float64 { return float64(1<<30) / r.RSSPer }

// rssServer says how to start one server of the RSS measurement and read
// its report: the line prefix it prints once weighed, and how to decode it.
type rssServer struct {
	name   string
	start  func(n int) (*proc.Child, error)
	done   string
	decode func(line string) (heapStack float64, goroutines int, err error)
}

// roleRSS runs this program's mem-server role in mode.
func roleRSS(self proc.Self, name, mode string, ping time.Duration) rssServer {
	return rssServer{
		name: name,
		start: func(n int) (*proc.Child, error) {
			return startMemServer(self, mode, n, ping, rssPong(ping), rssSettle(ping))
		},
		done: "mem ",
		decode: func(line string) (float64, int, error) {
			r, err := decode[memResult](line)
			if err == nil && r.Reaped != 0 {
				err = fmt.Errorf("%d sessions reaped while idle: the figure would not be of %d sessions", r.Reaped, r.Sessions)
			}
			return r.PerSession, r.Goroutines, err
		},
	}
}

// peerResult is the part of tools/wslibmem's "result" line read here.
type peerResult struct {
	PerConn    float64 `json:"per_conn_bytes"`
	Goroutines int     `json:"goroutines"`
}

// peerRSS runs server name of the wslibmem binary bin.
func peerRSS(bin, name string, ping time.Duration) rssServer {
	peer := proc.Self{Argv: []string{bin}}
	return rssServer{
		name: "peer " + name,
		start: func(n int) (*proc.Child, error) {
			return peer.Start(os.Stderr, "-role", "server", "-server", name, "-n", fmt.Sprint(n), "-ping", ping.String())
		},
		done: "result ",
		decode: func(line string) (float64, int, error) {
			r, err := decode[peerResult](line)
			return r.PerConn, r.Goroutines, err
		},
	}
}

// runRSS measures what an idle session costs the machine: the server
// process's RSS growth, read from /proc outside it, ÷ sessions, at each
// of cfg.RSSSessions, for gorilla's echo server with a ping timer per
// connection, conn.Server, and the best peer's own echo server (built
// from tools/wslibmem). Every server pings every cfg.RSSPing; the clients
// run in other processes.
func runRSS(self proc.Self, cfg Config, w io.Writer) error {
	ping := cfg.RSSPing
	fmt.Fprintf(w, "RSS per idle session: VmRSS of the server process (read from /proc, outside it) after the sessions, %s of heartbeats and two GCs, minus the same once it listens; ÷ sessions\n", rssSettle(ping))
	fmt.Fprintf(w, "every server pings every %s (lifeline: pong timeout %s); clients in other processes\n", ping, rssPong(ping))
	servers := []rssServer{roleRSS(self, "naive-heartbeat", "naive-heartbeat", ping), roleRSS(self, "lifeline-goroutine", "lifeline-goroutine", ping), roleRSS(self, "lifeline", "lifeline", ping)}
	peerNote := ""
	bin, cleanup, err := buildPeer(cfg.PeerDir)
	if err != nil {
		peerNote = fmt.Sprintf("peer %s NOT measured: %v", cfg.Peer, err)
		fmt.Fprintf(w, "%s; measuring without it\n", peerNote)
	} else {
		defer cleanup()
		servers = append(servers, peerRSS(bin, cfg.Peer, ping))
	}
	for _, n := range cfg.RSSSessions {
		res := map[string]rssResult{}
		for _, s := range servers {
			r, err := measureRSS(self, s, n)
			if err != nil {
				return fmt.Errorf("%s at %d: %w", s.name, n, err)
			}
			res[s.name] = r
			fmt.Fprintf(w, "rss server=%q sessions=%d rss/session=%.0f heap+stack/session=%.0f sessions/GiB=%.0f goroutines=%d pings_answered=%d\n",
				r.Server, r.Sessions, r.RSSPer, r.HeapStackPer, r.PerGiB(), r.Goroutines, r.Pings)
		}
		var peer *rssResult
		if p, ok := res["peer "+cfg.Peer]; ok {
			peer = &p
		}
		fmt.Fprintln(w, rssSummary(res["lifeline"], res["naive-heartbeat"], peer, cfg.Peer, peerNote))
		if g, l := res["lifeline-goroutine"], res["lifeline"]; g.RSSPer > 0 && l.RSSPer > 0 {
			fmt.Fprintf(w, "engine: at %d sessions the poll engine holds %.0f B RSS/session, the goroutine engine %.0f B: %.2fx less\n", n, l.RSSPer, g.RSSPer, g.RSSPer/l.RSSPer)
		}
	}
	return nil
}

// Goals of issue 14 for the RSS of an idle session.
const (
	rssGoalBytes = 3000 // ≤ 3.0 KB (1 KB = 1000 B) per session at 5 000
	rssGoalRatio = 5    // ≥ 5× less than naive gorilla
	// rssGoalSessions is where the issue measures the goals.
	rssGoalSessions = 5000
)

// rssSummary is the summary line of one size: lifeline against the naive
// server and the peer, each goal met or not. A peer that was not measured
// is named with the reason, and its goal is "not judged".
// The goals are judged at rssGoalSessions only, where the issue sets them.
func rssSummary(l, naive rssResult, peer *rssResult, peerName, peerNote string) string {
	judged := l.Sessions == rssGoalSessions
	verdict := func(ok bool) string {
		switch {
		case !judged:
			return fmt.Sprintf("judged at %d only", rssGoalSessions)
		case ok:
			return "met"
		}
		return "NOT met"
	}
	ratio := naive.RSSPer / l.RSSPer
	s := fmt.Sprintf("summary: %d sessions: lifeline %.2f KB RSS/session (%.0f sessions/GiB) vs naive gorilla %.2f KB: %.2fx less; goal <= %.1f KB: %s; goal >= %dx: %s",
		l.Sessions, l.RSSPer/1000, l.PerGiB(), naive.RSSPer/1000, ratio,
		float64(rssGoalBytes)/1000, verdict(l.RSSPer <= rssGoalBytes), rssGoalRatio, verdict(ratio >= rssGoalRatio))
	if peer == nil {
		return s + fmt.Sprintf("; goal lower than the peer: not judged (%s)", peerNote)
	}
	return s + fmt.Sprintf("; peer %s %.2f KB: lifeline %.2fx of it; goal lower than the peer: %s",
		peerName, peer.RSSPer/1000, l.RSSPer/peer.RSSPer, verdict(l.RSSPer < peer.RSSPer))
}

func measureRSS(self proc.Self, s rssServer, n int) (rssResult, error) {
	srv, err := s.start(n)
	if err != nil {
		return rssResult{}, err
	}
	defer srv.Kill()
	var rss0 int64
	_, fleets, err := loadServer(self, srv, n, func() (err error) {
		rss0, err = processRSS(srv.Pid())
		return err
	})
	defer killAll(fleets)
	if err != nil {
		return rssResult{}, err
	}
	line, err := srv.Line(s.done, 5*time.Minute)
	if err != nil {
		return rssResult{}, err
	}
	rss1, err := processRSS(srv.Pid())
	if err != nil {
		return rssResult{}, err
	}
	pings, err := fleetPings(fleets)
	if err != nil {
		return rssResult{}, err
	}
	hs, g, err := s.decode(line)
	if err != nil {
		return rssResult{}, err
	}
	return rssResult{Server: s.name, Sessions: int64(n), RSSPer: float64(rss1-rss0) / float64(n),
		HeapStackPer: hs, Goroutines: g, Pings: pings}, nil
}

// processRSS reads a process's resident set size in bytes from the VmRSS
// line (kB) of /proc/<pid>/status.
func processRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status: VmRSS %q: %w", pid, v, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmRSS line", pid)
}

// buildPeer builds tools/wslibmem (its own module, so its libraries stay
// out of lifeline's go.mod) from dir into a temporary directory and
// returns the binary and how to remove it.
func buildPeer(dir string) (string, func(), error) {
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", nil, fmt.Errorf("no tools/wslibmem module at %q (run from the repository root, or set -peer-dir): %w", dir, err)
	}
	tmp, err := os.MkdirTemp("", "lifeline-peer-")
	if err != nil {
		return "", nil, err
	}
	bin := filepath.Join(tmp, "wslibmem")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(tmp)
		return "", nil, fmt.Errorf("go build in %s: %w: %s", dir, err, strings.TrimSpace(string(out)))
	}
	return bin, func() { _ = os.RemoveAll(tmp) }, nil
}
