package invariant_test

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/trace"
)

// Each of (h) to (k) held and broken at its exact edge: an observer's
// outage that touches the lease's window at one instant, a declaration
// at the bound, a write at the send's instant, a directory shorter or
// longer than the session table.
func TestClusterEdges(t *testing.T) {
	lease := func(more ...trace.Record) []trace.Record { // node 1's lease: last written 900ms, ended 3.9s; bound 5.9s
		return cat(clusterStart(), []trace.Record{nodeRec(900*ms, trace.LeaseWrite, 1, 1)}, more, []trace.Record{nodeRec(3900*ms, trace.LeaseEnd, 1, 1)})
	}
	answer := func(at, delay time.Duration, id uint32) trace.Record {
		return trace.Record{At: at, Kind: trace.XAnswer, ID: id, Server: 0, Attempt: trace.Delivered, Delay: delay}
	}
	s := time.Second
	late6 := "(h) node_declared_dead violated at 6s by node 0: counted node 1's incarnation 1 dead at 6s; its lease was last written at 900ms, bound 5.9s"
	never := "(h) node_declared_dead violated at 1m0s by node 0: never counted node 1's incarnation 1 dead; its lease ended at 3.9s, last written at 900ms, bound 5.9s"
	// Session 1 of client 1 registered on node 2 before any cluster record.
	early := []trace.Record{dial(0, 1, 1), {At: 0, Kind: trace.Register, ID: 1, Peer: 1, Server: 2},
		sess(0, 1, fsm.Handshaking, fsm.Alive, fsm.Upgraded), up(0, 1, 1)}
	for _, tt := range []struct {
		name  string
		recs  []trace.Record
		end   time.Duration
		slack time.Duration
		want  string // "" = no cluster violation; else the whole first one
	}{
		// (h): when an observer's outage excuses it.
		{"cut off, back, cut off again during the window", lease(nodeRec(500*ms, trace.CutOff, 0, 0), nodeRec(600*ms, trace.Reconnected, 0, 0),
			nodeRec(2*s, trace.CutOff, 0, 0)), time.Minute, 0, ""},
		{"cut off and back before the last write", lease(nodeRec(500*ms, trace.CutOff, 0, 0), nodeRec(600*ms, trace.Reconnected, 0, 0)),
			time.Minute, 0, never},
		{"back exactly at the last write", lease(nodeRec(500*ms, trace.CutOff, 0, 0), nodeRec(900*ms, trace.Reconnected, 0, 0)),
			time.Minute, 0, ""},
		{"back 1ns after the last write", lease(nodeRec(500*ms, trace.CutOff, 0, 0), nodeRec(900*ms-1, trace.Reconnected, 0, 0)),
			time.Minute, 0, never},
		{"cut off exactly at the bound", lease(nodeRec(5900*ms, trace.CutOff, 0, 0)), time.Minute, 0, ""},
		{"cut off 1ns after the bound", lease(nodeRec(5900*ms+1, trace.CutOff, 0, 0)), time.Minute, 0, never},
		// (h): a failover of the engine between the last write and the plain
		// bound adds Failover (10s); one outside that window does not.
		{"failover inside the window", failover(6*s, 2*s, 3*s), time.Minute, 0, ""},
		{"failover starting at the plain bound", failover(6*s, 5900*ms, 5950*ms), time.Minute, 0, ""},
		{"failover starting 1ns after the plain bound", failover(6*s, 5900*ms+1, 5950*ms), time.Minute, 0, late6},
		{"failover ending at the last write", failover(6*s, 500*ms, 900*ms), time.Minute, 0, ""},
		{"failover ending 1ns before the last write", failover(6*s, 500*ms, 900*ms-1), time.Minute, 0, late6},
		{"two failovers, both over before the last write", failover(6*s, 100*ms, 300*ms, 150*ms, 200*ms), time.Minute, 0, late6},
		{"failover still on at the declaration", failover(6*s, 2*s, -1), time.Minute, 0, ""},
		{"declared past the failover bound", failover(15900*ms+1, 2*s, 3*s), time.Minute, 0,
			"(h) node_declared_dead violated at 15.900000001s by node 0: counted node 1's incarnation 1 dead at 15.900000001s; its lease was last written at 900ms, bound 15.9s"},
		// (h): a declaration at the bound, and a run ending at it.
		{"declared at the bound", cutOff(true, 5900*ms), time.Minute, 0, ""},
		{"declared 1ns after the bound", cutOff(true, 5900*ms+1), time.Minute, 0,
			"(h) node_declared_dead violated at 5.900000001s by node 0: counted node 1's incarnation 1 dead at 5.900000001s; its lease was last written at 900ms, bound 5.9s"},
		{"declared at the bound with slack", cutOff(true, 6*s), time.Minute, 100 * ms, ""},
		{"declared past the bound with slack", cutOff(true, 6*s+1), time.Minute, 100 * ms,
			"(h) node_declared_dead violated at 6.000000001s by node 0: counted node 1's incarnation 1 dead at 6.000000001s; its lease was last written at 900ms, bound 6s"},
		{"run ends at the bound", lease(), 5900 * ms, 0, ""},
		{"run ends 1ns after the bound", lease(), 5900*ms + 1,
			0, "(h) node_declared_dead violated at 5.900000001s by node 0: never counted node 1's incarnation 1 dead; its lease ended at 3.9s, last written at 900ms, bound 5.9s"},
		{"node 0's lease, node 1 never declares it", cat(clusterStart(), []trace.Record{peer(3*ms, 1, 0, fsm.Expired, fsm.Alive, fsm.PeerRejoined, 1),
			nodeRec(900*ms, trace.LeaseWrite, 0, 1), nodeRec(3900*ms, trace.LeaseEnd, 0, 1)}), time.Minute, 0,
			"(h) node_declared_dead violated at 1m0s by node 1: never counted node 0's incarnation 1 dead; its lease ended at 3.9s, last written at 900ms, bound 5.9s"},
		// (i): the incarnation, not only the sessions.
		{"node 0 counted dead as a member with no sessions", cat(clusterStart(), []trace.Record{declared(4*s, 1, 0, 1)}), time.Minute, 0,
			"(i) fenced_first violated at 4s by node 0: node 1 counted incarnation 1 dead while it was Member and served 0 open sessions (it must fence first)"},
		{"an old incarnation counted dead after the restart", cat(clusterStart(), []trace.Record{nodeRec(2500*ms, trace.NodeCrash, 1, 0),
			nodeRec(3*s, trace.NodeStart, 1, 2), node(3*s+ms, 1, fsm.Joining, fsm.Member, fsm.Leased, 2), declared(4*s, 0, 1, 1)}), time.Minute, 0, ""},
		{"a session registered before the cluster records is not counted", cat(
			[]trace.Record{dial(0, 0, 1), {At: 0, Kind: trace.Register, ID: 0, Peer: 0, Server: 1}, sess(0, 0, fsm.Handshaking, fsm.Alive, fsm.Upgraded), up(0, 0, 0),
				nodeRec(ms, trace.NodeStart, 0, 1), nodeRec(ms, trace.NodeStart, 1, 1),
				node(2*ms, 0, fsm.Joining, fsm.Member, fsm.Leased, 1), node(2*ms, 1, fsm.Joining, fsm.Member, fsm.Leased, 1),
				node(2*s, 1, fsm.Member, fsm.Fenced, fsm.FenceDue, 1), declared(4*s, 0, 1, 1)}), time.Minute, 0, ""},
		// (j): written at the send's instant, 1ns before it, never.
		{"written at the send's instant", cat(clusterStart(), []trace.Record{rec(s, trace.Send, 0), answer(s+4*ms, 4*ms, 0)}), time.Minute, 0, ""},
		{"written 1ns before the send", cat(clusterStart(), []trace.Record{rec(s-1, trace.Send, 0), answer(s+4*ms, 4*ms, 0)}), time.Minute, 0,
			"(j) delivered_live violated at 1.004s by session 0: node 0's send of 1s was answered delivered, but nothing was written on the session (now Alive) since"},
		{"no write at all", cat(clusterStart(), []trace.Record{answer(s+4*ms, 4*ms, 0)}), time.Minute, 0,
			"(j) delivered_live violated at 1.004s by session 0: node 0's send of 1s was answered delivered, but nothing was written on the session (now Alive) since"},
		{"an unknown session", cat(clusterStart(), []trace.Record{answer(s+4*ms, 4*ms, 1)}), time.Minute, 0,
			"(j) delivered_live violated at 1.004s by session 1: node 0's send of 1s was answered delivered, but nothing was written on the session (now unknown) since"},
		// (k): which nodes are judged, and views of every length.
		{"settled with a ghost on a node back from a cut", cat(clusterStart(), []trace.Record{nodeRec(s, trace.CutOff, 0, 0), nodeRec(2*s, trace.Reconnected, 0, 0),
			sess(20*s, 0, fsm.Alive, fsm.Reaped, fsm.ReadError), unreg(20*s, 0), dir(20*s, trace.DirDel, 1, 0),
			{At: time.Minute, Kind: trace.Settled}}), time.Minute, 0,
			"(k) directory_matches violated at 1m0s by session 0: settled, and node 0's directory lists a session that is not live (session 0)"},
		{"settled with a ghost on a node still cut off", cat(clusterStart(), []trace.Record{nodeRec(s, trace.CutOff, 0, 0),
			sess(20*s, 0, fsm.Alive, fsm.Reaped, fsm.ReadError), unreg(20*s, 0), dir(20*s, trace.DirDel, 1, 0),
			{At: time.Minute, Kind: trace.Settled}}), time.Minute, 0, ""},
		{"settled, a view misses a live session", cat(clusterStart()[:len(clusterStart())-1], []trace.Record{{At: time.Minute, Kind: trace.Settled}}), time.Minute, 0,
			"(k) directory_matches violated at 1m0s by session 0: settled, and node 0's directory misses a live session (session 0)"},
		{"settled, a view lists a session never seen", cat(clusterStart(), []trace.Record{dir(time.Second, trace.DirAdd, 1, 5), {At: time.Minute, Kind: trace.Settled}}), time.Minute, 0,
			"(k) directory_matches violated at 1m0s by session 5: settled, and node 1's directory lists a session that is not live (session 5)"},
		{"settled, a session on a node outside the cluster", cat(early, clusterStart(), []trace.Record{{At: time.Minute, Kind: trace.Settled}}), time.Minute, 0, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := clusterCfg
			c.Slack = tt.slack
			got := clusterViolations(t, c, tt.recs, tt.end)
			switch {
			case tt.want == "" && len(got) > 0:
				t.Fatalf("unexpected: %q", got)
			case tt.want != "" && (len(got) == 0 || got[0] != tt.want):
				t.Fatalf("got %q\nwant first %q", got, tt.want)
			}
		})
	}
}

// failover is cutOff(true, at) with engine failovers from spans (start,
// end pairs, nested in order: starts, then ends innermost first; an end
// of -1 never comes), the whole in time order.
func failover(at time.Duration, spans ...time.Duration) []trace.Record {
	recs := cutOff(true, at)
	decl := append([]trace.Record(nil), recs[len(recs)-2:]...)
	recs = recs[:len(recs)-2]
	for i := 0; i < len(spans); i += 2 {
		recs = append(recs, trace.Record{At: spans[i], Kind: trace.FailoverStart})
	}
	for i := len(spans) - 1; i > 0; i -= 2 {
		if spans[i] >= 0 {
			recs = append(recs, trace.Record{At: spans[i], Kind: trace.FailoverEnd})
		}
	}
	recs = append(recs, decl...)
	slices.SortStableFunc(recs, func(a, b trace.Record) int { return cmp.Compare(a.At, b.At) })
	return recs
}
