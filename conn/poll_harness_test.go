//go:build linux

package conn

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/poll"
)

// pollHarness drives one session of the poll engine without epoll
// readiness: the test says when bytes arrived (arrive) and when the
// socket has room (writable), and reads what the server wrote at the far
// end of a socketpair. The framer, the dispatch to the Session, fsm and
// the writer are the real code; only the readiness loop is the test.
type pollHarness struct {
	t    *testing.T
	srv  *Server
	s    *Session
	pc   *pollConn
	peer net.Conn
	buf  []byte
	rec  *recorder
	msgs chan string
}

func newPollHarness(t *testing.T, cfg ServerConfig, readBuf int, bug *testHooks) *pollHarness {
	t.Helper()
	h := &pollHarness{t: t, rec: newRecorder(), buf: make([]byte, readBuf), msgs: make(chan string, 16)}
	cfg.Observer, cfg.Logger, cfg.Engine = h.rec.observe, quietLogger(), EnginePoll
	if cfg.OnMessage == nil {
		cfg.OnMessage = func(_ *Session, _ MessageType, data []byte) error {
			h.msgs <- string(data)
			return nil
		}
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.hooks = bug
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[1]), "peer")
	h.peer, err = net.FileConn(f)
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := srv.newSession()
	if err != nil {
		t.Fatal(err)
	}
	pc := &pollConn{s: s, fd: fds[0]}
	if !srv.polls.add(pc) {
		t.Fatal("poll set refused the descriptor")
	}
	pc.ep = -1 // not in the epoll set: readiness comes from the test
	now := srv.clk.Now()
	s.mu.Lock()
	s.w = pc
	s.heardAt(now)
	s.stepLocked(now, fsm.EvUpgraded, nil)
	s.mu.Unlock()
	pc.startReading()
	h.srv, h.s, h.pc = srv, s, pc
	t.Cleanup(func() {
		_ = srv.Close()
		_ = h.peer.Close()
	})
	return h
}

// arrive has the peer send b, then delivers input readiness until the
// session has read all of it (or stopped reading).
func (h *pollHarness) arrive(b []byte) {
	h.t.Helper()
	if _, err := h.peer.Write(b); err != nil {
		h.t.Fatal(err)
	}
	for range len(b)/len(h.buf) + 2 {
		h.idle()
		h.pc.onReadable(h.buf)
	}
	h.idle()
}

// idle waits until no handler goroutine owns the session's reader.
func (h *pollHarness) idle() {
	h.t.Helper()
	if !poll.Until(5*time.Second, func() bool {
		h.pc.fdmu.Lock()
		defer h.pc.fdmu.Unlock()
		return !h.pc.busy
	}) {
		h.t.Fatal("the handler goroutine never gave the reader back")
	}
}

// readFrame reads one server frame at the peer.
func (h *pollHarness) readFrame() (op byte, payload []byte) {
	h.t.Helper()
	_ = h.peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	var hdr [2]byte
	if _, err := io.ReadFull(h.peer, hdr[:]); err != nil {
		h.t.Fatalf("reading a frame: %v", err)
	}
	if hdr[0]&0x80 == 0 || hdr[1]&0x80 != 0 {
		h.t.Fatalf("server frame header %x: want FIN set and no mask", hdr)
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		_, _ = io.ReadFull(h.peer, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		_, _ = io.ReadFull(h.peer, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(h.peer, payload); err != nil {
		h.t.Fatalf("reading a %d-byte payload: %v", n, err)
	}
	return hdr[0] & 0x0f, payload
}

// reaped waits for the session's reap and returns its reason.
func (h *pollHarness) reaped() fsm.Reason {
	h.t.Helper()
	obs := h.rec.wait(h.t, 5*time.Second, "the reap", countTo(fsm.Reaped, 1))
	return transitions(obs, fsm.Reaped)[0].Transition.Reason
}

func closeBody(code int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(code)) }

// TestPollHarness: the poll engine's reader and dispatch, fed bytes in
// reads of a chosen size, answer each input as RFC 6455 and the session
// lifecycle say: messages whole and in order, pongs for pings, pongs
// heard, and each protocol failure closed with its code and reaped for
// read_error.
func TestPollHarness(t *testing.T) {
	frames := func(fs ...[]byte) []byte { return bytes.Join(fs, nil) }
	type out struct {
		op   byte
		body []byte
	}
	for _, tc := range []struct {
		name    string
		readBuf int
		limit   int64
		in      []byte
		msgs    []string // OnMessage, in order
		frames  []out    // what the peer reads, in order
		reason  fsm.Reason
	}{
		{"text in one-byte reads", 1, 0, clientFrame(true, opText, []byte("hello")), []string{"hello"}, nil, fsm.NoReason},
		{"two messages in one read", 64, 0, frames(clientFrame(true, opText, []byte("a")), clientFrame(true, opBinary, []byte("b"))),
			[]string{"a", "b"}, nil, fsm.NoReason},
		{"fragments around a ping, three-byte reads", 3, 0,
			frames(clientFrame(false, opText, []byte("ab")), clientFrame(true, opPing, []byte("p")), clientFrame(true, opContinuation, []byte("c"))),
			[]string{"abc"}, []out{{opPong, []byte("p")}}, fsm.NoReason},
		{"message at the read limit", 2, 5, clientFrame(true, opBinary, []byte("12345")), []string{"12345"}, nil, fsm.NoReason},
		{"message over the read limit", 2, 5, clientFrame(true, opBinary, []byte("123456")), nil,
			[]out{{opClose, closeBody(closeMessageTooBig)}}, fsm.ReasonReadError},
		{"fragments over the read limit", 64, 5, frames(clientFrame(false, opBinary, []byte("123")), clientFrame(true, opContinuation, []byte("456"))), nil,
			[]out{{opClose, closeBody(closeMessageTooBig)}}, fsm.ReasonReadError},
		{"invalid UTF-8 across fragments", 64, 0, frames(clientFrame(false, opText, []byte("\xe2")), clientFrame(true, opContinuation, []byte("\x28\xa1"))), nil,
			[]out{{opClose, closeBody(closeInvalidPayload)}}, fsm.ReasonReadError},
		{"unmasked frame", 64, 0, []byte{0x81, 0x01, 'x'}, nil, []out{{opClose, closeBody(closeProtocolError)}}, fsm.ReasonReadError},
		{"control frame over 125 bytes", 64, 0, clientFrame(true, opPing, make([]byte, 126)), nil,
			[]out{{opClose, closeBody(closeProtocolError)}}, fsm.ReasonReadError},
		{"stray continuation", 64, 0, clientFrame(true, opContinuation, []byte("x")), nil,
			[]out{{opClose, closeBody(closeProtocolError)}}, fsm.ReasonReadError},
		{"peer close echoed", 4, 0, clientFrame(true, opClose, closeBody(4000)), nil, []out{{opClose, closeBody(4000)}}, fsm.ReasonPeerClose},
		{"empty close answered 1000", 64, 0, clientFrame(true, opClose, nil), nil, []out{{opClose, closeBody(1000)}}, fsm.ReasonPeerClose},
		{"bad close code", 64, 0, clientFrame(true, opClose, closeBody(1005)), nil,
			[]out{{opClose, closeBody(closeProtocolError)}}, fsm.ReasonReadError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newPollHarness(t, ServerConfig{ReadLimit: tc.limit}, tc.readBuf, nil)
			h.arrive(tc.in)
			for _, want := range tc.msgs {
				select {
				case got := <-h.msgs:
					if got != want {
						t.Fatalf("OnMessage got %q, want %q", got, want)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("OnMessage never got %q", want)
				}
			}
			for _, want := range tc.frames {
				op, body := h.readFrame()
				if op != want.op || !bytes.Equal(body, want.body) {
					t.Fatalf("peer read frame %x %x, want %x %x", op, body, want.op, want.body)
				}
			}
			if tc.reason != fsm.NoReason {
				if r := h.reaped(); r != tc.reason {
					t.Fatalf("reaped for %s, want %s", r, tc.reason)
				}
				return
			}
			if st := h.s.State(); st != fsm.Alive {
				t.Fatalf("state %s after the input, want Alive", st)
			}
			h.pc.fdmu.Lock()
			defer h.pc.fdmu.Unlock()
			if rd := h.pc.rd; rd != nil {
				t.Fatalf("an idle session keeps reader state (%d + %d bytes); want none", len(rd.in), len(rd.msg.data))
			}
		})
	}
}

// TestPollHarnessPongHeard: a pong moves the session's last-heard time,
// and nothing else; with pongs not fed (the broken variant) it does not.
func TestPollHarnessPongHeard(t *testing.T) {
	for _, bug := range []bool{false, true} {
		h := newPollHarness(t, ServerConfig{}, 64, &testHooks{unfedPongs: bug})
		before := h.s.heard.Load()
		if !poll.Until(time.Second, func() bool { return h.srv.clk.Now().Sub(h.srv.epoch) > time.Duration(before) }) {
			t.Fatal("the clock did not move")
		}
		h.arrive(clientFrame(true, opPong, []byte("x")))
		if moved := h.s.heard.Load() > before; moved == bug {
			t.Errorf("unfedPongs=%v: heard moved = %v", bug, moved)
		}
	}
}

// TestPollHarnessWriterWaitsForWritable: a message bigger than the socket
// buffers is written in parts, the writer waiting for each "writable"
// event the test delivers, and Delivered reports it written.
func TestPollHarnessWriterWaitsForWritable(t *testing.T) {
	h := newPollHarness(t, ServerConfig{}, 64, nil)
	big := bytes.Repeat([]byte("lifeline"), 1<<17) // 1 MiB
	written := make(chan error, 1)
	if err := h.s.SendNotify(BinaryMessage, big, func(err error) { written <- err }); err != nil {
		t.Fatal(err)
	}
	waiting := func() bool {
		h.pc.fdmu.Lock()
		defer h.pc.fdmu.Unlock()
		return h.pc.wantOut
	}
	if !poll.Until(5*time.Second, waiting) {
		t.Fatal("the writer never found the socket full")
	}
	got := make(chan []byte, 1)
	go func() { _, b := h.readFrame(); got <- b }()
	var err error
	if !poll.Until(10*time.Second, func() bool {
		select {
		case err = <-written:
			return true
		default:
		}
		if waiting() {
			h.pc.onWritable()
		}
		return false
	}) {
		t.Fatal("the message was not written")
	}
	if err != nil {
		t.Fatalf("Delivered(%v)", err)
	}
	if b := <-got; !bytes.Equal(b, big) {
		t.Fatalf("the peer read %d bytes, want %d", len(b), len(big))
	}
}
