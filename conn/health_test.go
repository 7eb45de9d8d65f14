//go:build linux

package conn

import (
	"testing"
	"time"
)

// TestHealth: on the poll engine with a live peer (gorilla answers every
// ping while it reads), the timer and the poller have run within a ping
// interval and no session is unheard; with the timer's ticks skipped (the
// broken variant: nobody is pinged, a silent peer is never reaped), the
// timer's time falls behind and the silent session is counted unheard.
// (A Health whose Unheard stays 0, or whose timer time is never set,
// fails one of the two.)
func TestHealth(t *testing.T) {
	l := fastLiveness()
	bound := l.PingInterval + l.PongTimeout
	// eventually polls Health until ok holds, for at most 5 s: the
	// conditions are about loops that run every ping interval, so a
	// loaded host only delays them.
	eventually := func(t *testing.T, srv *Server, what string, ok func(Health) bool) Health {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			h := srv.Health()
			if ok(h) {
				return h
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5 s; last %+v", what, h)
			}
			time.Sleep(10 * time.Millisecond) // polling Health, bounded by deadline
		}
	}
	t.Run("live peer", func(t *testing.T) {
		ts := startServer(t, ServerConfig{Engine: EnginePoll, Liveness: l})
		ws := dialRaw(t, ts.url, nil)
		go func() { // reading answers the server's pings
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
		// Past the liveness bound, so a silent session would be unheard.
		start := time.Now()
		eventually(t, ts.Server, "fresh timer and poller, the peer heard, after the liveness bound", func(h Health) bool {
			return time.Since(start) > 2*bound && !h.TimerAt.IsZero() && !h.PollerAt.IsZero() &&
				h.At.Sub(h.TimerAt) <= l.PingInterval && h.At.Sub(h.PollerAt) <= l.PingInterval && h.Unheard == 0
		})
	})
	t.Run("timer not ticking", func(t *testing.T) {
		ts := startHookedServer(t, ServerConfig{Engine: EnginePoll, Liveness: l}, &testHooks{noTicks: true})
		_ = dialRaw(t, ts.url, nil) // never read: silent
		eventually(t, ts.Server, "a stale timer and the silent session unheard", func(h Health) bool {
			return h.Unheard == 1 && h.At.Sub(h.TimerAt) > bound
		})
	})
}
