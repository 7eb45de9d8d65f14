package onebot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
)

// appClient connects to a forward Server the way an application does: a
// conn.Client whose messages go to a Caller first, events to the test.
func appClient(t *testing.T, url string, timeout time.Duration) (*Caller, *conn.Client, chan []byte) {
	t.Helper()
	events := make(chan []byte, 64)
	var caller *Caller
	c, err := conn.NewClient(conn.ClientConfig{URL: url, Liveness: fastLive, Logger: quiet(),
		OnMessage: func(_ conn.MessageType, data []byte) {
			if !caller.Deliver(data) {
				select {
				case events <- data:
				default:
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	caller = NewCaller(func(ctx context.Context, data []byte) error { return c.Send(ctx, conn.TextMessage, data) }, timeout)
	return caller, c, events
}

func TestCallerMatchesByEcho(t *testing.T) {
	f := startForward(t, ServerConfig{HeartbeatInterval: -1, Actions: Actions{
		"slow_echo": func(_ context.Context, p json.RawMessage) (any, error) {
			var d struct{ Wait int }
			_ = json.Unmarshal(p, &d)
			time.Sleep(time.Duration(d.Wait) * time.Millisecond) // the action's own work
			return json.RawMessage(p), nil
		}}})
	caller, c, _ := appClient(t, f.url+"/", 5*time.Second)
	stop := runConn(t, c)
	defer stop()
	waitFor(t, "connected", func() bool { return c.State() == fsm.Connected })
	// Concurrent calls on one link, answered in another order than sent
	// (the handler runs them in turn, the waits differ): each gets its own.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := caller.Call(context.Background(), "slow_echo", map[string]int{"Wait": (8 - i) % 3, "I": i})
			if err != nil {
				errs <- err
				return
			}
			var got struct{ I int }
			if json.Unmarshal(resp.Data, &got) != nil || got.I != i || resp.Status != "ok" {
				errs <- fmt.Errorf("call %d got %s", i, resp.Data)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	resp, err := caller.Call(context.Background(), "nope", nil)
	if err != nil || resp.Status != "failed" || resp.Retcode != RetNotFound {
		t.Fatalf("unknown action: %+v, %v", resp, err)
	}
}

func TestCallerLinkDownAndTimeout(t *testing.T) {
	f := startForward(t, ServerConfig{HeartbeatInterval: -1})
	caller, c, _ := appClient(t, f.url+"/event", 100*time.Millisecond)
	// Not running yet: no link, the call fails at once.
	start := time.Now()
	_, err := caller.Call(context.Background(), "get_status", nil)
	if !errors.Is(err, conn.ErrNotConnected) || time.Since(start) > time.Second {
		t.Fatalf("call while down: %v after %s; want conn.ErrNotConnected at once", err, time.Since(start))
	}
	var ce *CallError
	if !errors.As(err, &ce) || ce.Action != "get_status" {
		t.Fatalf("error %v is not a *CallError naming the action", err)
	}
	stop := runConn(t, c)
	defer stop()
	waitFor(t, "connected", func() bool { return c.State() == fsm.Connected })
	// An event link answers nothing: the call times out.
	_, err = caller.Call(context.Background(), "get_status", nil)
	if !errors.Is(err, ErrCallTimeout) {
		t.Fatalf("call on an event link: %v, want ErrCallTimeout", err)
	}
}

func runConn(t *testing.T, c *conn.Client) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}
