//go:build linux

package conn

import (
	"errors"
	"io"

	"github.com/gorilla/websocket"
)

// The poll engine's reader: what the bytes a read brought mean to the
// session. The poller calls feed with each read; feed parses whole frames
// with the framer (frame.go) and hands each to the same Session methods
// the goroutine engine's reader calls (onPing, pongHeard, onMessage,
// readFailed), so both engines step fsm through driveLocked alike.

var (
	// errEOF is the end of the connection without a close frame, as
	// gorilla/websocket reports it (close code 1006, a read error).
	errEOF = &websocket.CloseError{Code: websocket.CloseAbnormalClosure, Text: io.ErrUnexpectedEOF.Error()}
	// errTornFrame: a write was cut short mid-frame, so the stream can
	// carry nothing more.
	errTornFrame = errors.New("conn: an earlier frame was cut short; the connection is unusable")
)

// feed parses the frames in b (after any incomplete one kept from earlier
// reads) and hands each on. A whole application message goes to OnMessage
// on a goroutine of the session's own, unless inHandler says this already
// is that goroutine; the rest of b then waits for it (the poller stops
// reading the session meanwhile, so a slow handler holds back only its
// own peer, through TCP flow control). What is left of an incomplete
// frame is copied: b is not kept.
func (pc *pollConn) feed(b []byte, inHandler bool) {
	s := pc.s
	var rd pollReader // the reader state, here while feed runs (pc.rd between)
	kept := pc.rd
	if kept != nil {
		rd, pc.rd = *kept, nil
	}
	data := b
	if rd.in != nil {
		rd.in = append(rd.in, b...)
		data = rd.in
	}
	limit, lax := s.srv.readLimit, s.srv.hooks.unmaskedOK() // lax: the bug under test
	for {
		f, n, err := rd.msg.next(data, limit, lax)
		if err != nil {
			pc.fail(err)
			return
		}
		if n == 0 {
			break
		}
		data = data[n:]
		ev, op, payload, err := rd.msg.take(f)
		if err != nil {
			pc.fail(err)
			return
		}
		switch ev {
		case readPing:
			s.onPing(string(payload))
		case readPong:
			if !s.srv.hooks.pongsUnfed() {
				s.pongHeard(len(payload))
			}
		case readClose:
			code, text, cerr := closePayload(payload)
			if cerr != nil {
				pc.fail(cerr)
				return
			}
			pc.end(func() { s.readFailed(&websocket.CloseError{Code: code, Text: text}) })
			return
		case readMessage:
			if inHandler || s.srv.cfg.OnMessage == nil {
				s.onMessage(int(op), payload)
				continue
			}
			pc.keepReader(data, rd, kept)
			pc.setBusy(true)
			s.srv.wg.Add(1)
			go pc.handle(int(op), payload)
			return
		}
	}
	pc.keepReader(data, rd, kept)
}

// keepReader stores what the reader must keep between reads: the rest of
// an incomplete frame and the message under way, or nothing when neither
// is. reuse, if not nil, is the pollReader feed started from: a message
// arriving over many reads costs one, not one per read. The rest is
// copied out of the poller's buffer, or moved to the front of the
// session's own (rd.in, of which it is the tail), so that a frame read in
// many small reads costs copying in proportion to its size, not to its
// size times the reads (TestPollTrickledFrameCopiesLinearly).
func (pc *pollConn) keepReader(rest []byte, rd pollReader, reuse *pollReader) {
	if len(rest) == 0 && rd.msg.op == 0 {
		pc.rd = nil
		return
	}
	if reuse == nil {
		reuse = new(pollReader)
	}
	in := []byte(nil)
	switch {
	case len(rest) == 0:
	case rd.in != nil:
		in = append(rd.in[:0], rest...)
	default:
		in = append([]byte(nil), rest...)
	}
	*reuse = pollReader{in: in, msg: rd.msg}
	pc.rd = reuse
}

// handle runs OnMessage for one message off the poller, then the frames
// read behind it, and gives the reader back to the poller.
func (pc *pollConn) handle(mt int, data []byte) {
	defer pc.s.srv.wg.Done()
	pc.s.onMessage(mt, data)
	pc.feed(nil, true)
	pc.setBusy(false)
}

// fail ends the read side for a frame that breaks the protocol, reaping
// the session with the close code the framer chose (1002, 1007, 1009).
func (pc *pollConn) fail(err error) {
	var fe *frameError
	errors.As(err, &fe)
	cause := err
	switch fe.code {
	case closeInvalidPayload:
		cause = ErrInvalidUTF8
	case closeMessageTooBig:
		cause = websocket.ErrReadLimit
	}
	pc.end(func() { pc.s.protocolFailed(cause, fe.code) })
}

// readError ends the read side for a failed read or EOF.
func (pc *pollConn) readError(err error) {
	pc.end(func() { pc.s.readFailed(err) })
}

// end stops reading and hands the step that ends the read side to a
// goroutine of the session's own: that step reaps the session, and a reap
// runs the application's code (Delivered for each message still queued,
// the state hook, the Observer), which must not stall the one poller
// every session shares (TestBlockedDeliveredStallsOnlyItsSession). It
// happens once per session, like the teardown's goroutine.
func (pc *pollConn) end(step func()) {
	pc.stopReading()
	srv := pc.s.srv
	srv.wg.Add(1)
	go func() {
		defer srv.wg.Done()
		step()
	}()
}
