package conn

import (
	"net"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/fsm"
)

// Engine chooses how a Server reads and writes its sessions' connections
// after the upgrade. The lifecycle, the fsm and every guarantee (pings,
// reaps, close codes, the read limit, slow consumers, Shutdown) are the
// same on each; what differs is what an idle session costs.
type Engine uint8

const (
	// EngineAuto, the zero value, is EnginePoll for plain TCP connections
	// on Linux and EngineGoroutine for everything else (TLS, in-memory
	// connections, other systems).
	EngineAuto Engine = iota
	// EngineGoroutine gives each session a reader goroutine parked in
	// gorilla/websocket's reader, with gorilla's buffers: ~4.5 KiB per
	// idle session in-process (docs/benchmarks.md, "conn: engine").
	EngineGoroutine
	// EnginePoll takes each plain TCP connection out of Go's netpoller
	// and into an epoll set served by one poller goroutine per Server:
	// an idle session holds no goroutine and no buffer, only its Session
	// and fsm state. Frames are parsed by conn's own RFC 6455 framer;
	// OnMessage still runs on a goroutine of the session's own (started
	// per message burst), so a slow handler delays only its session.
	// Linux only (Validate refuses it elsewhere); a connection that is
	// not plain TCP (TLS) falls back to EngineGoroutine.
	EnginePoll
)

// String returns the name serve --engine takes: auto, goroutine or poll.
func (e Engine) String() string {
	switch e {
	case EngineAuto:
		return "auto"
	case EngineGoroutine:
		return "goroutine"
	case EnginePoll:
		return "poll"
	}
	return "Engine(" + strconv.Itoa(int(e)) + ")"
}

// validate reports an engine this build cannot run.
func (e Engine) validate() error {
	switch {
	case e > EnginePoll:
		return &fsm.FieldError{Policy: "ServerConfig", Field: "Engine",
			Rule: "must be EngineAuto, EngineGoroutine or EnginePoll", Value: int(e)}
	case e == EnginePoll && !pollSupported:
		return &fsm.FieldError{Policy: "ServerConfig", Field: "Engine",
			Rule: "EnginePoll needs epoll (Linux); use EngineAuto", Value: int(e)}
	}
	return nil
}

// wire is a session's upgraded connection as the writer and the teardown
// use it, whichever engine reads it.
type wire interface {
	// writeFrame writes one whole frame (text, binary, ping, pong or
	// close) by deadline (zero: none).
	writeFrame(kind Frame, data []byte, deadline time.Time) error
	// closeWith writes a best-effort close frame with code (0: none),
	// waiting at most wait, then closes the connection. It reports
	// whether the close frame was written.
	closeWith(code int, wait time.Duration) bool
	remoteAddr() net.Addr
}

// gorillaWire is EngineGoroutine's wire: gorilla/websocket's Conn, and
// the read deadline set on it (Session.setReadDeadlineLocked), kept here
// rather than in every Session since polled sessions have none.
type gorillaWire struct {
	*websocket.Conn
	readBy int64 // in ns since srv.epoch; under the Session's mu
}

func (g *gorillaWire) writeFrame(kind Frame, data []byte, deadline time.Time) error {
	if kind == FrameClose {
		return g.WriteControl(websocket.CloseMessage, data, deadline)
	}
	// Pings and pongs go through the message writer, not WriteControl
	// (which allocates and arms a lock timer); see writeLoop.
	if err := g.SetWriteDeadline(deadline); err != nil {
		return err
	}
	return g.WriteMessage(int(kind), data)
}

func (g *gorillaWire) closeWith(code int, wait time.Duration) bool {
	sent := false
	if code != 0 {
		sent = g.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(wait)) == nil
	}
	_ = g.Close()
	return sent
}

func (g *gorillaWire) remoteAddr() net.Addr { return g.RemoteAddr() }
