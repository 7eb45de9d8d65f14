package sim

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/invariant"
	"github.com/lifeline-go/lifeline/trace"
)

// outboxWorld: two clients whose applications send every 500ms through an
// outbox of 40 messages and 10s, and a server down for a minute from 30s
// (messages age out), then down for 5s from 2m (the outbox drains in
// full), and client 1's link reset at 4m, after which it is refused until
// it gives up.
func outboxWorld(bugs ...Bug) Scenario {
	sc := tiny(Fault{Kind: Restart, Start: 30 * time.Second, End: 90 * time.Second},
		Fault{Kind: Restart, Start: 2 * time.Minute, End: 2*time.Minute + 5*time.Second},
		Fault{Kind: RST, Start: 4 * time.Minute, Clients: Range{From: 1, To: 2}},
		Fault{Kind: Refused, Start: 4 * time.Minute, Clients: Range{From: 1, To: 2}})
	sc.Backoff = fsm.Backoff{Initial: time.Second, Max: 2 * time.Second, Jitter: fsm.JitterNone, MaxAttempts: 50}
	sc.Duration = 8 * time.Minute
	sc.ClientEventInterval = 500 * time.Millisecond
	sc.Outbox = fsm.Outbox{Count: 40, Bytes: 32 << 10, Age: 10 * time.Second}
	sc.Bugs = bugs
	return sc
}

// The correct driver queues while down, drains in order on reconnect,
// drops by every rule and counts each drop; (o) holds and was exercised.
func TestOutboxInSim(t *testing.T) {
	res, err := Run(context.Background(), outboxWorld(), Options{KeepTrace: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range res.Suite.Verdicts() {
		if !v.Held() {
			t.Errorf("(%s) %s: %v", v.Letter, v.Name, res.Suite.Violations())
		}
		if v.Invariant == invariant.OutboxFaithful && v.Checked < 100 {
			t.Errorf("(o) checked only %d times", v.Checked)
		}
	}
	ob := res.Stats.Outbox
	if ob == nil || ob.Queued == 0 || ob.Written <= ob.Queued {
		t.Fatalf("outbox stats: %+v", ob)
	}
	for _, r := range []fsm.DropReason{fsm.DropExpired, fsm.DropGaveUp} {
		if ob.Dropped[r.String()] == 0 {
			t.Errorf("no %s drops: %+v", r, ob.Dropped)
		}
	}
	// The second, short outage drains everything it queued, in order.
	drained := 0
	for _, r := range res.Trace {
		if r.Kind == trace.OutboxWritten && r.At > 2*time.Minute+5*time.Second && r.At < 2*time.Minute+10*time.Second {
			drained++
		}
	}
	if drained < 5 {
		t.Errorf("only %d messages written just after the second outage", drained)
	}
	// Off, nothing is queued and nothing is recorded.
	sc := outboxWorld()
	sc.Outbox = fsm.Outbox{}
	res, err = Run(context.Background(), sc, Options{})
	if err != nil || res.Stats.Outbox != nil {
		t.Errorf("outbox off: %v %+v", err, res.Stats.Outbox)
	}
	for _, v := range res.Suite.Verdicts() {
		if v.Invariant == invariant.OutboxFaithful {
			t.Errorf("outbox off, yet (o) was reported: %+v", v)
		}
	}
}

// Each broken outbox is caught by (o), with the rule it broke.
func TestOutboxBugsCaught(t *testing.T) {
	for bug, want := range map[Bug]string{
		BugOutboxNoAgeCheck: "older than Age 10s: sent late",
		BugOutboxReorder:    "queued earlier: out of order",
		BugOutboxSilentDrop: "should have been dropped and counted",
	} {
		res, err := Run(context.Background(), outboxWorld(bug), Options{StopOnViolation: true})
		if err != nil {
			t.Fatal(err)
		}
		v := res.Suite.Violations()
		if len(v) == 0 || v[0].Invariant != invariant.OutboxFaithful || !strings.Contains(v[0].Detail, want) {
			t.Errorf("%s: want (o) %q, got %v", bug, want, v)
		}
	}
}
