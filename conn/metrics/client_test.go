package metrics_test

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/conn/metrics"
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/poll"
)

// TestClientMetricsMatchStats runs a real client through a link that
// drops (the server goes away), refused attempts against the closed
// port, a reconnect once a server listens there again, and a give-up,
// and checks each client instrument against the client's own Stats and
// transitions.
func TestClientMetricsMatchStats(t *testing.T) {
	rd := newReader(t)
	cm, err := metrics.NewClient(metrics.Config{MeterProvider: rd})
	if err != nil {
		t.Fatal(err)
	}
	srv, hs := serveAt(t, "127.0.0.1:0")
	addr := hs.Listener.Addr().String()
	var delays []time.Duration
	var trs []fsm.Transition
	b := fsm.Backoff{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond, Jitter: fsm.JitterNone, MaxAttempts: 4, FirstImmediate: true}
	c, err := conn.NewClient(conn.ClientConfig{URL: "ws://" + addr + "/", Backoff: b, Logger: quiet, Observer: func(o conn.Observation) {
		cm.Observe(o)
		if o.Kind == conn.ObsTransition {
			trs = append(trs, o.Transition) // Run's goroutine only: read after Run returns
			if o.Transition.To == fsm.BackingOff {
				delays = append(delays, o.Transition.Delay)
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background()) }()
	if !poll.Until(5*time.Second, func() bool { return c.State() == fsm.Connected }) {
		t.Fatal("client never connected")
	}
	if got := rd.collect(t)[pt("lifeline.client.state", "Connected")]; got != 1 {
		t.Errorf("state{Connected} = %v while connected, want 1", got)
	}
	// The server goes away: the link drops, attempts are refused until
	// MaxAttempts, and the client gives up.
	_ = srv.Close()
	hs.Close()
	var runErr error
	select {
	case runErr = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("client did not give up")
	}
	var gu *conn.GaveUpError
	if !errors.As(runErr, &gu) {
		t.Fatalf("Run: %v, want a GaveUpError", runErr)
	}
	st := c.Stats()
	got := rd.collect(t)
	failures := map[string]float64{} // by trigger
	classes := map[string]float64{}  // by class,trigger, as the instrument's attributes
	for _, tr := range trs {
		if (tr.To == fsm.BackingOff || tr.To == fsm.GaveUp) && (tr.From == fsm.Connecting || tr.From == fsm.Connected) {
			failures[tr.Trigger.String()]++
			class := "transient"
			if tr.To == fsm.GaveUp {
				class = "final"
			}
			classes[class+","+tr.Trigger.String()]++
		}
	}
	want := map[point]float64{
		pt("lifeline.client.attempts", ""):        float64(st.Attempts),
		pt("lifeline.client.gave_up", ""):         1,
		pt("lifeline.client.backoff.delay", ""):   float64(len(delays)),
		pt("lifeline.client.state", "GaveUp"):     1,
		pt("lifeline.client.state", "Connected"):  0,
		pt("lifeline.client.state", "BackingOff"): 0,
	}
	for k, n := range classes {
		want[pt("lifeline.client.failures", k)] = n
	}
	if classes["final,dial_failed"] != 1 || classes["transient,dropped"] != 1 {
		t.Fatalf("failure classes %v: want the drop transient and the last refusal final", classes)
	}
	if failures["dropped"] != 1 || failures["dial_failed"] != 3 || st.Attempts != 4 {
		t.Fatalf("run shape: failures %v, attempts %d; want 1 drop, then 3 refused attempts (4 consecutive failures)", failures, st.Attempts)
	}
	for p, v := range want {
		if got[p] != v {
			t.Errorf("%s{%s} = %v, want %v", p.name, p.attr, got[p], v)
		}
	}
	if _, ok := got[pt("lifeline.client.reconnect.duration", "")]; ok {
		t.Errorf("a reconnect duration recorded though the client never came back")
	}
}

// TestClientReconnectDuration: a link that drops and comes back records
// one reconnect, from the drop to the link up.
func TestClientReconnectDuration(t *testing.T) {
	rd := newReader(t)
	cm, err := metrics.NewClient(metrics.Config{MeterProvider: rd})
	if err != nil {
		t.Fatal(err)
	}
	srv, hs := serveAt(t, "127.0.0.1:0")
	addr := hs.Listener.Addr().String()
	url := "ws://" + addr + "/"
	c, err := conn.NewClient(conn.ClientConfig{URL: url, Logger: quiet, Observer: cm.Observe,
		Backoff: fsm.Backoff{Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond, FirstImmediate: true}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if !poll.Until(5*time.Second, func() bool { return c.State() == fsm.Connected }) {
		t.Fatal("client never connected")
	}
	// The server restarts on the same port: the link drops, the client
	// comes back to the new one.
	_ = srv.Close()
	hs.Close()
	serveAt(t, addr)
	if !poll.Until(5*time.Second, func() bool { return c.Stats().Connects >= 2 }) {
		t.Fatal("client never reconnected")
	}
	if got := rd.collect(t)[pt("lifeline.client.reconnect.duration", "")]; got != 1 {
		t.Errorf("reconnect.duration count = %v after one reconnect, want 1", got)
	}
}

// serveAt runs a conn.Server on addr (a port of 127.0.0.1), closed when
// the test ends.
func serveAt(t *testing.T, addr string) (*conn.Server, *httptest.Server) {
	t.Helper()
	srv, err := conn.NewServer(conn.ServerConfig{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.Listener = ln
	hs.Start()
	t.Cleanup(func() { _ = srv.Close(); hs.Close() })
	return srv, hs
}

// TestClientPermanentFailureClass: a 401 is a permanent failure by the
// failure table (trigger go_away); the client waits in Rejected and the
// failure is counted with class permanent.
func TestClientPermanentFailureClass(t *testing.T) {
	rd := newReader(t)
	cm, err := metrics.NewClient(metrics.Config{MeterProvider: rd})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := conn.NewServer(conn.ServerConfig{Logger: quiet, Authorize: conn.BearerToken("secret")})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer func() { _ = srv.Close() }()
	slow := fsm.Backoff{Initial: 20 * time.Millisecond, Multiplier: 1, Max: 20 * time.Millisecond, Jitter: fsm.JitterNone}
	c, err := conn.NewClient(conn.ClientConfig{URL: "ws" + hs.URL[len("http"):] + "/", Logger: quiet, Observer: cm.Observe,
		Failures: fsm.FailurePolicy{Schedule: slow}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	var got map[point]float64
	if !poll.Until(5*time.Second, func() bool {
		got = rd.collect(t)
		return got[pt("lifeline.client.failures", "permanent,go_away")] >= 2
	}) {
		t.Fatalf("no permanent failures counted: %v", got)
	}
	if n := got[pt("lifeline.client.failures", "transient,dial_failed")] + got[pt("lifeline.client.failures", "transient,go_away")]; n != 0 {
		t.Errorf("%v refusals with 401 counted transient", n)
	}
}
