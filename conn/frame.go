package conn

import (
	"encoding/binary"
	"strconv"
	"unicode/utf8"
)

// The poll engine's framer: the server side of RFC 6455 §5, parsing
// client frames from bytes already read and writing the unmasked frames a
// server sends. It is pure (no I/O, no clock), so the deterministic
// harness and the fuzz target drive it directly. The goroutine engine
// keeps gorilla/websocket's framer; the rules below are the ones gorilla
// enforces, so a peer sees the same close codes on either engine.

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// Close codes the framer fails a connection with (RFC 6455 §7.4.1).
const (
	closeProtocolError   = 1002
	closeInvalidPayload  = 1007
	closeMessageTooBig   = 1009
	maxControlPayload    = 125
	serverFrameHeaderMax = 10 // a server's frames are not masked
)

// frameError is a client frame that fails the connection, with the close
// code the server answers it with.
type frameError struct {
	code int
	msg  string
}

func (e *frameError) Error() string { return "websocket: " + e.msg }

// wsFrame is one parsed client frame; payload is unmasked in place and
// aliases the bytes parsed, so it is valid only until they are reused.
type wsFrame struct {
	op      byte
	fin     bool
	payload []byte
}

// parseFrame parses one client frame at the start of b. It returns the
// frame and the bytes it took, or n == 0 if b does not yet hold a whole
// frame, or a *frameError. room is how many more message bytes the read
// limit allows for a data frame: a longer one fails with 1009 as soon as
// its header is read, before its payload is buffered. The payload is
// unmasked in b. unmasked accepts frames without a mask key, which RFC
// 6455 §5.1 forbids from a client: only the broken variant under test
// (testHooks.unmasked) sets it.
func parseFrame(b []byte, room int64, unmasked bool) (f wsFrame, n int, err error) {
	if len(b) < 2 {
		return wsFrame{}, 0, nil
	}
	b0, b1 := b[0], b[1]
	if b0&0x70 != 0 {
		return wsFrame{}, 0, &frameError{closeProtocolError, "reserved bits set (no extension was negotiated)"}
	}
	f.op, f.fin = b0&0x0f, b0&0x80 != 0
	switch f.op {
	case opContinuation, opText, opBinary:
	case opClose, opPing, opPong:
		if !f.fin {
			return wsFrame{}, 0, &frameError{closeProtocolError, "fragmented control frame"}
		}
	default:
		return wsFrame{}, 0, &frameError{closeProtocolError, "unknown opcode " + strconv.Itoa(int(f.op))}
	}
	masked := b1&0x80 != 0
	if !masked && !unmasked {
		return wsFrame{}, 0, &frameError{closeProtocolError, "client frame not masked"}
	}
	size, hdr := uint64(b1&0x7f), 2
	switch size {
	case 126:
		if len(b) < 4 {
			return wsFrame{}, 0, nil
		}
		size, hdr = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return wsFrame{}, 0, nil
		}
		size, hdr = binary.BigEndian.Uint64(b[2:]), 10
		if size>>63 != 0 && f.op < opClose {
			// RFC 6455 §5.2 forbids it; gorilla/websocket reads it as a
			// length over the read limit (ErrReadLimit), and so does
			// the goroutine engine's peer: 1009 on both engines.
			return wsFrame{}, 0, &frameError{closeMessageTooBig, "frame length has its top bit set"}
		}
	}
	if f.op >= opClose {
		if size > maxControlPayload {
			return wsFrame{}, 0, &frameError{closeProtocolError, "control frame longer than 125 bytes"}
		}
	} else if size > uint64(max(room, 0)) {
		return wsFrame{}, 0, &frameError{closeMessageTooBig, "read limit exceeded"}
	}
	keyLen := 0
	if masked {
		keyLen = 4
	}
	if len(b) < hdr+keyLen || uint64(len(b)-hdr-keyLen) < size {
		return wsFrame{}, 0, nil
	}
	key := b[hdr : hdr+keyLen]
	f.payload = b[hdr+keyLen : hdr+keyLen+int(size)]
	if masked {
		for i := range f.payload {
			f.payload[i] ^= key[i&3]
		}
	}
	return f, hdr + keyLen + int(size), nil
}

// closePayload checks a close frame's payload: its code (1005 when there
// is none) and reason, or the *frameError it fails the connection with.
func closePayload(p []byte) (code int, text string, err error) {
	switch {
	case len(p) == 0:
		return 1005, "", nil
	case len(p) == 1:
		return 0, "", &frameError{closeProtocolError, "close frame with a one-byte payload"}
	}
	code = int(binary.BigEndian.Uint16(p))
	if !validReceivedCloseCode(code) {
		return 0, "", &frameError{closeProtocolError, "bad close code " + strconv.Itoa(code)}
	}
	if !utf8.Valid(p[2:]) {
		return 0, "", &frameError{closeProtocolError, "invalid utf8 payload in close frame"}
	}
	return code, string(p[2:]), nil
}

// validReceivedCloseCode is RFC 6455 §7.4: the codes a peer may send,
// exactly as gorilla/websocket judges them for the goroutine engine
// (1012 and 1013 taken, 1014 refused), so both engines answer a close
// frame alike (TestFrameConformance).
func validReceivedCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1013:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// appendFrameHeader appends the header of an unmasked, final server frame
// of opcode op carrying n payload bytes.
func appendFrameHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
}

// msgAssembly is a data message being read, frame by frame: the reader
// state a session keeps between reads only while a message is incomplete.
type msgAssembly struct {
	op   byte   // opText or opBinary; 0 when no message is under way
	data []byte // the fragments so far
}

// readEvent is what one parsed frame means to the session.
type readEvent uint8

const (
	readNone    readEvent = iota // a fragment taken; nothing to hand on yet
	readMessage                  // a whole data message (op, data)
	readPing                     // a ping (data: its payload)
	readPong                     // a pong
	readClose                    // the peer's close (code, text)
)

// next parses the frame at the start of b (see parseFrame) for the
// message under way. The order of fragments is judged from the header,
// before the frame's length is held against the read limit, as
// gorilla/websocket does: a continuation with no message, or a new
// message inside a fragmented one, is answered 1002 however long it is.
func (m *msgAssembly) next(b []byte, limit int64, unmasked bool) (wsFrame, int, error) {
	if len(b) >= 2 {
		if err := m.order(b[0] & 0x0f); err != nil {
			return wsFrame{}, 0, err
		}
	}
	return parseFrame(b, m.room(limit), unmasked)
}

// order is RFC 6455 §5.4 for a frame of opcode op: a continuation needs a
// message under way, a text or binary frame needs none.
func (m *msgAssembly) order(op byte) error {
	switch {
	case op == opContinuation && m.op == 0:
		return &frameError{closeProtocolError, "continuation frame with no message under way"}
	case (op == opText || op == opBinary) && m.op != 0:
		return &frameError{closeProtocolError, "new message before the last one's final frame"}
	}
	return nil
}

// take folds one frame into the message under way and says what it
// completed. A whole message's data is a fresh slice the caller may keep;
// a ping's aliases the frame. The read limit was checked by parseFrame
// (room).
func (m *msgAssembly) take(f wsFrame) (ev readEvent, op byte, data []byte, err error) {
	switch f.op {
	case opPing:
		return readPing, opPing, f.payload, nil
	case opPong:
		return readPong, opPong, f.payload, nil
	case opClose:
		return readClose, opClose, f.payload, nil
	}
	if err := m.order(f.op); err != nil {
		return 0, 0, nil, err
	}
	switch f.op {
	case opContinuation:
		m.data = append(m.data, f.payload...)
	default:
		if f.fin { // the common case: one frame, one copy
			data = append(make([]byte, 0, len(f.payload)), f.payload...)
			return m.finish(f.op, data)
		}
		m.op, m.data = f.op, append([]byte(nil), f.payload...)
	}
	if !f.fin {
		return readNone, 0, nil, nil
	}
	op, data = m.op, m.data
	m.op, m.data = 0, nil
	return m.finish(op, data)
}

// finish checks a whole message: text must be UTF-8 (RFC 6455 §8.1).
func (m *msgAssembly) finish(op byte, data []byte) (readEvent, byte, []byte, error) {
	if op == opText && !utf8.Valid(data) {
		return 0, 0, nil, errInvalidText
	}
	return readMessage, op, data, nil
}

// room is how many more bytes the message under way may grow by.
func (m *msgAssembly) room(limit int64) int64 { return limit - int64(len(m.data)) }

// errInvalidText marks a text message that is not UTF-8; the session
// reaps with 1007 and logs ErrInvalidUTF8, as on the goroutine engine.
var errInvalidText = &frameError{closeInvalidPayload, "invalid UTF-8 in text message"}
