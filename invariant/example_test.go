package invariant_test

import (
	"fmt"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/invariant"
	"github.com/lifeline-go/lifeline/trace"
)

// A driver that retried 100ms after its second refused attempt, when its
// policy says 1s: the records it produced are enough to catch it, whoever
// produced them (the simulator, or a real adapter under synctest).
func ExampleSuite() {
	s, err := invariant.New(invariant.Config{
		Backoff: fsm.Backoff{Initial: time.Second, Jitter: fsm.JitterNone, FirstImmediate: true},
	})
	if err != nil {
		panic(err)
	}
	recs := []trace.Record{
		{At: 0, Kind: trace.Dial, ID: 0, Attempt: 1},
		{At: 20 * time.Millisecond, Kind: trace.Down, ID: 0},             // refused
		{At: 20 * time.Millisecond, Kind: trace.Dial, ID: 0, Attempt: 2}, // first retry: immediate, allowed
		{At: 40 * time.Millisecond, Kind: trace.Down, ID: 0},             // refused again
		{At: 140 * time.Millisecond, Kind: trace.Dial, ID: 0, Attempt: 3},
	}
	for i := range recs {
		s.Observe(&recs[i])
	}
	s.Finish(time.Second)
	for _, v := range s.Violations() {
		fmt.Println(v)
	}
	// Output:
	// (a) no_early_retry violated at 140ms by client 0: attempt 3 came 100ms after failure 2 at 40ms; the policy's earliest is 1s
}
