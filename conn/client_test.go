package conn

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/oracle"
	"github.com/lifeline-go/lifeline/internal/syncio"
)

// newTestClient builds a client with no Observer, as in production, that
// logs JSON into a buffer; rec is fed from that log (logFeed).
func newTestClient(t testing.TB, cfg ClientConfig) (*Client, *recorder, *syncio.Buffer) {
	t.Helper()
	if cfg.Observer != nil {
		t.Fatal("newTestClient installs no Observer; use newObservedClient")
	}
	return buildClient(t, cfg, false)
}

// newObservedClient is newTestClient with an Observer recording into rec
// (and the log kept apart): for the few tests of the Observer itself.
func newObservedClient(t testing.TB, cfg ClientConfig) (*Client, *recorder, *syncio.Buffer) {
	t.Helper()
	return buildClient(t, cfg, true)
}

func buildClient(t testing.TB, cfg ClientConfig, observed bool) (*Client, *recorder, *syncio.Buffer) {
	t.Helper()
	rec := newRecorder()
	logs := &syncio.Buffer{}
	var w io.Writer = io.MultiWriter(logs, logFeed{rec.observe})
	if observed {
		cfg.Observer, w = rec.observe, logs
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(w, nil))
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(1, 2))
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, rec, logs
}

// refusedURL returns a ws:// URL on a loopback port nothing listens on.
func refusedURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "ws://" + addr + "/"
}

func TestClientConnectsSendsAndReceives(t *testing.T) {
	ts := startServer(t, ServerConfig{OnMessage: echo})
	got := make(chan string, 1)
	c, rec, _ := newTestClient(t, ClientConfig{URL: ts.url, OnMessage: func(_ MessageType, d []byte) { got <- string(d) }})
	stop := runClient(t, c)
	rec.wait(t, 5*time.Second, "Connected", countTo(fsm.Connected, 1))
	if err := c.Send(context.Background(), TextMessage, []byte("ping?")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "ping?" {
			t.Fatalf("got %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no echo")
	}
	st := c.Stats()
	if st.State != fsm.Connected || st.Attempts != 1 || st.Connects != 1 || st.ConnectedSince.IsZero() {
		t.Errorf("Stats = %+v", st)
	}
	// Stopping says goodbye: the server sees a close frame (peer_close),
	// not a vanished connection (read_error).
	if err := stop(); err != nil {
		t.Fatalf("Run = %v after stop", err)
	}
	reaped := transitions(ts.rec.wait(t, 5*time.Second, "the session reaped", countTo(fsm.Reaped, 1)), fsm.Reaped)[0]
	if r := reaped.Transition.Reason; r != fsm.ReasonPeerClose {
		t.Errorf("server reaped the session for %s, want peer_close (the client's close frame)", r)
	}
}

func TestClientSendWhileNotConnected(t *testing.T) {
	c, _, _ := newTestClient(t, ClientConfig{URL: refusedURL(t)})
	err := c.Send(context.Background(), TextMessage, []byte("x"))
	var nc *NotConnectedError
	if !errors.As(err, &nc) || !errors.Is(err, ErrNotConnected) || nc.State != fsm.Idle {
		t.Fatalf("Send before Run = %v, want a NotConnectedError in Idle", err)
	}
}

// attemptStarts returns when each attempt started (transitions into
// Connecting) and when each failure was recorded (into BackingOff), with
// the attempt number fsm scheduled.
func attemptStarts(obs []Observation) (starts []time.Time, fails []Observation) {
	for _, o := range transitions(obs, 0) {
		switch o.Transition.To {
		case fsm.Connecting:
			starts = append(starts, o.At)
		case fsm.BackingOff, fsm.Rejected:
			fails = append(fails, o)
		}
	}
	return starts, fails
}

// checkNoEarlyRetry fails t if any retry started before the policy's
// lower bound for its failure, measured from the failure.
func checkNoEarlyRetry(t testing.TB, b fsm.Backoff, obs []Observation) int {
	t.Helper()
	starts, fails := attemptStarts(obs)
	early := 0
	for i, f := range fails {
		if i+1 >= len(starts) {
			break
		}
		n := f.Transition.Attempt - 1 // the failure count the delay was drawn for
		if gap := starts[i+1].Sub(f.At); gap < b.Earliest(n) {
			early++
			t.Errorf("attempt %d started %s after failure %d, policy's earliest is %s",
				f.Transition.Attempt, gap, n, b.Earliest(n))
		}
	}
	return early
}

// refusedWindow runs a client of cfg, whose endpoints all refuse, for a
// 1.5 s window under fastBackoff and checks the policy's promises over it:
// the attempt count lies between what the slowest schedule allows in the
// window (less a margin for dial time) and the fastest over the whole run,
// and no retry starts before its lower bound. It returns what was
// observed, the attempts' starts and the client's log.
func refusedWindow(t *testing.T, cfg ClientConfig) ([]Observation, []time.Time, *syncio.Buffer) {
	t.Helper()
	b := fastBackoff()
	cfg.Backoff = b
	c, rec, logs := newTestClient(t, cfg)
	start := time.Now()
	stop := runClient(t, c)
	const window = 1500 * time.Millisecond
	time.Sleep(window) // the window itself is what is measured, not a synchronisation
	if err := stop(); err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
	elapsed := time.Since(start)
	obs := rec.all()
	starts, _ := attemptStarts(obs)
	lo, _ := oracle.AttemptsWithin(b, window-100*time.Millisecond)
	_, hi := oracle.AttemptsWithin(b, elapsed)
	if len(starts) < lo || len(starts) > hi {
		t.Errorf("%d attempts in %s; the policy allows %d..%d", len(starts), elapsed, lo, hi)
	}
	if early := checkNoEarlyRetry(t, b, obs); early != 0 {
		t.Errorf("%d early retries", early)
	}
	return obs, starts, logs
}

// TestClientRefusedPortFollowsPolicy: against a refused port, the number
// of attempts in a window lies between what the policy's slowest and
// fastest schedules allow, and no retry comes before its lower bound.
func TestClientRefusedPortFollowsPolicy(t *testing.T) {
	_, starts, logs := refusedWindow(t, ClientConfig{URL: refusedURL(t)})
	// One log line per attempt's failure, carrying its error.
	fails := 0
	for _, l := range logLines(t, logs) {
		if l["to"] == "BackingOff" {
			fails++
			if !strings.Contains(l["error"].(string), "refused") {
				t.Errorf("failure logged without its cause: %v", l)
			}
		}
	}
	if fails != len(starts) && fails != len(starts)-1 {
		t.Errorf("%d failure lines for %d attempts", fails, len(starts))
	}
}

// TestClientGivesUpOn403: a server that refuses the handshake is a failed
// attempt (a permanent one, waited for on the slow schedule); after
// MaxAttempts, Run returns a GaveUpError carrying the status.
func TestClientGivesUpOn403(t *testing.T) {
	ts := startServer(t, ServerConfig{Authorize: BearerToken("right")})
	b := fastBackoff()
	b.MaxAttempts = 3
	// A 403 is permanent: Rejected, on a slow schedule, here as fast as b.
	c, rec, logs := newTestClient(t, ClientConfig{URL: ts.url, Header: BearerHeader("wrong"), Backoff: b,
		Failures: fsm.FailurePolicy{Schedule: b}})
	err := c.Run(context.Background())
	var gu *GaveUpError
	var de *DialError
	if !errors.As(err, &gu) || !errors.Is(err, ErrGaveUp) || !errors.As(err, &de) || de.Status != http.StatusForbidden {
		t.Fatalf("Run = %v, want GaveUpError wrapping a 403 DialError", err)
	}
	if gu.Attempts != 3 || c.State() != fsm.GaveUp {
		t.Errorf("attempts = %d, state %s", gu.Attempts, c.State())
	}
	checkNoEarlyRetry(t, b, rec.all())
	var errLines int
	for _, l := range logLines(t, logs) {
		if e, ok := l["error"].(string); ok {
			errLines++
			if !strings.Contains(e, "403") {
				t.Errorf("error logged without the status: %q", e)
			}
		}
	}
	if errLines != 3 {
		t.Errorf("%d lines with an error for 3 failed attempts, want 3", errLines)
	}
}

// TestClientAcceptThenClose: a server that accepts the TCP connection and
// closes it at once (before or right after the upgrade) never pulls the
// client into a tight loop.
func TestClientAcceptThenClose(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) string
	}{
		{"before the handshake", func(t *testing.T) string {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					_ = c.Close()
				}
			}()
			return "ws://" + ln.Addr().String() + "/"
		}},
		{"after the upgrade", func(t *testing.T) string {
			return rawWSServer(t, func(ws *websocket.Conn) {})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.start(t)
			b := fastBackoff()
			c, rec, _ := newTestClient(t, ClientConfig{URL: url, Backoff: b})
			runClient(t, c)
			obs := rec.wait(t, 10*time.Second, "six failures", countTo(fsm.BackingOff, 6))
			checkNoEarlyRetry(t, b, obs)
			fails := transitions(obs, fsm.BackingOff)
			// The failure count keeps growing: an accept-then-close link is
			// not stable, so the delay does too.
			for i, f := range fails[:6] {
				if f.Transition.Attempt != i+2 {
					t.Errorf("failure %d scheduled attempt %d, want %d", i+1, f.Transition.Attempt, i+2)
				}
			}
			if last := fails[5].Transition.Delay; last < b.Earliest(6) {
				t.Errorf("delay after 6 failures = %s, below the policy's %s", last, b.Earliest(6))
			}
		})
	}
}

// TestClientConnectTimeout: a server that accepts TCP but never answers
// the handshake costs one ConnectTimeout per attempt, then backoff.
func TestClientConnectTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	defer func() {
		mu.Lock()
		for _, c := range held {
			_ = c.Close()
		}
		mu.Unlock()
	}()
	defer ln.Close()
	closed := make(chan time.Time, 16) // when the client closed each held connection
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
			go func() {
				_, _ = io.Copy(io.Discard, c) // returns when the client closes its end
				closed <- time.Now()
			}()
		}
	}()
	b := fastBackoff()
	b.ConnectTimeout = 150 * time.Millisecond
	c, rec, logs := newTestClient(t, ClientConfig{URL: "ws://" + ln.Addr().String() + "/", Backoff: b})
	runClient(t, c)
	obs := rec.wait(t, 5*time.Second, "two timeouts", countTo(fsm.BackingOff, 2))
	for _, f := range transitions(obs, fsm.BackingOff) {
		if f.Transition.Trigger != fsm.DialTimeout {
			t.Errorf("trigger = %s, want dial_timeout", f.Transition.Trigger)
		}
	}
	starts, fails := attemptStarts(obs)
	if d := fails[0].At.Sub(starts[0]); d < b.ConnectTimeout || d > b.ConnectTimeout+100*time.Millisecond {
		t.Errorf("first attempt abandoned after %s, want ConnectTimeout %s", d, b.ConnectTimeout)
	}
	if !strings.Contains(logs.String(), "connect timeout") {
		t.Errorf("timeout not logged as its cause")
	}
	// The abandoned attempt is aborted: its connection closed at the
	// timeout, not left to hang until the server answers.
	select {
	case at := <-closed:
		if d := at.Sub(fails[0].At); d > 100*time.Millisecond {
			t.Errorf("the timed-out attempt's connection was closed %s after the timeout", d)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("the timed-out attempt's connection was never closed")
	}
}

// TestClientStopsPromptly: cancelling Run's context returns quickly from
// every state, including mid-dial and mid-wait.
func TestClientStopsPromptly(t *testing.T) {
	hang, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	ts := startServer(t, ServerConfig{})
	slow := fastBackoff()
	slow.Initial, slow.Max, slow.FirstImmediate = time.Hour, time.Hour, false
	slow.ConnectTimeout = time.Hour
	for _, tc := range []struct {
		name  string
		url   string
		b     fsm.Backoff
		state fsm.State
	}{
		{"mid-dial", "ws://" + hang.Addr().String() + "/", slow, fsm.Connecting},
		{"mid-wait", refusedURL(t), slow, fsm.BackingOff},
		{"connected", ts.url, slow, fsm.Connected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, rec, _ := newTestClient(t, ClientConfig{URL: tc.url, Backoff: tc.b})
			stop := runClient(t, c)
			rec.wait(t, 5*time.Second, tc.state.String(), func(obs []Observation) bool {
				return c.State() == tc.state
			})
			if tc.state == fsm.Connecting { // give the dial time to be truly in flight
				rec.wait(t, 5*time.Second, "dialing", countTo(fsm.Connecting, 1))
			}
			start := time.Now()
			if err := stop(); err != nil {
				t.Fatalf("Run = %v", err)
			}
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("Run took %s to return after cancel", d)
			}
			if c.State() != fsm.Stopped {
				t.Errorf("state = %s, want Stopped", c.State())
			}
		})
	}
}

// TestClientNoticesSilentServer: a server that stops answering (here: it
// never answers pings and never writes) is dropped within PingInterval +
// PongTimeout of the last frame, and the client reconnects.
func TestClientNoticesSilentServer(t *testing.T) {
	url := rawWSServer(t, func(ws *websocket.Conn) {
		ws.SetPingHandler(func(string) error { return nil }) // silent
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	})
	live := fastLiveness()
	c, rec, _ := newTestClient(t, ClientConfig{URL: url, Backoff: fastBackoff(), Liveness: live})
	runClient(t, c)
	obs := rec.wait(t, 5*time.Second, "a reconnect", countTo(fsm.Connected, 2))
	conn := transitions(obs, fsm.Connected)[0]
	var drop Observation
	for _, o := range transitions(obs, fsm.BackingOff) {
		if o.Transition.From == fsm.Connected {
			drop = o
			break
		}
	}
	if drop.Transition.Trigger != fsm.PongTimeout {
		t.Fatalf("dropped by %s, want pong_timeout", drop.Transition.Trigger)
	}
	bound := live.ReapDeadline(conn.At)
	if drop.At.Before(bound) || drop.At.After(bound.Add(50*time.Millisecond)) {
		t.Errorf("dropped %s after connecting, want %s (+50ms)", drop.At.Sub(conn.At), bound.Sub(conn.At))
	}
	// The log says why, with the silence it waited out.
	if want := (live.PingInterval + live.PongTimeout).String(); drop.Err == nil || !strings.Contains(drop.Err.Error(), "silent for "+want) {
		t.Errorf("logged cause %v, want it to name the %s of silence", drop.Err, want)
	}
}

// TestClientKeepsLiveLink: a client whose server answers is never
// dropped, whichever end does the pinging: the server's pings (the client
// only answers) or the client's own (a server that pings rarely answers
// them). Watched over ten of the client's ping intervals, from outside.
func TestClientKeepsLiveLink(t *testing.T) {
	live := fastLiveness()
	for _, tc := range []struct {
		name   string
		server fsm.Liveness
	}{
		{"server pings", live},
		{"client pings", fsm.Liveness{PingInterval: time.Minute, PongTimeout: 10 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, ServerConfig{Liveness: tc.server})
			c, rec, _ := newTestClient(t, ClientConfig{URL: ts.url, Backoff: fastBackoff(), Liveness: live})
			runClient(t, c)
			rec.wait(t, 5*time.Second, "Connected", countTo(fsm.Connected, 1))
			time.Sleep(time.Duration(liveWindow) * live.PingInterval) // the observation window
			if st := c.Stats(); st.State != fsm.Connected || st.Connects != 1 {
				t.Fatalf("after %d ping intervals: %+v, want the first link still up", liveWindow, st)
			}
			if n := len(transitions(rec.all(), fsm.BackingOff)); n != 0 {
				t.Fatalf("the link dropped %d times: %v", n, transitions(rec.all(), fsm.BackingOff))
			}
			if st := ts.Stats(); st.Open != 1 || st.ReapedTotal != 0 {
				t.Fatalf("server: %+v", st)
			}
		})
	}
}

// TestClientReconnectsAfterServerRestart: the server goes away (Shutdown,
// 1001) and comes back on the same port; the client reconnects by itself.
func TestClientReconnectsAfterServerRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	serve := func(ln net.Listener) (*Server, *http.Server) {
		s, err := NewServer(withTestEngine(ServerConfig{Logger: quietLogger()}))
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: s}
		go func() { _ = hs.Serve(ln) }()
		return s, hs
	}
	s1, h1 := serve(ln)
	c, rec, _ := newTestClient(t, ClientConfig{URL: "ws://" + addr + "/", Backoff: fastBackoff()})
	runClient(t, c)
	rec.wait(t, 5*time.Second, "Connected", countTo(fsm.Connected, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s1.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	_ = h1.Shutdown(ctx)
	rec.wait(t, 5*time.Second, "the drop", countTo(fsm.BackingOff, 1))
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("re-listen on %s: %v", addr, err)
	}
	s2, h2 := serve(ln2)
	defer func() { _ = s2.Shutdown(ctx); _ = h2.Shutdown(ctx) }()
	obs := rec.wait(t, 5*time.Second, "the reconnect", countTo(fsm.Connected, 2))
	if drop := transitions(obs, fsm.BackingOff)[0]; drop.Transition.Trigger != fsm.Dropped {
		t.Errorf("first failure = %s, want dropped (the server's 1001)", drop.Transition.Trigger)
	}
	checkNoEarlyRetry(t, fastBackoff(), obs)
}

// TestClientSetPolicy: a policy swapped while waiting re-draws the pending
// retry, never earlier than the old policy promised.
func TestClientSetPolicy(t *testing.T) {
	slow := fastBackoff()
	slow.Initial, slow.Max, slow.FirstImmediate, slow.Jitter = time.Hour, time.Hour, false, fsm.JitterNone
	c, rec, _ := newTestClient(t, ClientConfig{URL: refusedURL(t), Backoff: slow})
	runClient(t, c)
	rec.wait(t, 5*time.Second, "waiting", countTo(fsm.BackingOff, 1))
	if err := c.SetPolicy(fsm.Backoff{Initial: -1}); err == nil || !strings.Contains(err.Error(), "Initial") {
		t.Fatalf("SetPolicy(bad) = %v, want an error naming Initial", err)
	}
	if next := c.Stats().NextAttemptAt; time.Until(next) < 50*time.Minute {
		t.Fatalf("retry due in %s, want ~1h", time.Until(next))
	}
	fast := fastBackoff()
	fast.FirstImmediate = false
	if err := c.SetPolicy(fast); err != nil {
		t.Fatal(err)
	}
	// The old policy (no jitter) promised an hour: the retry stays there.
	if next := c.Stats().NextAttemptAt; time.Until(next) < 50*time.Minute {
		t.Errorf("retry moved to %s from now, earlier than the old policy's bound", time.Until(next))
	}
	if got := c.Stats().Backoff.Initial; got != fast.Initial {
		t.Errorf("policy in force has Initial %s, want %s", got, fast.Initial)
	}
}

// TestClientSubscribeCoalesces: a subscriber that does not read never
// blocks the client and, when it reads, sees the latest transition.
func TestClientSubscribeCoalesces(t *testing.T) {
	c, rec, _ := newTestClient(t, ClientConfig{URL: refusedURL(t), Backoff: fastBackoff()})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := c.Subscribe(ctx)
	stop := runClient(t, c)
	rec.wait(t, 5*time.Second, "five failures", countTo(fsm.BackingOff, 5))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	tr, ok := <-sub
	if !ok || tr.To != fsm.Stopped {
		t.Fatalf("subscriber got %+v, %v; want the latest transition (to Stopped)", tr, ok)
	}
	if _, ok := <-sub; ok {
		t.Fatalf("channel not closed after Run returned")
	}
}

func TestClientConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg   ClientConfig
		field string
	}{
		{ClientConfig{}, "URL"},
		{ClientConfig{URL: "http://x/"}, "URL"},
		{ClientConfig{URL: "ws://"}, "URL"},
		{ClientConfig{URL: "ws://x/", ReadLimit: -1}, "ReadLimit"},
		{ClientConfig{URL: "ws://x/", Backoff: fsm.Backoff{Multiplier: 0.5}}, "Multiplier"},
		{ClientConfig{URL: "ws://x/", Liveness: fsm.Liveness{PingInterval: -1}}, "PingInterval"},
	} {
		_, err := NewClient(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.field) || !errors.Is(err, fsm.ErrInvalidPolicy) {
			t.Errorf("NewClient(%+v) = %v, want an error naming %s", tc.cfg, err, tc.field)
		}
	}
}

func TestClientRunsOnce(t *testing.T) {
	c, _, _ := newTestClient(t, ClientConfig{URL: refusedURL(t)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Run(ctx); !errors.Is(err, ErrClientUsed) {
		t.Fatalf("second Run = %v, want ErrClientUsed", err)
	}
}

// rawWSServer serves plain gorilla/websocket connections on 127.0.0.1,
// each handed to handle and closed when handle returns: a stand-in for a
// misbehaving server. Everything is closed when the test ends.
func rawWSServer(t testing.TB, handle func(ws *websocket.Conn)) string {
	t.Helper()
	up := websocket.Upgrader{}
	var mu sync.Mutex
	var conns []*websocket.Conn
	var wg sync.WaitGroup
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		mu.Lock()
		conns = append(conns, ws)
		mu.Unlock()
		wg.Add(1)
		defer wg.Done()
		defer ws.Close()
		handle(ws)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() {
		_ = hs.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "ws://" + ln.Addr().String() + "/"
}

// OnConnect runs on every connect, and what it sends is the first message
// of each link: a server that drops the first link sees the hello again
// on the second.
func TestClientOnConnectOnEveryConnect(t *testing.T) {
	firsts := make(chan string, 4)
	var sessions sync.WaitGroup
	n := 0
	var mu sync.Mutex
	up := websocket.Upgrader{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		sessions.Add(1)
		defer sessions.Done()
		defer ws.Close()
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		firsts <- string(msg)
		mu.Lock()
		n++
		keep := n > 1
		mu.Unlock()
		for keep { // the second link stays until the client closes it
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}))
	defer hs.Close()
	var calls atomic.Int32
	c, _, _ := newTestClient(t, ClientConfig{URL: "ws" + strings.TrimPrefix(hs.URL, "http"),
		Backoff: fsm.Backoff{Initial: 10 * time.Millisecond, FirstImmediate: true},
		OnConnect: func(c *Client) {
			k := calls.Add(1)
			_ = c.Send(context.Background(), TextMessage, []byte("hello "+strconv.Itoa(int(k))))
		}})
	stop := runClient(t, c)
	for want := 1; want <= 2; want++ {
		select {
		case m := <-firsts:
			if m != "hello "+strconv.Itoa(want) {
				t.Fatalf("link %d began with %q, want the hello of connect %d", want, m, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no first message on link %d", want)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	sessions.Wait()
}
