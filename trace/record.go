package trace

import (
	"strconv"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// Kind says what a Record reports and which of its fields are set.
type Kind uint8

// Record kinds. IDs: a client is numbered by its process slot, a session
// (one server-side link) by the order links were opened; both are dense
// from 0, which lets checkers index slices by them.
const (
	// Transition: a state change of a client (ID = client) or a session
	// (ID = session), with Machine, From, To, Trigger and, as
	// fsm.Transition has them, Reason, Attempt and Delay.
	Transition Kind = iota + 1
	// Dial: client ID began attempt Attempt toward server Server.
	Dial
	// Up: client ID's link came up; Peer is its session, or NoID when the
	// far end is not a lifeline server (an accept-then-close proxy).
	Up
	// Down: client ID saw its attempt or its link fail (dial refused,
	// timed out, link dropped or declared dead), before handing it to its
	// lifecycle. The invariants count consecutive failures from these.
	// Code is the status or close code it carried, Delay the wait a
	// refused handshake's Retry-After asked for (zero: none).
	Down
	// ClientStart: a client process started a fresh run.
	ClientStart
	// ClientExit: client process ID died (kill -9, host crash).
	ClientExit
	// Register: server Server registered session ID for client Peer.
	Register
	// Unregister: the server removed session ID from its registry.
	Unregister
	// Send: an application message was written on session ID.
	Send
	// SendFailed: a write on session ID failed: the fast liveness tier,
	// after which the session must be reaped at once.
	SendFailed
	// PeerDead: nothing more will be heard from session ID's peer (it died,
	// or its path is dead for good); its last frame reaches the server at
	// LastSign.
	PeerDead
	// Degraded: a frame on session ID's path was lost, held or took at
	// least half the pong timeout: a reap for silence is excused. Delay,
	// when set, is how long the frame took, so each end judges it against
	// its own pong timeout; zero means "slow enough for either end".
	Degraded
	// ServerDown: server Server stopped; its listener refuses until ServerUp.
	ServerDown
	// ServerUp: server Server's listener is back.
	ServerUp
	// Quiesce: no new attempts start from now on; the world settles.
	Quiesce
	// Settled: the world has settled; the registry must match the live peers.
	Settled

	// Cluster records. Nodes are numbered like servers (a node is a server
	// of the cluster); Inc is a lease incarnation.

	// NodeStart: node Server's process started, incarnation Inc.
	NodeStart
	// NodeCrash: node Server's process was killed (kill -9): its sessions
	// are gone with it, its lease is no longer renewed.
	NodeCrash
	// CutOff: node Server can no longer reach the engine (its clients
	// still reach it).
	CutOff
	// Reconnected: node Server reaches the engine again.
	Reconnected
	// FailoverStart: the engine's leader failed; writes, reads and
	// expiries pause until FailoverEnd.
	FailoverStart
	// FailoverEnd: the engine has a leader again.
	FailoverEnd
	// LeaseWrite: the engine wrote node Server's lease, incarnation Inc, at
	// At (the W of fsm.Lease.LatestDead).
	LeaseWrite
	// LeaseEnd: node Server's lease of incarnation Inc is gone from the
	// engine: expired, or replaced by a newer incarnation.
	LeaseEnd
	// Declared: node ID counts node Peer's incarnation Inc dead (its
	// sessions are dropped from ID's directory view).
	Declared
	// DirAdd: node ID's directory view gained session Peer.
	DirAdd
	// DirDel: node ID's directory view lost session Peer.
	DirDel
	// XSend: node Server sent a message to session ID, which its directory
	// places on node Peer.
	XSend
	// XAnswer: node Server's send to session ID was answered with Result
	// (in Attempt) after Delay.
	XAnswer
)

// Results of a cross-node send, in XAnswer's Attempt.
const (
	// Delivered: the owner wrote the message on the live session.
	Delivered int32 = iota + 1
	// NoSuchSession: nobody holds the session (no responders, or the owner
	// has no such live session).
	NoSuchSession
	// Unreachable: the sender could not reach the engine.
	Unreachable
)

var resultNames = [...]string{Delivered: "delivered", NoSuchSession: "no_such_session", Unreachable: "unreachable"}

var kindNames = [...]string{
	Transition: "transition", Dial: "dial", Up: "up", Down: "down", ClientStart: "client_start",
	ClientExit: "client_exit", Register: "register", Unregister: "unregister", Send: "send",
	SendFailed: "send_failed", PeerDead: "peer_dead", Degraded: "degraded", ServerDown: "server_down",
	ServerUp: "server_up", Quiesce: "quiesce", Settled: "settled",
	NodeStart: "node_start", NodeCrash: "node_crash", CutOff: "cut_off", Reconnected: "reconnected",
	FailoverStart: "failover_start", FailoverEnd: "failover_end", LeaseWrite: "lease_write",
	LeaseEnd: "lease_end", Declared: "declared", DirAdd: "dir_add", DirDel: "dir_del",
	XSend: "xsend", XAnswer: "xanswer",
}

// String returns the kind's name as it appears in text traces.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	if n, ok := factNames[k]; ok {
		return n
	}
	if n, ok := policyNames[k]; ok {
		return n
	}
	if n, ok := outboxNames[k]; ok {
		return n
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// NoID marks an absent client or session in Peer.
const NoID = ^uint32(0)

// Record is one entry of a trace. Only the fields its Kind names are set;
// the rest are zero. At and LastSign are virtual (or synctest) time since
// the run's epoch. Each Kind's doc says what ID, Peer, Server and Attempt
// name for it; a Transition's Machine, From, To, Trigger and Reason are
// the fsm.Transition's.
type Record struct {
	At       time.Duration
	Delay    time.Duration // Transition into BackingOff: the backoff delay chosen; Degraded: the frame's transit time; Down: the server's Retry-After
	LastSign time.Duration // PeerDead: when the peer's last frame reaches the server
	ID       uint32
	Peer     uint32
	Server   uint32
	Attempt  int32 // Dial, Transition: the attempt; OutboxQueued: the message's bytes
	Kind     Kind
	Machine  fsm.Machine
	From     fsm.State
	To       fsm.State
	Trigger  fsm.Trigger
	Reason   fsm.Reason
	// Code is, on a Down, the HTTP status of a refused handshake or the
	// close code the server sent, as the failure table reads them; zero
	// for a network failure. On an OutboxDropped, the fsm.DropReason.
	Code uint16
	// Inc is the lease incarnation of node and peer transitions and of the
	// cluster records that name one; on outbox records, the message's
	// number.
	Inc uint64
}

// FromTransition returns the Transition record of instance id for tr,
// with tr.At measured from epoch.
func FromTransition(epoch time.Time, id uint32, tr *fsm.Transition) Record {
	return Record{
		At: tr.At.Sub(epoch), Kind: Transition, Machine: tr.Machine, ID: id,
		From: tr.From, To: tr.To, Trigger: tr.Trigger, Reason: tr.Reason,
		Attempt: int32(tr.Attempt), Delay: tr.Delay, Inc: tr.Incarnation,
	}
}

// Subject returns the machine and id a record is about: the client or
// session whose history it belongs to. World-level records return 0.
func (r *Record) Subject() (fsm.Machine, uint32) {
	switch r.Kind {
	case Transition:
		return r.Machine, r.ID
	case Dial, Up, Down, ClientStart, ClientExit, Nudge, OutboxQueued, OutboxWritten, OutboxDropped:
		return fsm.MachineClient, r.ID
	case Register, Unregister, Send, SendFailed, PeerDead, Degraded, Recv, BadRecv, QueueFull, XSend, XAnswer:
		return fsm.MachineSession, r.ID
	case NodeStart, NodeCrash, CutOff, Reconnected, LeaseWrite, LeaseEnd:
		return fsm.MachineNode, r.Server
	case Declared, DirAdd, DirDel:
		return fsm.MachineNode, r.ID
	}
	return 0, 0
}
