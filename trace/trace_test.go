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
