// Package leakcheck is the TestMain guard of lifeline's packages that
// start goroutines or open sockets: after the tests pass, no goroutine
// may outlive them (goleak) and the process may hold no more file
// descriptors than before them, give or take a fixed allowance for what
// the runtime keeps for good (the network poller's descriptors).
package leakcheck

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// fdSlack is what the runtime may keep open for good after the first
// network use: the poller's epoll descriptor and its wakeup eventfd.
const fdSlack = 2

// Main runs the tests and returns the exit code: m's, or 1 if they
// passed but leaked goroutines or descriptors.
func Main(m *testing.M) int {
	before := fds()
	code := m.Run()
	if code != 0 {
		return code
	}
	if err := goleak.Find(); err != nil {
		fmt.Fprintln(os.Stderr, "leakcheck: goroutines outlived the tests:", err)
		return 1
	}
	// Closes may still be in flight on goroutines goleak just saw end;
	// give them a moment before counting.
	after := fds()
	for deadline := time.Now().Add(2 * time.Second); after > before+fdSlack && time.Now().Before(deadline); after = fds() {
		time.Sleep(10 * time.Millisecond)
	}
	if after > before+fdSlack {
		fmt.Fprintf(os.Stderr, "leakcheck: %d file descriptors open after the tests, %d before (allowance %d)\n", after, before, fdSlack)
		return 1
	}
	return 0
}

// fds returns how many file descriptors this process holds (-1 where
// /proc is not available, which turns the check off).
func fds() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}
