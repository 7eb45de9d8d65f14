package fsm

import (
	"errors"
	"time"

	"github.com/qmuntal/stateless"
)

// Events a node driver hands to Node.Step and a peer-view driver to
// Peer.Step. An acknowledged lease write goes to Node.Proved and a lease
// seen in the store to Peer.Seen instead, since they carry a time or an
// incarnation.
const (
	// EvLeaseFailed: a lease write (create or renewal) was refused or
	// failed, or the engine is unreachable.
	EvLeaseFailed Event = iota + 60
	// EvEngineUp: the engine is reachable again; a fenced node rejoins at
	// once instead of after a heartbeat.
	EvEngineUp
	// EvLeave: the node is shutting down cleanly. Idempotent.
	EvLeave
	// EvLeaseGone: the peer's lease is gone without a leave (the watch saw
	// its expiry, or a re-check found no lease).
	EvLeaseGone
	// EvPeerLeft: the peer deleted its lease on a clean leave.
	EvPeerLeft
)

// ErrFutureProof is returned by Node.Proved for a write stamped after the
// moment it is reported: a driver bug that would stretch the fence.
var ErrFutureProof = errors.New("fsm: lease write reported as sent after it was acknowledged")

// Node is the sans-I/O lifecycle of a cluster node's own lease. A driver
// carries out its Actions (create or renew the lease, fence, leave),
// reports each answer (Proved with the write's send time, or
// EvLeaseFailed) and hands in EvTick at Deadline. It serves sessions only
// while Serving; the moment it cannot prove its lease for Lease.Fence it
// answers ActFence, strictly before Lease.EarliestDead. Like Client, it
// does no I/O and is owned by one driver.
type Node struct {
	state     State
	l         Lease
	inc       uint64
	incStart  time.Time // first write of this incarnation: older proofs are stale
	proof     time.Time // send time of the latest acknowledged write, zero if none
	sentAt    time.Time // send time of the latest write
	inflight  bool      // the latest write is unanswered
	nextWrite time.Time // when the next create or renewal is due
	fencedAt  time.Time
	acts      []Action

	inst    nodeInstance
	machine *stateless.StateMachine
	trans   Transition
}

type nodeInstance struct {
	instanceCtx
	n *Node
}

func (i *nodeInstance) LifecycleState() State     { return i.n.state }
func (i *nodeInstance) SetLifecycleState(s State) { i.n.state = s }
func (i *nodeInstance) GuardHolds(Guard) bool     { return false }

// NewNode returns a Node in Joining for incarnation inc, its first create
// due at now (hand in EvTick), or the validation error of l. inc must grow
// across restarts of the node (a start time in nanoseconds will do); each
// rejoin after a fence adds one.
func NewNode(now time.Time, l Lease, inc uint64) (*Node, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	n := &Node{machine: shared.node(), state: Joining, l: l.WithDefaults(), inc: inc,
		incStart: now, nextWrite: now, acts: make([]Action, 0, 3)}
	n.inst.n = n
	return n, nil
}

// State returns the current state.
func (n *Node) State() State { return n.state }

// Serving reports whether the node may serve sessions: Member or Degraded.
// A driver refuses new sessions otherwise.
func (n *Node) Serving() bool { return n.state == Member || n.state == Degraded }

// Incarnation returns the current lease incarnation.
func (n *Node) Incarnation() uint64 { return n.inc }

// Proof returns the send time of the latest acknowledged lease write of
// this incarnation, and false if there is none.
func (n *Node) Proof() (time.Time, bool) { return n.proof, !n.proof.IsZero() }

// Deadline returns when the driver must next hand in EvTick, and false once
// the node has left.
func (n *Node) Deadline() (time.Time, bool) {
	switch n.state {
	case Joining:
		return n.nextWrite, true
	case Member, Degraded:
		return earliest(n.nextWrite, n.proof.Add(n.l.Fence)), true
	case Fenced:
		return n.fencedAt.Add(n.l.Heartbeat), true
	}
	return time.Time{}, false
}

// Step applies one event observed at now. A serving node past its fence
// deadline fences first, whatever the event (EvLeave aside), and the event
// is dropped: time alone decides the fence. EvLeave in Left is a no-op; an
// event the node does not take returns an *UnhandledError.
func (n *Node) Step(now time.Time, ev Event) (Output, error) {
	n.acts = n.acts[:0]
	var tr Trigger
	if ev == EvLeave {
		if n.state != Left {
			tr = Leave
		}
		return n.fire(now, tr, ev)
	}
	if n.fenceDue(now) {
		return n.fire(now, FenceDue, ev)
	}
	switch ev {
	case EvTick:
		tr = n.due(now)
	case EvLeaseFailed:
		n.inflight = false
		if n.state == Member {
			tr = RenewFailed
		}
	case EvEngineUp:
		if n.state == Fenced {
			tr = Rejoin
		}
	default:
		return Output{}, &UnhandledError{Machine: MachineNode, State: n.state, Event: ev}
	}
	return n.fire(now, tr, ev)
}

// Proved reports that the engine acknowledged a lease write the node sent
// at sentAt (the At of its ActCreateLease or ActRenewLease). The proof
// counts from sentAt, not now: the engine wrote the lease no earlier than
// it was sent, so it expires no earlier than sentAt + TTL. A proof from an
// earlier incarnation, or reaching a fenced or departed node, changes
// nothing; one reaching a node past its fence deadline fences it instead.
func (n *Node) Proved(now, sentAt time.Time) (Output, error) {
	n.acts = n.acts[:0]
	if sentAt.After(now) {
		return Output{}, ErrFutureProof
	}
	if n.fenceDue(now) {
		return n.fire(now, FenceDue, EvTick)
	}
	if (n.state != Joining && !n.Serving()) || sentAt.Before(n.incStart) {
		return Output{Actions: n.acts}, nil
	}
	if sentAt.After(n.proof) {
		n.proof = sentAt
	}
	if !sentAt.Before(n.sentAt) {
		n.inflight = false
	}
	var tr Trigger
	switch n.state {
	case Joining:
		tr = Leased
	case Degraded:
		tr = Renewed
	}
	return n.fire(now, tr, EvTick)
}

func (n *Node) fenceDue(now time.Time) bool {
	return n.Serving() && !now.Before(n.proof.Add(n.l.Fence))
}

// due returns the trigger an expired deadline fires, and queues the write
// that is due. A write still unanswered when the next is due has failed.
func (n *Node) due(now time.Time) Trigger {
	switch n.state {
	case Joining, Member, Degraded:
		if now.Before(n.nextWrite) {
			return 0
		}
		failed := n.inflight
		kind := ActRenewLease
		if n.state == Joining {
			kind = ActCreateLease
		}
		n.write(now, kind)
		if failed && n.state == Member {
			return RenewFailed
		}
	case Fenced:
		if !now.Before(n.fencedAt.Add(n.l.Heartbeat)) {
			return Rejoin
		}
	}
	return 0
}

func (n *Node) write(now time.Time, kind ActionKind) {
	n.sentAt, n.inflight, n.nextWrite = now, true, now.Add(n.l.Heartbeat)
	n.acts = append(n.acts, Action{Kind: kind, At: now, Incarnation: n.inc})
}

func (n *Node) fire(now time.Time, tr Trigger, ev Event) (Output, error) {
	if tr == 0 {
		return Output{Actions: n.acts}, nil
	}
	from := n.state
	if err := fire(n.machine, &n.inst, tr, ev); err != nil {
		return Output{}, err
	}
	n.enter(now, from, tr)
	return Output{Transition: &n.trans, Actions: n.acts}, nil
}

// enter is the one place a node state is entered. Tear-down actions go
// before any write queued by the same step.
func (n *Node) enter(now time.Time, from State, tr Trigger) {
	to := n.state
	n.trans = Transition{Machine: MachineNode, At: now, From: from, To: to, Trigger: tr}
	var first []Action
	switch to {
	case Fenced:
		n.fencedAt, n.inflight = now, false
		first = append(first, Action{Kind: ActFence, Reason: ReasonFenced, Incarnation: n.inc})
		n.acts = n.acts[:0] // no write goes out from a fenced node
	case Joining:
		n.inc++
		n.incStart, n.proof = now, time.Time{}
		n.write(now, ActCreateLease)
	case Left:
		n.inflight = false
		n.acts = n.acts[:0]
		first = append(first,
			Action{Kind: ActRemoveSessions, Incarnation: n.inc},
			Action{Kind: ActDeleteLease, Incarnation: n.inc})
	}
	if len(first) > 0 {
		n.acts = append(first, n.acts...)
	}
	n.trans.Incarnation = n.inc
}

// Peer is the sans-I/O lifecycle of one node's view of another node of its
// cluster. Its driver watches the peer's lease and reports what it sees
// (Seen, EvLeaseGone, EvPeerLeft), and re-checks the lease every
// Lease.Heartbeat when asked (ActRecheck), because a KV watch can miss an
// expiry marker. The peer is counted dead only on the engine's word (an
// expiry seen or a lease found missing), never on a local timer, so no
// clock skew between nodes can make it early: not before
// Lease.EarliestDead of the peer's last proof.
type Peer struct {
	state     State
	l         Lease
	inc       uint64
	nextCheck time.Time
	acts      []Action

	inst    peerInstance
	machine *stateless.StateMachine
	trans   Transition
}

type peerInstance struct {
	instanceCtx
	p *Peer
}

func (i *peerInstance) LifecycleState() State     { return i.p.state }
func (i *peerInstance) SetLifecycleState(s State) { i.p.state = s }
func (i *peerInstance) GuardHolds(Guard) bool     { return false }

// NewPeer returns the view of a peer whose lease of incarnation inc was
// seen at now: Alive, its first re-check due a heartbeat later. With inc
// zero it is the view of a peer known by name whose lease was not found
// (a node listed in the configuration that has not joined): Expired,
// re-checked like any other. It returns the validation error of l.
func NewPeer(now time.Time, l Lease, inc uint64) (*Peer, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	p := &Peer{machine: shared.peer(), state: Alive, l: l.WithDefaults(), inc: inc, acts: make([]Action, 0, 2)}
	if inc == 0 {
		p.state = Expired
	}
	p.nextCheck = now.Add(p.l.Heartbeat)
	p.inst.p = p
	return p, nil
}

// State returns the current state.
func (p *Peer) State() State { return p.state }

// Incarnation returns the latest incarnation seen.
func (p *Peer) Incarnation() uint64 { return p.inc }

// Deadline returns when the next re-check is due. Re-checks go on in
// every state: in Alive they find an expiry the watch missed, in Expired
// and Left a new incarnation it missed.
func (p *Peer) Deadline() (time.Time, bool) { return p.nextCheck, true }

// Step applies one event observed at now: EvTick (asks for a re-check when
// due, in every state), EvLeaseGone or EvPeerLeft (no-ops unless Alive).
func (p *Peer) Step(now time.Time, ev Event) (Output, error) {
	p.acts = p.acts[:0]
	var tr Trigger
	switch ev {
	case EvTick:
		if !now.Before(p.nextCheck) {
			p.nextCheck = now.Add(p.l.Heartbeat)
			p.acts = append(p.acts, Action{Kind: ActRecheck, Incarnation: p.inc})
		}
	case EvLeaseGone:
		if p.state == Alive {
			tr = LeaseGone
		}
	case EvPeerLeft:
		if p.state == Alive {
			tr = PeerLeft
		}
	default:
		return Output{}, &UnhandledError{Machine: MachinePeer, State: p.state, Event: ev}
	}
	return p.fire(now, tr, ev, p.inc)
}

// Seen reports that the peer's lease of incarnation inc is in the store (a
// watch put or a listing). A newer incarnation than the one known revives
// the peer and counts the old incarnation's sessions dead; the same or an
// older one changes nothing.
func (p *Peer) Seen(now time.Time, inc uint64) (Output, error) {
	p.acts = p.acts[:0]
	if inc <= p.inc {
		return Output{Actions: p.acts}, nil
	}
	return p.fire(now, PeerRejoined, EvTick, inc)
}

func (p *Peer) fire(now time.Time, tr Trigger, ev Event, inc uint64) (Output, error) {
	if tr == 0 {
		return Output{Actions: p.acts}, nil
	}
	from := p.state
	if err := fire(p.machine, &p.inst, tr, ev); err != nil {
		return Output{}, err
	}
	p.trans = Transition{Machine: MachinePeer, At: now, From: from, To: p.state, Trigger: tr}
	if from == Alive {
		// The incarnation known until now is dead: its sessions go first.
		p.acts = append(p.acts, Action{Kind: ActDeclareDead, Reason: ReasonNodeDead, Incarnation: p.inc})
	}
	if p.state == Alive {
		p.inc = inc
	}
	p.trans.Incarnation = p.inc
	return Output{Transition: &p.trans, Actions: p.acts}, nil
}
