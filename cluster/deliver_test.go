package cluster

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
)

// TestNoDeliveryReportedUnwritten: sends race the session's close (a
// fence lands after k of them started); every send reported delivered
// must have reached the client, which reads everything written before the
// close frame. Counting a message as delivered when it is queued, not
// written, reports more than arrive: the close drops what is still queued.
func TestNoDeliveryReportedUnwritten(t *testing.T) {
	n := startNode(t, Config{Node: "solo"})
	waitFor(t, 20*time.Second, "solo Member", func() bool { return n.State() == fsm.Member })
	for _, k := range []int{0, 50, 200, 800, 0, 50, 200, 800, 0, 50, 200, 800, 400, 400, 600, 600} {
		var received atomic.Int64
		c, err := conn.NewClient(conn.ClientConfig{URL: n.url, Logger: slog.New(slog.DiscardHandler),
			Backoff:   fsm.Backoff{Initial: time.Hour, Max: time.Hour, MaxAttempts: 1},
			OnMessage: func(conn.MessageType, []byte) { received.Add(1) }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan struct{})
		go func() { defer close(ran); _ = c.Run(ctx) }()
		waitFor(t, 5*time.Second, "connected", func() bool { return c.State() == fsm.Connected })
		var id string
		waitFor(t, 5*time.Second, "session registered", func() bool {
			for _, l := range n.loc.all() {
				if l.s.State() == fsm.Alive {
					id = sessionID(n.ID(), l.inc, l.s.ID())
				}
			}
			return id != ""
		})
		var reported atomic.Int64
		var wg sync.WaitGroup
		for i := range 1000 {
			if i == k {
				n.srv.Fence()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if n.SendTo(context.Background(), id, []byte("m")) == nil {
					reported.Add(1)
				}
			}()
		}
		wg.Wait()
		// Every message written precedes the close frame: once the client
		// has left Connected, its reader handed it all to OnMessage.
		waitFor(t, 10*time.Second, "client dropped", func() bool { return c.State() != fsm.Connected })
		cancel()
		<-ran
		if r, got := reported.Load(), received.Load(); r > got {
			t.Errorf("fence after %d sends: %d reported delivered, the client received %d", k, r, got)
		} else {
			t.Logf("fence after %d sends: %d reported delivered, %d received", k, r, got)
		}
	}
}
