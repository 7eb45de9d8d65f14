// Package poll waits, in tests, for a condition that can only be observed
// from outside (a counter, a state, a listing), bounded in time. It is the
// one place the tests' polling loop lives.
package poll

import "time"

// interval is how often Until checks its condition.
const interval = 5 * time.Millisecond

// Until checks cond every interval until it holds or timeout has passed,
// and reports whether it held (checked once more at the end).
func Until(timeout time.Duration, cond func() bool) bool {
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(interval)
	}
	return cond()
}
