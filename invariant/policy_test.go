package invariant_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/invariant"
	"github.com/lifeline-go/lifeline/trace"
)

func downCode(at time.Duration, c uint32, code uint16) trace.Record {
	r := down(at, c)
	r.Code = code
	return r
}

// (l) and (m) on hand-written traces: the slow schedule after a permanent
// failure, the floor after a nudge, and what each does not judge.
func TestPolicyV2Checks(t *testing.T) {
	c := cfg // Initial 1s ×2, no jitter, first immediate, MaxAttempts 3
	c.Backoff.MaxAttempts = 0
	c.Backoff.ReconnectFloor = 300 * time.Millisecond
	c.Failures = fsm.FailurePolicy{Schedule: fsm.Backoff{Initial: 10 * time.Second, Multiplier: 2, Jitter: fsm.JitterNone}}
	ms := time.Millisecond
	for _, tt := range []struct {
		name string
		recs []trace.Record
		end  time.Duration
		want string
	}{
		{"a 401 retried on the slow schedule", []trace.Record{start(0), dial(0, 0, 1), downCode(0, 0, 401), dial(10*time.Second, 0, 2),
			downCode(10*time.Second, 0, 403), dial(30*time.Second, 0, 3)}, 31 * time.Second, ""},
		{"a 401 retried at the transient pace", []trace.Record{start(0), dial(0, 0, 1), downCode(0, 0, 401), dial(0, 0, 2)}, time.Second,
			"(l) permanent_slow violated at 0s by client 0: attempt 2 came 0s after permanent failure 1 (code 401) at 0s; the slow schedule's earliest is 10s"},
		{"a 503 is transient", []trace.Record{start(0), dial(0, 0, 1), downCode(0, 0, 503), dial(0, 0, 2)}, time.Second, ""},
		{"close 1008 after a link", []trace.Record{start(0), dial(0, 0, 1), up(0, 0, 0), downCode(20*time.Second, 0, 1008), dial(25*time.Second, 0, 2)}, 26 * time.Second,
			"(l) permanent_slow violated at 25s by client 0: attempt 2 came 5s after permanent failure 1 (code 1008)"},
		{"a link ends the rejections", []trace.Record{start(0), dial(0, 0, 1), downCode(0, 0, 401), dial(10*time.Second, 0, 2), up(10*time.Second, 0, 0),
			downCode(30*time.Second, 0, 1008), dial(40*time.Second, 0, 2)}, 41 * time.Second, ""},
		{"a nudged retry keeps the floor", []trace.Record{start(0), dial(0, 0, 1), down(0, 0), dial(0, 0, 2), down(0, 0),
			rec(100*ms, trace.Nudge, 0), dial(300*ms, 0, 3)}, time.Second, ""},
		{"a nudged retry under the floor", []trace.Record{start(0), dial(0, 0, 1), down(0, 0), dial(0, 0, 2), down(0, 0),
			rec(100*ms, trace.Nudge, 0), dial(100*ms, 0, 3)}, time.Second,
			"(m) reconnect_floor violated at 100ms by client 0: attempt 3 started 100ms after attempt 2, which a reconnect-now may not bring closer than the floor 300ms"},
		{"without a nudge the same retry is early", []trace.Record{start(0), dial(0, 0, 1), down(0, 0), dial(0, 0, 2), down(0, 0),
			dial(300*ms, 0, 3)}, time.Second, "(a) no_early_retry"},
		{"a nudge does not excuse a permanent failure", []trace.Record{start(0), dial(0, 0, 1), downCode(0, 0, 403),
			rec(500*ms, trace.Nudge, 0), dial(time.Second, 0, 2)}, 2 * time.Second, "(l) permanent_slow"},
	} {
		t.Run(tt.name, func(t *testing.T) { judgeTable(t, c, tt.recs, tt.end, tt.want) })
	}
	// A nudged retry at exactly the schedule's earliest is the schedule's:
	// (a) and (b) judge it, and a floor longer than that earliest does not
	// bind it (just under the earliest, the floor does).
	c.Backoff.ReconnectFloor = 2 * time.Second
	nudged := func(at time.Duration) []trace.Record {
		return []trace.Record{start(0), dial(0, 0, 1), down(0, 0), dial(0, 0, 2), down(0, 0), rec(500*ms, trace.Nudge, 0), dial(at, 0, 3)}
	}
	judgeTable(t, c, nudged(time.Second), 2*time.Second, "")
	judgeTable(t, c, nudged(time.Second-1), 2*time.Second,
		"(m) reconnect_floor violated at 999.999999ms by client 0: attempt 3 started 999.999999ms after attempt 2, which a reconnect-now may not bring closer than the floor 2s")
}

// judgeTable runs recs through a Suite for c, finishing at end, and fails
// t unless the first violation contains want (none when want is empty).
func judgeTable(t *testing.T, c invariant.Config, recs []trace.Record, end time.Duration, want string) {
	t.Helper()
	s := judged(t, c, recs, end)
	vs := s.Violations()
	switch {
	case want == "" && len(vs) > 0:
		t.Fatalf("unexpected violation: %v", vs[0])
	case want != "" && len(vs) == 0:
		t.Fatalf("no violation; want %q", want)
	case want != "" && !strings.Contains(vs[0].String(), want):
		t.Fatalf("violation %q\nwant it to contain %q", vs[0], want)
	}
}

// (l)'s latest takes the slack: a retry exactly at the slow schedule's
// latest plus the slack is in time, 1ns later is not.
func TestPermanentSlowLatestSlack(t *testing.T) {
	c := cfg
	c.Backoff.MaxAttempts = 0
	c.Slack = 100 * ms
	c.Failures = fsm.FailurePolicy{Schedule: fsm.Backoff{Initial: 10 * time.Second, Multiplier: 2, Jitter: fsm.JitterNone}}
	recs := func(at time.Duration) []trace.Record {
		return []trace.Record{start(0), dial(0, 0, 1), downCode(0, 0, 401), dial(at, 0, 2)}
	}
	judgeTable(t, c, recs(10100*ms), 11*time.Second, "")
	judgeTable(t, c, recs(10100*ms+1), 11*time.Second,
		"(b) bounded_retries violated at 10.100000001s by client 0: attempt 2 came 10.100000001s after permanent failure 1 at 0s; the slow schedule's latest is 10s")
}

// (m)'s gap is measured from the previous attempt, wherever it was.
func TestReconnectFloorAfterLateAttempt(t *testing.T) {
	c := cfg
	c.Backoff.MaxAttempts = 0
	c.Backoff.ReconnectFloor = 300 * ms
	s := time.Second
	recs := func(at time.Duration) []trace.Record {
		return []trace.Record{start(0), dial(0, 0, 1), down(s, 0), dial(s, 0, 2), down(s, 0), rec(s+100*ms, trace.Nudge, 0), dial(at, 0, 3)}
	}
	judgeTable(t, c, recs(s+300*ms), 2*s, "")
	judgeTable(t, c, recs(s+300*ms-1), 2*s,
		"(m) reconnect_floor violated at 1.299999999s by client 0: attempt 3 started 299.999999ms after attempt 2, which a reconnect-now may not bring closer than the floor 300ms")
}

// (l) at the machine's own decision: the delay it draws after a permanent
// failure is held to the slow schedule's earliest, exactly; a reconnect-now
// or a reset moving a retry is judged at its dial, not against (a).
func TestPolicyTransitions(t *testing.T) {
	c := cfg
	c.Backoff.MaxAttempts = 0
	c.Failures = fsm.FailurePolicy{Schedule: fsm.Backoff{Initial: 10 * time.Second, Multiplier: 2, Jitter: fsm.JitterNone}}
	rejected := func(delay time.Duration) []trace.Record {
		return []trace.Record{start(0), dial(0, 0, 1), downCode(0, 0, 401), cli(0, 0, fsm.Connecting, fsm.Rejected, fsm.DialFailed, delay)}
	}
	moved := func(tr fsm.Trigger) []trace.Record {
		return []trace.Record{start(0), dial(0, 0, 1), down(0, 0), dial(0, 0, 2), down(10*ms, 0), cli(10*ms, 0, fsm.Connecting, fsm.BackingOff, tr, 0)}
	}
	for _, tt := range []struct {
		name string
		recs []trace.Record
		want string
	}{
		{"rejected, delay at the slow earliest", rejected(10 * time.Second), ""},
		{"rejected, delay 1ns under it", rejected(10*time.Second - 1),
			"(l) permanent_slow violated at 0s by client 0: slow-schedule delay 9.999999999s after permanent failure 1 is below its earliest 10s"},
		{"moved by a reconnect-now", moved(fsm.ReconnectNow), ""},
		{"moved by a reset", moved(fsm.ResetBackoff), ""},
		{"the machine's own zero delay", moved(fsm.DialFailed), "(a) no_early_retry violated at 10ms by client 0: backoff delay 0s after failure 2 is below the policy's earliest 1s"},
	} {
		t.Run(tt.name, func(t *testing.T) { judgeTable(t, c, tt.recs, time.Second, tt.want) })
	}
}
