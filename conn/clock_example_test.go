package conn_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
)

// A mock clock (github.com/benbjohnson/clock) in ClientConfig.Clock runs
// the reconnect schedule on time the caller moves: here a client retries a
// refused port by its backoff, 2 s then 4 s, and gives up after the third
// attempt, while no wall-clock second passes. Production leaves Clock nil
// (clock.New(), the wall clock).
func ExampleClientConfig_clock() {
	// A port nothing listens on: every dial is refused at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	mock := clock.NewMock()
	start := mock.Now()
	c, err := conn.NewClient(conn.ClientConfig{
		URL:     "ws://" + addr + "/",
		Clock:   mock,
		Backoff: fsm.Backoff{Initial: 2 * time.Second, Multiplier: 2, Jitter: fsm.JitterNone, MaxAttempts: 3},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	states := c.Subscribe(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	for tr := range states {
		switch tr.To {
		case fsm.BackingOff:
			due := tr.At.Add(tr.Delay)
			fmt.Printf("+%s refused; attempt %d due at +%s\n", tr.At.Sub(start), tr.Attempt, due.Sub(start))
			// Move the mock to the due time. Run arms its timer just after
			// it reports the transition, so a Set may come first; setting
			// the same instant again until the attempt starts covers that
			// and never moves time past due.
			for n := c.Stats().Attempts; c.Stats().Attempts == n; {
				mock.Set(due)
			}
		case fsm.GaveUp:
			fmt.Printf("+%s gave up after attempt %d\n", tr.At.Sub(start), tr.Attempt)
		}
	}
	err = <-done
	fmt.Println("Run returned ErrGaveUp:", errors.Is(err, conn.ErrGaveUp))
	// Output:
	// +0s refused; attempt 2 due at +2s
	// +2s refused; attempt 3 due at +6s
	// +6s gave up after attempt 3
	// Run returned ErrGaveUp: true
}
