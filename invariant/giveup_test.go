package invariant_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/invariant"
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
		t.Run(tt.name, func(t *testing.T) {
			s, err := invariant.New(c)
			if err != nil {
				t.Fatal(err)
			}
			for i := range tt.recs {
				s.Observe(&tt.recs[i])
			}
			s.Finish(5 * time.Second)
			vs := s.Violations()
			switch {
			case tt.want == "" && len(vs) > 0:
				t.Fatalf("unexpected violation: %v", vs[0])
			case tt.want != "" && len(vs) == 0:
				t.Fatalf("no violation; want %q", tt.want)
			case tt.want != "" && !strings.Contains(vs[0].String(), tt.want):
				t.Fatalf("violation %q\nwant it to contain %q", vs[0], tt.want)
			}
		})
	}
}

func start(at time.Duration) trace.Record { return trace.Record{At: at, Kind: trace.ClientStart} }
