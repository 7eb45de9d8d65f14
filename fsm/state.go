package fsm

import "strconv"

// Machine names a lifecycle: the client connection or the server session.
type Machine uint8

const (
	// MachineClient is the lifecycle of a reconnecting client connection.
	MachineClient Machine = iota + 1
	// MachineSession is the lifecycle of one server-side session.
	MachineSession
	// MachineNode is a cluster node's own lease: whether it may serve
	// sessions (see NodeTable).
	MachineNode
	// MachinePeer is one node's view of another node of its cluster (see
	// PeerTable).
	MachinePeer
)

// String returns "client", "session", "node" or "peer", the value of the
// `machine` log key.
func (m Machine) String() string {
	switch m {
	case MachineClient:
		return "client"
	case MachineSession:
		return "session"
	case MachineNode:
		return "node"
	case MachinePeer:
		return "peer"
	}
	return "Machine(" + strconv.Itoa(int(m)) + ")"
}

// State is a lifecycle state. Client and session states share one type so
// traces, logs and diagrams handle both alike; each Table says which states
// belong to its machine.
type State uint8

// Client connection states.
const (
	// Idle is the client before Run. Next: Connecting, Stopped.
	Idle State = iota + 1
	// Connecting is a dial plus WebSocket handshake in flight, bounded by the
	// policy's ConnectTimeout. Next: Connected, BackingOff, Rejected, GaveUp,
	// Stopped.
	Connecting
	// Connected is an open link watched by the liveness policy.
	// Next: Connected (backoff reset), BackingOff, Rejected, GaveUp, Stopped.
	Connected
	// BackingOff is the wait before the next attempt after a transient
	// failure. Next: BackingOff (reconnect-now before its floor, backoff
	// reset), Connecting, Stopped.
	BackingOff
	// GaveUp is terminal: MaxAttempts consecutive attempts failed, the
	// client went GiveUpAfter without a proven link, or a failure the
	// failure table calls fatal (Client.GaveUpCause says which).
	GaveUp
	// Stopped is terminal: the owner asked the client to stop.
	Stopped
)

// Rejected is the client's wait after a permanent failure (the server
// said "go away": 401, 403, 404, close 1008, ... by the failure table), on
// the slow schedule (FailurePolicy.Schedule). Reconnect-now does not cut
// it short. Next: Connecting, Stopped.
const Rejected State = 10

// Server session states.
const (
	// Handshaking is a session whose upgrade has not completed, bounded by the
	// liveness policy's HandshakeTimeout. Next: Alive, Reaped.
	Handshaking State = iota + 20
	// Alive is an open session heard from recently with no recent errors.
	// Next: Suspect, Closing, Reaped. In the peer table (a node's view of
	// another node) it is a peer whose lease is held. Next: Alive (a new
	// incarnation), Expired, Left.
	Alive
	// Suspect is an open session that has produced recoverable errors (bad
	// frames, undecodable payloads). A good message returns it to Alive;
	// MaxErrors consecutive errors move it to Closing. Next: Alive, Closing, Reaped.
	Suspect
	// Closing is a close handshake in progress, bounded by CloseTimeout.
	// No application data may be sent. Next: Reaped.
	Closing
	// Reaped is terminal: the transport is released and the reason recorded.
	Reaped
)

var stateNames = map[State]string{
	Idle: "Idle", Connecting: "Connecting", Connected: "Connected", BackingOff: "BackingOff",
	GaveUp: "GaveUp", Stopped: "Stopped",
	Rejected:    "Rejected",
	Handshaking: "Handshaking", Alive: "Alive", Suspect: "Suspect", Closing: "Closing", Reaped: "Reaped",
	Joining: "Joining", Member: "Member", Degraded: "Degraded", Fenced: "Fenced", Left: "Left",
	Expired: "Expired",
}

// String returns the state's name as it appears in logs and diagrams.
func (s State) String() string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Trigger labels an edge of a transition table. Drivers never fire triggers
// directly: they hand Events to Step, which picks the trigger (a Tick past a
// deadline becomes RetryDue, PongTimeout, ...).
type Trigger uint8

// Triggers of the client table.
const (
	// Start begins the first attempt.
	Start Trigger = iota + 1
	// DialOK reports a completed dial and WebSocket handshake.
	DialOK
	// DialFailed reports a failed dial or handshake: refused, DNS failure,
	// non-101 status, TLS error.
	DialFailed
	// DialTimeout fires when an attempt outlives ConnectTimeout.
	DialTimeout
	// RetryDue fires when the backoff delay has elapsed.
	RetryDue
	// Dropped reports that an established link failed (read or write error,
	// close frame from the server).
	Dropped
	// Stop is the owner's request to end.
	Stop
)

// Triggers of the client table added by the reconnect policy v2.
const (
	// GoAway reports a failed attempt or a dropped link that the failure
	// table calls permanent or fatal (a 401, a close 1008, ...).
	GoAway Trigger = iota + 10
	// ReconnectNow is the owner's request to retry at once (the network
	// came back), honoured no sooner than Backoff.ReconnectFloor after the
	// latest attempt started.
	ReconnectNow
	// ResetBackoff is the owner's request to forget the run of failures.
	ResetBackoff
)

// Triggers shared by both tables.
const (
	// PongTimeout fires when nothing was heard for PingInterval+PongTimeout:
	// the peer is dead or the path is a blackhole.
	PongTimeout Trigger = iota + 30
)

// Triggers of the session table.
const (
	// Upgraded reports a completed WebSocket upgrade.
	Upgraded Trigger = iota + 40
	// HandshakeFailed reports an upgrade that failed.
	HandshakeFailed
	// HandshakeTimeout fires when the upgrade outlives HandshakeTimeout.
	HandshakeTimeout
	// ProtocolError reports a recoverable error on the session (an
	// undecodable payload, say).
	ProtocolError
	// Recovered fires when a good message arrives on a Suspect session.
	Recovered
	// IdleTimeout fires when no application message went either way for
	// IdleTimeout.
	IdleTimeout
	// SendError reports a failed or timed-out write. It reaps at once.
	SendError
	// ReadError reports a failed read: RST, EOF without close frame, a
	// frame over the read limit.
	ReadError
	// PeerClose reports a close frame from the peer.
	PeerClose
	// SlowConsumer reports a full send queue.
	SlowConsumer
	// Shutdown is the server going away.
	Shutdown
	// Closed reports that the transport finished closing.
	Closed
	// CloseTimeout fires when a close handshake outlives CloseTimeout.
	CloseTimeout
	// Fence is the session's node fencing itself: it can no longer prove
	// its cluster lease, and the other nodes are about to count its
	// sessions dead (see Lease). It closes the session like Shutdown,
	// with ReasonFenced.
	Fence
)

var triggerNames = map[Trigger]string{
	Start: "start", DialOK: "dial_ok", DialFailed: "dial_failed", DialTimeout: "dial_timeout",
	RetryDue: "retry_due", Dropped: "dropped", Stop: "stop",
	GoAway: "go_away", ReconnectNow: "reconnect_now", ResetBackoff: "reset_backoff",
	PongTimeout: "pong_timeout",
	Upgraded:    "upgraded", HandshakeFailed: "handshake_failed", HandshakeTimeout: "handshake_timeout",
	ProtocolError: "protocol_error", Recovered: "recovered", IdleTimeout: "idle_timeout",
	SendError: "send_error", ReadError: "read_error", PeerClose: "peer_close",
	SlowConsumer: "slow_consumer", Shutdown: "shutdown", Closed: "closed", CloseTimeout: "close_timeout",
	Fence:  "fence",
	Leased: "leased", RenewFailed: "renew_failed", Renewed: "renewed", FenceDue: "fence_due",
	Rejoin: "rejoin", Leave: "leave",
	LeaseGone: "lease_gone", PeerLeft: "peer_left", PeerRejoined: "peer_rejoined",
}

// String returns the trigger's name as it appears in logs and diagrams.
func (t Trigger) String() string {
	if n, ok := triggerNames[t]; ok {
		return n
	}
	return "Trigger(" + strconv.Itoa(int(t)) + ")"
}

// Reason records why a session was closed or reaped.
type Reason uint8

const (
	// NoReason is the zero Reason: the session is not closing.
	NoReason Reason = iota
	// ReasonSendError: a write failed or timed out.
	ReasonSendError
	// ReasonPongTimeout: nothing heard for PingInterval+PongTimeout.
	ReasonPongTimeout
	// ReasonIdleTimeout: no application message for IdleTimeout.
	ReasonIdleTimeout
	// ReasonReadError: the read side failed (RST, EOF, over the read limit).
	ReasonReadError
	// ReasonPeerClose: the peer sent a close frame.
	ReasonPeerClose
	// ReasonSlowConsumer: the send queue was full.
	ReasonSlowConsumer
	// ReasonShutdown: the server shut down.
	ReasonShutdown
	// ReasonProtocolErrors: MaxErrors consecutive recoverable errors.
	ReasonProtocolErrors
	// ReasonHandshakeTimeout: the upgrade took longer than HandshakeTimeout.
	ReasonHandshakeTimeout
	// ReasonHandshakeFailed: the upgrade failed.
	ReasonHandshakeFailed
	// ReasonFenced: the session's node fenced itself: it could not prove
	// its cluster lease for Lease.Fence, so the cluster is about to count
	// it dead, and it closes every session it serves first.
	ReasonFenced
	// ReasonNodeDead: the session's node was declared dead (its lease
	// expired) or left. It is set on cluster directory entries that other
	// nodes drop, never on a local session.
	ReasonNodeDead
)

var reasonNames = [...]string{
	NoReason: "", ReasonSendError: "send_error", ReasonPongTimeout: "pong_timeout",
	ReasonIdleTimeout: "idle_timeout", ReasonReadError: "read_error", ReasonPeerClose: "peer_close",
	ReasonSlowConsumer: "slow_consumer", ReasonShutdown: "shutdown",
	ReasonProtocolErrors: "protocol_errors", ReasonHandshakeTimeout: "handshake_timeout",
	ReasonHandshakeFailed: "handshake_failed", ReasonFenced: "fenced", ReasonNodeDead: "node_dead",
}

// Reasons lists every non-zero Reason, in declaration order, for stats tables.
func Reasons() []Reason {
	var rs []Reason
	for r := ReasonSendError; int(r) < len(reasonNames); r++ {
		rs = append(rs, r)
	}
	return rs
}

// String returns the reason's name, the value of the `reason` log key.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// closeCode returns the WebSocket close code (RFC 6455 §7.4) a session
// sends when it closes for reason r, and false when no close frame is sent
// because the transport is already unusable (send error, read error) or the
// peer's close is echoed by the WebSocket library.
func (r Reason) closeCode() (int, bool) {
	switch r {
	case ReasonPongTimeout, ReasonShutdown, ReasonFenced:
		return 1001, true // going away: the client moves to another node
	case ReasonIdleTimeout:
		return 1000, true // normal closure
	case ReasonSlowConsumer, ReasonProtocolErrors:
		return 1008, true // policy violation
	}
	return 0, false
}
