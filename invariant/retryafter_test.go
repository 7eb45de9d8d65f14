package invariant_test

import (
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/invariant"
	"github.com/lifeline-go/lifeline/trace"
)

// down503 is a refused handshake whose answer asked for Retry-After ra.
func down503(at time.Duration, c uint32, ra time.Duration) trace.Record {
	r := downCode(at, c, 503)
	r.Delay = ra
	return r
}

// (n) on hand-written traces: the floor holds over the schedule, a nudge
// and the cap; a retry later than the schedule's latest but within the
// Retry-After spread is in time.
func TestRetryAfterFloor(t *testing.T) {
	c := cfg // Initial 1s ×2, no jitter, first immediate
	c.Backoff.MaxAttempts = 0
	c.Backoff.Jitter = fsm.JitterSymmetric
	c.Backoff.RetryAfterMax = 30 * time.Second
	s := time.Second
	for _, tt := range []struct {
		name string
		recs []trace.Record
		end  time.Duration
		want string
	}{
		{"a retry at the floor", []trace.Record{start(0), dial(0, 0, 1), down503(0, 0, 3*s), dial(3*s, 0, 2)}, 4 * s, ""},
		{"a retry at the end of the spread", []trace.Record{start(0), dial(0, 0, 1), down503(0, 0, 3*s), dial(4*s, 0, 2)}, 5 * s, ""},
		{"a retry past the spread", []trace.Record{start(0), dial(0, 0, 1), down503(0, 0, 3*s), dial(4*s+1, 0, 2)}, 5 * s,
			"(b) bounded_retries"},
		{"a retry at once, the Retry-After ignored", []trace.Record{start(0), dial(0, 0, 1), down503(0, 0, 3*s), dial(0, 0, 2)}, s,
			"(n) retry_after_floor violated at 0s by client 0: attempt 2 came 0s after failure 1 at 0s, whose Retry-After floor is 3s (RetryAfterMax 30s)"},
		// A failure later than 0 s: the gap is counted from the failure,
		// not from the trace's start (nor summed with it).
		{"too soon after a later failure", []trace.Record{start(0), dial(5*s, 0, 1), down503(5*s, 0, 3*s), dial(7*s, 0, 2)}, 8 * s,
			"(n) retry_after_floor violated at 7s by client 0: attempt 2 came 2s after failure 1 at 5s, whose Retry-After floor is 3s (RetryAfterMax 30s)"},
		{"a nudge does not excuse it", []trace.Record{start(0), dial(0, 0, 1), down503(0, 0, 3*s), rec(2*s, trace.Nudge, 0), dial(2*s, 0, 2)}, 3 * s,
			"(n) retry_after_floor"},
		{"a hostile value is capped", []trace.Record{start(0), dial(0, 0, 1), down503(0, 0, 1000*time.Hour), dial(30*s, 0, 2)}, 31 * s, ""},
		{"capped, but still a floor", []trace.Record{start(0), dial(0, 0, 1), down503(0, 0, 1000*time.Hour), dial(29*s, 0, 2)}, 31 * s,
			"(n) retry_after_floor"},
		{"a later failure without one is free again", []trace.Record{start(0), dial(0, 0, 1), down503(0, 0, 3*s), dial(3*s, 0, 2),
			down(3*s, 0), dial(3*s+500*time.Millisecond, 0, 3)}, 5 * s, ""},
	} {
		t.Run(tt.name, func(t *testing.T) { judgeTable(t, c, tt.recs, tt.end, tt.want) })
	}
}

// (n) is counted where it applies, and only there.
func TestRetryAfterFloorChecked(t *testing.T) {
	for _, tt := range []struct {
		recs []trace.Record
		want int
	}{
		{[]trace.Record{start(0), dial(0, 0, 1), down503(0, 0, time.Second), dial(time.Second, 0, 2)}, 1},
		{[]trace.Record{start(0), dial(0, 0, 1), downCode(0, 0, 503), dial(0, 0, 2)}, 0},
	} {
		s := judged(t, cfg, tt.recs, 2*time.Second)
		for _, v := range s.Verdicts() {
			if v.Invariant == invariant.RetryAfterFloor && v.Checked != tt.want {
				t.Errorf("checked %d times, want %d", v.Checked, tt.want)
			}
		}
	}
}
