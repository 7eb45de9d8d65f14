package conn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/proptest"
	"pgregory.net/rapid"
)

// These properties run the real Client and Server, over net.Pipe, inside
// testing/synctest bubbles: virtual time, so minutes of backoff and
// heartbeats take milliseconds, and every timing is exact. They install
// no Observer (the production default): the lifecycle is read from the
// JSON log (logFeed), and every frame from the world's side of the
// sockets (worldConn), so code paths that run only without an Observer
// are the ones judged. Each run is
// judged twice: by package invariant, the checkers the simulator runs
// (invariant_test.go builds their records), and directly against the fsm
// oracles: Backoff.Earliest/Latest for retries, Liveness.ReapDeadline for
// reaps, with the reap reason. Each is also shown to fail on a
// deliberately broken adapter (testHooks), the way the field reports'
// peers were broken.
//
// The scenario runs in a bubble and returns what it observed; the checks
// run outside it, so a bubble is never torn down by a failing check.

// inBubble runs f in a fresh synctest bubble and returns its result.
func inBubble[T any](t *testing.T, f func() T) T {
	var out T
	synctest.Test(t, func(*testing.T) { out = f() })
	return out
}

// --- client: retries never early, never late, attempts bounded ---

type dialOutcome uint8

const (
	outRefuse dialOutcome = iota // connection refused
	outHang                      // accepted by nobody: runs into ConnectTimeout
	outForbid                    // the server answers 403
	outDrop                      // the link comes up, then the server closes it after a hold
)

var outcomeNames = []string{"refuse", "hang", "403", "drop"}

type clientStep struct {
	outcome dialOutcome
	hold    time.Duration // outDrop: how long the server keeps the link
}

func (s clientStep) String() string {
	if s.outcome == outDrop {
		return fmt.Sprintf("drop after %s", s.hold)
	}
	return outcomeNames[s.outcome]
}

type clientCase struct {
	backoff fsm.Backoff
	live    fsm.Liveness
	script  []clientStep // attempt i meets script[i]; refused after the script
	seed    uint64
	horizon time.Duration
}

func drawDuration(t *rapid.T, lo, hi time.Duration, label string) time.Duration {
	return time.Duration(rapid.Int64Range(int64(lo), int64(hi)).Draw(t, label))
}

func drawBackoff(t *rapid.T) fsm.Backoff {
	b := fsm.Backoff{
		Initial:        drawDuration(t, 10*time.Millisecond, 3*time.Second, "initial"),
		Multiplier:     rapid.Float64Range(1, 3).Draw(t, "multiplier"),
		Jitter:         rapid.SampledFrom([]fsm.JitterKind{fsm.JitterNone, fsm.JitterSymmetric, fsm.JitterFull, fsm.JitterEqual, fsm.JitterDecorrelated}).Draw(t, "jitter"),
		FirstImmediate: rapid.Bool().Draw(t, "firstImmediate"),
		ConnectTimeout: drawDuration(t, 100*time.Millisecond, 5*time.Second, "connectTimeout"),
		StableAfter:    drawDuration(t, 100*time.Millisecond, 5*time.Second, "stableAfter"),
		MaxAttempts:    rapid.IntRange(0, 8).Draw(t, "maxAttempts"),
	}
	b.Max = b.Initial * time.Duration(rapid.IntRange(1, 30).Draw(t, "maxFactor"))
	return b
}

func drawClientCase(t *rapid.T) clientCase {
	c := clientCase{
		backoff: drawBackoff(t),
		live:    fsm.Liveness{PingInterval: drawDuration(t, time.Second, time.Minute, "ping")},
		seed:    rapid.Uint64().Draw(t, "seed"),
		horizon: drawDuration(t, time.Second, 10*time.Minute, "horizon"),
	}
	n := rapid.IntRange(0, 12).Draw(t, "steps")
	for i := range n {
		s := clientStep{outcome: dialOutcome(rapid.IntRange(0, 3).Draw(t, fmt.Sprintf("outcome%d", i)))}
		if s.outcome == outDrop {
			s.hold = drawDuration(t, 0, 20*time.Second, fmt.Sprintf("hold%d", i))
		}
		c.script = append(c.script, s)
	}
	return c
}

// holdConn tells the drop server how long to keep this link.
type holdConn struct {
	net.Conn
	hold time.Duration
}

// clientRun is what one client case produced: the client's own
// observations, and among them, in the order they happened, the dials the
// world saw (obsWorldDial: independent of what the client says of itself).
type clientRun struct {
	start time.Time
	obs   []Observation
}

// obsWorldDial marks, in a client run's observations, a dial that reached
// the test world. It is the test's own kind, never made by conn.
const obsWorldDial ObservationKind = 200

// runClientCase runs one client against the scripted world until it
// gives up or the horizon passes, and returns what it observed.
func runClientCase(c clientCase, hooks *testHooks) clientRun {
	run := clientRun{start: time.Now()}
	forbid, drop := newMemListener(), newMemListener()
	hsForbid := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	})}
	up := websocket.Upgrader{}
	hsDrop := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		hold := ws.NetConn().(holdConn).hold
		timer := time.AfterFunc(hold, func() { _ = ws.Close() })
		defer timer.Stop()
		for { // answers pings while it holds the link
			if _, _, err := ws.ReadMessage(); err != nil {
				_ = ws.Close()
				return
			}
		}
	})}
	go func() { _ = hsForbid.Serve(forbid) }()
	go func() { _ = hsDrop.Serve(drop) }()

	rec := newRecorder()
	var mu sync.Mutex
	attempt := 0
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		step := clientStep{outcome: outRefuse}
		if attempt < len(c.script) {
			step = c.script[attempt]
		}
		attempt++
		rec.observe(Observation{Kind: obsWorldDial, At: time.Now()})
		mu.Unlock()
		switch step.outcome {
		case outHang:
			<-ctx.Done()
			return nil, ctx.Err()
		case outForbid:
			return forbid.dial(ctx, network, addr)
		case outDrop:
			return drop.dialConn(ctx, func(s net.Conn) net.Conn { return holdConn{s, step.hold} })
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	ctx, cancel := context.WithCancel(context.Background())
	// A client that retries without waiting never lets virtual time
	// advance: stop it after maxAttempts attempts, whatever the clock says.
	const maxAttempts = 200
	attempts := 0
	observe := func(o Observation) {
		rec.observe(o)
		if o.Kind == ObsTransition && o.Transition.To == fsm.Connecting {
			if attempts++; attempts >= maxAttempts {
				cancel()
			}
		}
	}
	cl, err := newClient(ClientConfig{URL: "ws://mem/", NetDialContext: dial, Backoff: c.backoff,
		Liveness: c.live, Rand: rand.New(rand.NewPCG(c.seed, 1)),
		Logger: slog.New(slog.NewJSONHandler(logFeed{observe}, nil))}, hooks)
	if err != nil {
		panic(err) // drawn policies are valid by construction
	}
	done := make(chan error, 1)
	go func() { done <- cl.Run(ctx) }()
	select {
	case <-done:
	case <-time.After(c.horizon):
		cancel()
		<-done
	}
	cancel()
	_ = hsForbid.Close()
	_ = hsDrop.Close()
	_ = forbid.Close()
	_ = drop.Close()
	run.obs = rec.all()
	return run
}

// checkClientRetries checks the backoff oracles on one run: every retry
// starts no earlier than Backoff.Earliest and no later than
// Backoff.Latest after the failure it follows, and the client gives up
// exactly at MaxAttempts.
func checkClientRetries(t *rapid.T, b fsm.Backoff, obs []Observation) {
	b = b.WithDefaults()
	var failedAt time.Time
	n := 0       // failures the pending delay was drawn for
	attempt := 1 // the attempt under way (the log numbers it on the failure that schedules it)
	for _, o := range transitions(obs, 0) {
		tr := o.Transition
		switch tr.To {
		case fsm.Rejected: // a 403: the slow schedule, which (l) judges in judgeClientRun
			attempt = tr.Attempt
			if b.MaxAttempts > 0 && tr.Attempt-1 >= b.MaxAttempts {
				t.Fatalf("failure %d did not give up (MaxAttempts %d)", tr.Attempt-1, b.MaxAttempts)
			}
		case fsm.BackingOff:
			failedAt, n, attempt = o.At, tr.Attempt-1, tr.Attempt
			if b.MaxAttempts > 0 && n >= b.MaxAttempts {
				t.Fatalf("failure %d did not give up (MaxAttempts %d)", n, b.MaxAttempts)
			}
		case fsm.Connecting:
			if tr.From != fsm.BackingOff {
				continue
			}
			gap := o.At.Sub(failedAt)
			if gap < b.Earliest(n) {
				t.Fatalf("retry after failure %d came %s after it; policy's earliest is %s (too early)", n, gap, b.Earliest(n))
			}
			if gap > b.Latest(n) {
				t.Fatalf("retry after failure %d came %s after it; policy's latest is %s (too late)", n, gap, b.Latest(n))
			}
		case fsm.GaveUp:
			if b.MaxAttempts == 0 || attempt < b.MaxAttempts {
				t.Fatalf("gave up at attempt %d with MaxAttempts %d", attempt, b.MaxAttempts)
			}
		}
	}
}

func clientRetryProperty(t *testing.T, hooks *testHooks) func(*rapid.T) {
	return func(rt *rapid.T) {
		c := drawClientCase(rt)
		run := inBubble(t, func() clientRun { return runClientCase(c, hooks) })
		judgeClientRun(rt, c, run)
		checkClientRetries(rt, c.backoff, run.obs)
	}
}

func TestPropertyClientRetriesFollowPolicy(t *testing.T) {
	rapid.Check(t, clientRetryProperty(t, nil))
}

// The field report's client: its exception path skipped the wait.
func TestPropertyClientRetriesCatchesHastyDriver(t *testing.T) {
	report := proptest.ExpectFailure(t, clientRetryProperty(t, &testHooks{hasty: true}))
	if !strings.Contains(report, "(a) no_early_retry") {
		t.Fatalf("the property failed for another reason:\n%s", report)
	}
}

// --- server: dead peers reaped by the deadline, live peers kept, nothing sent after a reap ---

type peerKind uint8

const (
	peerLive   peerKind = iota // answers every ping within its latency
	peerKilled                 // its connection vanishes at dieAt (kill -9: the far end is closed)
	peerFrozen                 // stops reading at dieAt (SIGSTOP, blackhole)
)

var peerNames = []string{"live", "killed", "frozen"}

type peerCase struct {
	kind    peerKind
	dieAt   time.Duration
	latency time.Duration // pong latency while alive
}

func (p peerCase) String() string {
	return fmt.Sprintf("%s(die %s, latency %s)", peerNames[p.kind], p.dieAt, p.latency)
}

type sendCase struct {
	at   time.Duration
	peer int
}

type serverCase struct {
	live    fsm.Liveness
	peers   []peerCase
	sends   []sendCase
	horizon time.Duration
}

func drawServerCase(t *rapid.T) serverCase {
	ping := drawDuration(t, 500*time.Millisecond, 60*time.Second, "ping")
	pong := drawDuration(t, 100*time.Millisecond, ping-time.Millisecond, "pong")
	c := serverCase{live: fsm.Liveness{PingInterval: ping, PongTimeout: pong,
		WriteTimeout: drawDuration(t, 100*time.Millisecond, 20*time.Second, "writeTimeout")}}
	span := 4 * (ping + pong)
	// Pong latency stays under PongTimeout (invariant 4's premise) and
	// under WriteTimeout: a net.Pipe has no buffer, so a peer busy
	// answering a ping holds up the server's next write that long.
	maxLatency := min(pong, c.live.WriteTimeout) - time.Millisecond
	for i := range rapid.IntRange(1, 4).Draw(t, "peers") {
		p := peerCase{kind: peerKind(rapid.IntRange(0, 2).Draw(t, fmt.Sprintf("kind%d", i)))}
		p.latency = drawDuration(t, 0, max(maxLatency, 0), fmt.Sprintf("latency%d", i))
		p.dieAt = drawDuration(t, 0, span, fmt.Sprintf("dieAt%d", i))
		c.peers = append(c.peers, p)
	}
	for i := range rapid.IntRange(0, 8).Draw(t, "sends") {
		c.sends = append(c.sends, sendCase{
			at:   drawDuration(t, 0, span+ping+pong, fmt.Sprintf("sendAt%d", i)),
			peer: rapid.IntRange(0, len(c.peers)-1).Draw(t, fmt.Sprintf("sendTo%d", i)),
		})
	}
	c.horizon = span + 2*(ping+pong)
	return c
}

// sendResult is one Send the scenario made: seq is the number of
// observations recorded before it started.
type sendResult struct {
	id  uint64
	seq int
	err error
}

type serverRun struct {
	obs        []Observation
	sends      []sendResult
	shutdownAt time.Time
	start      time.Time
}

func runServerCase(c serverCase, hooks *testHooks) serverRun {
	var run serverRun
	run.start = time.Now()
	rec := newRecorder()
	ln := newMemListener()
	srv, err := NewServer(ServerConfig{Liveness: c.live, Logger: slog.New(slog.NewJSONHandler(logFeed{rec.observe}, nil))})
	if err != nil {
		panic(err)
	}
	srv.hooks = hooks
	hs := &http.Server{Handler: srv}
	go func() { _ = hs.Serve(ln) }()

	release := make(chan struct{}) // unblocks frozen peers at the end
	var peers []*websocket.Conn
	var handles []*Session
	var wg sync.WaitGroup
	for i, p := range c.peers {
		id := sessionID(uint64(i + 1)) // sessions are numbered in the order of their upgrades
		d := websocket.Dialer{NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return ln.dialConn(ctx, func(s net.Conn) net.Conn { return &worldConn{Conn: s, id: id, rec: rec} })
		}}
		ws, _, err := d.Dial("ws://mem/", nil)
		if err != nil {
			panic(err)
		}
		peers = append(peers, ws)
		// The application keeps the handle, as the field report's server
		// kept its sessions: sends after the reap go through it.
		if sess, ok := srv.Session(uint64(len(peers))); ok {
			handles = append(handles, sess)
		} else {
			panic("session not registered after its handshake")
		}
		dieAt := run.start.Add(p.dieAt)
		freeze := func() bool {
			if p.kind == peerFrozen && !time.Now().Before(dieAt) {
				<-release
				return true
			}
			return false
		}
		ws.SetPingHandler(func(payload string) error {
			if freeze() {
				return errors.New("frozen")
			}
			time.Sleep(p.latency)
			_ = ws.WriteControl(websocket.PongMessage, []byte(payload), time.Now().Add(time.Hour))
			return nil
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, _, err := ws.ReadMessage(); err != nil || freeze() {
					return
				}
			}
		}()
		if p.kind == peerKilled {
			time.AfterFunc(p.dieAt, func() { _ = ws.NetConn().Close() })
		}
	}
	// Sends, in time order, from this goroutine.
	sends := append([]sendCase(nil), c.sends...)
	for i := range sends {
		for j := i + 1; j < len(sends); j++ {
			if sends[j].at < sends[i].at {
				sends[i], sends[j] = sends[j], sends[i]
			}
		}
	}
	for _, s := range sends {
		time.Sleep(time.Until(run.start.Add(s.at)))
		seq := len(rec.all())
		err := handles[s.peer].Send(TextMessage, []byte("event"))
		run.sends = append(run.sends, sendResult{id: uint64(s.peer + 1), seq: seq, err: err})
	}
	time.Sleep(time.Until(run.start.Add(c.horizon)))
	run.shutdownAt = time.Now()
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	_ = srv.Shutdown(ctx)
	cancel()
	for _, ws := range peers {
		_ = ws.Close()
	}
	wg.Wait()
	_ = hs.Close()
	_ = ln.Close()
	run.obs = rec.all()
	return run
}

// World facts about a server's socket, recorded by worldConn on the
// server's end of each pipe: what really crossed the wire, whatever the
// adapter says of itself.
const (
	obsWorldHeard      ObservationKind = 201 + iota // bytes from the peer reached the server
	obsWorldSend                                    // the server began writing a data frame
	obsWorldPing                                    // the server began writing a ping
	obsWorldSendFailed                              // a write of the server's failed
)

// worldConn is the server's end of a peer's pipe, reporting to rec what
// the server reads and writes. gorilla/websocket writes each small frame
// in one Write call, so a Write's first byte is a frame's opcode.
type worldConn struct {
	net.Conn
	id  string
	rec *recorder
}

func (w *worldConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if n > 0 {
		w.rec.observe(Observation{Kind: obsWorldHeard, ID: w.id, At: time.Now()})
	}
	return n, err
}

func (w *worldConn) Write(p []byte) (int, error) {
	if len(p) > 0 {
		switch p[0] & 0x0f {
		case websocket.TextMessage, websocket.BinaryMessage:
			w.rec.observe(Observation{Kind: obsWorldSend, ID: w.id, At: time.Now()})
		case websocket.PingMessage:
			w.rec.observe(Observation{Kind: obsWorldPing, ID: w.id, At: time.Now()})
		}
	}
	n, err := w.Conn.Write(p)
	if err != nil {
		w.rec.observe(Observation{Kind: obsWorldSendFailed, ID: w.id, At: time.Now(), Err: err})
	}
	return n, err
}

// checkServerRun checks the liveness oracles and the send rule on one run.
func checkServerRun(t *rapid.T, c serverCase, run serverRun) {
	type life struct {
		alive, reaped *Observation
		reapSeq       int
		lastHeard     time.Time
	}
	lives := map[string]*life{}
	get := func(id string) *life {
		if lives[id] == nil {
			lives[id] = &life{}
		}
		return lives[id]
	}
	for i := range run.obs {
		o := &run.obs[i]
		l := get(o.ID)
		switch {
		case o.Kind == ObsTransition && o.Transition.To == fsm.Alive && l.alive == nil:
			l.alive, l.lastHeard = o, o.At
		case o.Kind == ObsTransition && o.Transition.To == fsm.Reaped:
			l.reaped, l.reapSeq = o, i
		case o.Kind == obsWorldHeard && l.reaped == nil:
			if o.At.After(l.lastHeard) {
				l.lastHeard = o.At
			}
		case o.Kind == obsWorldSend && l.reaped != nil:
			t.Fatalf("session %s: data frame sent at %s, after its reap at %s", o.ID, o.At, l.reaped.At)
		}
	}
	for i, p := range c.peers {
		id := sessionID(uint64(i + 1))
		l := get(id)
		if l.alive == nil {
			t.Fatalf("peer %d (%s) never became Alive", i, p)
		}
		reapedBeforeShutdown := l.reaped != nil && l.reaped.At.Before(run.shutdownAt)
		switch p.kind {
		case peerLive:
			if reapedBeforeShutdown {
				t.Fatalf("live peer %d (%s) was reaped at +%s for %s", i, p, l.reaped.At.Sub(run.start), l.reaped.Transition.Reason)
			}
		default:
			// The stated scheduling slack: the shared timer rounds
			// deadlines up to its granularity.
			bound := c.live.ReapDeadline(l.lastHeard).Add(defaultTimerGranularity)
			if !bound.Before(run.shutdownAt) {
				continue // the horizon ended before its deadline
			}
			if l.reaped == nil || l.reaped.At.After(bound) {
				t.Fatalf("dead peer %d (%s), last heard at +%s, not reaped by its deadline +%s (reaped: %v)",
					i, p, l.lastHeard.Sub(run.start), bound.Sub(run.start), l.reaped != nil)
			}
		}
	}
	for _, s := range run.sends {
		l := get(sessionID(s.id))
		if l.reaped != nil && l.reapSeq < s.seq && s.err == nil {
			t.Fatalf("a send to session %d after its reap returned no error", s.id)
		}
		if s.err != nil && !errors.Is(s.err, ErrSessionClosed) {
			t.Fatalf("send to session %d: unexpected error %v", s.id, s.err)
		}
	}
}

func serverLivenessProperty(t *testing.T, hooks *testHooks) func(*rapid.T) {
	return func(rt *rapid.T) {
		c := drawServerCase(rt)
		run := inBubble(t, func() serverRun { return runServerCase(c, hooks) })
		judgeServerRun(rt, c, run)
		checkServerRun(rt, c, run)
	}
}

func TestPropertyServerReapsDeadKeepsLive(t *testing.T) {
	rapid.Check(t, serverLivenessProperty(t, nil))
}

// A server that ignores pongs reaps live peers.
func TestPropertyServerCatchesDeafServer(t *testing.T) {
	report := proptest.ExpectFailure(t, serverLivenessProperty(t, &testHooks{deaf: true}))
	if !strings.Contains(report, "(d) live_kept") {
		t.Fatalf("the property failed for another reason:\n%s", report)
	}
}

// A server whose timer never runs sends no pings and leaves silent peers
// to the read deadline backstop: dead peers are reaped too late, and live
// ones, never pinged, are reaped by the backstop too. Either shows it.
func TestPropertyServerCatchesMissingTimer(t *testing.T) {
	report := proptest.ExpectFailure(t, serverLivenessProperty(t, &testHooks{noTicks: true}))
	// The invariant suite judges reaps for silence (PongTimeout); the backstop
	// reaps with read_error, which the direct check below it catches.
	if !strings.Contains(report, "(c) dead_reaped") && !strings.Contains(report, "(d) live_kept") &&
		!strings.Contains(report, "not reaped by its deadline") && !strings.Contains(report, "live peer") {
		t.Fatalf("the property failed for another reason:\n%s", report)
	}
}

// The field report's server: it kept sending to dead sessions.
func TestPropertyServerCatchesSendAfterReap(t *testing.T) {
	report := proptest.ExpectFailure(t, serverLivenessProperty(t, &testHooks{unguarded: true}))
	// Seen from outside, the bug shows as a data frame reaching the wire
	// after the reap, or, when gorilla/websocket already refuses writes
	// on the closed connection, as Send reporting success for a message
	// that can never go out.
	if !strings.Contains(report, "(e) no_send_after_close") && !strings.Contains(report, "after its reap returned no error") {
		t.Fatalf("the property failed for another reason:\n%s", report)
	}
}

// A server that never pings: live peers that only answer pings fall
// silent and are reaped for it.
func TestPropertyServerCatchesNoPing(t *testing.T) {
	report := proptest.ExpectFailure(t, serverLivenessProperty(t, &testHooks{noPing: true}))
	if !strings.Contains(report, "(d) live_kept") {
		t.Fatalf("the property failed for another reason:\n%s", report)
	}
}

// The field report's server: a failed send swallowed, the session kept
// until the liveness deadline instead of reaped at once.
func TestPropertyServerCatchesSwallowedSendFailure(t *testing.T) {
	report := proptest.ExpectFailure(t, serverLivenessProperty(t, &testHooks{swallow: true}))
	if !strings.Contains(report, "(c) dead_reaped") || !strings.Contains(report, "but a send failed at") {
		t.Fatalf("the property failed for another reason:\n%s", report)
	}
}

// A client that never redials once its link dropped: the retry its
// policy owes never comes.
func TestPropertyClientCatchesNoRedialAfterDrop(t *testing.T) {
	report := proptest.ExpectFailure(t, clientRetryProperty(t, &testHooks{noRedial: true}))
	if !strings.Contains(report, "(b) bounded_retries") || !strings.Contains(report, "no attempt since failure") {
		t.Fatalf("the property failed for another reason:\n%s", report)
	}
}

// A client that resets its failure count when a dial succeeds, not after
// the link proved stable: a link that flaps at once retries at the
// shortest delay every time.
func TestPropertyClientCatchesBackoffResetAtConnect(t *testing.T) {
	report := proptest.ExpectFailure(t, clientRetryProperty(t, &testHooks{resetAtConnect: true}))
	if !strings.Contains(report, "(a) no_early_retry") {
		t.Fatalf("the property failed for another reason:\n%s", report)
	}
}
