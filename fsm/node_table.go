package fsm

// Node states: a cluster node's own lease, which decides whether it may
// serve sessions. Sessions are served only in Member and Degraded.
const (
	// Joining is a node without a proved lease: its create is in flight or
	// being retried every Lease.Heartbeat. It serves no sessions, so it has
	// nothing to fence. Next: Member, Left.
	Joining State = iota + 60
	// Member is a node whose last renewal was acknowledged; it renews every
	// Lease.Heartbeat. Next: Degraded, Fenced, Left.
	Member
	// Degraded is a member whose latest renewal failed or went unanswered
	// for a heartbeat; it keeps serving and renewing until Lease.Fence after
	// its last proof. Next: Member, Fenced, Left.
	Degraded
	// Fenced is a node that could not prove its lease for Lease.Fence: it
	// closed every session it served (ReasonFenced) before any other node
	// may count them dead, and serves none. After a heartbeat, or at once
	// when the engine is reachable again, it joins anew with a new
	// incarnation. Next: Joining, Left.
	Fenced
	// Left is terminal: the node shut down cleanly, removed its sessions
	// from the directory and deleted its lease. In the peer table: the
	// peer left cleanly. Next (peer table only): Alive.
	Left
)

// Peer view states (with Alive and Left, shared with the tables above).
const (
	// Expired is a peer whose lease is gone without a clean leave: the
	// engine expired it, so it has not proved it for a TTL, and it fenced
	// itself before then. Its sessions are counted dead. Next: Alive (a
	// new incarnation appeared).
	Expired State = iota + 70
)

// Node table triggers.
const (
	// Leased: the create of the node's lease was acknowledged.
	Leased Trigger = iota + 60
	// RenewFailed: a renewal was refused, failed or went unanswered for a
	// heartbeat.
	RenewFailed
	// Renewed: a renewal was acknowledged after a failure.
	Renewed
	// FenceDue: Lease.Fence has passed since the node last proved its lease.
	FenceDue
	// Rejoin: a fenced node starts a new incarnation.
	Rejoin
	// Leave: the node is shutting down cleanly.
	Leave
)

// Peer table triggers.
const (
	// LeaseGone: the peer's lease is gone without a leave: an expiry seen
	// by the watch or by the periodic re-check.
	LeaseGone Trigger = iota + 70
	// PeerLeft: the peer deleted its lease on a clean leave.
	PeerLeft
	// PeerRejoined: a lease of a newer incarnation of the peer appeared.
	PeerRejoined
)

// NodeTable returns the lifecycle of a cluster node's own lease. Each call
// returns a fresh copy.
func NodeTable() *Table {
	return &Table{
		Machine:  MachineNode,
		Initial:  Joining,
		States:   []State{Joining, Member, Degraded, Fenced, Left},
		Terminal: []State{Left},
		Rows: []Row{
			{Joining, Leased, Member, NoGuard},
			{Joining, Leave, Left, NoGuard},

			{Member, RenewFailed, Degraded, NoGuard},
			{Member, FenceDue, Fenced, NoGuard},
			{Member, Leave, Left, NoGuard},

			{Degraded, Renewed, Member, NoGuard},
			{Degraded, FenceDue, Fenced, NoGuard},
			{Degraded, Leave, Left, NoGuard},

			{Fenced, Rejoin, Joining, NoGuard},
			{Fenced, Leave, Left, NoGuard},
		},
	}
}

// PeerTable returns one node's view of another node of its cluster. It has
// no terminal state: a peer that expired or left may come back as a new
// incarnation. Each call returns a fresh copy.
func PeerTable() *Table {
	return &Table{
		Machine: MachinePeer,
		Initial: Alive,
		States:  []State{Alive, Expired, Left},
		Rows: []Row{
			{Alive, LeaseGone, Expired, NoGuard},
			{Alive, PeerLeft, Left, NoGuard},
			{Alive, PeerRejoined, Alive, NoGuard},
			{Expired, PeerRejoined, Alive, NoGuard},
			{Left, PeerRejoined, Alive, NoGuard},
		},
	}
}

// Tables returns every built-in lifecycle, in the order the docs list
// them: client, session, node, peer.
func Tables() []*Table {
	return []*Table{ClientTable(), SessionTable(), NodeTable(), PeerTable()}
}
