package conn

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/fsm"
)

// The fast liveness tier on both ends: a write that fails ends the session
// or the link at once, not at the liveness bound. Real sockets on
// 127.0.0.1, no Observer: the reap or drop is read from the JSON log
// (with the cause it carries), Stats and the peer.

// sendFailLiveness leaves silence far away (ping 5 s + pong 2 s), so any
// reap within the bounds below is the write's doing.
func sendFailLiveness() fsm.Liveness {
	return fsm.Liveness{PingInterval: 5 * time.Second, PongTimeout: 2 * time.Second, WriteTimeout: 200 * time.Millisecond,
		HandshakeTimeout: time.Second, CloseTimeout: time.Second}
}

// sendFailSlack is the time a failed write may take to become a reap or a
// drop on this machine: a wakeup and one fsm step. Measured here (8 runs
// under -race): RST to reap 54–164 µs, RST to client drop 60–97 µs, and
// 3–11 ms past WriteTimeout for the deadline path (which includes filling
// the socket buffers). 50 ms leaves room for a loaded machine and is still
// two orders of magnitude below the liveness bound (7 s).
const sendFailSlack = 50 * time.Millisecond

// holdReader is an OnMessage handler that parks the session's reader on
// the first message until release is closed, so that the writer, not the
// reader, is the first to meet a dead socket.
type holdReader struct {
	held    chan struct{}
	release chan struct{}
	once    sync.Once
}

func newHoldReader(t *testing.T) *holdReader {
	h := &holdReader{held: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(h.free)
	return h
}

func (h *holdReader) free() {
	select {
	case <-h.release:
	default:
		close(h.release)
	}
}

func (h *holdReader) hold() {
	h.once.Do(func() { close(h.held) })
	<-h.release
}

// fill queues n 1 MiB messages on the session: more than loopback's
// socket buffers take, so the writer is still writing when the fault hits.
func fill(t *testing.T, ts *testServer, id uint64, n int) {
	t.Helper()
	payload := []byte(strings.Repeat("x", 1<<20))
	s, ok := ts.Session(id)
	if !ok {
		t.Fatalf("no session %d", id)
	}
	for i := range n {
		if err := s.Send(BinaryMessage, payload); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
}

func TestServerSendFailureReapsAtOnce(t *testing.T) {
	live := sendFailLiveness()
	for _, tc := range []struct {
		name string
		// fault breaks the path once the writer has a backlog, and returns
		// when it did (or when the write began that will fail).
		fault func(ws *websocket.Conn, queued time.Time) time.Time
		after time.Duration // how long after the fault the write fails
		cause string        // in the logged error
	}{
		{"RST mid-write", func(ws *websocket.Conn, _ time.Time) time.Time {
			_ = ws.NetConn().(*net.TCPConn).SetLinger(0)
			at := time.Now()
			_ = ws.NetConn().Close()
			return at
		}, 0, "connection reset by peer"},
		// The peer keeps its socket open and stops reading: the write
		// that cannot finish fails at its WriteTimeout, begun at most as
		// the backlog was queued.
		{"peer not draining (write deadline)", func(_ *websocket.Conn, queued time.Time) time.Time {
			return queued
		}, live.WriteTimeout, "i/o timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHoldReader(t)
			ts := startServer(t, ServerConfig{Liveness: live, QueueSize: 64,
				OnMessage: func(*Session, MessageType, []byte) error { h.hold(); return nil }})
			ws := dialRaw(t, ts.url, nil)
			if err := ws.WriteMessage(websocket.TextMessage, []byte("hold")); err != nil {
				t.Fatal(err)
			}
			<-h.held
			alive := transitions(ts.rec.wait(t, 5*time.Second, "Alive", countTo(fsm.Alive, 1)), fsm.Alive)[0]
			id := sessionIDOf(t, alive)
			start := time.Now()
			fill(t, ts, id, 32)
			at := tc.fault(ws, start)
			obs := ts.rec.wait(t, 5*time.Second, "the reap", countTo(fsm.Reaped, 1))
			h.free()
			reaped := transitions(obs, fsm.Reaped)[0]
			tr := reaped.Transition
			if tr.Reason != fsm.ReasonSendError || tr.Trigger != fsm.SendError {
				t.Fatalf("reaped by trigger %s for %s (%v), want send_error: a failed write reaps at once", tr.Trigger, tr.Reason, reaped.Err)
			}
			if reaped.Err == nil || !strings.Contains(reaped.Err.Error(), tc.cause) {
				t.Errorf("logged cause %v, want one saying %q", reaped.Err, tc.cause)
			}
			took := reaped.At.Sub(at)
			if took < tc.after || took > tc.after+sendFailSlack {
				t.Errorf("reaped %s after the fault; want %s..%s (liveness bound %s)", took, tc.after, tc.after+sendFailSlack,
					live.PingInterval+live.PongTimeout)
			}
			t.Logf("reaped %s after the fault (%s)", took, reaped.Err)
			if st := ts.Stats(); st.Open != 0 || st.Reaped["send_error"] != 1 || st.ReapedTotal != 1 {
				t.Errorf("Stats after the reap: %+v", st)
			}
		})
	}
}

// sessionIDOf returns the session id of a logged session transition.
func sessionIDOf(t *testing.T, o Observation) uint64 {
	t.Helper()
	for i, id := uint64(0), uint64(0); i < uint64(len(o.ID)); i++ {
		if o.ID[i] < '0' || o.ID[i] > '9' {
			t.Fatalf("session id %q", o.ID)
		}
		id = id*10 + uint64(o.ID[i]-'0')
		if i == uint64(len(o.ID))-1 {
			return id
		}
	}
	t.Fatalf("empty session id")
	return 0
}

// TestClientSendFailureDropsLink: the server resets the connection while
// the client's reader is busy in OnMessage; the client's next Send fails,
// returns the socket's error, and drops the link at once (trigger
// dropped, the send error logged), then retries exactly as its policy
// says.
func TestClientSendFailureDropsLink(t *testing.T) {
	b := fsm.Backoff{Initial: 300 * time.Millisecond, Multiplier: 2, Max: time.Second, Jitter: fsm.JitterNone,
		ConnectTimeout: time.Second, StableAfter: time.Minute}
	var mu sync.Mutex
	links := 0
	reset := make(chan time.Time, 1)
	url := rawWSServer(t, func(ws *websocket.Conn) {
		mu.Lock()
		links++
		first := links == 1
		mu.Unlock()
		if !first {
			for { // the reconnect: an ordinary peer
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}
		if ws.WriteMessage(websocket.TextMessage, []byte("hold")) != nil {
			return
		}
		// Wait for the client's word that its reader is parked.
		if _, _, err := ws.ReadMessage(); err != nil {
			return
		}
		_ = ws.NetConn().(*net.TCPConn).SetLinger(0)
		at := time.Now()
		_ = ws.NetConn().Close()
		reset <- at
	})
	h := newHoldReader(t)
	var c *Client
	c, rec, _ := newTestClient(t, ClientConfig{URL: url, Backoff: b, Liveness: sendFailLiveness(),
		OnMessage: func(MessageType, []byte) { h.hold() }})
	stop := runClient(t, c)
	defer func() { h.free(); _ = stop() }()
	<-h.held
	if err := c.Send(context.Background(), TextMessage, []byte("parked")); err != nil {
		t.Fatal(err)
	}
	at := <-reset
	// The reset reaches the client's socket with the close; the first
	// write after it fails. A few writes may land first on a slow
	// machine: the kernel had not yet processed the reset.
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = c.Send(context.Background(), TextMessage, []byte("after the reset"))
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Send after the reset = %v, want the socket's ECONNRESET or EPIPE", err)
	}
	obs := rec.wait(t, 5*time.Second, "the retry", countTo(fsm.Connected, 2))
	h.free()
	drop := transitions(obs, fsm.BackingOff)[0]
	tr := drop.Transition
	if tr.From != fsm.Connected || tr.Trigger != fsm.Dropped {
		t.Fatalf("link left %s by %s, want Connected→BackingOff by dropped", tr.From, tr.Trigger)
	}
	if drop.Err == nil || !strings.Contains(drop.Err.Error(), "send:") {
		t.Errorf("logged cause %v, want the failed send", drop.Err)
	}
	if took := drop.At.Sub(at); took > sendFailSlack {
		t.Errorf("link dropped %s after the reset; want ≤ %s (liveness bound %s)", took, sendFailSlack,
			sendFailLiveness().PingInterval+sendFailLiveness().PongTimeout)
	}
	// Then the policy: one failure, no jitter, so the retry is Initial
	// after the drop, to the timer's precision.
	retry := transitions(obs, fsm.Connecting)[1]
	if gap := retry.At.Sub(drop.At); gap < b.Earliest(1) || gap > b.Latest(1)+sendFailSlack {
		t.Errorf("retry %s after the drop; policy says %s..%s", gap, b.Earliest(1), b.Latest(1))
	}
	t.Logf("dropped %s after the reset (%v); retried %s later", drop.At.Sub(at), err, retry.At.Sub(drop.At))
}
