package conn

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/audit"
	"github.com/lifeline-go/lifeline/internal/syncio"
	"github.com/lifeline-go/lifeline/invariant"
	"github.com/lifeline-go/lifeline/trace"
)

// A burst of handshakes over HandshakeRate: the first passes the bucket
// (and, not being a WebSocket request, fails the upgrade), the others get
// 503 with a Retry-After that spreads them at the rate, 2 a second, and
// are counted; Authorize is never asked about them.
func TestServerHandshakeRate(t *testing.T) {
	var authorized int
	var mu sync.Mutex
	ts := startServer(t, ServerConfig{HandshakeRate: fsm.HandshakeRate{PerSecond: 2, Burst: 1},
		Authorize: func(*http.Request) error { mu.Lock(); authorized++; mu.Unlock(); return nil }})
	var got []string
	for i := range 5 {
		resp, err := http.Get(ts.http.URL)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if i == 0 {
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("the first request: %d, want 400 from the upgrade (it passed the bucket)", resp.StatusCode)
			}
			continue
		}
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("request %d: %d, want 503", i+1, resp.StatusCode)
		}
		got = append(got, resp.Header.Get("Retry-After"))
	}
	// Slots 0.5 s apart from when the bucket next holds a token, rounded
	// up to whole seconds: two clients per second, as the rate admits.
	if want := []string{"1", "1", "2", "2"}; !slices.Equal(got, want) {
		t.Errorf("Retry-After %v, want %v", got, want)
	}
	if st := ts.Stats(); st.RateLimited != 4 || st.Overloaded != 0 {
		t.Errorf("stats: rate_limited %d overloaded %d, want 4 and 0", st.RateLimited, st.Overloaded)
	}
	if authorized != 1 {
		t.Errorf("Authorize ran %d times, want once: the bucket comes first", authorized)
	}
	if err := (ServerConfig{HandshakeRate: fsm.HandshakeRate{PerSecond: -1}}).Validate(); !errors.Is(err, fsm.ErrInvalidPolicy) {
		t.Errorf("a negative rate: %v", err)
	}
}

// retryAfterRun runs client b against a server that admits one handshake
// a second, after client a took the only token, and judges b's run by
// invariant (n) and (b): attempts (Dial) are the requests the server saw
// from b, failures (Down) b's logged transitions into BackingOff with the
// status and Retry-After its logged error names. It returns the
// violations.
func retryAfterRun(t *testing.T, hooks *testHooks) []invariant.Violation {
	t.Helper()
	srv, err := NewServer(ServerConfig{HandshakeRate: fsm.HandshakeRate{PerSecond: 1, Burst: 1}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var arrivals []time.Time
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Client") == "b" {
			mu.Lock()
			arrivals = append(arrivals, time.Now())
			mu.Unlock()
		}
		srv.ServeHTTP(w, r)
	}))
	defer hs.Close()
	defer func() { _ = srv.Close() }()
	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/"

	a, recA, _ := newTestClient(t, ClientConfig{URL: url, Header: http.Header{"X-Client": {"a"}}})
	stopA := runClient(t, a)
	defer func() { _ = stopA() }()
	recA.wait(t, 5*time.Second, "a connected", countTo(fsm.Connected, 1))

	recB := newRecorder()
	logs := &syncio.Buffer{}
	b, err := newClient(ClientConfig{URL: url, Header: http.Header{"X-Client": {"b"}},
		Logger: slog.New(slog.NewJSONHandler(io.MultiWriter(logs, logFeed{recB.observe}), nil))}, hooks)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stopB := runClient(t, b)
	recB.wait(t, 10*time.Second, "b connected", countTo(fsm.Connected, 1))
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	end := time.Now()

	recs := []timedRecord{{at: start, rec: trace.Record{Kind: trace.ClientStart}}}
	mu.Lock()
	for i, at := range arrivals {
		recs = append(recs, timedRecord{at: at, rec: trace.Record{Kind: trace.Dial, Attempt: int32(i + 1)}})
	}
	mu.Unlock()
	refused := 0
	for _, o := range transitions(recB.all(), 0) {
		switch tr := o.Transition; {
		case tr.From == fsm.Connecting && tr.To == fsm.BackingOff:
			refused++
			msg := o.Err.Error()
			if !strings.Contains(msg, "answered HTTP 503") || audit.LoggedRetryAfter(msg) < time.Second {
				t.Fatalf("b's failure %q does not name the 503 and its Retry-After", msg)
			}
			recs = append(recs, timedRecord{at: o.At, rec: trace.Record{Kind: trace.Down, Code: failureCode(o.Err),
				Delay: audit.LoggedRetryAfter(msg)}})
		case tr.To == fsm.Connected:
			recs = append(recs, timedRecord{at: o.At, rec: trace.Record{Kind: trace.Up, Peer: trace.NoID}})
		}
	}
	if refused == 0 || srv.Stats().RateLimited == 0 {
		t.Fatalf("b was never refused (%d refusals, stats %+v): the run shows nothing", refused, srv.Stats())
	}
	slices.SortStableFunc(recs, func(x, y timedRecord) int { return x.at.Compare(y.at) })
	s, err := invariant.New(invariant.Config{Backoff: b.Stats().Backoff, Slack: 100 * time.Millisecond,
		Only: []invariant.Invariant{invariant.RetryAfterFloor, invariant.BoundedRetries}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		recs[i].rec.At = recs[i].at.Sub(start)
		s.Observe(&recs[i].rec)
	}
	s.Finish(end.Sub(start))
	for _, v := range s.Verdicts() {
		if v.Invariant == invariant.RetryAfterFloor && v.Checked == 0 {
			t.Fatal("(n) was never checked")
		}
	}
	return s.Violations()
}

// A client refused by a rate-limited server comes back no sooner than the
// Retry-After, and not much later (the spread is one second), with the
// default policy: no Observer, no hook.
func TestClientHonoursRetryAfter(t *testing.T) {
	if v := retryAfterRun(t, nil); len(v) > 0 {
		t.Fatalf("violation: %s", v[0])
	}
}

// The same run with a client deaf to Retry-After: its immediate first
// retry is caught by (n), by name.
func TestClientDeafToRetryAfterIsCaught(t *testing.T) {
	v := retryAfterRun(t, &testHooks{deafToRetryAfter: true})
	if len(v) == 0 {
		t.Fatal("a client deaf to Retry-After passed (n)")
	}
	if v[0].Invariant != invariant.RetryAfterFloor || !strings.Contains(v[0].Detail, "whose Retry-After floor is 1s") {
		t.Fatalf("caught as %s, want (n) retry_after_floor on a 1s floor", v[0])
	}
}

// A garbage Retry-After is ignored, and the error (so the one log line of
// the transition) says why.
func TestClientIgnoresGarbageRetryAfter(t *testing.T) {
	o := firstRefusal(t, http.StatusServiceUnavailable, func() string { return "soon" })
	if !strings.Contains(o.Err.Error(), `Retry-After ignored: fsm: bad Retry-After: "soon"`) {
		t.Errorf("error %q does not say the Retry-After was ignored and why", o.Err)
	}
	if o.Transition.Delay != 0 {
		t.Errorf("a lone 503 with a garbage Retry-After waited %s; want the immediate first retry", o.Transition.Delay)
	}
}

// A 429 whose Retry-After is an HTTP-date two seconds ahead: the client
// reads the date and waits at least until it (whole seconds: at least 1 s
// from now), and says so in its error.
func TestClientHonoursRetryAfterDateOn429(t *testing.T) {
	o := firstRefusal(t, http.StatusTooManyRequests, func() string {
		return time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat)
	})
	ra := audit.LoggedRetryAfter(o.Err.Error())
	if !strings.Contains(o.Err.Error(), "answered HTTP 429") || ra < time.Second || ra > 2*time.Second {
		t.Fatalf("error %q: want a 429 with a Retry-After of 1-2 s", o.Err)
	}
	// The logged delay is whole milliseconds; the wait is floor + up to 1 s.
	if d := o.Transition.Delay; d < ra-time.Millisecond || d > ra+time.Second {
		t.Errorf("waited %s after Retry-After %s, want within [%s, %s]", d, ra, ra, ra+time.Second)
	}
}

// firstRefusal runs a default client against a server that answers every
// handshake with status and the Retry-After value retryAfter returns, and
// returns the client's first move into BackingOff.
func firstRefusal(t *testing.T, status int, retryAfter func() string) Observation {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", retryAfter())
		http.Error(w, http.StatusText(status), status)
	}))
	defer ts.Close()
	c, rec, _ := newTestClient(t, ClientConfig{URL: "ws" + strings.TrimPrefix(ts.URL, "http") + "/"})
	stop := runClient(t, c)
	obs := rec.wait(t, 5*time.Second, "first failure", countTo(fsm.BackingOff, 1))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	return transitions(obs, fsm.BackingOff)[0]
}
