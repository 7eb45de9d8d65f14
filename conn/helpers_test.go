package conn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/syncio"
)

// recorder collects Observations and lets a test wait for a condition on
// them without sleeping: every new observation wakes the waiters.
type recorder struct {
	mu      sync.Mutex
	obs     []Observation
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) observe(o Observation) {
	r.mu.Lock()
	r.obs = append(r.obs, o)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) all() []Observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Observation(nil), r.obs...)
}

// wait blocks until pred holds for the observations so far, or fails the
// test after timeout.
func (r *recorder) wait(t testing.TB, timeout time.Duration, what string, pred func([]Observation) bool) []Observation {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		obs := append([]Observation(nil), r.obs...)
		ch := r.changed
		r.mu.Unlock()
		if pred(obs) {
			return obs
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s; %d observations", timeout, what, len(obs))
		}
	}
}

// transitions returns the transitions among obs, optionally only those
// into state to (0: all).
func transitions(obs []Observation, to fsm.State) []Observation {
	var out []Observation
	for _, o := range obs {
		if o.Kind == ObsTransition && (to == 0 || o.Transition.To == to) {
			out = append(out, o)
		}
	}
	return out
}

// countTo returns a predicate: at least n transitions into state to.
func countTo(to fsm.State, n int) func([]Observation) bool {
	return func(obs []Observation) bool { return len(transitions(obs, to)) >= n }
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// logLines parses every JSON line in b.
func logLines(t testing.TB, b *syncio.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// testServer runs a Server behind an httptest server on 127.0.0.1 and
// shuts both down when the test ends. It installs no Observer, as in
// production: rec is fed from the server's JSON log (logFeed), so tests
// watch the adapter from outside, through its log, Stats and the peer.
type testServer struct {
	*Server
	http *httptest.Server
	rec  *recorder
	logs *syncio.Buffer
	url  string
}

func startServer(t testing.TB, cfg ServerConfig) *testServer {
	t.Helper()
	if cfg.Observer != nil {
		t.Fatal("startServer installs no Observer; use startObservedServer")
	}
	return serve(t, cfg, false)
}

// startObservedServer is startServer with an Observer recording into rec
// (and the log kept apart): for the few tests of the Observer itself.
func startObservedServer(t testing.TB, cfg ServerConfig) *testServer {
	t.Helper()
	return serve(t, cfg, true)
}

// startHookedServer is startServer with the broken variant h installed.
func startHookedServer(t testing.TB, cfg ServerConfig, h *testHooks) *testServer {
	t.Helper()
	return serveWith(t, cfg, false, h)
}

func serve(t testing.TB, cfg ServerConfig, observed bool) *testServer {
	t.Helper()
	return serveWith(t, cfg, observed, nil)
}

func serveWith(t testing.TB, cfg ServerConfig, observed bool, h *testHooks) *testServer {
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
	srv, err := NewServer(withTestEngine(cfg))
	if err != nil {
		t.Fatal(err)
	}
	srv.hooks = h
	hs := httptest.NewServer(srv)
	ts := &testServer{Server: srv, http: hs, rec: rec, logs: logs, url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/"}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
	})
	return ts
}

// logFeed turns the JSON lines of a lifeline logger back into transition
// Observations for rec: the log contract (one line per transition, with
// its time, machine, id, from, to, trigger, reason, attempt, delay_ms and
// error) is all a test without an Observer needs to follow a lifecycle.
// slog's JSON handler writes each record in one Write.
type logFeed struct{ observe func(Observation) }

func (f logFeed) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimSpace(p), []byte("\n")) {
		if o, ok := parseTransitionLine(line); ok {
			f.observe(o)
		}
	}
	return len(p), nil
}

// names maps every fsm name back to its value, for parseTransitionLine.
var names = func() map[string]int {
	m := map[string]int{}
	for i := range 64 {
		m["state:"+fsm.State(i).String()] = i
		m["trigger:"+fsm.Trigger(i).String()] = i
		m["reason:"+fsm.Reason(i).String()] = i
		m["machine:"+fsm.Machine(i).String()] = i
	}
	return m
}()

// parseTransitionLine reads one JSON log line; ok is false unless it is a
// transition.
func parseTransitionLine(line []byte) (Observation, bool) {
	var m struct {
		Time                       time.Time
		Msg, Machine, ID, From, To string
		Trigger, Reason, Error     string
		Attempt                    int
		DelayMS                    int64 `json:"delay_ms"`
	}
	if json.Unmarshal(line, &m) != nil || m.Msg != "transition" {
		return Observation{}, false
	}
	tr := fsm.Transition{Machine: fsm.Machine(names["machine:"+m.Machine]), From: fsm.State(names["state:"+m.From]),
		To: fsm.State(names["state:"+m.To]), Trigger: fsm.Trigger(names["trigger:"+m.Trigger]), At: m.Time,
		Attempt: m.Attempt, Delay: time.Duration(m.DelayMS) * time.Millisecond}
	if m.Reason != "" {
		tr.Reason = fsm.Reason(names["reason:"+m.Reason])
	}
	o := Observation{Kind: ObsTransition, Machine: tr.Machine, ID: m.ID, At: m.Time, Transition: tr}
	if m.Error != "" {
		o.Err = errors.New(m.Error)
	}
	return o, true
}

// echo is an OnMessage handler that sends every message back.
func echo(s *Session, t MessageType, data []byte) error { return s.Send(t, data) }

// runClient starts c.Run and returns a function that stops it and returns
// Run's error; the test fails if Run does not return within 5 s of the
// stop.
func runClient(t testing.TB, c *Client) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Errorf("Run did not return within 5s of cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// fastBackoff is a policy short enough for tests: 20 ms, ×2, up to 200 ms.
func fastBackoff() fsm.Backoff {
	return fsm.Backoff{Initial: 20 * time.Millisecond, Multiplier: 2, Max: 200 * time.Millisecond,
		FirstImmediate: true, ConnectTimeout: time.Second, StableAfter: 500 * time.Millisecond}
}

// fastLiveness is a liveness policy short enough for tests.
func fastLiveness() fsm.Liveness {
	return fsm.Liveness{PingInterval: 200 * time.Millisecond, PongTimeout: 100 * time.Millisecond,
		WriteTimeout: time.Second, CloseTimeout: 500 * time.Millisecond, HandshakeTimeout: time.Second}
}

// mustStatus dials url with a plain HTTP upgrade request and returns the
// status the server answered.
func upgradeStatus(t testing.TB, url string, header http.Header) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http"+strings.TrimPrefix(url, "ws"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}
