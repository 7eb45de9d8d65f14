package invariant_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/invariant"
	"github.com/lifeline-go/lifeline/trace"
)

// A two-node cluster with the 3s/1s lease (fence 2s, latest death 5s
// after the last write): node 1 serves session 0 of client 0 under
// incarnation 1, and node 0 watches it.
var clusterCfg = invariant.Config{Lease: fsm.Lease{TTL: 3 * time.Second, Heartbeat: time.Second}}

func node(at time.Duration, n uint32, from, to fsm.State, tr fsm.Trigger, inc uint64) trace.Record {
	return trace.Record{At: at, Kind: trace.Transition, Machine: fsm.MachineNode, ID: n, From: from, To: to, Trigger: tr, Inc: inc}
}
func peer(at time.Duration, obs, n uint32, from, to fsm.State, tr fsm.Trigger, inc uint64) trace.Record {
	return trace.Record{At: at, Kind: trace.Transition, Machine: fsm.MachinePeer, ID: obs, Peer: n, From: from, To: to, Trigger: tr, Inc: inc}
}
func nodeRec(at time.Duration, k trace.Kind, n uint32, inc uint64) trace.Record {
	return trace.Record{At: at, Kind: k, Server: n, Inc: inc}
}
func declared(at time.Duration, obs, n uint32, inc uint64) trace.Record {
	return trace.Record{At: at, Kind: trace.Declared, ID: obs, Peer: n, Inc: inc}
}
func dir(at time.Duration, k trace.Kind, obs, s uint32) trace.Record {
	return trace.Record{At: at, Kind: k, ID: obs, Peer: s}
}

func clusterStart() []trace.Record {
	return []trace.Record{
		nodeRec(0, trace.NodeStart, 0, 1), nodeRec(0, trace.NodeStart, 1, 1),
		node(ms, 0, fsm.Joining, fsm.Member, fsm.Leased, 1), node(ms, 1, fsm.Joining, fsm.Member, fsm.Leased, 1),
		nodeRec(ms, trace.LeaseWrite, 1, 1),
		peer(2*ms, 0, 1, fsm.Expired, fsm.Alive, fsm.PeerRejoined, 1),
		dial(10*ms, 0, 1), {At: 10 * ms, Kind: trace.Register, ID: 0, Peer: 0, Server: 1},
		sess(10*ms, 0, fsm.Handshaking, fsm.Alive, fsm.Upgraded), up(10*ms, 0, 0),
		dir(10*ms, trace.DirAdd, 1, 0), dir(70*ms, trace.DirAdd, 0, 0),
	}
}

// Node 1 is cut off at 1s after its last write at 900ms: it fences at
// 2s+, its lease ends at 3.9s, node 0 counts it dead.
func cutOff(fence bool, declareAt time.Duration) []trace.Record {
	recs := cat(clusterStart(), []trace.Record{nodeRec(900*ms, trace.LeaseWrite, 1, 1), nodeRec(time.Second, trace.CutOff, 1, 0)})
	if fence {
		recs = append(recs, node(2*time.Second, 1, fsm.Member, fsm.Fenced, fsm.FenceDue, 1),
			trace.Record{At: 2 * time.Second, Kind: trace.Transition, Machine: fsm.MachineSession, ID: 0, From: fsm.Alive, To: fsm.Closing, Trigger: fsm.Fence, Reason: fsm.ReasonFenced})
	}
	return append(recs, nodeRec(3900*ms, trace.LeaseEnd, 1, 1),
		peer(declareAt, 0, 1, fsm.Alive, fsm.Expired, fsm.LeaseGone, 1), declared(declareAt, 0, 1, 1))
}

func TestClusterCheckers(t *testing.T) {
	tests := []struct {
		name string
		recs []trace.Record
		end  time.Duration
		want string // "" = no violation
	}{
		{"fenced, declared in time", cutOff(true, 4*time.Second), time.Minute, ""},
		{"declared late", cutOff(true, 6*time.Second), time.Minute, "(h) node_declared_dead violated at 6s by node 0: counted node 1's incarnation 1 dead at 6s; its lease was last written at 900ms, bound 5.9s"},
		{"never declared", cat(clusterStart(), []trace.Record{nodeRec(900*ms, trace.LeaseWrite, 1, 1), nodeRec(3900*ms, trace.LeaseEnd, 1, 1)}), time.Minute,
			"(h) node_declared_dead violated at 1m0s by node 0: never counted node 1's incarnation 1 dead"},
		{"never declared, but cut off itself", cat(clusterStart(), []trace.Record{nodeRec(900*ms, trace.LeaseWrite, 1, 1), nodeRec(2*time.Second, trace.CutOff, 0, 0), nodeRec(3900*ms, trace.LeaseEnd, 1, 1)}), time.Minute, ""},
		{"declared while serving", cutOff(false, 4*time.Second), time.Minute, "(i) fenced_first violated at 4s by node 1: node 0 counted incarnation 1 dead while it was Member and served 1 open sessions"},
		{"delivered and written", cat(clusterStart(), []trace.Record{
			{At: time.Second, Kind: trace.XSend, ID: 0, Server: 0, Peer: 1}, rec(time.Second+2*ms, trace.Send, 0),
			{At: time.Second + 4*ms, Kind: trace.XAnswer, ID: 0, Server: 0, Attempt: trace.Delivered, Delay: 4 * ms}}), time.Minute, ""},
		{"delivered, never written", cat(clusterStart(), []trace.Record{
			rec(500*ms, trace.Send, 0), {At: time.Second, Kind: trace.XSend, ID: 0, Server: 0, Peer: 1},
			{At: time.Second + 4*ms, Kind: trace.XAnswer, ID: 0, Server: 0, Attempt: trace.Delivered, Delay: 4 * ms}}), time.Minute,
			"(j) delivered_live violated at 1.004s by session 0: node 0's send of 1s was answered delivered, but nothing was written"},
		{"no such session is an answer too", cat(clusterStart(), []trace.Record{
			{At: time.Second, Kind: trace.XAnswer, ID: 0, Server: 0, Attempt: trace.NoSuchSession, Delay: 4 * ms}}), time.Minute, ""},
		{"settled directory matches", cat(clusterStart(), []trace.Record{{At: time.Minute, Kind: trace.Settled, Peer: 1, ID: 1}}), time.Minute, ""},
		{"settled with a ghost", cat(clusterStart(), []trace.Record{
			sess(20*time.Second, 0, fsm.Alive, fsm.Reaped, fsm.ReadError), unreg(20*time.Second, 0), dir(20*time.Second, trace.DirDel, 1, 0),
			{At: time.Minute, Kind: trace.Settled}}), time.Minute,
			"(k) directory_matches violated at 1m0s by session 0: settled, and node 0's directory lists a session that is not live"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := clusterViolations(t, clusterCfg, tc.recs, tc.end)
			switch {
			case tc.want == "" && len(got) > 0:
				t.Fatalf("unexpected: %v", got)
			case tc.want != "" && (len(got) == 0 || !strings.HasPrefix(got[0], tc.want)):
				t.Fatalf("got %q, want a violation starting %q", got, tc.want)
			}
		})
	}
}

// clusterViolations runs recs through a Suite for c, finishing at end,
// and returns its violations of (h) to (k).
func clusterViolations(t *testing.T, c invariant.Config, recs []trace.Record, end time.Duration) []string {
	t.Helper()
	s := judged(t, c, recs, end)
	var got []string
	for _, v := range s.Violations() {
		if v.Invariant >= invariant.NodeDeclaredDead && v.Invariant <= invariant.DirectoryMatches {
			got = append(got, v.String())
		}
	}
	return got
}

// Without cluster records the cluster verdicts are not reported.
func TestClusterVerdictsOnlyForClusters(t *testing.T) {
	s, _ := invariant.New(cfg)
	for _, v := range s.Verdicts() {
		if v.Invariant >= invariant.NodeDeclaredDead && v.Invariant <= invariant.DirectoryMatches {
			t.Fatalf("verdict %s on a run without a cluster", v.Name)
		}
	}
}
