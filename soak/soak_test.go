package soak

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/leakcheck"
	"github.com/lifeline-go/lifeline/internal/proc"
	"github.com/lifeline-go/lifeline/internal/report"
)

// The churn soak: a server in this process, a fleet of conn.Clients in
// child processes, and for its whole duration a steady churn of the two
// field failures: client processes killed with SIGKILL (no close frame)
// and replaced, and server restarts that drop every session at once.
//
// At every check, once the fleet has had its bound to settle, the
// server's open sessions must equal the live clients exactly, and this
// process's descriptors, goroutines and heap must stay within stated
// bounds of what that many sessions costs.
//
// Default: the short version (45 s, a kill round every 5 s, a restart
// every 20 s). LIFELINE_SOAK=10m (or longer) runs the long one with the
// issue's cadence (10 % of the clients killed each minute, a restart
// every 3 minutes); a shorter duration scales the short cadence to it.
// LIFELINE_SOAK=off skips it.

const (
	roleEnv      = "LIFELINE_SOAK_ROLE"
	procs        = 50 // client processes
	perProc      = 20 // clients per process: 1 000 in all
	killFraction = 10 // percent of the clients killed per kill round
)

// live is the fleet's liveness policy, both ends: a dead peer is reaped
// within 1.5 s even when no RST comes.
var live = fsm.Liveness{PingInterval: time.Second, PongTimeout: 500 * time.Millisecond}

// backoff is the fleet's reconnect policy: quick, so that a restart
// settles within seconds, and jittered, so that it does not come back in
// lock-step.
var backoff = fsm.Backoff{Initial: 200 * time.Millisecond, Multiplier: 1.6, Max: 2 * time.Second,
	Jitter: fsm.JitterFull, FirstImmediate: true}

func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "clients" {
		os.Exit(runClients())
	}
	os.Exit(leakcheck.Main(m))
}

// runClients is a child process: perProc clients against the address in
// argv, until it is killed.
func runClients() int {
	addr := os.Getenv("LIFELINE_SOAK_ADDR")
	seed, _ := strconv.ParseUint(os.Getenv("LIFELINE_SOAK_SEED"), 10, 64)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	for i := range perProc {
		c, err := conn.NewClient(conn.ClientConfig{URL: "ws://" + addr + "/", Backoff: backoff, Liveness: live,
			Logger: log, Rand: rand.New(rand.NewPCG(seed, uint64(i)))})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		go func() { _ = c.Run(ctx) }()
	}
	fmt.Println("READY")
	select {}
}

// plan is the churn's cadence.
type plan struct {
	duration, killEvery, restartEvery time.Duration
}

func soakPlan(t *testing.T) plan {
	switch v := os.Getenv("LIFELINE_SOAK"); v {
	case "":
		return plan{duration: 45 * time.Second, killEvery: 5 * time.Second, restartEvery: 20 * time.Second}
	case "off":
		t.Skip("LIFELINE_SOAK=off")
	default:
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("LIFELINE_SOAK=%q: want a duration like 10m, or off", v)
		}
		if d < 10*time.Minute { // the short cadence, scaled to d
			return plan{duration: d, killEvery: d / 9, restartEvery: d * 4 / 9}
		}
		return plan{duration: d, killEvery: time.Minute, restartEvery: 3 * time.Minute}
	}
	return plan{}
}

// server is the soak's server, restartable on the same port.
type server struct {
	addr string
	srv  *conn.Server
	hs   *http.Server
	done chan struct{}
}

func startServer(t *testing.T, addr string) *server {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may linger for a moment after a restart
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	srv, err := conn.NewServer(conn.ServerConfig{Liveness: live, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s := &server{addr: ln.Addr().String(), srv: srv, hs: &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second},
		done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_ = s.hs.Serve(ln)
	}()
	return s
}

func (s *server) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	_ = s.hs.Shutdown(ctx)
	<-s.done
}

// usage is what this process holds at one check.
type usage struct {
	fds, goroutines int
	heap            uint64 // HeapInuse + StackInuse
	heapIn, stackIn uint64
	objects         uint64
}

func measure() usage {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	ents, _ := os.ReadDir("/proc/self/fd")
	return usage{fds: len(ents), goroutines: runtime.NumGoroutine(), heap: ms.HeapInuse + ms.StackInuse,
		heapIn: ms.HeapInuse, stackIn: ms.StackInuse, objects: ms.HeapObjects}
}

func (u usage) String() string {
	return fmt.Sprintf("%d fds, %d goroutines, heap+stack %.2f MiB (heap %.2f, stack %.2f, %d objects)", u.fds, u.goroutines,
		float64(u.heap)/(1<<20), float64(u.heapIn)/(1<<20), float64(u.stackIn)/(1<<20), u.objects)
}

// profile writes a heap profile named name into $LIFELINE_SOAK_PPROF, if
// set: where the soak's memory is, for the long run's heap bound.
func profile(t *testing.T, name string) {
	dir := os.Getenv("LIFELINE_SOAK_PPROF")
	if dir == "" {
		return
	}
	f, err := os.Create(filepath.Join(dir, name+".pprof"))
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		t.Error(err)
	}
}

func TestChurnSoak(t *testing.T) {
	p := soakPlan(t)
	if testing.Short() {
		t.Skip("-short")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	base := measure()
	s := startServer(t, "127.0.0.1:0")
	addr := s.addr
	defer func() { s.stop() }()

	seed := uint64(0)
	spawn := func() *proc.Child {
		seed++
		c, err := proc.Self{Argv: []string{self}, Env: []string{roleEnv + "=clients", "LIFELINE_SOAK_ADDR=" + addr,
			"LIFELINE_SOAK_SEED=" + strconv.FormatUint(seed, 10)}}.Start(os.Stderr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Line("READY", 30*time.Second); err != nil {
			c.Kill()
			t.Fatal(err)
		}
		return c
	}
	var mu sync.Mutex
	var children []*proc.Child
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range children {
			c.Kill()
		}
	}()
	for range procs {
		children = append(children, spawn())
	}

	// settle waits until the open sessions equal the live clients, and
	// returns how long that took; the bound covers a restart's reconnects
	// (backoff's latest delays while the port was closed) and a killed
	// peer's reap (at once on RST, within ping+pong without).
	const settleBound = 10 * time.Second
	settle := func(what string) time.Duration {
		want := int64(len(children) * perProc)
		start := time.Now()
		for st := s.srv.Stats(); st.Open != want || st.Registered != int(want); st = s.srv.Stats() {
			if time.Since(start) > settleBound {
				t.Fatalf("after %s: %d open and %d registered sessions for %d live clients after %s (reaped %v)",
					what, st.Open, st.Registered, want, settleBound, st.Reaped)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return time.Since(start)
	}
	start := time.Now()
	first := settle("start")
	firstUse := measure()
	t.Logf("start: %d clients in %d processes connected in %s; this process: %s",
		procs*perProc, procs, first.Round(time.Millisecond), firstUse)
	profile(t, "check00")

	// The stated bounds: one descriptor and one goroutine per session
	// (its socket, its reader), three descriptors (two pipes and a pidfd)
	// and a reader goroutine per child process, and a fixed allowance for
	// the listener, the poller, the timer wheel and the test; heap+stack
	// at most 1.5× the first check's.
	const slackFDs, slackGoroutines = 3*procs + 32, procs + 64
	sessions := int(s.srv.Stats().Open)
	checks := 0
	check := func(what string) {
		u := measure()
		checks++
		t.Logf("+%s %s: %s", time.Since(start).Round(time.Second), what, u)
		profile(t, fmt.Sprintf("check%02d", checks))
		if u.fds > base.fds+sessions+slackFDs {
			t.Errorf("after %s: %d descriptors for %d sessions (bound %d)", what, u.fds, sessions, base.fds+sessions+slackFDs)
		}
		if u.goroutines > base.goroutines+sessions+slackGoroutines {
			t.Errorf("after %s: %d goroutines for %d sessions (bound %d)", what, u.goroutines, sessions, base.goroutines+sessions+slackGoroutines)
		}
		if u.heap > firstUse.heap*3/2 {
			t.Errorf("after %s: heap+stack %.1f MiB, first check %.1f MiB (bound 1.5×)", what, float64(u.heap)/(1<<20), float64(firstUse.heap)/(1<<20))
		}
	}

	rng := rand.New(rand.NewPCG(7, 7))
	nextKill, nextRestart := p.killEvery, p.restartEvery
	kills, restarts, killed := 0, 0, 0
	var worstSettle time.Duration
	for {
		at := min(nextKill, nextRestart)
		if at > p.duration {
			break
		}
		time.Sleep(time.Until(start.Add(at))) // the churn's own cadence
		var what string
		if nextRestart <= nextKill {
			what = "restart " + strconv.Itoa(restarts+1)
			s.stop()
			s = startServer(t, addr)
			restarts++
			nextRestart += p.restartEvery
		} else {
			n := procs * killFraction / 100
			what = fmt.Sprintf("kill round %d (%d processes, %d clients)", kills+1, n, n*perProc)
			mu.Lock()
			for range n {
				i := rng.IntN(len(children))
				children[i].Kill() // SIGKILL: no close frame
				children[i] = children[len(children)-1]
				children = children[:len(children)-1]
			}
			mu.Unlock()
			for range n {
				c := spawn()
				mu.Lock()
				children = append(children, c)
				mu.Unlock()
			}
			kills++
			killed += n * perProc
			nextKill += p.killEvery
		}
		took := settle(what)
		worstSettle = max(worstSettle, took)
		sessions = int(s.srv.Stats().Open)
		check(what)
	}
	end := measure()
	t.Logf("%s of churn: %d kill rounds (%d clients killed and replaced), %d server restarts; open sessions = live clients (%d) after every one, settled within %s at worst (bound %s)",
		p.duration, kills, killed, restarts, procs*perProc, worstSettle.Round(time.Millisecond), settleBound)
	t.Logf("this process at the end: %d fds (start %d), %d goroutines (start %d), %.1f MiB heap+stack (start %.1f)",
		end.fds, firstUse.fds, end.goroutines, firstUse.goroutines, float64(end.heap)/(1<<20), float64(firstUse.heap)/(1<<20))
	report.Add(t, report.Row{Section: "Churn soak (1 000 clients in 50 processes)",
		Case:     fmt.Sprintf("%s: a kill round every %s (%d %% of the clients, SIGKILL, replaced), a server restart every %s", p.duration, p.killEvery, killFraction, p.restartEvery),
		Path:     "killed: session Alive→Reaped (read_error); restart: all Reaped (shutdown), clients back by the policy",
		Bound:    fmt.Sprintf("open = registered = live clients within %s of each event; fds ≤ sessions + %d, goroutines ≤ sessions + %d; heap+stack ≤ 1.5× the first check", settleBound, slackFDs, slackGoroutines),
		Observed: fmt.Sprintf("%d kill rounds, %d restarts; settled within %s at worst", kills, restarts, worstSettle.Round(time.Millisecond)),
		Evidence: fmt.Sprintf("%d clients killed and replaced; open = live (%d) after every event; fds %d→%d, goroutines %d→%d, heap+stack %.1f→%.1f MiB",
			killed, procs*perProc, firstUse.fds, end.fds, firstUse.goroutines, end.goroutines, float64(firstUse.heap)/(1<<20), float64(end.heap)/(1<<20))})
	if kills == 0 || restarts == 0 {
		t.Fatalf("the plan ran %d kill rounds and %d restarts; a soak needs both", kills, restarts)
	}
}
