package fsm

import (
	"strconv"
	"time"
)

// Event is what a driver observed and hands to Step, stamped with the time
// it observed it. Events are observations; the machine turns them into
// Triggers (or into bookkeeping that changes no state).
type Event uint8

// Events a client driver hands to Client.Step.
const (
	// EvStart: Run was called.
	EvStart Event = iota + 1
	// EvDialOK: the dial and WebSocket handshake of the current attempt succeeded.
	EvDialOK
	// EvDialFailed: the current attempt failed before the link was up.
	EvDialFailed
	// EvDropped: the established link failed or the server closed it.
	EvDropped
	// EvStop: the owner asked the client to stop. Idempotent.
	EvStop
)

// Events of the reconnect policy v2 a client driver hands to Client.Step.
// Both are the owner's requests; in a state with no row for them they do
// nothing.
const (
	// EvReconnectNow: retry now (the network came back). A BackingOff
	// client dials at once if Backoff.ReconnectFloor has passed since its
	// latest attempt started (and the failure's Retry-After floor, if it
	// had one), else its retry moves to that instant.
	EvReconnectNow Event = iota + 10
	// EvResetBackoff: forget the run of failures. A Connected client's next
	// drop starts a fresh run; a BackingOff client's pending retry is
	// drawn again as after a first failure, no earlier than the floor.
	EvResetBackoff
)

// Events a session driver hands to Session.Step.
const (
	// EvUpgraded: the WebSocket upgrade completed.
	EvUpgraded Event = iota + 20
	// EvHandshakeFailed: the upgrade failed.
	EvHandshakeFailed
	// EvProtocolError: a recoverable error (an undecodable payload, say).
	EvProtocolError
	// EvSendError: a write failed or hit the write deadline.
	EvSendError
	// EvReadError: a read failed (RST, EOF, over the read limit).
	EvReadError
	// EvPeerClose: the peer sent a close frame.
	EvPeerClose
	// EvSlowConsumer: the send queue is full.
	EvSlowConsumer
	// EvShutdown: the server is shutting down. Idempotent.
	EvShutdown
	// EvClosed: the transport finished closing.
	EvClosed
	// EvFence: the session's node fenced itself (Node entered Fenced).
	// Idempotent, like EvShutdown.
	EvFence
)

// Events both machines accept.
const (
	// EvTick: time passed. The driver hands it in at (or after) Deadline();
	// an early or repeated Tick is harmless, so timers need no generation.
	EvTick Event = iota + 40
	// EvPong: a pong (or any control frame) arrived: a sign of life.
	EvPong
	// EvMessage: an application message arrived: a sign of life and of activity.
	EvMessage
	// EvSent: an application message was written: activity. A session
	// accepts it only while Alive or Suspect, so a send after the session
	// left them is reported as an error.
	EvSent
)

var eventNames = map[Event]string{
	EvStart: "start", EvDialOK: "dial_ok", EvDialFailed: "dial_failed", EvDropped: "dropped",
	EvStop: "stop", EvReconnectNow: "reconnect_now", EvResetBackoff: "reset_backoff", EvUpgraded: "upgraded", EvHandshakeFailed: "handshake_failed",
	EvProtocolError: "protocol_error", EvSendError: "send_error", EvReadError: "read_error",
	EvPeerClose: "peer_close", EvSlowConsumer: "slow_consumer", EvShutdown: "shutdown",
	EvClosed: "closed", EvTick: "tick", EvPong: "pong", EvMessage: "message", EvSent: "sent",
	EvFence: "fence", EvLeaseFailed: "lease_failed", EvEngineUp: "engine_up", EvLeave: "leave",
	EvLeaseGone: "lease_gone", EvPeerLeft: "peer_left",
}

// String returns the event's name.
func (e Event) String() string {
	if n, ok := eventNames[e]; ok {
		return n
	}
	return "Event(" + strconv.Itoa(int(e)) + ")"
}

// ActionKind says what a driver must do.
type ActionKind uint8

const (
	// ActAbortDial: cancel the dial in flight.
	ActAbortDial ActionKind = iota + 1
	// ActDrop: release the client's transport now (no close handshake).
	ActDrop
	// ActClose: send a close frame with Action.Code, best effort, bounded by
	// the write timeout. On a session in Closing, keep reading until the
	// peer answers (EvClosed) or CloseTimeout passes.
	ActClose
	// ActReap: release the session's transport and unregister it;
	// Action.Reason says why. Nothing may be sent on it afterwards.
	ActReap
	// ActDial: start attempt Action.Attempt; abandon it at Action.At.
	ActDial
	// ActScheduleRetry: the next attempt (Action.Attempt) is due at
	// Action.At, Action.Delay after the failure. The driver only needs to
	// Tick at Deadline(); the action is there to log and to report.
	ActScheduleRetry
	// ActSendPing: write a WebSocket ping now.
	ActSendPing
	// ActCreateLease: write a new lease for incarnation Action.Incarnation
	// now (a create that fails if the key exists); report the answer with
	// Node.Proved (stamped with Action.At, the time it was sent) or
	// EvLeaseFailed.
	ActCreateLease
	// ActRenewLease: rewrite the lease now, resetting its TTL; report the
	// answer as for ActCreateLease. Action.At is the send time to hand back.
	ActRenewLease
	// ActFence: close every session this node serves, with Action.Reason
	// (ReasonFenced), before anything else: the cluster is about to count
	// them dead. Refuse new sessions until the node is a Member again.
	ActFence
	// ActRemoveSessions: remove this node's sessions (incarnation
	// Action.Incarnation) from the cluster directory now, without waiting
	// for the lease to expire.
	ActRemoveSessions
	// ActDeleteLease: delete this node's lease now (a clean leave).
	ActDeleteLease
	// ActRecheck: list the peer's lease now (the watch may have missed its
	// expiry) and report what was found: Peer.Seen or EvLeaseGone.
	ActRecheck
	// ActDeclareDead: count every session of the peer's incarnation
	// Action.Incarnation dead, with Action.Reason (ReasonNodeDead): drop
	// them from this node's directory view and answer sends to them with
	// no such session.
	ActDeclareDead
)

var actionNames = map[ActionKind]string{
	ActAbortDial: "abort_dial", ActDrop: "drop", ActClose: "close", ActReap: "reap",
	ActDial: "dial", ActScheduleRetry: "schedule_retry", ActSendPing: "send_ping",
	ActCreateLease: "create_lease", ActRenewLease: "renew_lease", ActFence: "fence",
	ActRemoveSessions: "remove_sessions", ActDeleteLease: "delete_lease", ActRecheck: "recheck",
	ActDeclareDead: "declare_dead",
}

// String returns the action kind's name.
func (k ActionKind) String() string {
	if n, ok := actionNames[k]; ok {
		return n
	}
	return "ActionKind(" + strconv.Itoa(int(k)) + ")"
}

// Action is one thing the driver must do. Only the fields its Kind names
// are set. Actions of one Step come in the order they must be carried out:
// tear-down first (abort, close, drop, reap), then new work (dial, ping).
type Action struct {
	Kind    ActionKind
	At      time.Time     // ActDial: attempt deadline; ActScheduleRetry: when the attempt is due
	Attempt int           // ActDial, ActScheduleRetry: attempt number, 1-based
	Delay   time.Duration // ActScheduleRetry: the backoff delay chosen
	Code    int           // ActClose: WebSocket close code
	Reason  Reason        // ActReap, ActClose on a session, ActFence, ActDeclareDead: why
	// Incarnation numbers a node's lease: ActCreateLease, ActRenewLease,
	// ActRemoveSessions, ActDeclareDead.
	Incarnation uint64
}

// Transition records one state change, the unit of the log contract and of
// simulator traces.
type Transition struct {
	Machine Machine   // whose state changed
	At      time.Time // the now of the Step that made it
	From    State     // the state left
	To      State     // the state entered (From again on a re-entry)
	Trigger Trigger   // the table trigger that fired
	// Reason is set when a session enters Closing or Reaped.
	Reason Reason
	// Attempt is the attempt a client transition concerns: the one starting
	// (to Connecting), the one scheduled (to Backoff) or the last one made
	// (to GaveUp). Zero elsewhere.
	Attempt int
	// Delay is the backoff delay chosen when a client enters Backoff.
	Delay time.Duration
	// Incarnation is the lease incarnation a node or peer transition
	// concerns (the new one on a rejoin). Zero for clients and sessions.
	Incarnation uint64
}

// Output is what one Step produced. It aliases buffers owned by the
// machine (or, for a Session's actions, tables shared by every Session)
// and stays valid until the next call that takes a time (Step,
// SetBackoff). It is read-only.
type Output struct {
	// Transition is the state change this step made, or nil. A step makes at
	// most one.
	Transition *Transition
	// Actions to carry out, in order.
	Actions []Action
}
