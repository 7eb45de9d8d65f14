package invariant_test

import (
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/trace"
)

// (b) with Backoff.GiveUpAfter: a give-up at a failure past the offline
// deadline is owed, one before it is too soon, and an attempt after it is
// one too many.
func TestGiveUpAfter(t *testing.T) {
	c := cfg
	c.Backoff.MaxAttempts, c.Backoff.GiveUpAfter = 0, 2*time.Second
	for _, tt := range []struct {
		name string
		recs []trace.Record
		want string
	}{
		{"gave up at the deadline", []trace.Record{start(0), dial(0, 0, 1), down(0, 0), dial(0, 0, 2), down(0, 0), dial(time.Second, 0, 3),
			down(2*time.Second, 0), cli(2*time.Second, 0, fsm.Connecting, fsm.GaveUp, fsm.DialFailed, 0)}, ""},
		{"gave up before it", []trace.Record{start(0), dial(0, 0, 1), down(0, 0), dial(0, 0, 2), down(0, 0), dial(time.Second, 0, 3),
			down(1900*time.Millisecond, 0), cli(1900*time.Millisecond, 0, fsm.Connecting, fsm.GaveUp, fsm.DialFailed, 0)},
			"gave up after 3 consecutive failures; MaxAttempts=0, GiveUpAfter=2s (1.9s offline)"},
		{"dialled after it", []trace.Record{start(0), dial(0, 0, 1), down(0, 0), dial(0, 0, 2), down(0, 0), dial(time.Second, 0, 3),
			down(2*time.Second, 0), dial(4*time.Second, 0, 4)},
			"after failure 3 had exhausted MaxAttempts=0 or GiveUpAfter=2s"},
	} {
		t.Run(tt.name, func(t *testing.T) { judgeTable(t, c, tt.recs, 5*time.Second, tt.want) })
	}
}

func start(at time.Duration) trace.Record { return trace.Record{At: at, Kind: trace.ClientStart} }

// (b)'s offline clock starts at the drop of a stable link, not at 0: a
// give-up 1.9s after a drop at 20s is too soon for GiveUpAfter 2s.
func TestGiveUpAfterStableLink(t *testing.T) {
	c := cfg
	c.Backoff.MaxAttempts, c.Backoff.GiveUpAfter = 0, 2*time.Second
	s := time.Second
	recs := func(at time.Duration) []trace.Record {
		return cat([]trace.Record{start(0)}, open(), []trace.Record{down(20*s, 0), dial(20*s, 0, 2), down(20*s, 0), dial(21*s, 0, 3),
			down(at, 0), cli(at, 0, fsm.Connecting, fsm.GaveUp, fsm.DialFailed, 0)})
	}
	judgeTable(t, c, recs(22*s), 25*s, "")
	judgeTable(t, c, recs(21900*ms), 25*s, "(b) bounded_retries violated at 21.9s by client 0: gave up after 3 consecutive failures; MaxAttempts=0, GiveUpAfter=2s (1.9s offline)")
}
