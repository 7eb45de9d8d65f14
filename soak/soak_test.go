package soak

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/leakcheck"
	"github.com/lifeline-go/lifeline/internal/proc"
	"github.com/lifeline-go/lifeline/internal/report"
)

// The churn soak: a server in this process, a fleet of conn.Clients in
// child processes, and for its whole duration a steady churn of the field
// failures: client processes killed with SIGKILL (no close frame) and
// replaced, server restarts that drop every session at once, client
// processes stopped with SIGSTOP (socket open, silent), and client links
// blackholed (a proxy in this process that stops passing anything, and
// passes no close either), so that pings and pong timeouts run under the
// churn.
//
// Every event has an exact reap account: a kill round reaps exactly the
// killed clients' sessions on the fast tier (read_error, or send_error
// when a ping was being written), a restart reaps every session for
// shutdown, a stopped process's and a blackholed process's sessions are
// reaped for pong_timeout, exactly those. Any other reap (a live client
// reaped for silence, as under a server that never pings) fails the
// soak at once. Once the fleet has settled, the server's open sessions
// must equal the live clients exactly, and this process's descriptors,
// goroutines and heap must stay within stated bounds.
//
// Default: the short version (45 s, a kill round every 5 s, a restart
// every 20 s, a stop and a blackhole round every 10 s). LIFELINE_SOAK=10m
// (or longer) runs the long one with the cadence (10 % of the
// clients killed each minute, a restart every 3 minutes, a silence round
// every 90 s); a shorter duration scales the short cadence to it.
// LIFELINE_SOAK=off skips it. LIFELINE_SOAK_PPROF=dir writes a heap
// profile (every allocation sampled) at every check. A watchdog
// (watch_test.go) samples the server's Health and this process's stalls
// while the churn runs; a failure carries its last 10 s of samples and
// the name of a goroutine dump (in LIFELINE_SOAK_PPROF, else the system's
// temporary directory).

const (
	roleEnv      = "LIFELINE_SOAK_ROLE"
	procs        = 50 // client processes
	proxied      = 5  // of them, connected through a proxy that can blackhole them
	perProc      = 20 // clients per process: 1 000 in all
	killFraction = 10 // percent of the clients killed per kill round
)

// live is the server's liveness policy: a dead peer is reaped within
// 3.5 s even when no RST comes. The pong timeout is 1.5 s, not shorter:
// the soak counts every reap, and under -race on two cores, with another
// test package beside it, a restart's thousand handshakes kept live
// client processes from answering a ping within 500 ms (7 of 1 000
// reaped for silence, seen in CI-shaped runs).
var live = fsm.Liveness{PingInterval: 2 * time.Second, PongTimeout: 1500 * time.Millisecond}

// clientLive is the clients' policy: slower than the server's, so that a
// live client never pings on its own before the server's deadline (it
// pings after 4.75 s of silence, the server reaps at 3.5 s). Its sessions
// stay alive only because the server pings them: a server that never
// pings fails the soak.
var clientLive = fsm.Liveness{PingInterval: 4 * time.Second, PongTimeout: 3 * time.Second}

// backoff is the fleet's reconnect policy: quick, so that a restart
// settles within seconds, and jittered, so that it does not come back in
// lock-step.
var backoff = fsm.Backoff{Initial: 200 * time.Millisecond, Multiplier: 1.6, Max: 2 * time.Second,
	Jitter: fsm.JitterFull, FirstImmediate: true}

func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "clients" {
		os.Exit(runClients())
	}
	if os.Getenv("LIFELINE_SOAK_PPROF") != "" {
		runtime.MemProfileRate = 1
	}
	os.Exit(leakcheck.Main(m))
}

// runClients is a child process: perProc clients against the address in
// LIFELINE_SOAK_ADDR, until it is killed.
func runClients() int {
	addr := os.Getenv("LIFELINE_SOAK_ADDR")
	seed, _ := strconv.ParseUint(os.Getenv("LIFELINE_SOAK_SEED"), 10, 64)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	for i := range perProc {
		c, err := conn.NewClient(conn.ClientConfig{URL: "ws://" + addr + "/", Backoff: backoff, Liveness: clientLive,
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

// plan is the churn's cadence and the fleet's size.
type plan struct {
	duration, killEvery, restartEvery, silenceEvery time.Duration
	procs, proxied                                  int
}

func soakPlan(t *testing.T) plan {
	p := plan{procs: procs, proxied: proxied}
	switch v := os.Getenv("LIFELINE_SOAK"); v {
	case "":
		p.duration, p.killEvery, p.restartEvery = 45*time.Second, 5*time.Second, 20*time.Second
	case "off":
		t.Skip("LIFELINE_SOAK=off")
	default:
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("LIFELINE_SOAK=%q: want a duration like 10m, or off", v)
		}
		if d < 10*time.Minute { // the short cadence, scaled to d
			p.duration, p.killEvery, p.restartEvery = d, d/9, d*4/9
		} else {
			p.duration, p.killEvery, p.restartEvery = d, time.Minute, 3*time.Minute
		}
	}
	p.silenceEvery = p.restartEvery / 2
	return p
}

// server is the soak's server, restartable on the same port.
type server struct {
	addr string
	srv  *conn.Server
	hs   *http.Server
	done chan struct{}
}

func startServer(addr string, pingless bool) (*server, error) {
	var ln net.Listener
	var err error
	for range 50 { // the port may linger for a moment after a restart
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	srv, err := conn.NewServer(conn.ServerConfig{Liveness: live, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, err
	}
	s := &server{addr: ln.Addr().String(), srv: srv, hs: &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second},
		done: make(chan struct{})}
	if pingless {
		ln = pinglessListener{ln}
	}
	go func() {
		defer close(s.done)
		_ = s.hs.Serve(ln)
	}()
	return s, nil
}

func (s *server) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	_ = s.hs.Shutdown(ctx)
	<-s.done
}

// pinglessListener hands the server connections that never carry its
// pings: the broken server of the soak's own check (a server that never
// pings), made on the wire since the server is a real conn.Server. The
// server's pings have no payload, and gorilla/websocket writes each
// control frame in one Write: exactly the two bytes 0x89 0x00.
type pinglessListener struct{ net.Listener }

func (l pinglessListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return pinglessConn{c}, nil
}

type pinglessConn struct{ net.Conn }

func (c pinglessConn) Write(p []byte) (int, error) {
	if len(p) == 2 && p[0] == 0x89 && p[1] == 0 {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// usage is what this process holds at one check.
type usage struct {
	fds, goroutines int
	heap            uint64 // HeapInuse + StackInuse after two collections
	heap1           uint64 // the same after one: sync.Pool's victims still held
	heapIn, stackIn uint64
	objects         uint64
}

// measure collects twice before reading the heap: sync.Pool keeps what it
// holds through one collection (its victim cache), and after a restart's
// reconnect storm the pools hold a handshake's buffers for every
// handshake that was in flight at once: megabytes that are not the
// sessions' and go at the next collection. The goroutine count is the
// least of three samples 20 ms apart: a session's writer exists only
// while it writes, and a hundred sessions that connected together ping
// (and so write) together; a leak is in every sample, that burst is not.
func measure() usage {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap1 := ms.HeapInuse + ms.StackInuse
	runtime.GC()
	runtime.ReadMemStats(&ms)
	ents, _ := os.ReadDir("/proc/self/fd")
	g := runtime.NumGoroutine()
	for range 2 {
		time.Sleep(20 * time.Millisecond) // sampling interval, not synchronisation
		g = min(g, runtime.NumGoroutine())
	}
	return usage{fds: len(ents), goroutines: g, heap: ms.HeapInuse + ms.StackInuse, heap1: heap1,
		heapIn: ms.HeapInuse, stackIn: ms.StackInuse, objects: ms.HeapObjects}
}

func (u usage) String() string {
	return fmt.Sprintf("%d fds, %d goroutines, heap+stack %.2f MiB (heap %.2f, stack %.2f, %d objects; %.2f MiB after one GC)",
		u.fds, u.goroutines, mib(u.heap), mib(u.heapIn), mib(u.stackIn), u.objects, mib(u.heap1))
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

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

// blackhole is a TCP proxy between one client process and the server. On
// freeze, every link open at that moment stops passing anything either
// way, and passes no close either: each side is closed only when that
// side closes it, so the server hears nothing until its own deadline.
// Links opened afterwards pass normally.
type blackhole struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	links  map[*hole]struct{}
	wg     sync.WaitGroup
	closed bool
}

type hole struct {
	a, b   net.Conn
	mu     sync.Mutex
	frozen bool
}

func newBlackhole(target string) (*blackhole, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	bh := &blackhole{ln: ln, target: target, links: map[*hole]struct{}{}}
	bh.wg.Add(1)
	go bh.accept()
	return bh, nil
}

func (bh *blackhole) addr() string { return bh.ln.Addr().String() }

func (bh *blackhole) accept() {
	defer bh.wg.Done()
	for {
		a, err := bh.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", bh.target)
		if err != nil {
			_ = a.Close()
			continue
		}
		h := &hole{a: a, b: b}
		bh.mu.Lock()
		if bh.closed {
			bh.mu.Unlock()
			_ = a.Close()
			_ = b.Close()
			return
		}
		bh.links[h] = struct{}{}
		bh.wg.Add(2)
		bh.mu.Unlock()
		go bh.pump(h, a, b)
		go bh.pump(h, b, a)
	}
}

// pump copies src to dst until src fails; frozen, it reads and drops.
func (bh *blackhole) pump(h *hole, src, dst net.Conn) {
	defer bh.wg.Done()
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		h.mu.Lock()
		frozen := h.frozen
		h.mu.Unlock()
		if n > 0 && !frozen {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			_ = src.Close()
			if !frozen {
				_ = dst.Close()
			}
			bh.mu.Lock()
			delete(bh.links, h) // the other pump may still run; it holds h
			bh.mu.Unlock()
			return
		}
	}
}

// freeze blackholes every open link and returns how many it froze.
func (bh *blackhole) freeze() int {
	bh.mu.Lock()
	defer bh.mu.Unlock()
	for h := range bh.links {
		h.mu.Lock()
		h.frozen = true
		h.mu.Unlock()
	}
	return len(bh.links)
}

func (bh *blackhole) close() {
	bh.mu.Lock()
	bh.closed = true
	for h := range bh.links {
		_ = h.a.Close()
		_ = h.b.Close()
	}
	bh.mu.Unlock()
	_ = bh.ln.Close()
	bh.wg.Wait()
}

// reapAccount is what an event must reap: per reason (several reasons
// joined with "|" share one count), exactly; every other reason, nothing.
type reapAccount map[string]uint64

// check compares the reaps since before against want. It reports an
// excess at once (done false, err set) and is done once every count is
// met exactly.
func (want reapAccount) check(before, now map[string]uint64) (done bool, err error) {
	counted := map[string]bool{}
	done = true
	for key, n := range want {
		var got uint64
		for _, r := range strings.Split(key, "|") {
			got += now[r] - before[r]
			counted[r] = true
		}
		if got > n {
			return false, fmt.Errorf("%d sessions reaped for %s, the event accounts for %d", got, key, n)
		}
		done = done && got == n
	}
	for _, r := range slices.Sorted(maps.Keys(now)) {
		if d := now[r] - before[r]; d > 0 && !counted[r] {
			what := ""
			if r == fsm.ReasonPongTimeout.String() {
				what = ": live clients reaped for silence (are they pinged?)"
			}
			return false, fmt.Errorf("%d sessions reaped for %s, the event accounts for none%s", d, r, what)
		}
	}
	return done, nil
}

// soak is one run of the churn.
type soak struct {
	t        *testing.T
	p        plan
	pingless bool
	self     string

	s        *server
	cur      atomic.Pointer[conn.Server] // s.srv, for the watchdog
	addr     string
	seed     uint64
	children []*proc.Child // connected directly
	holes    []*blackhole  // one per proxied process
	proxies  []*proc.Child // the proxied processes, holes[i] in front of proxies[i]
	stopped  int           // clients in stopped processes (not live)
	// last is the server's reap counts when the previous event settled:
	// each event's account starts there, so a reap between events (a
	// live client reaped for silence while nothing happened) counts
	// against the next one.
	last map[string]uint64
}

func (sk *soak) live() int64 { return int64((len(sk.children)+len(sk.proxies))*perProc - sk.stopped) }

func (sk *soak) spawn(addr string) (*proc.Child, error) {
	sk.seed++
	c, err := proc.Self{Argv: []string{sk.self}, Env: []string{roleEnv + "=clients", "LIFELINE_SOAK_ADDR=" + addr,
		"LIFELINE_SOAK_SEED=" + strconv.FormatUint(sk.seed, 10)}}.Start(os.Stderr)
	if err != nil {
		return nil, err
	}
	if _, err := c.Line("READY", 30*time.Second); err != nil {
		c.Kill()
		return nil, err
	}
	return c, nil
}

// settleBound covers a restart's reconnects (backoff's latest delays while
// the port was closed), a killed peer's reap (at once), a silent peer's
// reap (ping + pong after its last frame) and a blackholed client's own
// detection and reconnect (its ping + pong, then a backoff delay).
const settleBound = 10 * time.Second

// settle waits until every reap the event accounts for happened, no
// other did, and the open sessions equal the live clients; it returns how
// long that took.
func (sk *soak) settle(what string, before map[string]uint64, want reapAccount) (time.Duration, error) {
	start := time.Now()
	for {
		st := sk.s.srv.Stats()
		done, err := want.check(before, st.Reaped)
		if err != nil {
			return 0, fmt.Errorf("after %s: %w", what, err)
		}
		if l := sk.live(); done && st.Open == l && st.Registered == int(l) {
			return time.Since(start), nil
		}
		if time.Since(start) > settleBound {
			return 0, fmt.Errorf("after %s: %d open and %d registered sessions for %d live clients after %s (reaped since: %v, accounted: %v)",
				what, st.Open, st.Registered, sk.live(), settleBound, delta(before, st.Reaped), want)
		}
		time.Sleep(10 * time.Millisecond) // polling the server's counters, bounded by settleBound
	}
}

func delta(before, now map[string]uint64) map[string]uint64 {
	d := map[string]uint64{}
	for r, n := range now {
		if n > before[r] {
			d[r] = n - before[r]
		}
	}
	return d
}

// start brings up the server and the fleet.
func (sk *soak) start() error {
	var err error
	if sk.s, err = startServer("127.0.0.1:0", sk.pingless); err != nil {
		return err
	}
	sk.addr = sk.s.addr
	sk.cur.Store(sk.s.srv)
	for range sk.p.proxied {
		bh, err := newBlackhole(sk.addr)
		if err != nil {
			return err
		}
		sk.holes = append(sk.holes, bh)
		c, err := sk.spawn(bh.addr())
		if err != nil {
			return err
		}
		sk.proxies = append(sk.proxies, c)
	}
	for range sk.p.procs - sk.p.proxied {
		c, err := sk.spawn(sk.addr)
		if err != nil {
			return err
		}
		sk.children = append(sk.children, c)
	}
	return nil
}

func (sk *soak) close() {
	for _, c := range append(sk.children, sk.proxies...) {
		c.Kill()
	}
	for _, bh := range sk.holes {
		bh.close()
	}
	if sk.s != nil {
		sk.s.stop()
	}
}

// restart stops the server gracefully (every session reaped for
// shutdown, nothing else, checked on the old server) and starts a new one
// on the same port, whose account starts from zero.
func (sk *soak) restart(before map[string]uint64) error {
	n := uint64(sk.s.srv.Stats().Open)
	sk.s.stop()
	if done, err := (reapAccount{"shutdown": n}).check(before, sk.s.srv.Stats().Reaped); err != nil || !done {
		return fmt.Errorf("the stopped server reaped %v since the last event, want %d for shutdown (%v)",
			delta(before, sk.s.srv.Stats().Reaped), n, err)
	}
	var err error
	if sk.s, err = startServer(sk.addr, sk.pingless); err != nil {
		return err
	}
	sk.cur.Store(sk.s.srv)
	return nil
}

// killRound kills killFraction % of the directly connected processes and
// replaces them. A killed client's kernel closes its sockets: the server
// reads EOF (read_error), or fails the ping it was writing (send_error).
func (sk *soak) killRound(rng *rand.Rand) (reapAccount, error) {
	n := max(1, len(sk.children)*killFraction/100)
	for range n {
		i := rng.IntN(len(sk.children))
		sk.children[i].Kill() // SIGKILL: no close frame
		sk.children[i] = sk.children[len(sk.children)-1]
		sk.children = sk.children[:len(sk.children)-1]
	}
	for range n {
		c, err := sk.spawn(sk.addr)
		if err != nil {
			return nil, err
		}
		sk.children = append(sk.children, c)
	}
	return reapAccount{"read_error|send_error": uint64(n * perProc)}, nil
}

// stopRound stops one directly connected process with SIGSTOP: its
// sockets stay open and nothing answers, so its sessions are reaped for
// pong_timeout. Once they are, it is killed and replaced (those sessions
// already gone, the kill reaps nothing more).
func (sk *soak) stopRound(rng *rand.Rand, before map[string]uint64) (reapAccount, error) {
	i := rng.IntN(len(sk.children))
	c := sk.children[i]
	if _, err := c.Signal(syscall.SIGSTOP); err != nil {
		return nil, err
	}
	sk.stopped = perProc
	if _, err := sk.settle("SIGSTOP of a client process", before, reapAccount{"pong_timeout": perProc}); err != nil {
		return nil, err
	}
	c.Kill()
	sk.stopped = 0
	nc, err := sk.spawn(sk.addr)
	if err != nil {
		return nil, err
	}
	sk.children[i] = nc
	return reapAccount{"pong_timeout": perProc}, nil
}

// blackholeRound freezes one proxied process's links: the server hears
// nothing more and reaps them for pong_timeout; the clients hear nothing
// either, drop by their own deadline and reconnect through the proxy.
func (sk *soak) blackholeRound(rng *rand.Rand) (reapAccount, error) {
	bh := sk.holes[rng.IntN(len(sk.holes))]
	if n := bh.freeze(); n != perProc {
		return nil, fmt.Errorf("blackhole froze %d links, want the process's %d", n, perProc)
	}
	return reapAccount{"pong_timeout": perProc}, nil
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
	sk := &soak{t: t, p: p, self: self}
	defer sk.close()
	if err := sk.start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	first, err := sk.settle("start", map[string]uint64{}, reapAccount{})
	if err != nil {
		t.Fatal(err)
	}
	sk.last = sk.s.srv.Stats().Reaped
	firstUse := measure()
	t.Logf("start: %d clients in %d processes (%d behind a blackhole proxy) connected in %s; this process: %s",
		p.procs*perProc, p.procs, p.proxied, first.Round(time.Millisecond), firstUse)
	profile(t, "check00")

	// The stated bounds: one descriptor and one goroutine per session
	// (its socket, its reader); two descriptors and two goroutines more
	// per proxied client (the proxy's two sockets and pumps); three
	// descriptors (two pipes and a pidfd) and a reader goroutine per child
	// process; a fixed allowance for the listeners, the poller, the timer
	// wheel and the test.
	//
	// Heap+stack, after two collections: a plateau, not growth (10-minute
	// runs: 11.3 MiB at the first check, 13.1 after the first restart,
	// 13.6 at most, heap objects flat from the first restart on). What
	// rises is a step at a server restart: a thousand clients reconnecting
	// at once run a thousand handshakes at once, and part of what they
	// grew (heap or stack spans) stays. So the bound has two parts
	// (docs/decisions.md, "soak: the heap bound that is true"): at most 2×
	// the first check at any time (the step; the run saw 1.57×,
	// these runs 1.17–1.26×), and after the first restart, at most 1.5×
	// that restart's level: more is growth.
	const slackFDs, slackGoroutines = 3*procs + 32, procs + 64
	proxyCost := 2 * proxied * perProc
	checks := 0
	var storm uint64 // heap+stack at the first check after a restart
	check := func(what string) {
		u := measure()
		sessions := int(sk.s.srv.Stats().Open)
		checks++
		t.Logf("+%s %s: %s", time.Since(start).Round(time.Second), what, u)
		profile(t, fmt.Sprintf("check%02d", checks))
		if lim := base.fds + sessions + proxyCost + slackFDs; u.fds > lim {
			t.Errorf("after %s: %d descriptors for %d sessions (bound %d)", what, u.fds, sessions, lim)
		}
		if lim := base.goroutines + sessions + proxyCost + slackGoroutines; u.goroutines > lim {
			t.Errorf("after %s: %d goroutines for %d sessions (bound %d)", what, u.goroutines, sessions, lim)
		}
		if u.heap > firstUse.heap*2 {
			t.Errorf("after %s: heap+stack %.1f MiB, first check %.1f MiB (bound 2×)", what, mib(u.heap), mib(firstUse.heap))
		}
		if storm == 0 && strings.HasPrefix(what, "restart") {
			storm = u.heap
		}
		if storm > 0 && u.heap > storm*3/2 {
			t.Errorf("after %s: heap+stack %.1f MiB, after the first restart %.1f MiB (bound 1.5×): growth", what, mib(u.heap), mib(storm))
		}
	}

	counts, worst, err := sk.churn(start, func(what string) { check(what) })
	if err != nil {
		t.Fatal(err)
	}
	end := measure()
	t.Logf("%s of churn: %v; every event's reaps exactly as accounted, open sessions = live clients (%d) after every one, settled within %s at worst (bound %s)",
		p.duration, counts, p.procs*perProc, worst.Round(time.Millisecond), settleBound)
	t.Logf("this process at the end: %s (start: %s)", end, firstUse)
	report.Add(t, report.Row{Section: "Churn soak (1 000 clients in 50 processes)",
		Case: fmt.Sprintf("%s: a kill round every %s (%d %% of the clients, SIGKILL, replaced), a server restart every %s, a SIGSTOP and a blackhole round every %s",
			p.duration, p.killEvery, killFraction, p.restartEvery, p.silenceEvery),
		Path:  "killed: session Alive→Reaped (read_error/send_error); restart: all Reaped (shutdown), clients back by the policy; stopped and blackholed: Reaped (pong_timeout), blackholed clients back by their own deadline",
		Bound: fmt.Sprintf("reaps per event exactly as accounted; open = registered = live clients within %s of each event; fds ≤ sessions + %d, goroutines ≤ sessions + %d (+2 each per proxied client); heap+stack (after two GCs) ≤ 2× the first check, and ≤ 1.5× the first restart's level after it", settleBound, slackFDs, slackGoroutines),
		Observed: fmt.Sprintf("%d kill rounds, %d restarts, %d SIGSTOP rounds, %d blackhole rounds; settled within %s at worst",
			counts["kill"], counts["restart"], counts["stop"], counts["blackhole"], worst.Round(time.Millisecond)),
		Evidence: fmt.Sprintf("open = live after every event; fds %d→%d, goroutines %d→%d, heap+stack %.1f→%.1f MiB",
			firstUse.fds, end.fds, firstUse.goroutines, end.goroutines, mib(firstUse.heap), mib(end.heap))})
	if counts["kill"] == 0 || counts["restart"] == 0 || counts["stop"] == 0 || counts["blackhole"] == 0 {
		t.Fatalf("the plan ran %v; a soak needs every kind of event", counts)
	}
}

// churn runs the plan's events in time order from start, settling and
// checking after each; it returns how many of each kind ran and the
// longest settle.
func (sk *soak) churn(start time.Time, check func(string)) (map[string]int, time.Duration, error) {
	p := sk.p
	rng := rand.New(rand.NewPCG(7, 7))
	type due struct {
		at   time.Duration
		kind string
	}
	var plan []due
	for at := p.killEvery; at <= p.duration; at += p.killEvery {
		plan = append(plan, due{at, "kill"})
	}
	for at := p.restartEvery; at <= p.duration; at += p.restartEvery {
		plan = append(plan, due{at, "restart"})
	}
	for at := p.silenceEvery / 2; at <= p.duration; at += p.silenceEvery {
		plan = append(plan, due{at, "stop"}, due{at, "blackhole"})
	}
	sort.SliceStable(plan, func(i, j int) bool { return plan[i].at < plan[j].at })
	counts := map[string]int{}
	var worst time.Duration
	wd := startWatchdog(sk.t, sk.cur.Load)
	defer wd.close()
	for _, d := range plan {
		time.Sleep(time.Until(start.Add(d.at))) // the churn's own cadence
		counts[d.kind]++
		what := fmt.Sprintf("%s %d", d.kind, counts[d.kind])
		before := sk.last
		want := reapAccount{}
		var err error
		switch d.kind {
		case "kill":
			want, err = sk.killRound(rng)
		case "restart":
			err = sk.restart(before)
			before = map[string]uint64{} // the new server counts from zero
		case "stop":
			want, err = sk.stopRound(rng, before)
		case "blackhole":
			want, err = sk.blackholeRound(rng)
		}
		if err != nil {
			return counts, worst, fmt.Errorf("%s: %w\n%s", what, err, wd.explain())
		}
		took, err := sk.settle(what, before, want)
		if err != nil {
			return counts, worst, fmt.Errorf("%w\n%s", err, wd.explain())
		}
		sk.last = sk.s.srv.Stats().Reaped
		worst = max(worst, took)
		check(what)
	}
	return counts, worst, nil
}

// TestChurnSoakCatchesServerThatNeverPings runs a small, short soak whose
// server's pings never reach the clients: live clients, which ping only
// after a longer silence than the server's deadline, are reaped for
// silence, and the reap account names it.
func TestChurnSoakCatchesServerThatNeverPings(t *testing.T) {
	if os.Getenv("LIFELINE_SOAK") == "off" || testing.Short() {
		t.Skip("soak off")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("LIFELINE_SOAK_PPROF", t.TempDir()) // the watchdog's dump, removed with the test
	sk := &soak{t: t, pingless: true, self: self,
		// The first event comes after live's reap deadline (3.5 s), so its
		// account is the first to see the live clients reaped for silence.
		p: plan{duration: 12 * time.Second, killEvery: 5 * time.Second, restartEvery: 10 * time.Second, silenceEvery: 10 * time.Second,
			procs: 3, proxied: 1}}
	defer sk.close()
	if err := sk.start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = sk.settle("start", map[string]uint64{}, reapAccount{})
	if err == nil {
		sk.last = sk.s.srv.Stats().Reaped
		_, _, err = sk.churn(start, func(string) {})
	}
	if err == nil || !strings.Contains(err.Error(), "live clients reaped for silence") {
		t.Fatalf("soak against a server that never pings: %v; want the live clients' pong_timeout reaps named", err)
	}
	// The watchdog explains the failure: the goroutine dump, written at
	// the burst (all 60 sessions reaped together) or at the failure.
	m := regexp.MustCompile(`watchdog: goroutines in (\S+)`).FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("the failure carries no watchdog report: %v", err)
	}
	if b, rerr := os.ReadFile(m[1]); rerr != nil || !strings.Contains(string(b), "goroutine ") {
		t.Fatalf("the watchdog's goroutine dump %s: %v, %.200s", m[1], rerr, b)
	}
	t.Logf("caught: %v", err)
}
