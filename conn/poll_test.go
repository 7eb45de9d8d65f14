//go:build linux

package conn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/poll"
)

// wantPoll reports whether conn's real-socket tests run their plain TCP
// sessions on EnginePoll (LIFELINE_ENGINE unset or poll).
func wantPoll() bool {
	e, _ := testEngine()
	return e != EngineGoroutine
}

// onlySession returns ts's one registered session.
func onlySession(t testing.TB, ts *testServer) *Session {
	t.Helper()
	var s *Session
	if !poll.Until(5*time.Second, func() bool {
		ss := ts.snapshot()
		if len(ss) == 1 && ss[0].State() == fsm.Alive {
			s = ss[0]
			return true
		}
		return false
	}) {
		t.Fatalf("no Alive session: %+v", ts.Stats())
	}
	return s
}

// TestServerEngineInUse: a plain TCP session is polled, with no reader
// goroutine and no gorilla Conn, unless the goroutine engine is asked
// for; TLS sessions (tls_test.go) keep the goroutine engine.
func TestServerEngineInUse(t *testing.T) {
	ts := startServer(t, ServerConfig{OnMessage: echo})
	dialRaw(t, ts.url, nil)
	s := onlySession(t, ts)
	s.mu.Lock()
	_, polled := s.w.(*pollConn)
	s.mu.Unlock()
	if polled != wantPoll() {
		t.Fatalf("session polled = %v, want %v (%s=%q)", polled, wantPoll(), engineEnv, os.Getenv(engineEnv))
	}
}

// TestServerRemoteAddrIsThePeers: the session reports the dialing
// socket's own address, on either engine (the poll engine keeps it as a
// netip.AddrPort and builds the net.Addr when asked), before and after
// the reap.
func TestServerRemoteAddrIsThePeers(t *testing.T) {
	ts := startServer(t, ServerConfig{OnMessage: echo})
	ws := dialRaw(t, ts.url, nil)
	s := onlySession(t, ts)
	want := ws.LocalAddr().String()
	if got := s.RemoteAddr(); got == nil || got.Network() != "tcp" || got.String() != want {
		t.Fatalf("RemoteAddr() = %v, want tcp %s", got, want)
	}
	_ = ws.Close()
	if !poll.Until(5*time.Second, func() bool { return s.State() == fsm.Reaped }) {
		t.Fatalf("session not reaped after its peer closed: %s", s.State())
	}
	if got := s.RemoteAddr(); got == nil || got.String() != want {
		t.Fatalf("RemoteAddr() after the reap = %v, want %s", got, want)
	}
}

// livePeer is a gorilla client that answers every ping and hands each
// message it reads to msgs; done closes when its connection ends.
type livePeer struct {
	ws    *websocket.Conn
	pings atomic.Int32
	ping  chan struct{} // a value per ping heard (buffered, never blocks)
	msgs  chan []byte
	done  chan struct{}
}

func newLivePeer(t *testing.T, url string) *livePeer {
	return newGatedPeer(t, url, nil)
}

// newGatedPeer is newLivePeer reading nothing until gate (nil: none) is
// closed.
func newGatedPeer(t *testing.T, url string, gate chan struct{}) *livePeer {
	p := &livePeer{ws: dialRaw(t, url, nil), ping: make(chan struct{}, 1024), msgs: make(chan []byte, 16), done: make(chan struct{})}
	p.ws.SetReadLimit(-1)
	p.ws.SetPingHandler(func(s string) error {
		p.pings.Add(1)
		select {
		case p.ping <- struct{}{}:
		default:
		}
		return p.ws.WriteControl(websocket.PongMessage, []byte(s), time.Now().Add(time.Second))
	})
	go func() {
		defer close(p.done)
		if gate != nil {
			<-gate
		}
		for {
			_, m, err := p.ws.ReadMessage()
			if err != nil {
				return
			}
			p.msgs <- m
		}
	}()
	return p
}

// checkLivePeerKept: a peer that answers every ping keeps its session
// while it echoes three messages and then stays quiet for three ping
// rounds (each ping is sent only after a ping interval of silence, so
// each round depends on the last pong having been heard). It returns
// what went wrong, or nil.
func checkLivePeerKept(t *testing.T, h *testHooks) error {
	live := fastLiveness()
	ts := startHookedServer(t, ServerConfig{Liveness: live, OnMessage: echo}, h)
	p := newLivePeer(t, ts.url)
	wait := 10 * live.PingInterval
	for i := range 3 {
		msg := []byte(fmt.Sprintf("echo %d", i))
		if err := p.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
			return fmt.Errorf("write %d: %w", i, err)
		}
		select {
		case got := <-p.msgs:
			if !bytes.Equal(got, msg) {
				return fmt.Errorf("echo %d came back as %q", i, got)
			}
		case <-p.done:
			return fmt.Errorf("connection ended before echo %d (server: %+v)", i, ts.Stats().Reaped)
		case <-time.After(wait):
			return fmt.Errorf("echo %d did not come back within %s", i, wait)
		}
	}
	for i := range 3 {
		select {
		case <-p.ping:
		case <-p.done:
			return fmt.Errorf("a live peer was reaped after %d quiet ping rounds: %+v", i, ts.Stats().Reaped)
		case <-time.After(wait):
			return fmt.Errorf("no ping %d within %s", i, wait)
		}
	}
	if st := ts.Stats(); st.ReapedTotal != 0 {
		return fmt.Errorf("a live peer was reaped: %+v", st.Reaped)
	}
	return nil
}

// checkBigWrite: a message larger than the socket buffers reaches a peer
// that starts reading only once the writer found the socket full, so the
// writer must wait for room (EPOLLOUT) and go on; the session stays open.
// It returns what went wrong, or nil.
func checkBigWrite(t *testing.T, h *testHooks) error {
	live := fastLiveness()
	live.WriteTimeout = 5 * time.Second
	ts := startHookedServer(t, ServerConfig{Liveness: live}, h)
	gate := make(chan struct{})
	p := newGatedPeer(t, ts.url, gate)
	s := onlySession(t, ts)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	written := make(chan error, 1)
	if err := s.SendNotify(BinaryMessage, big, func(err error) { written <- err }); err != nil {
		return fmt.Errorf("SendNotify: %w", err)
	}
	s.mu.Lock()
	pc := s.w.(*pollConn)
	s.mu.Unlock()
	waiting := poll.Until(5*time.Second, func() bool {
		pc.fdmu.Lock()
		defer pc.fdmu.Unlock()
		return pc.wantOut
	})
	close(gate)
	if !waiting {
		return errors.New("the writer never found the socket full; the check needs a bigger message")
	}
	select {
	case got := <-p.msgs:
		if !bytes.Equal(got, big) {
			return fmt.Errorf("got %d bytes, want the %d sent", len(got), len(big))
		}
	case <-p.done:
		return fmt.Errorf("connection ended before the message arrived (server: %+v)", ts.Stats().Reaped)
	case <-time.After(10 * time.Second):
		return errors.New("the message did not arrive within 10s")
	}
	if err := <-written; err != nil {
		return fmt.Errorf("Delivered(%v) for a message the peer read", err)
	}
	if st := ts.Stats(); st.ReapedTotal != 0 {
		return fmt.Errorf("the session was reaped: %+v", st.Reaped)
	}
	return nil
}

// checkUnmaskedRefused: an unmasked client frame is answered with close
// 1002 and reaps the session for read_error. It returns what went wrong,
// or nil.
func checkUnmaskedRefused(t *testing.T, h *testHooks) error {
	ts := startHookedServer(t, ServerConfig{OnMessage: echo}, h)
	c, br := rawUpgrade(t, ts)
	if _, err := c.Write([]byte{0x81, 0x02, 'h', 'i'}); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var hdr [2]byte
	if _, err := br.Read(hdr[:1]); err != nil {
		return fmt.Errorf("no answer: %w", err)
	}
	if _, err := br.Read(hdr[1:]); err != nil {
		return fmt.Errorf("no answer: %w", err)
	}
	body := make([]byte, hdr[1]&0x7f)
	if _, err := io.ReadFull(br, body); err != nil {
		return fmt.Errorf("short answer: %w", err)
	}
	if hdr[0] != 0x80|opClose || len(body) < 2 || int(body[0])<<8|int(body[1]) != closeProtocolError {
		return fmt.Errorf("answered %x %q, want close 1002", hdr, body)
	}
	return nil
}

// TestPollEngineChecks runs each check on the default (unbroken) engine,
// then shows it catching the broken variant it is there for.
func TestPollEngineChecks(t *testing.T) {
	if !wantPoll() {
		t.Skipf("%s=goroutine: the broken variants are the poll engine's", engineEnv)
	}
	for _, tc := range []struct {
		name  string
		check func(*testing.T, *testHooks) error
		bug   testHooks
	}{
		{"live peer kept / poller drops input readiness", checkLivePeerKept, testHooks{dropEvent: true}},
		{"live peer kept / pongs not fed to fsm", checkLivePeerKept, testHooks{unfedPongs: true}},
		{"big write / poller drops output readiness", checkBigWrite, testHooks{dropOut: true}},
		{"unmasked refused / framer takes unmasked frames", checkUnmaskedRefused, testHooks{unmasked: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.check(t, nil); err != nil {
				t.Fatalf("the default engine fails the check: %v", err)
			}
			bug := tc.bug
			err := tc.check(t, &bug)
			if err == nil {
				t.Fatalf("the check passed the broken variant %+v", bug)
			}
			t.Logf("caught: %v", err)
		})
	}
}
