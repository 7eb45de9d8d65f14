//go:build linux

package conn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/internal/poll"
)

// TestPollTrickledFrameCopiesLinearly: a frame that arrives in many small
// reads (a peer sending one small TCP segment at a time) costs the poller
// copying in proportion to the frame, not to the frame times the number
// of reads. Keeping a fresh copy of everything read so far after every
// read made a 64 KiB message sent in 64-byte segments cost ~34 MB of
// allocation and copying: an amplification any client could buy.
func TestPollTrickledFrameCopiesLinearly(t *testing.T) {
	const size, seg = 64<<10 - 16, 64
	h := newPollHarness(t, ServerConfig{}, 16<<10, nil)
	in := clientFrame(true, opBinary, bytes.Repeat([]byte("x"), size))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for b := in; len(b) > 0; {
		k := min(seg, len(b))
		if _, err := h.peer.Write(b[:k]); err != nil {
			t.Fatal(err)
		}
		b = b[k:]
		h.pc.onReadable(h.buf)
	}
	runtime.ReadMemStats(&after)
	select {
	case got := <-h.msgs:
		if len(got) != size {
			t.Fatalf("OnMessage got %d bytes, want %d", len(got), size)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the message never reached OnMessage")
	}
	// Linear: the growing frame (amortised doubling, < 2×), the message
	// (1×), the OnMessage string and the test's own writes: under 8×.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8*size {
		t.Fatalf("reading a %d-byte frame in %d-byte reads allocated %d bytes (%.0f× the frame); want under 8×",
			size, seg, alloc, float64(alloc)/size)
	}
}

// TestPollChurn: many sessions connect, echo and go at once on the poll
// engine, half by a close frame and half by dropping the TCP connection,
// while other goroutines Send to every registered session, so teardowns,
// descriptor numbers reused by the next dup, the poller stopping and
// restarting and Sends during teardown all race (run it with -race).
// Every peer gets back its own message and nobody else's; afterwards no
// session, no poller and no descriptor is left.
func TestPollChurn(t *testing.T) {
	const rounds, clients, spammers, spamSends = 4, 24, 3, 3000
	ts := startServer(t, ServerConfig{Engine: EnginePoll, OnMessage: echo, QueueSize: 1 << 16})
	fdsBefore := openFDs(t)
	done := make(chan struct{})
	var spam sync.WaitGroup
	for range spammers {
		spam.Add(1)
		go func() {
			defer spam.Done()
			for sent := 0; sent < spamSends; {
				select {
				case <-done:
					return
				default:
				}
				for _, s := range ts.snapshot() {
					_ = s.Send(TextMessage, []byte("spam"))
					sent++
				}
				runtime.Gosched()
			}
		}()
	}
	errs := make(chan error, rounds*clients)
	for r := range rounds {
		var wg sync.WaitGroup
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := churnClient(ts.url, fmt.Sprintf("round %d client %d", r, c), c%2 == 0); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
	}
	close(done)
	spam.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !poll.Until(10*time.Second, func() bool { return ts.Stats().Registered == 0 }) {
		t.Fatalf("sessions left after every peer went: %+v", ts.Stats())
	}
	ps := ts.polls
	if !poll.Until(5*time.Second, func() bool {
		ps.mu.Lock()
		defer ps.mu.Unlock()
		return !ps.running
	}) {
		ps.mu.Lock()
		t.Fatalf("the poller still runs with no session (attached %d)", ps.n)
	}
	ps.mu.Lock()
	n := ps.n
	ps.mu.Unlock()
	if n != 0 {
		t.Fatalf("the poll set counts %d sessions attached after all were reaped", n)
	}
	if !poll.Until(5*time.Second, func() bool { return openFDs(t) <= fdsBefore }) {
		t.Fatalf("%d descriptors open after the churn, %d before", openFDs(t), fdsBefore)
	}
}

// churnClient dials, sends msg, reads until its echo (skipping the
// spammers' messages) and goes: by a close frame (gently) or by closing
// the TCP connection.
func churnClient(url, msg string, gently bool) error {
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		return fmt.Errorf("%s: dial: %w", msg, err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		return fmt.Errorf("%s: write: %w", msg, err)
	}
	for {
		_, got, err := ws.ReadMessage()
		if err != nil {
			return fmt.Errorf("%s: read before the echo: %w", msg, err)
		}
		if string(got) == msg {
			break
		}
		if string(got) != "spam" {
			return fmt.Errorf("%s: got %q, another session's message", msg, got)
		}
	}
	if !gently {
		return nil
	}
	if err := ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(5*time.Second)); err != nil {
		return fmt.Errorf("%s: close: %w", msg, err)
	}
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
				return fmt.Errorf("%s: the server answered the close with %v, want 1000", msg, err)
			}
			return nil
		}
	}
}

// TestPollDetachFailureFallsBack: when the poll set cannot take a
// session (here: no descriptor left for the epoll set once the socket's
// own was duplicated), the session gets the goroutine engine on its
// still-open connection, as detach promises, and echoes. The engine used
// to close the connection before asking the poll set, so the fallback
// ran on a closed socket and the peer was cut off at once.
func TestPollDetachFailureFallsBack(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skip(err)
	}
	accepted := make(chan struct{}, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opened := make(chan *Session, 1)
	srv, err := NewServer(ServerConfig{Engine: EnginePoll, OnMessage: echo, Logger: quietLogger(),
		OnOpen: func(s *Session, _ *http.Request) { opened <- s }})
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go func() { _ = hs.Serve(signalListener{ln, accepted}) }()
	t.Cleanup(func() {
		_ = srv.Close()
		_ = hs.Close()
	})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-accepted
	// Leave exactly one descriptor number free: the dup takes it, and
	// the epoll set cannot be made.
	low := lim
	low.Cur = uint64(openFDs(t) + 64)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skip(err)
	}
	var filler []int
	for {
		fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		filler = append(filler, fd)
	}
	_ = syscall.Close(filler[len(filler)-1])
	filler = filler[:len(filler)-1]
	restore := func() {
		for _, fd := range filler {
			_ = syscall.Close(fd)
		}
		filler = nil
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	defer restore()
	br := upgradeConn(t, c)
	s := <-opened
	restore()
	s.mu.Lock()
	_, polled := s.w.(*pollConn)
	s.mu.Unlock()
	if polled {
		t.Fatal("the session was polled; the check needs the poll set to fail")
	}
	if _, err := c.Write(rawFrame(0x80|opText, []byte("still here"))); err != nil {
		t.Fatalf("write after the fallback: %v", err)
	}
	op, p, err := readServerFrame(br)
	if err != nil || op != opText || string(p) != "still here" {
		t.Fatalf("after the fallback the peer read %x %q, %v; want the echo", op, p, err)
	}
}

// signalListener reports each accepted connection on accepted.
type signalListener struct {
	net.Listener
	accepted chan struct{}
}

func (l signalListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		select {
		case l.accepted <- struct{}{}:
		default:
		}
	}
	return c, err
}

// TestShutdownWithParkedWriter: a peer that stopped reading leaves the
// session's writer waiting for room in the socket; Shutdown(ctx) still
// returns ctx's error once ctx ends, within the close frame's wait, on
// both engines, and the session is reaped.
func TestShutdownWithParkedWriter(t *testing.T) {
	for _, e := range []Engine{EngineGoroutine, EnginePoll} {
		t.Run(e.String(), func(t *testing.T) {
			live := fastLiveness()
			live.PingInterval, live.CloseTimeout, live.WriteTimeout = 10*time.Second, 10*time.Second, 10*time.Second
			ts := startServer(t, ServerConfig{Engine: e, Liveness: live})
			c, _ := rawUpgrade(t, ts) // the peer reads nothing from here on
			// A fixed receive buffer: no autotuning that would open the
			// window now and then and wake the parked writer.
			if err := c.(*net.TCPConn).SetReadBuffer(64 << 10); err != nil {
				t.Fatal(err)
			}
			s := onlySession(t, ts)
			// More than the socket buffers hold (loopback's receive buffer
			// autotunes up to 32 MiB here), so the writer is still parked
			// when Shutdown begins.
			written := make(chan error, 1)
			if err := s.SendNotify(BinaryMessage, make([]byte, 96<<20), func(err error) { written <- err }); err != nil {
				t.Fatal(err)
			}
			waitDequeued(t, s)
			if e == EnginePoll {
				s.mu.Lock()
				pc := s.w.(*pollConn)
				s.mu.Unlock()
				if !poll.Until(5*time.Second, func() bool {
					pc.fdmu.Lock()
					defer pc.fdmu.Unlock()
					return pc.wantOut
				}) {
					t.Fatal("the writer never waited for room")
				}
			}
			const grace = 200 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), grace)
			defer cancel()
			start := time.Now()
			err := ts.Shutdown(ctx)
			took := time.Since(start)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Shutdown = %v, want the deadline (the peer never answered)", err)
			}
			if max := grace + min(live.WriteTimeout, closeFrameWait) + 500*time.Millisecond; took > max {
				t.Fatalf("Shutdown took %s with a parked writer, want under %s", took, max)
			}
			if st := ts.Stats(); st.Registered != 0 {
				t.Fatalf("sessions left after Shutdown: %+v", st)
			}
			if err := <-written; err == nil || errors.Is(err, ErrSessionClosed) {
				t.Fatalf("Delivered(%v); want the write cut short: the check needs a writer parked at Shutdown", err)
			}
		})
	}
}

// TestBlockedDeliveredStallsOnlyItsSession: a Delivered callback that
// blocks while its session is reaped for a bad frame holds up that
// session alone; another session still echoes. (Delivered runs on "the
// goroutine that closed the session": on the poll engine that must not be
// the one poller that reads every session.)
func TestBlockedDeliveredStallsOnlyItsSession(t *testing.T) {
	for _, e := range []Engine{EngineGoroutine, EnginePoll} {
		t.Run(e.String(), func(t *testing.T) {
			opened := make(chan *Session, 2)
			ts := startServer(t, ServerConfig{Engine: e, OnMessage: echo,
				OnOpen: func(s *Session, _ *http.Request) { opened <- s }})
			release := make(chan struct{})
			defer close(release)      // before the cleanup's Shutdown, which waits for it
			a, _ := rawUpgrade(t, ts) // reads nothing
			if err := a.(*net.TCPConn).SetReadBuffer(64 << 10); err != nil {
				t.Fatal(err)
			}
			sa := <-opened
			// A message bigger than the socket buffers keeps A's writer
			// busy, so the next one stays queued.
			if err := sa.Send(BinaryMessage, make([]byte, 96<<20)); err != nil {
				t.Fatal(err)
			}
			waitDequeued(t, sa)
			blocked := make(chan struct{})
			if err := sa.SendNotify(TextMessage, []byte("queued"), func(error) {
				close(blocked)
				<-release
			}); err != nil {
				t.Fatal(err)
			}
			// An unmasked frame: A is reaped on its read side, which drops
			// the queued message and calls its Delivered.
			if _, err := a.Write([]byte{0x81, 0x00}); err != nil {
				t.Fatal(err)
			}
			select {
			case <-blocked:
			case <-time.After(5 * time.Second):
				t.Fatal("A was not reaped for its bad frame")
			}
			b := dialRaw(t, ts.url, nil)
			_ = b.SetReadDeadline(time.Now().Add(2 * time.Second))
			if err := b.WriteMessage(websocket.TextMessage, []byte("b")); err != nil {
				t.Fatal(err)
			}
			if _, got, err := b.ReadMessage(); err != nil || string(got) != "b" {
				t.Fatalf("B's echo: %q, %v, while A's Delivered blocks; want B unaffected", got, err)
			}
		})
	}
}

// waitDequeued waits until s's writer has taken every queued message.
func waitDequeued(t *testing.T, s *Session) {
	t.Helper()
	if !poll.Until(5*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.queuedLocked() == 0
	}) {
		t.Fatal("the writer never took the queued message")
	}
}
