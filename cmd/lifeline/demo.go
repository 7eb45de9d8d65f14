package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/proc"
	"github.com/lifeline-go/lifeline/internal/syncio"
)

// runDemo is the README's main job: a server and a fleet of clients on
// 127.0.0.1, real faults injected one after the other, live state counts,
// and a summary checked against the policies. It exits 1 if a check fails.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	o := demoOptions{}
	fs.IntVar(&o.clients, "clients", 20, "in-process clients in the fleet (two more run as processes, to be killed and stopped)")
	fs.DurationVar(&o.live.PingInterval, "ping-interval", time.Second, "ping after this much silence, both ends")
	fs.DurationVar(&o.live.PongTimeout, "pong-timeout", 500*time.Millisecond, "reap/drop this long after an unanswered ping")
	fs.DurationVar(&o.outage, "outage", 3*time.Second, "how long the server stays down")
	fs.DurationVar(&o.pace, "pace", 2*time.Second, "steady state shown before each fault, so the counts can be watched")
	logFormat := fs.String("log-format", "", "also write every transition to stderr: json or text (default: none)")
	clusterMode := fs.Bool("cluster", false, "instead: three clustered node processes, one SIGKILLed; its sessions must be gone everywhere within the lease bound")
	leaseTTL := fs.Duration("lease-ttl", 3*time.Second, "with --cluster: the nodes' lease TTL")
	leaseHB := fs.Duration("lease-heartbeat", time.Second, "with --cluster: the nodes' lease heartbeat")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *clusterMode {
		lease := fsm.Lease{TTL: *leaseTTL, Heartbeat: *leaseHB}
		if err := lease.Validate(); err != nil {
			return usageError{flagErrors(err)}
		}
		if o.clients < 1 {
			return usageError{errors.New("-clients must be at least 1")}
		}
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		d := &clusterDemo{out: stdout, clients: o.clients, lease: lease, start: time.Now(),
			self: proc.Self{Argv: []string{exe}, Env: []string{mainEnv + "=1"}}}
		return d.run(ctx)
	}
	o.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if *logFormat != "" {
		l, err := newLogger(*logFormat, stderr)
		if err != nil {
			return usageError{err}
		}
		o.logger = l
	}
	if o.clients < 1 {
		return usageError{errors.New("-clients must be at least 1")}
	}
	if err := o.live.Validate(); err != nil {
		return usageError{err}
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	o.self = proc.Self{Argv: []string{exe}, Env: []string{mainEnv + "=1"}}
	d := &demo{demoOptions: o, out: &syncio.Writer{W: stdout}, start: time.Now(), named: map[sessionKey]string{}, reapedAt: map[string]reap{}}
	return d.run(ctx)
}

type demoOptions struct {
	clients int
	live    fsm.Liveness
	outage  time.Duration
	pace    time.Duration
	logger  *slog.Logger
	self    proc.Self
}

// demoBackoff is the fleet's reconnect policy: the default shape (first
// retry immediate, ×1.6, ±50 %) on a scale that fits a one-minute demo.
func demoBackoff() fsm.Backoff {
	return fsm.Backoff{Initial: 300 * time.Millisecond, Multiplier: 1.6, Max: 3 * time.Second,
		FirstImmediate: true, ConnectTimeout: 2 * time.Second, StableAfter: 2 * time.Second}
}

type reap struct {
	at     time.Time
	reason fsm.Reason
}

// demo is one run. The mutex guards what the observers record.
type demo struct {
	demoOptions
	out   io.Writer
	start time.Time
	addr  string

	mu       sync.Mutex
	srv      *conn.Server
	hs       *http.Server
	gen      int                   // the server's generation: 0, then 1 after the restart
	named    map[sessionKey]string // session -> client name, learnt from its hello
	reapedAt map[string]reap       // helper name -> its session's reap
	reapCh   chan struct{}         // closed and replaced on each reap
	fleet    []*conn.Client
	trans    [][]conn.Observation // per in-process client, its transitions
	sobs     []serverObs          // the sessions' transitions and data frames, both servers
	signals  []sentSignal         // the faults sent to the victims
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "%6.1fs  %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func (d *demo) run(ctx context.Context) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	d.addr = ln.Addr().String()
	d.reapCh = make(chan struct{})
	if err := d.startServer(ln); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "lifeline demo: server ws://%s/ (ping %s, pong timeout %s: a silent peer is reaped within %s)\n",
		d.addr, d.live.PingInterval, d.live.PongTimeout, d.bound())
	fmt.Fprintf(d.out, "fleet: %d clients in this process + 2 client processes; backoff %s, ×%.1f, max %s, first retry immediate, ±50%% jitter\n\n",
		d.clients, demoBackoff().Initial, demoBackoff().Multiplier, demoBackoff().Max)

	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		d.stopServer()
	}()
	for i := range d.clients {
		if err := d.startClient(runCtx, &wg, i); err != nil {
			return err
		}
	}
	kill, err := d.startHelper("victim-kill")
	if err != nil {
		return err
	}
	defer kill.Kill()
	stop, err := d.startHelper("victim-stop")
	if err != nil {
		return err
	}
	defer stop.Kill()

	wg.Add(1)
	go func() { defer wg.Done(); d.status(runCtx) }()

	if err := d.waitFor(ctx, 15*time.Second, "the whole fleet connected", func() bool {
		return d.count(fsm.Alive) == int64(d.clients+2)
	}); err != nil {
		return err
	}
	if err := d.greet(kill, "victim-kill"); err != nil {
		return err
	}
	if err := d.greet(stop, "victim-stop"); err != nil {
		return err
	}
	d.say("all %d sessions Alive", d.clients+2)

	killLat, err := d.fault(ctx, kill, "victim-kill", syscall.SIGKILL, "kill -9 of client process victim-kill (no close frame)")
	if err != nil {
		return err
	}
	stopLat, err := d.fault(ctx, stop, "victim-stop", syscall.SIGSTOP, "SIGSTOP of client process victim-stop (it stops answering pings)")
	if err != nil {
		return err
	}
	stop.Kill()

	restart, err := d.restart(ctx)
	if err != nil {
		return err
	}
	// Settled: every fleet link has said which session is its own.
	if err := d.waitFor(ctx, 10*time.Second, "every fleet link's hello", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		n := 0
		for k := range d.named {
			if k.gen == 1 {
				n++
			}
		}
		return n >= d.clients
	}); err != nil {
		return err
	}
	return d.summary(killLat, stopLat, restart, time.Now())
}

func (d *demo) bound() time.Duration {
	return d.live.PingInterval + d.live.PongTimeout + 50*time.Millisecond
}

func (d *demo) startServer(ln net.Listener) error {
	srv, err := conn.NewServer(conn.ServerConfig{
		Liveness: d.live,
		Logger:   d.logger,
		OnMessage: func(s *conn.Session, t conn.MessageType, data []byte) error {
			if name, ok := strings.CutPrefix(string(data), "hello "); ok {
				d.mu.Lock()
				d.named[sessionKey{d.gen, s.ID()}] = name
				d.mu.Unlock()
			}
			return s.Send(t, data)
		},
		Observer: d.observeServer,
	})
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	d.mu.Lock()
	d.srv, d.hs = srv, hs
	d.mu.Unlock()
	return nil
}

func (d *demo) stopServer() {
	d.mu.Lock()
	srv, hs := d.srv, d.hs
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	_ = hs.Shutdown(ctx)
}

func (d *demo) observeServer(o conn.Observation) {
	data := o.Frame == conn.FrameText || o.Frame == conn.FrameBinary
	if o.Kind != conn.ObsTransition && !((o.Kind == conn.ObsSend || o.Kind == conn.ObsReceive) && data) {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sobs = append(d.sobs, serverObs{d.gen, o})
	if o.Kind != conn.ObsTransition || o.Transition.To != fsm.Reaped {
		return
	}
	var id uint64
	fmt.Sscan(o.ID, &id)
	if name, ok := d.named[sessionKey{d.gen, id}]; ok {
		d.reapedAt[name] = reap{o.At, o.Transition.Reason}
	}
	close(d.reapCh)
	d.reapCh = make(chan struct{})
}

func (d *demo) startClient(ctx context.Context, wg *sync.WaitGroup, i int) error {
	d.mu.Lock()
	d.trans = append(d.trans, nil)
	d.mu.Unlock()
	c, err := conn.NewClient(conn.ClientConfig{
		URL: "ws://" + d.addr + "/", ID: fmt.Sprintf("fleet-%02d", i), Backoff: demoBackoff(), Liveness: d.live, Logger: d.logger,
		Observer: func(o conn.Observation) {
			if o.Kind == conn.ObsTransition {
				d.mu.Lock()
				d.trans[i] = append(d.trans[i], o)
				d.mu.Unlock()
			}
		},
	})
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.fleet = append(d.fleet, c)
	d.mu.Unlock()
	sub := c.Subscribe(ctx)
	wg.Add(2)
	go func() { defer wg.Done(); _ = c.Run(ctx) }()
	go func() {
		// Each link says hello, so the summary knows which session is whose.
		defer wg.Done()
		for tr := range sub {
			if tr.To == fsm.Connected {
				_ = c.Send(ctx, conn.TextMessage, []byte("hello "+c.ID()))
			}
		}
	}()
	return nil
}

// startHelper starts `lifeline connect` as a separate process, so that it
// can be killed or stopped like any real client.
func (d *demo) startHelper(name string) (*proc.Child, error) {
	return d.self.Start(nil, "connect", "ws://"+d.addr+"/", "--id", name,
		"--ping-interval", d.live.PingInterval.String(), "--pong-timeout", d.live.PongTimeout.String(),
		"--initial", demoBackoff().Initial.String(), "--max", demoBackoff().Max.String())
}

// greet has a helper say hello and waits for the echo, so the server
// knows which session is which process.
func (d *demo) greet(h *proc.Child, name string) error {
	if _, err := io.WriteString(h.Stdin(), "hello "+name+"\n"); err != nil {
		return err
	}
	if _, err := h.Line("hello "+name, 10*time.Second); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// fault signals a helper and waits for the server to reap its session;
// it returns the time from the signal to the reap.
func (d *demo) fault(ctx context.Context, h *proc.Child, name string, sig syscall.Signal, what string) (reapLatency, error) {
	if err := d.pause(ctx); err != nil {
		return reapLatency{}, err
	}
	d.say("FAULT: %s", what)
	at, err := h.Signal(sig)
	if err != nil {
		return reapLatency{}, err
	}
	d.mu.Lock()
	d.signals = append(d.signals, sentSignal{name, at})
	d.mu.Unlock()
	var r reap
	err = d.waitFor(ctx, 3*d.bound()+5*time.Second, "the reap of "+name, func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		var ok bool
		r, ok = d.reapedAt[name]
		return ok
	})
	if err != nil {
		return reapLatency{}, err
	}
	lat := reapLatency{what: name, after: r.at.Sub(at), reason: r.reason}
	d.say("  -> session of %s reaped %s after the signal (%s)", name, lat.after.Round(time.Millisecond), r.reason)
	return lat, nil
}

type reapLatency struct {
	what   string
	after  time.Duration
	reason fsm.Reason
}

type restartResult struct {
	downAt, upAt        time.Time
	firstBack, lastBack time.Time
	attempts            int
}

// restart stops the server (every session gets 1001), keeps the port
// closed for the outage, and serves again on the same address; it waits
// until the fleet is back.
func (d *demo) restart(ctx context.Context) (restartResult, error) {
	var r restartResult
	if err := d.pause(ctx); err != nil {
		return r, err
	}
	d.say("FAULT: server stopped (close 1001 to every session); port closed for %s", d.outage)
	r.downAt = time.Now()
	d.stopServer()
	select { // the outage itself: the fault being injected
	case <-time.After(d.outage):
	case <-ctx.Done():
		return r, ctx.Err()
	}
	ln, err := net.Listen("tcp", d.addr)
	if err != nil {
		return r, fmt.Errorf("re-listen on %s: %w", d.addr, err)
	}
	d.mu.Lock()
	d.gen = 1
	d.mu.Unlock()
	if err := d.startServer(ln); err != nil {
		return r, err
	}
	r.upAt = time.Now()
	d.say("server back on %s", d.addr)
	if err := d.waitFor(ctx, 20*time.Second, "the fleet back", func() bool {
		return d.count(fsm.Alive) == int64(d.clients)
	}); err != nil {
		return r, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ts := range d.trans {
		for _, o := range ts {
			if o.At.Before(r.downAt) {
				continue
			}
			switch o.Transition.To {
			case fsm.Connecting:
				r.attempts++
			case fsm.Connected:
				if r.firstBack.IsZero() || o.At.Before(r.firstBack) {
					r.firstBack = o.At
				}
				if o.At.After(r.lastBack) {
					r.lastBack = o.At
				}
			}
		}
	}
	d.say("  -> all %d clients reconnected by themselves, %s after the restart", d.clients, r.lastBack.Sub(r.upAt).Round(time.Millisecond))
	return r, nil
}

// pause shows the steady state for a while before the next fault: pacing
// for the viewer, not synchronisation.
func (d *demo) pause(ctx context.Context) error {
	select {
	case <-time.After(d.pace):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *demo) summary(kill, stop reapLatency, r restartResult, settledAt time.Time) error {
	suite, err := d.judge(settledAt)
	if err != nil {
		return err
	}
	d.mu.Lock()
	st := d.srv.Stats()
	d.mu.Unlock()
	fmt.Fprintf(d.out, "\nsummary\n")
	for _, l := range []reapLatency{kill, stop} {
		fmt.Fprintf(d.out, "  %-12s reaped %8s after the signal (%s); bound ping+pong+50ms = %s\n",
			l.what, l.after.Round(time.Millisecond), l.reason, d.bound())
	}
	fmt.Fprintf(d.out, "  restart      %d clients back %s..%s after the server returned (spread %s); %d attempts during the %s outage\n",
		d.clients, r.firstBack.Sub(r.upAt).Round(time.Millisecond), r.lastBack.Sub(r.upAt).Round(time.Millisecond),
		r.lastBack.Sub(r.firstBack).Round(time.Millisecond), r.attempts, d.outage)
	fmt.Fprintf(d.out, "  sessions     open %d, live clients %d\n", st.Open, d.clients)
	fmt.Fprintf(d.out, "checks (package invariant: the simulator's checkers, over what the demo saw)\n")
	for _, v := range suite.Verdicts() {
		verdict := "ok"
		switch {
		case v.Violations > 0:
			verdict = fmt.Sprintf("FAILED (%d)", v.Violations)
		case v.Checked == 0:
			verdict = "not judged here"
		}
		fmt.Fprintf(d.out, "  (%s) %-20s %5d checks: %s\n", v.Letter, v.Name, v.Checked, verdict)
	}
	if vs := suite.Violations(); len(vs) > 0 {
		for _, v := range vs[:min(len(vs), 5)] {
			fmt.Fprintf(d.out, "  %s\n", v)
		}
		return exitError{1, fmt.Errorf("checks failed: %d violations, the first: %s", len(vs), vs[0])}
	}
	return nil
}

// count returns the current server's sessions in state s.
func (d *demo) count(s fsm.State) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.srv.Stats().Sessions[s.String()]
}

// waitFor re-checks cond on every reap and every 50 ms until it holds,
// failing after timeout.
func (d *demo) waitFor(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		d.mu.Lock()
		reaped := d.reapCh
		d.mu.Unlock()
		select {
		case <-reaped:
		case <-tick.C:
		case <-deadline.C:
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// status prints the live state counts once a second.
func (d *demo) status(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		d.mu.Lock()
		st := d.srv.Stats()
		clients := map[fsm.State]int{}
		for _, c := range d.fleet {
			clients[c.State()]++
		}
		d.mu.Unlock()
		var reaped []string
		for _, r := range fsm.Reasons() {
			if n := st.Reaped[r.String()]; n > 0 {
				reaped = append(reaped, fmt.Sprintf("%s=%d", r, n))
			}
		}
		var cs []string
		for _, s := range []fsm.State{fsm.Connected, fsm.Connecting, fsm.BackingOff} {
			cs = append(cs, fmt.Sprintf("%s=%d", s, clients[s]))
		}
		slices.Sort(reaped)
		d.say("server sessions Alive=%d Closing=%d | reaped (this server) %s | fleet %s",
			st.Sessions["Alive"], st.Sessions["Closing"], orNone(reaped), strings.Join(cs, " "))
	}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, " ")
}
