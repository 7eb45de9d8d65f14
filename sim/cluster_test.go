package sim

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/invariant"
	"github.com/lifeline-go/lifeline/trace"
)

// tinyCluster is three nodes of three clients each, with the fast lease
// (TTL 3s, heartbeat 1s) and a send every 200ms.
func tinyCluster(faults ...Fault) Scenario {
	sc := tiny(faults...)
	sc.Clients, sc.Servers = 9, 3
	sc.Cluster = &Cluster{Lease: fsm.Lease{TTL: 3 * time.Second, Heartbeat: time.Second}, SendInterval: 200 * time.Millisecond}
	return sc
}

func mustRun(t *testing.T, sc Scenario) *Result {
	t.Helper()
	res, err := Run(context.Background(), sc, Options{KeepTrace: true})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestClusterSameSeedSameTrace(t *testing.T) {
	sc, err := LoadScenario("testdata/cluster-faults.json")
	if err != nil {
		t.Fatal(err)
	}
	a, b := traceBytes(t, sc), traceBytes(t, sc)
	if !bytes.Equal(a, b) {
		t.Fatal("the same cluster scenario produced two traces")
	}
	for _, k := range []string{" node_crash", " cut_off", "failover_start", " declared ", " xanswer ", "trigger=fence_due", "reason=fenced"} {
		if !bytes.Contains(a, []byte(k)) {
			t.Errorf("the trace has no %q", k)
		}
	}
}

// A crashed node is counted dead by both others between TTL-Heartbeat
// after the crash (its last renewal came at most a heartbeat before) and
// TTL+Heartbeat+Slack (the bound from that write), whether the expiry
// marker arrives or only a re-check finds the lease gone; its clients move
// to the other nodes.
func TestClusterNodeDeathBound(t *testing.T) {
	crash := Fault{Kind: NodeCrash, Start: time.Minute, Servers: []int{0}}
	for _, tc := range []struct {
		name   string
		faults []Fault
	}{
		{"marker", []Fault{crash}},
		{"marker lost", []Fault{crash, {Kind: WatchLoss, Start: 59 * time.Second}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := mustRun(t, tinyCluster(tc.faults...))
			if v := res.Suite.Violations(); len(v) > 0 {
				t.Fatal(v[0])
			}
			l := res.Scenario.Cluster.Lease.WithDefaults()
			d := res.Stats.NodeDeath
			if d == nil || d.N != 2 || d.P50 < l.TTL-l.Heartbeat || d.Max > l.TTL+l.Heartbeat+l.Slack {
				t.Fatalf("node death %+v, want 2 within [%s, %s]", d, l.TTL-l.Heartbeat, l.TTL+l.Heartbeat+l.Slack)
			}
			if tc.name == "marker" && d.Max > l.TTL+l.Slack {
				t.Fatalf("with the marker delivered, node death %s should not wait for a re-check", d.Max)
			}
			// Every client ends on node 1 or 2.
			end := count(res.Trace, func(r *trace.Record) bool { return r.Kind == trace.Register && r.At > 2*time.Minute && r.Server == 0 })
			if end != 0 {
				t.Fatalf("%d sessions registered on the crashed node", end)
			}
		})
	}
}

// A node cut off from the engine fences itself before the others count it
// dead: every session it served closes with reason fenced before the
// first Declared record, and it joins again, with a new incarnation, once
// it reaches the engine.
func TestClusterCutOffFencesFirst(t *testing.T) {
	res := mustRun(t, tinyCluster(Fault{Kind: NodeCutOff, Start: time.Minute, End: 2 * time.Minute, Servers: []int{0}}))
	if v := res.Suite.Violations(); len(v) > 0 {
		t.Fatal(v[0])
	}
	var fencedAt, declaredAt, rejoinAt time.Duration
	fencedSessions := 0
	for _, r := range res.Trace {
		switch {
		case r.Kind == trace.Transition && r.Machine == fsm.MachineNode && r.ID == 0 && r.To == fsm.Fenced:
			fencedAt = r.At
		case r.Kind == trace.Transition && r.Machine == fsm.MachineSession && r.Reason == fsm.ReasonFenced && r.To == fsm.Closing:
			fencedSessions++
			if r.At != fencedAt {
				t.Fatalf("session %d closed for the fence at %s, the node fenced at %s", r.ID, r.At, fencedAt)
			}
		case r.Kind == trace.Declared && r.Peer == 0 && declaredAt == 0:
			declaredAt = r.At
		case r.Kind == trace.Transition && r.Machine == fsm.MachineNode && r.ID == 0 && r.To == fsm.Member && r.At > time.Minute && rejoinAt == 0:
			rejoinAt = r.At
		}
	}
	l := res.Scenario.Cluster.Lease.WithDefaults()
	if fencedSessions != 3 || fencedAt == 0 || declaredAt <= fencedAt || declaredAt-fencedAt < l.TTL-l.Fence {
		t.Fatalf("fenced %d sessions at %s, declared dead at %s: want 3, and at least TTL-Fence (%s) between", fencedSessions, fencedAt, declaredAt, l.TTL-l.Fence)
	}
	if rejoinAt < 2*time.Minute || rejoinAt > 2*time.Minute+time.Second {
		t.Fatalf("rejoined at %s, want just after the cut-off ends at 2m", rejoinAt)
	}
	if res.Stats.Reaps["fenced"] != 3 {
		t.Fatalf("reaps %v, want 3 fenced", res.Stats.Reaps)
	}
}

// Each cluster bug is caught by its invariant, by name, on a fixed
// scenario (and by no invariant it has nothing to do with), while the
// correct driver keeps every invariant on it. A view that never counts a
// dead node dead also keeps its sessions listed: no_recheck breaks (k) too.
func TestClusterBugsCaught(t *testing.T) {
	crashForGood := Fault{Kind: NodeCrash, Start: time.Minute, Servers: []int{0}}
	cutOff := Fault{Kind: NodeCutOff, Start: time.Minute, End: 2 * time.Minute, Servers: []int{0}}
	for _, tc := range []struct {
		bug    Bug
		faults []Fault
		inv    invariant.Invariant
		also   invariant.Invariant
	}{
		{BugNoRecheck, []Fault{crashForGood, {Kind: WatchLoss, Start: 59 * time.Second}}, invariant.NodeDeclaredDead, invariant.DirectoryMatches},
		{BugNoFence, []Fault{cutOff}, invariant.FencedFirst, 0},
		{BugShortLeaseTTL, []Fault{cutOff}, invariant.FencedFirst, 0},
		{BugStaleDirectory, nil, invariant.DeliveredLive, 0},
		{BugKeepDeadEntries, []Fault{crashForGood}, invariant.DirectoryMatches, 0},
	} {
		t.Run(tc.bug.String(), func(t *testing.T) {
			sc := tinyCluster(tc.faults...)
			if res := mustRun(t, sc); res.Suite.Failed() {
				t.Fatalf("the correct driver fails: %v", res.Suite.Violations()[0])
			}
			sc.Bugs = []Bug{tc.bug}
			res := mustRun(t, sc)
			v := res.Suite.Violations()
			caught := false
			for _, x := range v {
				if x.Invariant != tc.inv && x.Invariant != tc.also {
					t.Fatalf("caught by %s, want %s: %v", x.Invariant, tc.inv, x)
				}
				caught = caught || x.Invariant == tc.inv
			}
			if !caught {
				t.Fatalf("not caught by %s: %v", tc.inv, v)
			}
			t.Log(v[0])
		})
	}
}

func TestClusterValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Scenario)
		want string
	}{
		{"cluster fault without a cluster", func(s *Scenario) { s.Cluster = nil }, "node_crash needs a cluster"},
		{"failover longer than its allowance", func(s *Scenario) {
			s.Faults = append(s.Faults, Fault{Kind: EngineFailover, Start: time.Minute, End: time.Minute + 11*time.Second})
		}, "must not outlast Cluster.Lease.Failover (10s)"},
		{"bad lease", func(s *Scenario) { s.Cluster.Lease.Heartbeat = 2 * time.Second }, "Cluster: Lease: fsm: Lease.Heartbeat"},
		{"too many nodes", func(s *Scenario) { s.Servers = MaxNodes + 1 }, "at most 16 nodes"},
		{"coarse expiry", func(s *Scenario) { s.Cluster.ExpiryCheck = time.Second }, "ExpiryCheck (1s) must be at most half of Lease.Slack"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := tinyCluster(Fault{Kind: NodeCrash, Start: time.Minute})
			tc.edit(&sc)
			if err := sc.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestClusterNodeDeathSweep crashes node 0 of a 3-node cluster at 100
// different moments, with the expiry marker delivered or lost, at the
// default lease and at 3s/1s, and holds every death (from the crash to
// each other node counting it dead) within [TTL-Heartbeat,
// TTL+Heartbeat+Slack]: the node's last write came at most a heartbeat
// before the crash, and LatestDead counts from that write. go test -v
// prints the distributions (docs/benchmarks.md).
func TestClusterNodeDeathSweep(t *testing.T) {
	for _, lease := range []fsm.Lease{{}, {TTL: 3 * time.Second, Heartbeat: time.Second}} {
		for _, lost := range []bool{false, true} {
			l := lease.WithDefaults()
			var all []time.Duration
			for seed := uint64(0); seed < 100; seed++ {
				crash := time.Minute + time.Duration(seed)*37*time.Millisecond
				faults := []Fault{{Kind: NodeCrash, Start: crash, Servers: []int{0}}}
				if lost {
					faults = append(faults, Fault{Kind: WatchLoss, Start: crash})
				}
				sc := tinyCluster(faults...)
				sc.Seed, sc.Duration, sc.Cluster.Lease = seed, 2*time.Minute, lease
				res, err := Run(context.Background(), sc, Options{})
				if err != nil {
					t.Fatal(err)
				}
				if res.Suite.Failed() {
					t.Fatal(res.Suite.Violations()[0])
				}
				if d := res.Stats.NodeDeath; d == nil || d.N != 2 {
					t.Fatalf("seed %d: node death %+v, want 2 observers", seed, d)
				}
				all = append(all, res.Stats.NodeDeath.P50, res.Stats.NodeDeath.Max)
			}
			p := percentiles(all)
			lo, hi := l.TTL-l.Heartbeat, l.TTL+l.Heartbeat+l.Slack
			t.Logf("TTL %s heartbeat %s, marker lost %v: death after crash p50 %s p90 %s max %s (allowed [%s, %s])",
				l.TTL, l.Heartbeat, lost, p.P50.Round(time.Millisecond), p.P90.Round(time.Millisecond), p.Max.Round(time.Millisecond), lo, hi)
			if p.Max > hi {
				t.Fatalf("a death outside [%s, %s]: %+v", lo, hi, p)
			}
			for _, d := range all {
				if d < lo {
					t.Fatalf("a death after %s, before TTL-Heartbeat", d)
				}
			}
		}
	}
}

// A node that leaves cleanly is counted dead by the others at once (a
// delete, no waiting for the TTL), after closing its sessions with 1001;
// its clients move to the other nodes.
func TestClusterLeave(t *testing.T) {
	res := mustRun(t, tinyCluster(Fault{Kind: NodeLeave, Start: time.Minute, Servers: []int{0}}))
	if v := res.Suite.Violations(); len(v) > 0 {
		t.Fatal(v[0])
	}
	declared, left := 0, false
	for _, r := range res.Trace {
		switch {
		case r.Kind == trace.Transition && r.Machine == fsm.MachineNode && r.ID == 0 && r.To == fsm.Left:
			left = r.At == time.Minute
		case r.Kind == trace.Declared && r.Peer == 0:
			declared++
			if r.At-time.Minute > 20*time.Millisecond {
				t.Fatalf("node %d counted the departed node dead %s after it left", r.ID, r.At-time.Minute)
			}
		case r.Kind == trace.Register && r.At > time.Minute && r.Server == 0:
			t.Fatalf("a session registered on the departed node at %s", r.At)
		}
	}
	if !left || declared != 2 || res.Stats.Reaps["shutdown"] != 3 {
		t.Fatalf("left at 1m: %v, declared by %d nodes, reaps %v: want true, 2, 3 shutdown", left, declared, res.Stats.Reaps)
	}
}
