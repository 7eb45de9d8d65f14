package trace_test

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/trace"
)

func TestAppendText(t *testing.T) {
	tests := []struct {
		r    trace.Record
		want string
	}{
		{trace.Record{At: 1500 * time.Millisecond, Kind: trace.Transition, Machine: fsm.MachineClient, ID: 3,
			From: fsm.Connecting, To: fsm.BackingOff, Trigger: fsm.DialFailed, Attempt: 2, Delay: 800 * time.Millisecond},
			"1.5s client 3 transition Connecting->BackingOff trigger=dial_failed attempt=2 delay=800ms"},
		{trace.Record{At: time.Minute, Kind: trace.Transition, Machine: fsm.MachineSession, ID: 9,
			From: fsm.Alive, To: fsm.Reaped, Trigger: fsm.PongTimeout, Reason: fsm.ReasonPongTimeout},
			"1m0s session 9 transition Alive->Reaped trigger=pong_timeout reason=pong_timeout"},
		{trace.Record{Kind: trace.Dial, ID: 1, Attempt: 1, Server: 2}, "0s client 1 dial attempt=1 server=2"},
		{trace.Record{Kind: trace.Up, ID: 1, Peer: trace.NoID}, "0s client 1 up session=none"},
		{trace.Record{Kind: trace.Register, ID: 4, Peer: 1}, "0s session 4 register client=1 server=0"},
		{trace.Record{Kind: trace.PeerDead, ID: 4, At: time.Second, LastSign: 900 * time.Millisecond}, "1s session 4 peer_dead last_sign=900ms"},
		{trace.Record{Kind: trace.ServerDown, Server: 1}, "0s server 1 server_down"},
		{trace.Record{Kind: trace.Settled, Peer: 5, ID: 6}, "0s world settled live_peers=5 registered=6"},
		{trace.Record{Kind: 99}, "0s world Kind(99)"},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("got  %q\nwant %q", got, tt.want)
		}
	}
}

func TestExcerptFollowsCounterparts(t *testing.T) {
	recs := []trace.Record{
		{Kind: trace.Dial, ID: 1},              // 0: client 1
		{Kind: trace.Dial, ID: 2},              // 1: client 2, unrelated
		{Kind: trace.Register, ID: 7, Peer: 1}, // 2: session 7 of client 1
		{Kind: trace.Register, ID: 8, Peer: 2}, // 3: unrelated
		{Kind: trace.ServerDown},               // 4: world
		{Kind: trace.Send, ID: 7},              // 5
		{Kind: trace.Send, ID: 8},              // 6: unrelated
		{Kind: trace.Down, ID: 1},              // 7: after upto
	}
	got := trace.Excerpt(recs, fsm.MachineSession, 7, 6, 10)
	want := []int{0, 2, 4, 5}
	if len(got) != len(want) {
		t.Fatalf("excerpt %v, want records %v", got, want)
	}
	for i, w := range want {
		if got[i] != recs[w] {
			t.Errorf("excerpt[%d] = %v, want %v", i, got[i], recs[w])
		}
	}
	if got := trace.Excerpt(recs, fsm.MachineClient, 1, 99, 2); len(got) != 2 || got[1] != recs[7] {
		t.Fatalf("client excerpt capped to the last 2: %v", got)
	}
}

func TestWrite(t *testing.T) {
	var b bytes.Buffer
	recs := []trace.Record{{Kind: trace.Quiesce}, {Kind: trace.Dial, ID: 1, Attempt: 1}}
	if err := trace.Write(&b, recs); err != nil {
		t.Fatal(err)
	}
	if want := "0s world quiesce\n0s client 1 dial attempt=1 server=0\n"; b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
}

// A trace renders one line per record, only when asked.
func ExampleWrite() {
	recs := []trace.Record{
		{At: 0, Kind: trace.Dial, ID: 0, Attempt: 1},
		{At: 25 * time.Millisecond, Kind: trace.Down, ID: 0},
		trace.FromTransition(time.Unix(0, 0), 0, &fsm.Transition{Machine: fsm.MachineClient, At: time.Unix(0, 25e6),
			From: fsm.Connecting, To: fsm.BackingOff, Trigger: fsm.DialFailed, Attempt: 2}),
	}
	_ = trace.Write(os.Stdout, recs)
	// Output:
	// 0s client 0 dial attempt=1 server=0
	// 25ms client 0 down
	// 25ms client 0 transition Connecting->BackingOff trigger=dial_failed attempt=2 delay=0s
}

// A node's excerpt tells the cluster's story and leaves out the routine.
func TestExcerptNode(t *testing.T) {
	recs := []trace.Record{
		{Kind: trace.NodeStart, Server: 0, Inc: 1},
		{Kind: trace.LeaseWrite, Server: 0, Inc: 1},
		{Kind: trace.DirAdd, ID: 1, Peer: 4},
		{Kind: trace.Register, ID: 4, Peer: 2},
		{Kind: trace.NodeCrash, Server: 0},
		{Kind: trace.Transition, Machine: fsm.MachinePeer, ID: 1, Peer: 0, From: fsm.Alive, To: fsm.Expired, Trigger: fsm.LeaseGone, Inc: 1},
		{Kind: trace.Declared, ID: 1, Peer: 0, Inc: 1},
	}
	got := trace.Excerpt(recs, fsm.MachineNode, 1, 99, 10)
	var b bytes.Buffer
	_ = trace.Write(&b, got)
	want := "0s node 0 node_start inc=1\n0s node 0 node_crash\n0s peer 1 transition Alive->Expired trigger=lease_gone node=0 inc=1\n0s node 1 declared node=0 inc=1\n"
	if b.String() != want {
		t.Fatalf("got\n%swant\n%s", b.String(), want)
	}
}

func TestAppendTextCluster(t *testing.T) {
	for _, tc := range []struct {
		r    trace.Record
		want string
	}{
		{trace.Record{Kind: trace.XSend, ID: 7, Server: 1, Peer: 2}, "0s session 7 xsend from=1 owner=2"},
		{trace.Record{Kind: trace.XAnswer, ID: 7, Server: 1, Attempt: trace.Delivered, Delay: 3 * time.Millisecond},
			"0s session 7 xanswer from=1 result=delivered after=3ms"},
		{trace.Record{Kind: trace.XAnswer, ID: 7, Server: 1, Attempt: trace.NoSuchSession}, "0s session 7 xanswer from=1 result=no_such_session after=0s"},
		{trace.Record{Kind: trace.DirDel, ID: 2, Peer: 7}, "0s node 2 dir_del session=7"},
		{trace.Record{Kind: trace.LeaseEnd, Server: 3, Inc: 9}, "0s node 3 lease_end inc=9"},
		{trace.Record{Kind: trace.FailoverStart}, "0s world failover_start"},
		{trace.Record{Kind: trace.Transition, Machine: fsm.MachineNode, ID: 1, From: fsm.Member, To: fsm.Fenced, Trigger: fsm.FenceDue, Inc: 2},
			"0s node 1 transition Member->Fenced trigger=fence_due inc=2"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}
