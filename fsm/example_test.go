package fsm_test

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// A client facing a refused port: it retries at once, then backs off, and
// gives up after MaxAttempts. The driver only ticks at Deadline.
func ExampleClient() {
	c, err := fsm.NewClient(fsm.ClientConfig{
		Backoff: fsm.Backoff{Initial: time.Second, Multiplier: 2, Jitter: fsm.JitterNone, MaxAttempts: 4, FirstImmediate: true},
	})
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	start := now
	out, _ := c.Step(now, fsm.EvStart)
	for c.State() != fsm.GaveUp {
		for _, a := range out.Actions {
			if a.Kind == fsm.ActDial { // the port refuses
				out, _ = c.Step(now, fsm.EvDialFailed)
			}
		}
		tr := out.Transition
		fmt.Printf("+%-3v %s -> %s (%s) attempt=%d delay=%v\n", now.Sub(start), tr.From, tr.To, tr.Trigger, tr.Attempt, tr.Delay)
		if d, ok := c.Deadline(); ok {
			now = d
			out, _ = c.Step(now, fsm.EvTick)
		}
	}
	// Output:
	// +0s  Connecting -> BackingOff (dial_failed) attempt=2 delay=0s
	// +0s  Connecting -> BackingOff (dial_failed) attempt=3 delay=1s
	// +1s  Connecting -> BackingOff (dial_failed) attempt=4 delay=2s
	// +3s  Connecting -> GaveUp (dial_failed) attempt=4 delay=0s
}

// A session whose peer was killed with kill -9: nothing more is heard, a
// ping goes out after PingInterval, and the session is reaped PongTimeout
// later.
func ExampleSession() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := fsm.Liveness{PingInterval: 30 * time.Second, PongTimeout: 10 * time.Second}
	s, err := fsm.NewSession(now, l)
	if err != nil {
		panic(err)
	}
	s.Step(now, fsm.EvUpgraded)
	for s.State() != fsm.Reaped {
		d, _ := s.Deadline()
		out, _ := s.Step(d, fsm.EvTick)
		for _, a := range out.Actions {
			fmt.Printf("+%v %s", d.Sub(now), a.Kind)
			if a.Reason != fsm.NoReason {
				fmt.Printf(" %s", a.Reason)
			}
			fmt.Println()
		}
	}
	fmt.Println("bound:", l.ReapDeadline(now).Sub(now))
	// Output:
	// +30s send_ping
	// +40s close pong_timeout
	// +40s reap pong_timeout
	// bound: 40s
}

// The policy's bounds are the oracles tests check retries against.
func ExampleBackoff_Delay() {
	b := fsm.DefaultBackoff()
	r := rand.New(rand.NewPCG(7, 7))
	var prev time.Duration
	for n := 1; n <= 5; n++ {
		prev = b.Delay(n, prev, r)
		fmt.Printf("failure %d: %v within [%v, %v]\n", n, prev.Round(time.Millisecond), b.Earliest(n), b.Latest(n))
	}
	// Output:
	// failure 1: 0s within [0s, 0s]
	// failure 2: 681ms within [500ms, 1.5s]
	// failure 3: 2.178s within [800ms, 2.4s]
	// failure 4: 2.523s within [1.28s, 3.84s]
	// failure 5: 5.928s within [2.048s, 6.144s]
}

// The herd oracle: the share of a fleet's reconnects one 100 ms window
// may expect after all of them dropped at once and the server stayed
// down 2 s, for the ±20 % jitter lifeline had before and its default.
func ExampleBackoff_HerdShare() {
	old := fsm.Backoff{FirstImmediate: true, JitterFraction: 0.2}
	for _, b := range []fsm.Backoff{old, fsm.DefaultBackoff()} {
		p, _ := b.HerdShare(2*time.Second, 100*time.Millisecond)
		fmt.Printf("±%.0f%%: %.3f, at most %d of 500\n", b.WithDefaults().JitterFraction*100, p, fsm.HerdLimit(500, p))
	}
	// Output:
	// ±20%: 0.156, at most 128 of 500
	// ±50%: 0.063, at most 66 of 500
}

// Validate names every field that breaks a rule.
func ExampleLiveness_Validate() {
	err := fsm.Liveness{PingInterval: 10 * time.Second, PongTimeout: 15 * time.Second, MaxErrors: -1}.Validate()
	fmt.Println(err)
	// Output:
	// fsm: Liveness.MaxErrors must not be negative (0 means 3) (got -1)
	// fsm: Liveness.PongTimeout must be shorter than PingInterval (10s), or a second ping goes out before the first can fail (got 15s)
}

// Diagrams come from the same table the runtime fires.
func ExampleMermaid() {
	fmt.Print(fsm.Mermaid(fsm.ClientTable())[:94])
	// Output:
	// ---
	// title: lifeline client lifecycle
	// ---
	// stateDiagram-v2
	//     state Idle
	//     state Connecting
}

// The lease bounds of a cluster node, from the moment P it sent the last
// lease write the engine acknowledged: it fences itself strictly before
// any other node may count it dead, and every other node counts it dead
// by the latest bound (measured from the engine's last write, here P).
func ExampleLease() {
	l := fsm.Lease{TTL: 3 * time.Second, Heartbeat: time.Second}
	p := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fmt.Println("fence at       P +", l.FenceAt(p).Sub(p))
	fmt.Println("earliest dead  P +", l.EarliestDead(p).Sub(p))
	fmt.Println("latest dead    P +", l.LatestDead(p, false).Sub(p))
	fmt.Println("with failover  P +", l.LatestDead(p, true).Sub(p))
	fmt.Println(fsm.Lease{TTL: 3 * time.Second, Heartbeat: 3 * time.Second}.Validate() != nil)
	// Output:
	// fence at       P + 2s
	// earliest dead  P + 3s
	// latest dead    P + 5s
	// with failover  P + 15s
	// true
}

// A node's lease: the create goes out at the first tick, the engine's
// acknowledgement makes it a Member, and when every later renewal goes
// unanswered it degrades, then fences itself at proof + Fence, closing its
// sessions before anyone may count it dead at proof + TTL.
func ExampleNode() {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n, _ := fsm.NewNode(t0, fsm.Lease{}, 1) // TTL 10s, heartbeat 3s, fence 7s
	out, _ := n.Step(t0, fsm.EvTick)
	sent := out.Actions[0].At
	fmt.Println(out.Actions[0].Kind, "incarnation", out.Actions[0].Incarnation)
	out, _ = n.Proved(t0.Add(2*time.Millisecond), sent) // the proof is the send time
	fmt.Println(out.Transition.From, "->", out.Transition.To)
	for {
		d, _ := n.Deadline()
		out, _ = n.Step(d, fsm.EvTick)
		for _, a := range out.Actions {
			if a.Reason != fsm.NoReason {
				fmt.Println(d.Sub(t0), a.Kind, a.Reason)
			} else {
				fmt.Println(d.Sub(t0), a.Kind)
			}
		}
		if tr := out.Transition; tr != nil {
			fmt.Println(d.Sub(t0), tr.From, "->", tr.To)
			if tr.To == fsm.Fenced {
				break
			}
		}
	}
	// Output:
	// create_lease incarnation 1
	// Joining -> Member
	// 3s renew_lease
	// 6s renew_lease
	// 6s Member -> Degraded
	// 7s fence fenced
	// 7s Degraded -> Fenced
}

// A server refusing handshakes faster than 2 a second tells each refused
// one when to come back, spreading them at its rate; a client takes the
// answer as the floor of its wait, capped by RetryAfterMax.
func ExampleAdmission() {
	now := time.Date(2026, 11, 29, 23, 0, 0, 0, time.UTC)
	a, _ := fsm.NewAdmission(fsm.HandshakeRate{PerSecond: 2, Burst: 1}, now)
	for i := range 5 {
		ok, ra := a.Admit(now)
		fmt.Printf("handshake %d: admitted %v, Retry-After %v\n", i+1, ok, ra)
	}
	ra, _ := fsm.ParseRetryAfter("2", now)
	b := fsm.DefaultBackoff()
	fmt.Printf("the client's next wait after Retry-After %v: within [%v, %v]\n", ra, b.RetryAfterFloor(ra), b.RetryAfterLatest(ra))
	// Output:
	// handshake 1: admitted true, Retry-After 0s
	// handshake 2: admitted false, Retry-After 1s
	// handshake 3: admitted false, Retry-After 1s
	// handshake 4: admitted false, Retry-After 2s
	// handshake 5: admitted false, Retry-After 2s
	// the client's next wait after Retry-After 2s: within [2s, 3s]
}
