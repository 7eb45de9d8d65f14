// Package oracle derives checkable expectations from fsm's policies, for
// the tests and the benchmarks that compare a real run with what the
// policy allows.
package oracle

import (
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// AttemptsWithin returns the fewest and the most connection attempts b
// allows within d when every attempt fails at once: the first at 0, the
// next one Backoff.Latest (for the fewest) or Backoff.Earliest (for the
// most) after each failure.
func AttemptsWithin(b fsm.Backoff, d time.Duration) (fewest, most int) {
	return attemptsIn(d, b.Latest), attemptsIn(d, b.Earliest)
}

func attemptsIn(d time.Duration, delay func(n int) time.Duration) int {
	n, t := 1, time.Duration(0)
	for {
		t += delay(n)
		if t > d {
			return n
		}
		n++
	}
}
