package onebot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// DefaultCallTimeout bounds a Call whose context has no earlier deadline.
const DefaultCallTimeout = 30 * time.Second

// ErrCallTimeout is wrapped by Call's error when no response came in time.
var ErrCallTimeout = errors.New("onebot: no response in time")

// CallError is a Call that got no response: the link was down (Err wraps
// the transport's error, e.g. conn.ErrNotConnected), the response did not
// come in time (ErrCallTimeout), or the caller gave up (ctx's error).
type CallError struct {
	Action string // the action called
	Echo   string // the echo the request carried
	Err    error  // why no response came
}

// Error names the call and why no response came.
func (e *CallError) Error() string {
	return fmt.Sprintf("onebot: call %s (echo %s): %v", e.Action, e.Echo, e.Err)
}

// Unwrap returns Err, for errors.Is(err, ErrCallTimeout) and the like.
func (e *CallError) Unwrap() error { return e.Err }

// Caller is the application's side of the API: it sends requests over a
// link and matches responses to them by echo. It is safe for concurrent
// use; any number of calls may be in flight on one link.
type Caller struct {
	send    func(ctx context.Context, data []byte) error
	timeout time.Duration

	mu      sync.Mutex
	next    uint64
	pending map[string]chan Response
}

// NewCaller returns a Caller that sends with send (conn.Client.Send or
// conn.Session.Send, wrapped) and waits at most timeout for each response
// (zero: DefaultCallTimeout). Feed every message from the link to Deliver.
func NewCaller(send func(ctx context.Context, data []byte) error, timeout time.Duration) *Caller {
	if timeout <= 0 {
		timeout = DefaultCallTimeout
	}
	return &Caller{send: send, timeout: timeout, pending: map[string]chan Response{}}
}

// Call sends action with params (any JSON-marshallable value, or nil) and
// waits for its response. A response with status "failed" is returned
// with a nil error: it is an answer. No answer is a *CallError: at once
// when the link is down (nothing is queued), after the timeout otherwise.
func (c *Caller) Call(ctx context.Context, action string, params any) (*Response, error) {
	var raw json.RawMessage
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return nil, fmt.Errorf("onebot: call %s: params: %w", action, err)
		}
		raw = b
	}
	c.mu.Lock()
	c.next++
	echo := "lifeline-" + strconv.FormatUint(c.next, 10)
	ch := make(chan Response, 1)
	c.pending[echo] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, echo)
		c.mu.Unlock()
	}()
	req, err := json.Marshal(request{Action: action, Params: raw, Echo: json.RawMessage(strconv.Quote(echo))})
	if err != nil {
		return nil, &CallError{Action: action, Echo: echo, Err: err}
	}
	if err := c.send(ctx, req); err != nil {
		return nil, &CallError{Action: action, Echo: echo, Err: err}
	}
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	select {
	case resp := <-ch:
		return &resp, nil
	case <-timer.C:
		return nil, &CallError{Action: action, Echo: echo, Err: fmt.Errorf("%w (%s)", ErrCallTimeout, c.timeout)}
	case <-ctx.Done():
		return nil, &CallError{Action: action, Echo: echo, Err: ctx.Err()}
	}
}

// Deliver hands the Caller one message from the link. It reports whether
// the message was the response to a pending call (and consumed); events
// and anything else return false, for the caller to handle.
func (c *Caller) Deliver(msg []byte) bool {
	if !isResponse(msg) {
		return false
	}
	var resp Response
	if json.Unmarshal(msg, &resp) != nil {
		return false
	}
	var echo string
	if json.Unmarshal(resp.Echo, &echo) != nil {
		return false
	}
	c.mu.Lock()
	ch, ok := c.pending[echo]
	delete(c.pending, echo)
	c.mu.Unlock()
	if ok {
		ch <- resp
	}
	return ok
}
