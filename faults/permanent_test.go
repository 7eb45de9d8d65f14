package faults

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/oracle"
	"github.com/lifeline-go/lifeline/internal/report"
)

// slowArgs and slow are the slow schedule the permanent-failure cases run
// with: what a client waits after a 401 or 403 (by rejection, not by the
// transient backoff), short enough for a test window.
var (
	slowArgs = []string{"--permanent-backoff", "200ms,2,800ms"}
	slow     = fsm.Backoff{Initial: 200 * time.Millisecond, Multiplier: 2, Max: 800 * time.Millisecond}.WithDefaults()
)

// permanentLike runs a client against a server that answers status to
// every handshake and checks that it never hammers it: every failure
// enters Rejected (go_away) and every retry comes within the slow
// schedule's [Earliest, Latest] for its rejection count, never at the
// transient backoff's pace.
func permanentLike(t *testing.T, name, url string, status string, window time.Duration, extra ...string) {
	t.Helper()
	c := startLifeline(t, "", "connect", connectArgs(url, append(slowArgs, extra...)...)...)
	start := time.Now()
	first, _ := c.wait(t, 0, 10*time.Second, "first attempt", func(l logLine) bool { return l.isTransition("client", "Connecting") })
	time.Sleep(time.Until(first.At.Add(window + 200*time.Millisecond)))
	c.kill()
	attempts, rejections, early, late := 0, 0, 0, 0
	var failedAt time.Time
	var worstLate time.Duration
	for _, l := range c.since(0) {
		if l.At.After(first.At.Add(window)) || !l.isTransition("client", "") {
			continue
		}
		switch l.str("to") {
		case "Connecting":
			attempts++
			if l.str("from") != "Rejected" {
				continue
			}
			gap := l.At.Sub(failedAt)
			if gap < slow.Earliest(rejections) {
				early++
				t.Errorf("%s: retry %s after rejection %d; the slow schedule's earliest is %s", name, gap, rejections, slow.Earliest(rejections))
			}
			if over := gap - slow.Latest(rejections); over > 0 {
				worstLate = max(worstLate, over)
				if over > 50*time.Millisecond {
					late++
				}
			}
		case "Rejected":
			if l.str("trigger") != "go_away" || !strings.Contains(l.str("error"), status) {
				t.Errorf("%s: rejection %v, want go_away with %s", name, l.M, status)
			}
			failedAt = l.At
			rejections++
		case "BackingOff":
			t.Errorf("%s: a %s was backed off as transient: %v", name, status, l.M)
		}
	}
	// The slow schedule with no immediate first retry: [fewest, most]
	// attempts fit in the window.
	fewest, most := oracle.AttemptsWithin(slow, window)
	if attempts < fewest || attempts > most+1 || late != 0 {
		t.Errorf("%s: %d attempts (%d late) in %s; the slow schedule allows %d..%d", name, attempts, late, window, fewest, most)
	}
	report.Add(t, report.Row{Section: section, Case: name,
		Path:     "client Connecting→Rejected (go_away) → Connecting, repeated",
		Bound:    fmt.Sprintf("%d..%d attempts in %s (slow schedule 200 ms ×2 ≤ 800 ms ±50 %%, no immediate retry)", fewest, most, window),
		Observed: fmt.Sprintf("%d attempts; retries late by ≤ %s", attempts, worstLate.Round(time.Millisecond)),
		Evidence: fmt.Sprintf("early retries %d of %d (ran %s)", early, attempts-1, time.Since(start).Round(100*time.Millisecond))})
}
