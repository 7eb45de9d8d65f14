package conn

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/fsm"
)

// MessageType is the type of an application message.
type MessageType int

const (
	// TextMessage is a UTF-8 text message (JSON, say).
	TextMessage MessageType = websocket.TextMessage
	// BinaryMessage is a binary message.
	BinaryMessage MessageType = websocket.BinaryMessage
)

// Frame is the kind of a WebSocket frame in an Observation.
type Frame uint8

// Frames, numbered as their RFC 6455 opcodes.
const (
	FrameText   Frame = websocket.TextMessage
	FrameBinary Frame = websocket.BinaryMessage
	FrameClose  Frame = websocket.CloseMessage
	FramePing   Frame = websocket.PingMessage
	FramePong   Frame = websocket.PongMessage
)

var frameNames = map[Frame]string{
	FrameText: "text", FrameBinary: "binary", FrameClose: "close", FramePing: "ping", FramePong: "pong",
}

// String returns the frame kind's name.
func (f Frame) String() string {
	if n, ok := frameNames[f]; ok {
		return n
	}
	return "Frame(" + strconv.Itoa(int(f)) + ")"
}

// ObservationKind says what an Observation records.
type ObservationKind uint8

const (
	// ObsTransition: the instance changed state; Transition says how.
	ObsTransition ObservationKind = iota + 1
	// ObsSend: a frame was committed to the wire while the instance could
	// send (a session Alive or Suspect, a client Connected). A session
	// commits under the same lock that reaps it, so no ObsSend of a data
	// frame follows its Reaped transition.
	ObsSend
	// ObsReceive: a frame was read from the wire; At is when it was heard.
	ObsReceive
	// ObsRefused: a send was refused (Err says why); nothing was written.
	ObsRefused
	// ObsOutboxQueued: a client's outbox (ClientConfig.Outbox) held
	// message Seq, of Size bytes.
	ObsOutboxQueued
	// ObsOutboxWritten: message Seq was committed to the link, At being
	// the moment its age was judged: taken from the outbox and written, or
	// handed to the link at once because the outbox held nothing (then a
	// failed write is the caller's error, as without an outbox).
	ObsOutboxWritten
	// ObsOutboxDropped: the outbox dropped message Seq, for Drop.
	ObsOutboxDropped
)

// Observation is one fact about a running client or session, for property
// suites and monitoring that need more than the log: every transition with
// its time, and the send and receive facts the liveness invariants are
// stated in. Kind says which fact it is, and so which fields are set; an
// ObsTransition carries the Transition.
type Observation struct {
	Kind       ObservationKind
	Machine    fsm.Machine // MachineClient or MachineSession
	ID         string      // the client's ID, or the session's id in decimal
	At         time.Time   // by the configured clock
	Transition fsm.Transition
	Frame      Frame // ObsSend, ObsReceive, ObsRefused
	Size       int   // payload bytes: ObsSend, ObsReceive, ObsRefused, ObsOutboxQueued, ObsOutboxDropped
	Err        error // ObsRefused: the error the caller got; ObsTransition: the cause, if any
	// Seq numbers a client's application messages (1, 2, ... in the order
	// sent) on the outbox observations; Drop says why one was dropped.
	Seq  uint64
	Drop fsm.DropReason
}

// Observer receives Observations. It is called synchronously on the
// goroutine that made the observation (a reader, the writer, the timer
// goroutine or a caller of Send), sometimes with the instance's lock held:
// it must be safe for concurrent use, must not block, and must not call
// back into the client, server or session. Calls for one instance are in
// the order the facts happened, except that receives are reported
// lock-free by the reader and may interleave with the others; At orders
// them.
type Observer func(Observation)

// logTransition writes the one log line a transition gets (the logging
// contract in docs/decisions.md): msg "transition" with machine, id, from,
// to and trigger; reason when a session closes or is reaped; attempt and
// delay_ms when a client schedules a retry (BackingOff or Rejected);
// incarnation for a cluster node or peer; extra (a session's silent_ms and
// idle_ms when it closes or is reaped); error when a failure caused it.
func logTransition(log *slog.Logger, id string, tr *fsm.Transition, cause error, extra ...slog.Attr) {
	if !log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	attrs := make([]slog.Attr, 0, 9)
	attrs = append(attrs,
		slog.String("machine", tr.Machine.String()),
		slog.String("id", id),
		slog.String("from", tr.From.String()),
		slog.String("to", tr.To.String()),
		slog.String("trigger", tr.Trigger.String()),
	)
	if tr.Reason != fsm.NoReason {
		attrs = append(attrs, slog.String("reason", tr.Reason.String()))
	}
	if tr.Machine == fsm.MachineClient && (tr.To == fsm.BackingOff || tr.To == fsm.Rejected) {
		attrs = append(attrs, slog.Int("attempt", tr.Attempt), slog.Int64("delay_ms", tr.Delay.Milliseconds()))
	}
	if tr.Machine == fsm.MachineNode || tr.Machine == fsm.MachinePeer {
		attrs = append(attrs, slog.Uint64("incarnation", tr.Incarnation))
	}
	attrs = append(attrs, extra...)
	if cause != nil {
		attrs = append(attrs, slog.String("error", cause.Error()))
	}
	// The record carries the transition's own time (the configured
	// clock's, as fsm saw it), not the moment the line was written, so
	// that gaps read off the log are the gaps the policy kept.
	r := slog.NewRecord(tr.At, slog.LevelInfo, "transition", 0)
	r.AddAttrs(attrs...)
	_ = log.Handler().Handle(context.Background(), r)
}

// LogTransition writes the one log line of the logging contract for a
// transition of any fsm machine (package cluster logs its node and peer
// transitions with it, so every lifeline line has one shape).
func LogTransition(log *slog.Logger, id string, tr *fsm.Transition, cause error) {
	logTransition(log, id, tr, cause)
}

// endFacts are the facts a session's closing line carries for lifeline
// audit: how long the peer had been silent (silent_ms, since the last
// frame heard) and how long no application message had gone either way
// (idle_ms). Without them a log cannot tell a just reap for silence from
// an unjust or late one. Only the line that gives the reason (into
// Closing, or into Reaped from an open state) carries them.
func endFacts(fs *fsm.Session, tr *fsm.Transition) []slog.Attr {
	if tr.Reason == fsm.NoReason || tr.From == fsm.Closing || tr.From == fsm.Handshaking {
		return nil
	}
	return []slog.Attr{
		slog.Int64("silent_ms", tr.At.Sub(fs.LastHeard()).Milliseconds()),
		slog.Int64("idle_ms", tr.At.Sub(fs.LastActivity()).Milliseconds()),
	}
}

// orDefault returns l, or the process's default logger when l is nil, so a
// program that sets slog's default gets lifeline's lines without wiring.
func orDefault(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
