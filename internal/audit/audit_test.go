package audit

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// t0 is the planted logs' first instant.
var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// line writes one transition line of the logging contract at t0+ms, with
// extra JSON fields appended as given.
func line(ms int, machine, id, from, to, trigger string, extra ...string) string {
	at := t0.Add(time.Duration(ms) * time.Millisecond).Format(time.RFC3339Nano)
	s := fmt.Sprintf(`{"time":%q,"level":"INFO","msg":"transition","machine":%q,"id":%q,"from":%q,"to":%q,"trigger":%q`,
		at, machine, id, from, to, trigger)
	for _, e := range extra {
		s += "," + e
	}
	return s + "}"
}

// policy is the planted logs' policy: no jitter, so each bound is exact.
var policy = Config{
	Backoff:  fsm.Backoff{Initial: 100 * time.Millisecond, Multiplier: 2, Max: time.Second, Jitter: fsm.JitterNone, FirstImmediate: true, MaxAttempts: 3},
	Liveness: fsm.Liveness{PingInterval: 300 * time.Millisecond, PongTimeout: 200 * time.Millisecond},
	Slack:    20 * time.Millisecond,
}

// healthyClient fails three times, keeping each delay, and gives up.
func healthyClient() []string {
	return []string{
		line(0, "client", "c", "Idle", "Connecting", "start"),
		line(1, "client", "c", "Connecting", "BackingOff", "dial_failed", `"attempt":2`, `"delay_ms":0`),
		line(1, "client", "c", "BackingOff", "Connecting", "retry_due"),
		line(2, "client", "c", "Connecting", "BackingOff", "dial_failed", `"attempt":3`, `"delay_ms":100`),
		line(102, "client", "c", "BackingOff", "Connecting", "retry_due"),
		line(103, "client", "c", "Connecting", "GaveUp", "dial_failed"),
	}
}

// healthyServer reaps one session for a silence of the whole window, and
// closes another on shutdown.
func healthyServer() []string {
	return []string{
		line(0, "session", "1", "Handshaking", "Alive", "upgraded"),
		line(10, "session", "2", "Handshaking", "Alive", "upgraded"),
		line(1000, "session", "1", "Alive", "Reaped", "pong_timeout", `"reason":"pong_timeout"`, `"silent_ms":510`, `"idle_ms":1000`),
		line(2000, "session", "2", "Alive", "Closing", "shutdown", `"reason":"shutdown"`, `"silent_ms":100`, `"idle_ms":1990`),
		line(2001, "session", "2", "Closing", "Reaped", "peer_close", `"reason":"shutdown"`),
	}
}

func audit(t *testing.T, cfg Config, logs ...[]string) *Report {
	t.Helper()
	var in []Input
	for i, l := range logs {
		in = append(in, Input{Name: fmt.Sprintf("log%d", i), R: strings.NewReader(strings.Join(l, "\n") + "\n")})
	}
	rep, err := Run(cfg, in)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

func TestHealthyLogsAreClean(t *testing.T) {
	rep := audit(t, policy, healthyClient(), healthyServer())
	if !rep.Clean() {
		t.Fatalf("findings on a healthy log: %+v", rep.Findings)
	}
	for _, v := range rep.Verdicts {
		if v.Checked == 0 && v.Name != "no_send_after_close" {
			continue
		}
		if v.Checked == 0 {
			t.Errorf("%s never checked", v.Name)
		}
	}
	if rep.Lines != 11 || rep.Clients != 1 || rep.Sessions != 2 {
		t.Errorf("lines %d clients %d sessions %d, want 11 1 2", rep.Lines, rep.Clients, rep.Sessions)
	}
}

// TestPlantedViolations breaks a healthy log one way at a time, as a
// hurried engineer's driver would, and wants each break found at its line.
func TestPlantedViolations(t *testing.T) {
	cases := []struct {
		name      string
		client    func([]string) []string
		server    func([]string) []string
		invariant string
		where     string
		detail    string
		also      int // further violations the break causes
	}{{
		name: "early retry: the wait skipped on the dial-failure path",
		client: func(l []string) []string {
			l[4] = line(12, "client", "c", "BackingOff", "Connecting", "retry_due")
			return l
		},
		invariant: "no_early_retry", where: "log0:5", detail: "attempt 3 came 10ms after failure 2",
	}, {
		name: "retry after give-up",
		client: func(l []string) []string {
			return append(l, line(5000, "client", "c", "GaveUp", "Connecting", "retry_due"))
		},
		invariant: "bounded_retries", where: "log0:7", detail: "started after failure 3 had exhausted MaxAttempts=3",
		also: 1, // and its number is not the machine's: no machine decided it
	}, {
		name: "gave up early",
		client: func(l []string) []string {
			return []string{l[0], l[1], l[2], line(2, "client", "c", "Connecting", "GaveUp", "dial_failed")}
		},
		invariant: "bounded_retries", where: "log0:4", detail: "gave up after 2 consecutive failures",
	}, {
		name: "unjust reap: silence shorter than the window",
		server: func(l []string) []string {
			l[2] = line(1000, "session", "1", "Alive", "Reaped", "pong_timeout", `"reason":"pong_timeout"`, `"silent_ms":120`, `"idle_ms":1000`)
			return l
		},
		invariant: "live_kept", where: "log1:3", detail: "reaped for silence while its peer lived",
	}, {
		name: "late reap: the reaper ran two windows late",
		server: func(l []string) []string {
			l[2] = line(1000, "session", "1", "Alive", "Reaped", "pong_timeout", `"reason":"pong_timeout"`, `"silent_ms":1000`, `"idle_ms":1000`)
			return l
		},
		invariant: "dead_reaped", where: "log1:3", detail: "peer dead, last sign of life at 0s, liveness bound 500ms",
	}, {
		name: "unjust reap: a read deadline fired before the silence bound",
		server: func(l []string) []string {
			l[2] = line(1000, "session", "1", "Alive", "Reaped", "read_error", `"reason":"read_error"`, `"silent_ms":200`, `"idle_ms":1000`,
				`"error":"read tcp 127.0.0.1:1->127.0.0.1:2: i/o timeout"`)
			return l
		},
		invariant: "live_kept", where: "log1:3", detail: "reaped for a read error while its peer lived",
	}, {
		name: "closed for protocol errors below MaxErrors",
		server: func(l []string) []string {
			l[2] = line(1000, "session", "1", "Alive", "Closing", "protocol_error", `"reason":"protocol_errors"`, `"silent_ms":0`, `"idle_ms":0`)
			return append(l, line(1001, "session", "1", "Closing", "Reaped", "closed", `"reason":"protocol_errors"`))
		},
		invariant: "live_kept", where: "log1:3", detail: "closed for protocol errors after 1 bad messages in a row",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl, sv := healthyClient(), healthyServer()
			if c.client != nil {
				cl = c.client(cl)
			}
			if c.server != nil {
				sv = c.server(sv)
			}
			rep := audit(t, policy, cl, sv)
			if rep.Clean() {
				t.Fatalf("planted %s not found", c.name)
			}
			f := rep.Findings[0]
			if f.Invariant != c.invariant || f.Where != c.where || !strings.Contains(f.Detail, c.detail) {
				t.Fatalf("found %+v, want %s at %s with %q", f, c.invariant, c.where, c.detail)
			}
			if rep.Violations != 1+c.also {
				t.Errorf("%d violations, want %d: %+v", rep.Violations, 1+c.also, rep.Findings)
			}
		})
	}
}

// TestPermanentFailure: a 401 (read from the logged error) is a permanent
// failure, retried on the failure table's slow schedule: kept, it is
// clean; retried at the transient pace, (l) finds it.
func TestPermanentFailure(t *testing.T) {
	cfg := policy
	cfg.Failures = fsm.FailurePolicy{Schedule: fsm.Backoff{Initial: time.Second, Multiplier: 2, Max: 10 * time.Second, Jitter: fsm.JitterNone}}
	refused := `"error":"attempt 1: ws://127.0.0.1:1/ answered HTTP 401 Unauthorized instead of switching protocols"`
	log := func(retryAt int) []string {
		return []string{
			line(0, "client", "c", "Idle", "Connecting", "start"),
			line(1, "client", "c", "Connecting", "Rejected", "dial_failed", `"attempt":2`, `"delay_ms":1000`, refused),
			line(retryAt, "client", "c", "Rejected", "Connecting", "retry_due"),
			line(retryAt+1, "client", "c", "Connecting", "Connected", "dial_ok"),
		}
	}
	if rep := audit(t, cfg, log(1001)); !rep.Clean() {
		t.Errorf("slow schedule kept: %+v", rep.Findings)
	}
	rep := audit(t, cfg, log(101))
	if rep.Clean() || rep.Findings[0].Invariant != "permanent_slow" || rep.Findings[0].Where != "log0:3" {
		t.Errorf("retry 100ms after a 401: %+v, want permanent_slow at log0:3", rep.Findings)
	}
	if got := failureCode(`link dropped: websocket: close 1008 (policy violation)`); got != 1008 {
		t.Errorf("close code read as %d, want 1008", got)
	}
	if got := failureCode(`attempt 3: dial tcp 127.0.0.1:1: connect: connection refused`); got != 0 {
		t.Errorf("network failure read as code %d, want 0", got)
	}
}

// TestJustEnds: reaps the log proves just are not findings.
func TestJustEnds(t *testing.T) {
	reset := healthyServer()
	reset[2] = line(1000, "session", "1", "Alive", "Reaped", "read_error", `"reason":"read_error"`, `"silent_ms":20`, `"idle_ms":1000`,
		`"error":"read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer"`)
	errs := healthyServer()[:2]
	errs = append(errs,
		line(100, "session", "1", "Alive", "Suspect", "protocol_error"),
		line(200, "session", "1", "Suspect", "Suspect", "protocol_error"),
		line(300, "session", "1", "Suspect", "Closing", "protocol_error", `"reason":"protocol_errors"`, `"silent_ms":0`, `"idle_ms":0`),
		line(301, "session", "1", "Closing", "Reaped", "closed", `"reason":"protocol_errors"`))
	for name, l := range map[string][]string{"read reset": reset, "MaxErrors bad messages": errs} {
		if rep := audit(t, policy, l); !rep.Clean() {
			t.Errorf("%s: %+v", name, rep.Findings)
		}
	}
}

func TestBadInputNamesTheLine(t *testing.T) {
	ok := line(0, "client", "c", "Idle", "Connecting", "start")
	cases := []struct{ bad, want string }{
		{"not json", "x.log:2: not a JSON log line"},
		{`{"msg":"transition","machine":"client"}`, "x.log:2: transition line without time"},
		{strings.Replace(ok, `"trigger":"start"`, `"trigger":"bogus"`, 1), `x.log:2: unknown trigger "bogus"`},
		{strings.Replace(ok, `"to":"Connecting"`, `"to":"Nowhere"`, 1), `x.log:2: unknown to state "Nowhere"`},
		{strings.Replace(ok, `"machine":"client",`, ``, 1), "x.log:2: transition line without machine"},
		{line(1, "client", "c", "Connecting", "BackingOff", "dial_failed"), "x.log:2: client line into BackingOff without attempt and delay_ms"},
	}
	for _, c := range cases {
		_, err := Run(policy, []Input{{Name: "x.log", R: strings.NewReader(ok + "\n" + c.bad + "\n")}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.bad, err, c.want)
		}
	}
}

func TestOtherLinesAreSkipped(t *testing.T) {
	l := append([]string{`{"time":"2026-11-29T12:00:00Z","level":"INFO","msg":"listening","addr":"127.0.0.1:1"}`, ""}, healthyServer()...)
	if rep := audit(t, policy, l); !rep.Clean() || rep.Lines != 5 {
		t.Fatalf("lines %d findings %+v", rep.Lines, rep.Findings)
	}
}

func TestLoggedDelay(t *testing.T) {
	ms := time.Millisecond
	// Failure 2 under a jitter-free 100ms ×2 policy: exactly 100ms;
	// failure 3 with symmetric jitter ±50 % around 200ms: [100ms, 300ms].
	fixed := fsm.Backoff{Initial: 100 * ms, Multiplier: 2, Max: time.Second, Jitter: fsm.JitterNone, FirstImmediate: true}
	jit := fsm.Backoff{Initial: 100 * ms, Multiplier: 2, Max: time.Second, Jitter: fsm.JitterSymmetric, JitterFraction: 0.5, FirstImmediate: true}
	cases := []struct {
		b         fsm.Backoff
		n         int
		logged    time.Duration
		want      time.Duration
		violation bool
	}{
		{fixed, 2, 100 * ms, 100 * ms, false},      // exact: the top clipped to the point
		{fixed, 2, 99 * ms, 100*ms - 1, true},      // a millisecond short: still below
		{fixed, 2, 101 * ms, 101 * ms, true},       // above
		{jit, 3, 150 * ms, 150*ms + ms - 1, false}, // inside: the top of the millisecond
		{jit, 3, 300 * ms, 300 * ms, false},        // the top clipped to the range
		{jit, 3, 99 * ms, 100*ms - 1, true},        // below by more than the resolution
		{jit, 3, 301 * ms, 301 * ms, true},         // above
	}
	for _, c := range cases {
		got := LoggedDelay(c.b, c.n, c.logged, 0)
		if got != c.want {
			t.Errorf("LoggedDelay(n=%d, %s) = %s, want %s", c.n, c.logged, got, c.want)
		}
		lo, hi := c.b.Earliest(c.n), c.b.LatestAfter(c.n, 0)
		if out := got < lo || got > hi; out != c.violation {
			t.Errorf("LoggedDelay(n=%d, %s) = %s, in [%s, %s]: out of range %v, want %v", c.n, c.logged, got, lo, hi, out, c.violation)
		}
	}
}

// A logged 503 with a Retry-After: a retry at the Retry-After is clean, one
// before it is (n) retry_after_floor, placed on the retry's line.
func TestRetryAfterFloor(t *testing.T) {
	cfg := policy
	cfg.Backoff.RetryAfterMax = 10 * time.Second // above Max (1s), which would cap the 2s
	busy := `"error":"attempt 1: ws://127.0.0.1:1/ answered HTTP 503 Service Unavailable instead of switching protocols (Retry-After 2s)"`
	log := func(delay, retryAt int) []string {
		return []string{
			line(0, "client", "c", "Idle", "Connecting", "start"),
			line(1, "client", "c", "Connecting", "BackingOff", "dial_failed", `"attempt":2`, fmt.Sprintf(`"delay_ms":%d`, delay), busy),
			line(retryAt, "client", "c", "BackingOff", "Connecting", "retry_due"),
			line(retryAt+1, "client", "c", "Connecting", "Connected", "dial_ok"),
		}
	}
	if rep := audit(t, cfg, log(2000, 2001)); !rep.Clean() {
		t.Errorf("Retry-After kept: %+v", rep.Findings)
	}
	rep := audit(t, cfg, log(0, 1))
	if rep.Clean() || rep.Findings[0].Invariant != "retry_after_floor" || rep.Findings[0].Where != "log0:3" {
		t.Errorf("retry at once after Retry-After 2s: %+v, want retry_after_floor at log0:3", rep.Findings)
	}
	for in, want := range map[string]time.Duration{
		busy: 2 * time.Second, `(Retry-After 1m30s)`: 90 * time.Second,
		`(Retry-After ignored: fsm: bad Retry-After: "soon")`: 0, `connection refused`: 0,
	} {
		if got := LoggedRetryAfter(in); got != want {
			t.Errorf("LoggedRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}
