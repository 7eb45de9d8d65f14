package conn

import (
	"errors"
	"io"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/fsm"
)

// readLoop is the session's one reader. It records when each frame was
// heard, hands application messages to OnMessage, and turns the read error
// that ends every connection into the event that reaps the session.
//
// Its own frame is kept tiny and everything else happens in calls that
// return before the next read: an idle session's reader is parked inside
// ReadMessage, and the stack it parks with is what stays resident (the
// runtime shrinks it back to 2 KiB only if less than a quarter is in use).
func (s *Session) readLoop(ws *websocket.Conn) {
	for s.readOne(ws) {
	}
	s.srv.wg.Done()
}

// readOne reads one message (or the error that ends the connection) and
// reports whether to read on. NextReader, not ReadMessage, so that the
// chain parked under it is one frame shorter; the payload is read in a
// separate call.
func (s *Session) readOne(ws *websocket.Conn) bool {
	mt, r, err := ws.NextReader()
	if err != nil {
		s.readFailed(err)
		return false
	}
	return s.consume(mt, r)
}

// consume reads a message's payload and hands it on.
func (s *Session) consume(mt int, r io.Reader) bool {
	data, err := io.ReadAll(r)
	if err != nil {
		s.readFailed(err)
		return false
	}
	// RFC 6455 §8.1: a text message that is not UTF-8 fails the
	// connection with 1007. gorilla/websocket checks close-frame reasons
	// but not text data, so it is checked here, once per whole message.
	if mt == websocket.TextMessage && !utf8.Valid(data) {
		s.invalidText()
		return false
	}
	s.onMessage(mt, data)
	return true
}

// invalidText reaps the session for a text message that is not UTF-8:
// a read error whose close frame says 1007 (invalid payload data).
func (s *Session) invalidText() {
	s.protocolFailed(ErrInvalidUTF8, websocket.CloseInvalidFramePayloadData)
}

// protocolFailed reaps the session for a read that broke the protocol,
// with the close code that says how (1002, 1007, 1009).
func (s *Session) protocolFailed(cause error, code int) {
	now := s.srv.clk.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fs.State() == fsm.Reaped {
		return
	}
	_ = s.driveLocked(now, fsm.EvReadError, cause, code)
}

// onMessage takes one application message off the reader.
func (s *Session) onMessage(mt int, data []byte) {
	srv := s.srv
	now := srv.clk.Now()
	s.heardAt(now)
	s.mu.Lock()
	s.observeLocked(Observation{Kind: ObsReceive, At: now, Frame: Frame(mt), Size: len(data)})
	open := s.fs.Open()
	s.mu.Unlock()
	if !open {
		return // closing: read on, only to hear the peer's close
	}
	// A message is good only once the handler took it: stepping EvMessage
	// first would let a Suspect session "recover" on the very message that
	// is its next error.
	var herr error
	if srv.cfg.OnMessage != nil {
		herr = srv.cfg.OnMessage(s, MessageType(mt), data)
	}
	if herr != nil {
		s.step(srv.clk.Now(), fsm.EvProtocolError, herr)
	} else {
		s.step(now, fsm.EvMessage, nil)
	}
}

// readFailed maps the error that ended the read side to an event: a close
// frame from the peer (answered with the same code on the way out), or a
// read error (RST, EOF, read limit, the deadline backstop).
func (s *Session) readFailed(err error) {
	now := s.srv.clk.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fs.State() == fsm.Reaped {
		return // we closed it
	}
	// gorilla reports a connection that ended without a close frame (EOF
	// after kill -9, say) as close code 1006, which no peer can send: that
	// is a read error, not a peer close.
	if errors.Is(err, websocket.ErrReadLimit) {
		// gorilla writes 1009 itself for a message over the limit, but
		// nothing for a frame length with its top bit set, which it also
		// reports as ErrReadLimit: the reap writes 1009 (gorilla drops it
		// after a close frame already sent), as the poll engine does.
		_ = s.driveLocked(now, fsm.EvReadError, err, websocket.CloseMessageTooBig)
		return
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code == websocket.CloseAbnormalClosure {
		s.stepLocked(now, fsm.EvReadError, err)
		return
	}
	s.observeLocked(Observation{Kind: ObsReceive, At: now, Frame: FrameClose})
	echo := 0
	if s.fs.Open() { // the peer started the close: answer it
		echo = ce.Code
		if echo == websocket.CloseNoStatusReceived {
			echo = websocket.CloseNormalClosure
		}
	}
	_ = s.driveLocked(now, fsm.EvPeerClose, err, echo)
}

// onPing runs on the reader when a ping arrives: a sign of life, and a
// pong owed to the writer.
func (s *Session) onPing(payload string) error {
	now := s.srv.clk.Now()
	s.heardAt(now)
	s.mu.Lock()
	s.observeLocked(Observation{Kind: ObsReceive, At: now, Frame: FramePing, Size: len(payload)})
	if s.fs.Open() {
		s.oweLocked().pong = payload
		s.flags |= flagPong
		s.wakeWriterLocked()
	}
	s.mu.Unlock()
	return nil
}

// onPong runs on the reader when a pong arrives. It takes no lock and
// keeps a small frame: an idle session's heartbeat costs one atomic store
// here, and this is the deepest point an idle reader's stack reaches.
func (s *Session) onPong(payload string) error {
	s.pongHeard(len(payload))
	return nil
}

// pongHeard records a pong of n payload bytes, on either engine.
func (s *Session) pongHeard(n int) {
	now := s.srv.clk.Now()
	s.heardAt(now)
	if s.srv.cfg.Observer != nil {
		s.observePong(now, n)
	}
}

func (s *Session) observePong(now time.Time, n int) {
	s.srv.observe(Observation{Kind: ObsReceive, Machine: fsm.MachineSession, ID: sessionID(s.id),
		At: now, Frame: FramePong, Size: n})
}

// wakeWriterLocked starts the writer if it is not running. The writer
// exists only while there is something to write, so an idle session costs
// no goroutine for it.
func (s *Session) wakeWriterLocked() {
	if s.flags&flagWriting != 0 || s.w == nil {
		return
	}
	s.flags |= flagWriting
	s.srv.wg.Add(1)
	go s.writeLoop()
}

// frame is one write the writer owes.
type frame struct {
	kind Frame
	data []byte
	done Delivered // an application message's SendNotify report
}

// writeLoop writes what the session owes, one frame at a time, until
// nothing is left; then it exits. It is the only goroutine that writes
// data frames, so their order is the order of Send.
func (s *Session) writeLoop() {
	defer s.srv.wg.Done()
	srv := s.srv
	for {
		s.mu.Lock()
		f, ok := s.nextLocked()
		if !ok {
			s.flags &^= flagWriting
			s.owed = nil // all of it written (or dropped)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		deadline := time.Now().Add(srv.live.WriteTimeout)
		if f.kind == FramePing || f.kind == FramePong {
			// Pings and pongs are written with no write deadline: arming
			// and disarming the socket's deadline timer per frame was a
			// sixth of an idle server's CPU (docs/decisions.md). A control
			// write cannot hang for long anyway: a peer that does not
			// drain its socket does not answer pings either, and the
			// liveness deadline reaps the session and closes the socket
			// under the write.
			deadline = time.Time{}
		}
		err := s.w.writeFrame(f.kind, f.data, deadline)
		if f.done != nil {
			s.mu.Lock()
			f.done(err)
			s.mu.Unlock()
		}
		if err != nil {
			s.mu.Lock()
			s.flags &^= flagWriting
			if srv.hooks.swallowed() { // the bug under test: the failure ignored
				s.mu.Unlock()
				return
			}
			// A failed write reaps at once (the fast tier): the peer is
			// gone or not draining, and nothing sent after it can arrive.
			s.stepLocked(srv.clk.Now(), fsm.EvSendError, err)
			s.mu.Unlock()
			return
		}
	}
}

// nextLocked picks the next frame to write: the pong owed, the ping owed,
// the close frame owed, then application messages in order. A message is
// committed here, under the lock that reaps the session, by handing
// EvSent to fs: fsm refuses it once the session has left Alive/Suspect,
// so nothing is sent after a reap or a close.
func (s *Session) nextLocked() (frame, bool) {
	now := s.srv.clk.Now()
	if s.fs.State() == fsm.Reaped && !s.srv.hooks.unguardedSend() {
		return frame{}, false
	}
	o := s.owed
	if o == nil {
		o = &owed{} // nothing owed but perhaps a ping: read as empty
	}
	switch {
	case s.flags&flagPong != 0:
		s.flags &^= flagPong
		s.observeLocked(Observation{Kind: ObsSend, At: now, Frame: FramePong, Size: len(o.pong)})
		return frame{kind: FramePong, data: []byte(o.pong)}, true
	case s.flags&flagPing != 0:
		s.flags &^= flagPing
		s.observeLocked(Observation{Kind: ObsSend, At: now, Frame: FramePing})
		return frame{kind: FramePing}, true
	case o.closeCode != 0:
		code := int(o.closeCode)
		o.closeCode = 0
		s.observeLocked(Observation{Kind: ObsSend, At: now, Frame: FrameClose})
		return frame{kind: FrameClose, data: websocket.FormatCloseMessage(code, "")}, true
	case len(o.queue) > 0:
		m := o.queue[0]
		o.queue[0] = outgoing{}
		o.queue = o.queue[1:]
		if len(o.queue) == 0 {
			o.queue = nil // release the backing array while idle
		}
		if err := s.driveLocked(now, fsm.EvSent, nil, fsmCode); err != nil && !s.srv.hooks.unguardedSend() {
			if m.done != nil {
				m.done(s.closedErrLocked())
			}
			s.dropQueueLocked()
			return frame{}, false
		}
		s.observeLocked(Observation{Kind: ObsSend, At: now, Frame: Frame(m.t), Size: len(m.data)})
		return frame{kind: Frame(m.t), data: m.data, done: m.done}, true
	}
	return frame{}, false
}
