package fsm

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// nodeFor returns a node with the default lease driven into state s, its
// create sent and acknowledged at t0 where that applies.
func nodeFor(t *testing.T, s State) *Node {
	t.Helper()
	n, err := NewNode(t0, Lease{}, 7)
	if err != nil {
		t.Fatal(err)
	}
	step := func(out Output, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("driving to %s: %v", s, err)
		}
	}
	if s == Left {
		step(n.Step(t0, EvLeave))
	}
	if s == Member || s == Degraded || s == Fenced {
		step(n.Step(t0, EvTick))
		step(n.Proved(t0.Add(5*time.Millisecond), t0))
	}
	if s == Degraded {
		step(n.Step(t0.Add(time.Second), EvLeaseFailed))
	}
	if s == Fenced {
		step(n.Step(t0.Add(n.l.Fence), EvTick))
	}
	if n.State() != s {
		t.Fatalf("driving to %s ended in %s", s, n.State())
	}
	return n
}

// nodeInput makes trigger tr fire on n.
func nodeInput(n *Node, tr Trigger) (Output, error) {
	switch tr {
	case Leased:
		if _, err := n.Step(t0, EvTick); err != nil {
			return Output{}, err
		}
		return n.Proved(t0.Add(time.Millisecond), t0)
	case Renewed:
		at := t0.Add(n.l.Heartbeat)
		if _, err := n.Step(at, EvTick); err != nil {
			return Output{}, err
		}
		return n.Proved(at.Add(time.Millisecond), at)
	case RenewFailed:
		return n.Step(t0.Add(time.Second), EvLeaseFailed)
	case FenceDue:
		return n.Step(n.proof.Add(n.l.Fence), EvTick)
	case Rejoin:
		return n.Step(n.fencedAt.Add(n.l.Heartbeat), EvTick)
	case Leave:
		return n.Step(t0.Add(time.Second), EvLeave)
	}
	panic("no node input for " + tr.String())
}

func TestNodeEveryRow(t *testing.T) {
	for _, r := range NodeTable().Rows {
		t.Run(r.From.String()+"/"+r.label(), func(t *testing.T) {
			n := nodeFor(t, r.From)
			inc := n.Incarnation()
			out, err := nodeInput(n, r.Trigger)
			if err != nil {
				t.Fatal(err)
			}
			tr := out.Transition
			if tr == nil || tr.From != r.From || tr.To != r.To || tr.Trigger != r.Trigger || tr.Machine != MachineNode {
				t.Fatalf("transition = %+v, want %s -%s-> %s", tr, r.From, r.Trigger, r.To)
			}
			if n.State() != r.To || tr.Incarnation != n.Incarnation() {
				t.Fatalf("state %s incarnation %d, transition %+v", n.State(), n.Incarnation(), tr)
			}
			kinds := actionKinds(out.Actions)
			switch r.To {
			case Fenced:
				if len(kinds) != 1 || kinds[0] != ActFence || out.Actions[0].Reason != ReasonFenced {
					t.Fatalf("fence actions = %+v, want one ActFence with reason fenced", out.Actions)
				}
			case Joining:
				if n.Incarnation() != inc+1 || len(kinds) != 1 || kinds[0] != ActCreateLease || out.Actions[0].Incarnation != inc+1 {
					t.Fatalf("rejoin: incarnation %d→%d, actions %+v", inc, n.Incarnation(), out.Actions)
				}
			case Left:
				if len(kinds) != 2 || kinds[0] != ActRemoveSessions || kinds[1] != ActDeleteLease {
					t.Fatalf("leave actions = %v, want remove_sessions, delete_lease", kinds)
				}
			}
			if n.Serving() != (r.To == Member || r.To == Degraded) {
				t.Fatalf("Serving() = %v in %s", n.Serving(), r.To)
			}
		})
	}
}

func actionKinds(as []Action) []ActionKind {
	var out []ActionKind
	for _, a := range as {
		out = append(out, a.Kind)
	}
	return out
}

// A node left alone: the create goes out at once, renewals every
// heartbeat, and with every renewal unanswered it degrades after one
// heartbeat and fences at exactly proof + Fence, before proof + TTL.
// (With Fence = 2×Heartbeat, as at TTL 3s / heartbeat 1s, the unanswered
// renewal times out at the fence itself and the node fences from Member.)
func TestNodeFencesBeforeEarliestDead(t *testing.T) {
	l := Lease{}
	n, err := NewNode(t0, l, 1)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := n.Step(t0, EvTick)
	if k := actionKinds(out.Actions); len(k) != 1 || k[0] != ActCreateLease || !out.Actions[0].At.Equal(t0) {
		t.Fatalf("first tick: %+v", out.Actions)
	}
	// Acknowledged 400ms after it was sent: the proof is the send time.
	if out, _ = n.Proved(t0.Add(400*time.Millisecond), t0); out.Transition == nil || n.State() != Member {
		t.Fatalf("ack of the create: %+v, state %s", out, n.State())
	}
	if p, ok := n.Proof(); !ok || !p.Equal(t0) {
		t.Fatalf("proof = %v %v, want the send time %v", p, ok, t0)
	}
	var states []State
	var fencedAt time.Time
	for now := t0; now.Before(t0.Add(time.Minute)); {
		d, ok := n.Deadline()
		if !ok {
			break
		}
		now = d
		out, err := n.Step(now, EvTick)
		if err != nil {
			t.Fatal(err)
		}
		if out.Transition != nil {
			states = append(states, out.Transition.To)
			if out.Transition.To == Fenced {
				fencedAt = now
				break
			}
		}
	}
	want := []State{Degraded, Fenced}
	if len(states) != 2 || states[0] != want[0] || states[1] != want[1] {
		t.Fatalf("transitions %v, want %v", states, want)
	}
	if !fencedAt.Equal(l.FenceAt(t0)) || !fencedAt.Before(l.EarliestDead(t0)) {
		t.Fatalf("fenced at %v; FenceAt %v, EarliestDead %v", fencedAt, l.FenceAt(t0), l.EarliestDead(t0))
	}
	// A fenced node serves nothing and ignores late acknowledgements.
	if out, _ := n.Proved(fencedAt.Add(time.Millisecond), fencedAt.Add(-time.Millisecond)); out.Transition != nil || n.Serving() {
		t.Fatalf("late ack revived a fenced node: %+v", out)
	}
}

// An acknowledgement that arrives after the fence deadline does not save
// the node: time alone decides the fence.
func TestNodeLateProofStillFences(t *testing.T) {
	n := nodeFor(t, Member)
	late := t0.Add(n.l.Fence + time.Millisecond)
	out, err := n.Proved(late, late.Add(-time.Millisecond))
	if err != nil || out.Transition == nil || out.Transition.Trigger != FenceDue || n.State() != Fenced {
		t.Fatalf("late proof: %+v %v, state %s", out, err, n.State())
	}
	n = nodeFor(t, Degraded)
	out, err = n.Step(late, EvLeaseFailed)
	if err != nil || out.Transition == nil || out.Transition.To != Fenced {
		t.Fatalf("event after the fence deadline: %+v %v", out, err)
	}
}

func TestNodeProofs(t *testing.T) {
	n := nodeFor(t, Member)
	if _, err := n.Proved(t0, t0.Add(time.Second)); !errors.Is(err, ErrFutureProof) {
		t.Fatalf("future proof: err = %v", err)
	}
	// The proof only moves forward, and a proof from before this
	// incarnation counts for nothing.
	if _, err := n.Proved(t0.Add(time.Second), t0.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if p, _ := n.Proof(); !p.Equal(t0) {
		t.Fatalf("proof moved back to %v", p)
	}
	f := nodeFor(t, Fenced)
	out, _ := f.Step(f.fencedAt.Add(time.Millisecond), EvEngineUp)
	if out.Transition == nil || f.State() != Joining {
		t.Fatalf("engine up on a fenced node: %+v", out)
	}
	if out, _ := f.Proved(f.incStart.Add(time.Second), f.incStart.Add(-time.Nanosecond)); out.Transition != nil {
		t.Fatalf("a proof of the old incarnation made the new one a member: %+v", out)
	}
	// EvLeave is idempotent; other events in Left are no-ops or errors.
	l := nodeFor(t, Left)
	if out, err := l.Step(t0, EvLeave); err != nil || out.Transition != nil {
		t.Fatalf("second leave: %+v %v", out, err)
	}
	if _, ok := l.Deadline(); ok {
		t.Fatal("a departed node has a deadline")
	}
	if _, err := n.Step(t0, EvDialOK); !errors.Is(err, ErrUnhandled) {
		t.Fatalf("client event on a node: %v", err)
	}
}

// peerFor returns a peer view driven into state s.
func peerFor(t *testing.T, s State) *Peer {
	t.Helper()
	p, err := NewPeer(t0, Lease{}, 3)
	if err != nil {
		t.Fatal(err)
	}
	switch s {
	case Expired:
		_, err = p.Step(t0, EvLeaseGone)
	case Left:
		_, err = p.Step(t0, EvPeerLeft)
	}
	if err != nil || p.State() != s {
		t.Fatalf("driving to %s: %v, in %s", s, err, p.State())
	}
	return p
}

func TestPeerEveryRow(t *testing.T) {
	for _, r := range PeerTable().Rows {
		t.Run(r.From.String()+"/"+r.label(), func(t *testing.T) {
			p := peerFor(t, r.From)
			old := p.Incarnation()
			var out Output
			var err error
			switch r.Trigger {
			case LeaseGone:
				out, err = p.Step(t0, EvLeaseGone)
			case PeerLeft:
				out, err = p.Step(t0, EvPeerLeft)
			case PeerRejoined:
				out, err = p.Seen(t0, old+1)
			}
			if err != nil {
				t.Fatal(err)
			}
			tr := out.Transition
			if tr == nil || tr.From != r.From || tr.To != r.To || tr.Trigger != r.Trigger || tr.Machine != MachinePeer {
				t.Fatalf("transition = %+v, want %s -%s-> %s", tr, r.From, r.Trigger, r.To)
			}
			// Leaving Alive counts the known incarnation's sessions dead.
			dead := r.From == Alive
			if got := len(out.Actions) == 1 && out.Actions[0].Kind == ActDeclareDead &&
				out.Actions[0].Incarnation == old && out.Actions[0].Reason == ReasonNodeDead; got != dead {
				t.Fatalf("actions %+v, declare dead of %d expected: %v", out.Actions, old, dead)
			}
			// Only a rejoin learns the new incarnation; going or leaving keeps the last one known.
			want := old
			if r.Trigger == PeerRejoined {
				want = old + 1
			}
			if p.Incarnation() != want || tr.Incarnation != want {
				t.Fatalf("incarnation %d (transition %d), want %d", p.Incarnation(), tr.Incarnation, want)
			}
		})
	}
}

func TestPeerRecheck(t *testing.T) {
	p := peerFor(t, Alive)
	d, ok := p.Deadline()
	if !ok || !d.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("first re-check at %v %v, want a heartbeat after t0", d, ok)
	}
	if out, _ := p.Step(d.Add(-time.Nanosecond), EvTick); len(out.Actions) != 0 {
		t.Fatalf("early tick asked for a re-check: %+v", out.Actions)
	}
	out, _ := p.Step(d, EvTick)
	if len(out.Actions) != 1 || out.Actions[0].Kind != ActRecheck {
		t.Fatalf("due tick: %+v", out.Actions)
	}
	if d2, _ := p.Deadline(); !d2.Equal(d.Add(3 * time.Second)) {
		t.Fatalf("next re-check at %v", d2)
	}
	// Stale or repeated incarnations change nothing; gone and left are
	// no-ops off Alive.
	if out, _ := p.Seen(t0, p.Incarnation()); out.Transition != nil {
		t.Fatal("the same incarnation seen again made a transition")
	}
	e := peerFor(t, Expired)
	if out, _ := e.Step(t0, EvPeerLeft); out.Transition != nil {
		t.Fatal("a late leave moved an expired peer")
	}
	if d, ok := e.Deadline(); !ok || !d.Equal(t0.Add(3*time.Second)) {
		t.Fatal("an expired peer stops re-checking: a new incarnation the watch missed would stay unseen")
	}
	if u, _ := NewPeer(t0, Lease{}, 0); u.State() != Expired {
		t.Fatalf("a peer not yet seen starts in %s", u.State())
	}
	if _, err := e.Step(t0, EvDialOK); !errors.Is(err, ErrUnhandled) {
		t.Fatalf("client event on a peer: %v", err)
	}
}

func TestLeaseBounds(t *testing.T) {
	p := t0
	tests := []struct {
		name                 string
		l                    Lease
		fence, earliest      time.Duration
		latest, latestFailed time.Duration
	}{
		{"defaults", Lease{}, 7 * time.Second, 10 * time.Second, 14 * time.Second, 24 * time.Second},
		{"3s/1s", Lease{TTL: 3 * time.Second, Heartbeat: time.Second}, 2 * time.Second, 3 * time.Second, 5 * time.Second, 15 * time.Second},
		{"explicit", Lease{TTL: 30 * time.Second, Heartbeat: 5 * time.Second, Fence: 20 * time.Second, Failover: 4 * time.Second, Slack: 500 * time.Millisecond},
			20 * time.Second, 30 * time.Second, 35500 * time.Millisecond, 39500 * time.Millisecond},
		{"ttl only", Lease{TTL: 60 * time.Second}, 57 * time.Second, 60 * time.Second, 64 * time.Second, 74 * time.Second},
		{"1s", Lease{TTL: time.Second, Heartbeat: 300 * time.Millisecond}, 700 * time.Millisecond, time.Second, 2300 * time.Millisecond, 12300 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.l.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := tc.l.FenceAt(p).Sub(p); got != tc.fence {
				t.Errorf("FenceAt = P+%s, want P+%s", got, tc.fence)
			}
			if got := tc.l.EarliestDead(p).Sub(p); got != tc.earliest {
				t.Errorf("EarliestDead = P+%s, want P+%s", got, tc.earliest)
			}
			if got := tc.l.LatestDead(p, false).Sub(p); got != tc.latest {
				t.Errorf("LatestDead = W+%s, want W+%s", got, tc.latest)
			}
			if got := tc.l.LatestDead(p, true).Sub(p); got != tc.latestFailed {
				t.Errorf("LatestDead after a failover = W+%s, want W+%s", got, tc.latestFailed)
			}
			if !tc.l.FenceAt(p).Before(tc.l.EarliestDead(p)) {
				t.Error("the fence is not strictly before the earliest declared death")
			}
		})
	}
}

func TestLeaseValidate(t *testing.T) {
	tests := []struct {
		name   string
		l      Lease
		fields []string
	}{
		{"zero", Lease{}, nil},
		{"negative", Lease{TTL: -1, Slack: -1}, []string{"TTL", "Slack"}},
		{"fractional ttl", Lease{TTL: 2500 * time.Millisecond, Heartbeat: 500 * time.Millisecond}, []string{"TTL"}},
		{"sub-second ttl", Lease{TTL: 500 * time.Millisecond, Heartbeat: 100 * time.Millisecond}, []string{"TTL"}},
		{"heartbeat over ttl/3", Lease{TTL: 3 * time.Second, Heartbeat: 1500 * time.Millisecond}, []string{"Heartbeat"}},
		{"ttl not longer than heartbeat", Lease{TTL: 2 * time.Second, Heartbeat: 2 * time.Second}, []string{"Heartbeat"}},
		{"fence at ttl", Lease{Fence: 10 * time.Second}, []string{"Fence"}},
		{"fence past ttl", Lease{Fence: 11 * time.Second}, []string{"Fence"}},
		{"fence at heartbeat", Lease{Fence: 3 * time.Second}, []string{"Fence"}},
		{"fence under two heartbeats", Lease{Fence: 5999 * time.Millisecond}, []string{"Fence"}},
		{"fence at two heartbeats", Lease{Fence: 6 * time.Second}, nil},
		{"tiny ttl default heartbeat", Lease{TTL: time.Nanosecond}, []string{"TTL", "Heartbeat"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.l
			err := tc.l.Validate()
			if tc.l != before {
				t.Fatal("Validate changed the policy")
			}
			if len(tc.fields) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("err = %v, want ErrInvalidPolicy", err)
			}
			for _, f := range tc.fields {
				if !strings.Contains(err.Error(), "Lease."+f+" ") {
					t.Errorf("error does not name %s: %v", f, err)
				}
			}
			if _, nerr := NewNode(t0, tc.l, 1); nerr == nil {
				t.Error("NewNode accepted it")
			}
			if _, perr := NewPeer(t0, tc.l, 1); perr == nil {
				t.Error("NewPeer accepted it")
			}
		})
	}
}

// Below a 9 s TTL the default heartbeat is TTL/3, not 3 s, and the
// default fence follows it; the rules' messages carry the computed bound.
func TestLeaseDefaults(t *testing.T) {
	got := Lease{TTL: 6 * time.Second}.WithDefaults()
	want := Lease{TTL: 6 * time.Second, Heartbeat: 2 * time.Second, Fence: 4 * time.Second, Failover: 10 * time.Second, Slack: time.Second}
	if got != want {
		t.Fatalf("WithDefaults = %+v, want %+v", got, want)
	}
	if d := DefaultLease(); d != (Lease{TTL: 10 * time.Second, Heartbeat: 3 * time.Second, Fence: 7 * time.Second, Failover: 10 * time.Second, Slack: time.Second}) {
		t.Fatalf("DefaultLease = %+v", d)
	}
	for _, c := range []struct {
		l     Lease
		field string
		rule  string
	}{
		{Lease{TTL: 3 * time.Second, Heartbeat: 1500 * time.Millisecond}, "Heartbeat", "must be at most TTL/3 (1s), so a lease survives two failed renewals"},
		{Lease{Fence: 5999 * time.Millisecond}, "Fence", "must be at least 2×Heartbeat (6s): the renewal sent a heartbeat after the last proof needs a heartbeat to come back"},
	} {
		var fe *FieldError
		if err := c.l.Validate(); !errors.As(err, &fe) || fe.Field != c.field || fe.Rule != c.rule {
			t.Errorf("%+v: Validate = %v, want %s: %s", c.l, err, c.field, c.rule)
		}
	}
}

func TestSessionFence(t *testing.T) {
	s := sessionFor(t, Alive, NoGuard)
	out, err := s.Step(t0, EvFence)
	if err != nil || s.State() != Closing || s.Reason() != ReasonFenced {
		t.Fatalf("fence: %v, state %s reason %s", err, s.State(), s.Reason())
	}
	if len(out.Actions) != 1 || out.Actions[0].Kind != ActClose || out.Actions[0].Code != 1001 {
		t.Fatalf("fence actions %+v, want a 1001 close", out.Actions)
	}
	if _, err := s.Step(t0, EvSent); err == nil {
		t.Fatal("a fenced session accepted a send")
	}
}
