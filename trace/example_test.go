package trace_test

import (
	"os"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/trace"
)

// A driver of fsm records its run: each transition becomes a Record with
// FromTransition, beside the facts the invariants need (here each attempt
// started), and Write renders the trace as text only when it is wanted.
// The client dials a refused port until MaxAttempts.
func ExampleFromTransition() {
	c, err := fsm.NewClient(fsm.ClientConfig{
		Backoff: fsm.Backoff{Initial: time.Second, Multiplier: 2, Jitter: fsm.JitterNone, MaxAttempts: 3},
	})
	if err != nil {
		panic(err)
	}
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const id = 7
	var recs []trace.Record
	record := func(now time.Time, out fsm.Output) {
		if out.Transition != nil {
			recs = append(recs, trace.FromTransition(epoch, id, out.Transition))
		}
		for _, a := range out.Actions {
			if a.Kind == fsm.ActDial {
				recs = append(recs, trace.Record{At: now.Sub(epoch), Kind: trace.Dial, ID: id, Attempt: int32(a.Attempt)})
			}
		}
	}
	now := epoch
	out, _ := c.Step(now, fsm.EvStart)
	record(now, out)
	for c.State() != fsm.GaveUp {
		out, _ = c.Step(now, fsm.EvDialFailed) // the port refuses
		record(now, out)
		if d, ok := c.Deadline(); ok && c.State() == fsm.BackingOff {
			now = d
			out, _ = c.Step(now, fsm.EvTick)
			record(now, out)
		}
	}
	if err := trace.Write(os.Stdout, recs); err != nil {
		panic(err)
	}
	// Output:
	// 0s client 7 transition Idle->Connecting trigger=start attempt=1
	// 0s client 7 dial attempt=1 server=0
	// 0s client 7 transition Connecting->BackingOff trigger=dial_failed attempt=2 delay=1s
	// 1s client 7 transition BackingOff->Connecting trigger=retry_due attempt=2
	// 1s client 7 dial attempt=2 server=0
	// 1s client 7 transition Connecting->BackingOff trigger=dial_failed attempt=3 delay=2s
	// 3s client 7 transition BackingOff->Connecting trigger=retry_due attempt=3
	// 3s client 7 dial attempt=3 server=0
	// 3s client 7 transition Connecting->GaveUp trigger=dial_failed attempt=3
}
