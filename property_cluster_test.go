// The cluster half of the root property suite: rapid generates clusters
// of 2 to 5 nodes, lease policies, and schedules of node crashes, nodes
// cut off from the engine, engine failovers and lost or delayed watch
// events (with the single-node faults mixed in), runs them in the
// simulator and checks every invariant, (h) to (k) included. Each cluster
// invariant is shown to bite on a realistic broken variant.
package lifeline_test

import (
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/invariant"
	"github.com/lifeline-go/lifeline/sim"
)

var clusterFaults = []sim.FaultKind{sim.NodeCrash, sim.NodeCutOff, sim.EngineFailover, sim.WatchLoss, sim.WatchDelay, sim.NodeLeave}

// genLease draws a lease policy: the defaults, the fast 3s/1s profile, or
// anything valid.
func genLease(t *rapid.T) fsm.Lease {
	switch rapid.IntRange(0, 2).Draw(t, "lease_kind") {
	case 0:
		return fsm.Lease{}
	case 1:
		return fsm.Lease{TTL: 3 * time.Second, Heartbeat: time.Second}
	}
	l := fsm.Lease{TTL: time.Duration(rapid.IntRange(1, 20).Draw(t, "ttl_s")) * time.Second}
	l.Heartbeat = dur(t, 100*time.Millisecond, l.TTL/3, "heartbeat")
	if rapid.Bool().Draw(t, "fence_set") {
		l.Fence = dur(t, 2*l.Heartbeat, l.TTL-time.Millisecond, "fence")
	}
	l.Failover = dur(t, time.Second, 15*time.Second, "failover")
	l.Slack = dur(t, 500*time.Millisecond, 2*time.Second, "slack")
	return l
}

func genClusterFault(t *rapid.T, sc *sim.Scenario, i int, kinds []sim.FaultKind) sim.Fault {
	p := func(s string) string { return "cfault" + string(rune('0'+i)) + "_" + s }
	k := rapid.SampledFrom(kinds).Draw(t, p("kind"))
	f := sim.Fault{Kind: k, Start: dur(t, 0, sc.Duration-time.Second, p("start"))}
	f.End = f.Start + dur(t, time.Second, sc.Duration/2, p("length"))
	if k == sim.EngineFailover {
		f.End = f.Start + dur(t, 100*time.Millisecond, sc.Cluster.Lease.WithDefaults().Failover, p("failover"))
	} else if rapid.Bool().Draw(t, p("one_node")) {
		f.Servers = []int{rapid.IntRange(0, sc.Servers-1).Draw(t, p("node"))}
	}
	if k == sim.NodeCrash && rapid.Bool().Draw(t, p("for_good")) {
		// Never restarts; the last node always does, or clients would
		// retry against nothing for minutes (the event budget, not a bug).
		f.End = 0
		f.Servers = []int{rapid.IntRange(0, sc.Servers-2).Draw(t, p("gone_node"))}
	}
	if k == sim.WatchDelay {
		f.Latency = sim.Latency{Base: dur(t, 0, 10*time.Second, p("watch_base")), Jitter: dur(t, 0, time.Second, p("watch_jitter"))}
	}
	return f
}

// genClusterScenario draws a world as genScenario does (single-node faults
// from nodeKinds), makes it a cluster of 2 to 5 nodes with a lease policy
// and cross-node sends, and adds faults drawn from kinds.
func genClusterScenario(t *rapid.T, nodeKinds, kinds []sim.FaultKind) sim.Scenario {
	sc := genScenario(t, nodeKinds)
	sc.Servers = rapid.IntRange(max(2, sc.Servers), 5).Draw(t, "nodes")
	sc.Cluster = &sim.Cluster{
		Lease:        genLease(t),
		SendInterval: dur(t, 100*time.Millisecond, 5*time.Second, "send_interval"),
	}
	for i, n := 0, rapid.IntRange(0, 6).Draw(t, "cluster_faults"); i < n; i++ {
		sc.Faults = append(sc.Faults, genClusterFault(t, &sc, i, kinds))
	}
	return sc
}

// TestClusterInvariantsHold: under every cluster fault, for any valid
// lease and the single-node policies, the correct drivers keep (a) to (k).
func TestClusterInvariantsHold(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		check(t, genClusterScenario(t, allFaults, clusterFaults), sim.Options{})
	})
}

// cutOffNodeZero cuts node 0, which client 0 dials first, off the engine
// for longer than the lease lives, once its client is likely up.
func cutOffNodeZero(t *rapid.T, sc *sim.Scenario) {
	l := sc.Cluster.Lease.WithDefaults()
	at := dur(t, 10*time.Second, sc.Duration/2, "cut_at")
	sc.Faults = append(sc.Faults, sim.Fault{Kind: sim.NodeCutOff, Start: at, End: at + l.TTL + l.Heartbeat + 2*time.Second, Servers: []int{0}})
}

// crashNodeZeroForGood kills node 0 once its client is likely up, and
// never restarts it.
func crashNodeZeroForGood(t *rapid.T, sc *sim.Scenario) {
	sc.Faults = append(sc.Faults, sim.Fault{Kind: sim.NodeCrash, Start: dur(t, 10*time.Second, sc.Duration/2, "crash_at"), Servers: []int{0}})
}

// loseTheMarker crashes node 0 for good and makes every other node's watch
// lose events from a second before the crash on: the expiry marker never
// arrives, only a re-check can find the lease gone.
func loseTheMarker(t *rapid.T, sc *sim.Scenario) {
	crashNodeZeroForGood(t, sc)
	crash := sc.Faults[len(sc.Faults)-1].Start
	sc.Faults = append(sc.Faults, sim.Fault{Kind: sim.WatchLoss, Start: max(0, crash-time.Second)})
}

// TestClusterBrokenVariantsAreCaught shows each cluster invariant biting
// on the broken driver it exists for; the single-node faults mixed in are
// the mildest (extra latency), so what bites is the cluster's.
func TestClusterBrokenVariantsAreCaught(t *testing.T) {
	quiet := []sim.FaultKind{sim.LatencySpike}
	cases := []struct {
		name  string
		bug   sim.Bug
		kinds []sim.FaultKind
		tweak func(*rapid.T, *sim.Scenario)
		inv   invariant.Invariant
	}{
		{"watch without re-check misses an expiry", sim.BugNoRecheck, []sim.FaultKind{sim.WatchLoss}, loseTheMarker, invariant.NodeDeclaredDead},
		{"no self-fencing serves sessions counted dead", sim.BugNoFence, clusterFaults, cutOffNodeZero, invariant.FencedFirst},
		{"lease TTL not longer than the heartbeat", sim.BugShortLeaseTTL, clusterFaults, cutOffNodeZero, invariant.FencedFirst},
		{"delivered answered from a stale directory", sim.BugStaleDirectory, clusterFaults, nil, invariant.DeliveredLive},
		{"dead node's entries kept", sim.BugKeepDeadEntries, clusterFaults, crashNodeZeroForGood, invariant.DirectoryMatches},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bites(t, "("+string(c.inv.Letter())+") "+c.inv.String(), func(t *rapid.T) {
				sc := genClusterScenario(t, quiet, c.kinds)
				if c.tweak != nil {
					c.tweak(t, &sc)
				}
				sc.Bugs = []sim.Bug{c.bug}
				check(t, sc, sim.Options{}, c.inv)
			})
		})
	}
}
