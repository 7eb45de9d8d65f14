package conn_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
)

// A user's mock clock in ClientConfig.Clock drives every timing decision of
// a Client, through the default path (Subscribe and Stats, no Observer or
// hook): the retries against a refused port start exactly when the mock
// reaches their due times (1 s, 4 s, 13 s by Initial 1 s ×3), none starts a
// millisecond early, the failures are stamped by the mock, and the give-up
// after MaxAttempts comes at mock time 13 s. A client that timed anything by
// the wall clock stamps wall-clock times or misses the mock's moves, and
// fails here.
func TestClientOnMockClock(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	mock := clock.NewMock()
	start := mock.Now()
	c, err := conn.NewClient(conn.ClientConfig{
		URL:     "ws://" + addr + "/",
		Clock:   mock,
		Backoff: fsm.Backoff{Initial: time.Second, Multiplier: 3, Max: time.Minute, Jitter: fsm.JitterNone, MaxAttempts: 4},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	states := c.Subscribe(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	// next returns the next transition into to (Subscribe coalesces, so
	// others may be skipped; the mock holds the client still meanwhile).
	next := func(to fsm.State) fsm.Transition {
		t.Helper()
		for tr := range states {
			if tr.To == to {
				return tr
			}
		}
		t.Fatalf("subscription closed before a transition to %s (%v)", to, ctx.Err())
		return fsm.Transition{}
	}
	for i, off := range []time.Duration{time.Second, 4 * time.Second, 13 * time.Second} {
		tr := next(fsm.BackingOff)
		due := start.Add(off)
		failedAt := start
		if i > 0 {
			failedAt = start.Add([]time.Duration{time.Second, 4 * time.Second}[i-1])
		}
		st := c.Stats()
		if !tr.At.Equal(failedAt) || !st.LastErrorAt.Equal(failedAt) || !tr.At.Add(tr.Delay).Equal(due) || !st.NextAttemptAt.Equal(due) {
			t.Fatalf("failure %d: at +%s (stats +%s), next attempt +%s (stats +%s); want failed at +%s, next at +%s",
				i+1, tr.At.Sub(start), st.LastErrorAt.Sub(start), tr.At.Add(tr.Delay).Sub(start), st.NextAttemptAt.Sub(start),
				failedAt.Sub(start), due.Sub(start))
		}
		// A millisecond short of due, no attempt may start: the timer the
		// client armed on the mock is not due, whether or not it was armed
		// yet (it is armed at due either way).
		n := st.Attempts
		mock.Set(due.Add(-time.Millisecond))
		if got := c.Stats().Attempts; got != n {
			t.Fatalf("attempt %d started at mock +%s, before its due time +%s", got, mock.Now().Sub(start), due.Sub(start))
		}
		// At due it starts. The client arms its timer just after it
		// publishes BackingOff, so the first Set may come before the timer
		// exists; setting the same instant again covers that and never
		// moves time past due (each Set yields 1 ms of real time, and the
		// context bounds the whole test).
		for c.Stats().Attempts == n {
			if ctx.Err() != nil {
				t.Fatalf("attempt %d never started at mock +%s", n+1, due.Sub(start))
			}
			mock.Set(due)
		}
	}
	tr := next(fsm.GaveUp)
	if want := start.Add(13 * time.Second); !tr.At.Equal(want) || tr.Attempt != 4 {
		t.Fatalf("gave up at +%s after attempt %d; want +13s after attempt 4", tr.At.Sub(start), tr.Attempt)
	}
	var gu *conn.GaveUpError
	if err := <-done; !errors.As(err, &gu) || gu.Attempts != 4 || gu.Cause != fsm.GiveUpAttempts {
		t.Fatalf("Run returned %v; want a *GaveUpError after 4 attempts (cause attempts)", err)
	}
	if got := mock.Now().Sub(start); got != 13*time.Second {
		t.Fatalf("mock at +%s when Run returned; the test moved it to +13s only", got)
	}
}
