package conn

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lifeline-go/lifeline/fsm"
)

// TestSendQueueBoundExact pins the queue bound to the message: a peer that
// never reads is reaped for slow_consumer by the Send that finds QueueSize
// messages waiting, not one later. The peer is the far end of a net.Pipe,
// whose writes complete only when it reads, so once the writer has taken
// the first message it stays blocked writing it: Sends 2 to QueueSize+1
// queue, and Send QueueSize+2 reaps. A bound one message loose (`>=`
// written `>`) lets Send QueueSize+2 through. Default path: no Observer;
// the synctest bubble makes "the writer is blocked" a fact (synctest.Wait),
// not a guess about timing.
func TestSendQueueBoundExact(t *testing.T) {
	const queue = 4
	type result struct {
		errs  []error
		stats ServerStats
	}
	got := inBubble(t, func() result {
		ln := newMemListener()
		srv, err := NewServer(ServerConfig{QueueSize: queue, Logger: quietLogger(),
			// No ping within the test: the writer carries data frames only.
			Liveness: fsm.Liveness{PingInterval: time.Hour, PongTimeout: time.Minute}})
		if err != nil {
			panic(err)
		}
		hs := &http.Server{Handler: srv}
		go func() { _ = hs.Serve(ln) }()
		d := websocket.Dialer{NetDialContext: ln.dial}
		ws, _, err := d.Dial("ws://mem/", nil) // never reads
		if err != nil {
			panic(err)
		}
		synctest.Wait() // the server has finished the upgrade: the session is Alive
		s, ok := srv.Session(1)
		if !ok {
			panic("session not registered after its handshake")
		}
		var r result
		send := func(i int) { r.errs = append(r.errs, s.Send(TextMessage, []byte("m"+strconv.Itoa(i)))) }
		send(1)
		synctest.Wait() // the writer has message 1 and is blocked writing it
		for i := 2; i <= queue+3; i++ {
			send(i)
		}
		r.stats = srv.Stats()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_ = srv.Shutdown(ctx)
		cancel()
		_ = ws.Close()
		_ = hs.Close()
		_ = ln.Close()
		return r
	})
	for i, err := range got.errs {
		n := i + 1
		var sc *SessionClosedError
		switch {
		case n <= queue+1 && err != nil:
			t.Errorf("Send %d (message 1 being written, %d queued) = %v, want nil", n, max(n-2, 0), err)
		case n == queue+2 && !(errors.As(err, &sc) && sc.Reason == fsm.ReasonSlowConsumer && sc.State == fsm.Reaped):
			t.Errorf("Send %d (queue of %d full) = %v, want a slow_consumer reap", n, queue, err)
		case n > queue+2 && !errors.Is(err, ErrSessionClosed):
			t.Errorf("Send %d after the reap = %v, want ErrSessionClosed", n, err)
		}
	}
	if r := got.stats.Reaped; r["slow_consumer"] != 1 || got.stats.Open != 0 {
		t.Errorf("Stats after the reap: open %d, reaped %v; want 0 open, 1 slow_consumer", got.stats.Open, r)
	}
	if got.stats.DroppedMessages != queue {
		t.Errorf("DroppedMessages = %d, want the %d queued", got.stats.DroppedMessages, queue)
	}
}
