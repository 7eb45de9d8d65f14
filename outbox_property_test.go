package lifeline_test

import (
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/invariant"
	"github.com/lifeline-go/lifeline/sim"
)

// genOutbox switches the clients' bounded outbox on in three quarters of
// the worlds, with bounds and an age anywhere in a useful range, and makes
// their applications send all along (while down too), so that (o) judges
// queueing, draining, expiry and eviction under every fault.
func genOutbox(t *rapid.T, sc *sim.Scenario) {
	if rapid.IntRange(0, 3).Draw(t, "outbox") == 3 { // off in a quarter (rapid leans to 0: on)
		return
	}
	sc.Outbox = fsm.Outbox{
		Count: rapid.IntRange(1, 50).Draw(t, "outbox_count"),
		Bytes: rapid.IntRange(1024, 64<<10).Draw(t, "outbox_bytes"), // messages are 1 to 1024 bytes
		Age:   dur(t, 100*time.Millisecond, 2*time.Minute, "outbox_age"),
	}
	// At most ~20 000 sends per client over the run (the event budget).
	sc.ClientEventInterval = max(sc.Duration/20_000, dur(t, 200*time.Millisecond, 10*time.Second, "outbox_interval"))
}

// outboxOutage makes sure a generated world has an outbox, sends, and a
// server restart long enough to queue through.
func outboxOutage(t *rapid.T, sc *sim.Scenario) { outage(t, sc, false) }

// outboxFreshOutage is outboxOutage with room for two messages that are
// still fresh when the link is back: what a reordered drain needs to show.
func outboxFreshOutage(t *rapid.T, sc *sim.Scenario) { outage(t, sc, true) }

func outage(t *rapid.T, sc *sim.Scenario, fresh bool) {
	if !sc.Outbox.On() {
		sc.Outbox = fsm.Outbox{Count: rapid.IntRange(1, 50).Draw(t, "bug_outbox_count"), Age: dur(t, 100*time.Millisecond, time.Minute, "bug_outbox_age")}
		sc.ClientEventInterval = max(sc.Duration/20_000, dur(t, 200*time.Millisecond, 5*time.Second, "bug_outbox_interval"))
	}
	if fresh {
		sc.Outbox.Count = max(sc.Outbox.Count, 2)
		sc.Outbox.Age = max(sc.Outbox.Age, 3*sc.ClientEventInterval)
	}
	at := dur(t, 0, sc.Duration/2, "outbox_restart_at")
	sc.Faults = append(sc.Faults, sim.Fault{Kind: sim.Restart, Start: at, End: at + dur(t, time.Second, 2*time.Minute, "outbox_down_for")})
}

// Each broken outbox is caught by (o): stale messages flushed after a
// reconnect, a drain that reorders, and drops nobody counted.
func TestOutboxBrokenVariantsAreCaught(t *testing.T) {
	for _, c := range []struct {
		name  string
		bug   sim.Bug
		tweak func(*rapid.T, *sim.Scenario)
	}{
		{"stale messages flushed after a reconnect", sim.BugOutboxNoAgeCheck, outboxOutage},
		{"the outbox drained newest first", sim.BugOutboxReorder, outboxFreshOutage},
		{"evictions and expiries not counted", sim.BugOutboxSilentDrop, outboxOutage},
	} {
		t.Run(c.name, func(t *testing.T) {
			bites(t, "(o) outbox_faithful", withBug(c.bug, []sim.FaultKind{sim.Restart, sim.Refused, sim.Kill, sim.RST}, c.tweak, invariant.OutboxFaithful))
		})
	}
}
