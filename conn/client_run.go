package conn

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/fsm"
)

// Run connects and keeps the client connected until ctx ends, then closes
// the link (close frame 1000, best effort, at most a second) and returns
// nil once every goroutine it started has returned. Cancelling ctx stops
// it promptly from any state: mid-dial (the dial is aborted), mid-wait
// (the wait is abandoned) or connected.
//
// If the Backoff policy gives up (MaxAttempts consecutive failures), Run
// returns a *GaveUpError (errors.Is ErrGaveUp) wrapping the last attempt's
// error. A Client runs once; a second Run returns ErrClientUsed.
func (c *Client) Run(ctx context.Context) error {
	if !c.ran.CompareAndSwap(false, true) {
		return ErrClientUsed
	}
	r := &runner{c: c, ctx: ctx, stopping: make(chan struct{})}
	defer r.finish()
	return r.loop()
}

// runner is the state of one Run: the goroutines it started and the
// attempt in flight. Only Run's goroutine touches it.
type runner struct {
	c        *Client
	ctx      context.Context
	stopping chan struct{} // closed as Run returns: senders give up
	wg       sync.WaitGroup

	attempt    int                // the attempt whose dial result counts
	dials      int                // attempts started: picks the endpoint
	cancelDial context.CancelFunc // aborts that dial
	lastErr    error
	acts       []fsm.Action // copy of the latest step's actions
}

// clientEvent is what a dial or link goroutine reports to Run.
type clientEvent struct {
	dialed bool // a dial result; otherwise the link of gen went down
	gen    int  // attempt number of the dial or link
	ws     *websocket.Conn
	err    error
}

func (r *runner) loop() error {
	c := r.c
	timer := c.clk.Timer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	r.step(c.clk.Now(), fsm.EvStart, nil, nil)
	for {
		switch c.State() {
		case fsm.Stopped:
			return nil
		case fsm.GaveUp:
			c.mu.Lock()
			e := &GaveUpError{Attempts: c.stats.Attempts, Cause: c.fc.GaveUpCause(), Last: r.lastErr}
			if e.Cause == fsm.GiveUpOffline {
				e.Offline = c.stats.LastErrorAt.Sub(c.fc.OfflineSince())
			}
			c.mu.Unlock()
			return e
		case fsm.BackingOff:
			if c.hooks.skipWait() { // the bug under test: retry without waiting
				c.mu.Lock()
				at, _ := c.fc.RetryAt()
				c.mu.Unlock()
				r.step(at, fsm.EvTick, nil, nil)
				continue
			}
			if c.hooks.holdLockInWait() { // the bug under test: the lock held across the wait
				r.waitLocked()
			}
		}
		c.mu.Lock()
		d, ok := c.fc.Deadline()
		if ok && c.hooks.skipRedial() && c.fc.State() == fsm.BackingOff && c.stats.Connects > 0 {
			ok = false // the bug under test: no retry once a link has dropped
		}
		c.mu.Unlock()
		if ok {
			timer.Reset(max(0, d.Sub(c.clk.Now())))
		}
		select {
		case <-r.ctx.Done():
			r.step(c.clk.Now(), fsm.EvStop, nil, nil)
		case <-timer.C:
			r.tick(c.clk.Now())
		case ev := <-c.events:
			r.handle(ev)
		case <-c.poke:
		case ev := <-c.reqs:
			r.step(c.clk.Now(), ev, nil, nil)
		}
		if ok {
			timer.Stop()
		}
	}
}

// tick hands the link's latest heard time, then the tick, to fsm.
func (r *runner) tick(now time.Time) {
	c := r.c
	c.mu.Lock()
	var cause error
	switch c.fc.State() {
	case fsm.Connecting: // a transition now can only be dial_timeout
		cause = errConnectTimeout{c.fc.Backoff().ConnectTimeout}
	case fsm.Connected: // ... or pong_timeout
		l := c.fc.Liveness()
		cause = errPongTimeout{l.PingInterval + l.PongTimeout}
		if lk := c.link; lk != nil {
			if h := lk.heard.Load(); h > lk.stepped {
				lk.stepped = h
				_, _ = c.fc.Step(c.epoch.Add(time.Duration(h)), fsm.EvMessage)
			}
		}
	}
	c.mu.Unlock()
	r.step(now, fsm.EvTick, cause, nil)
}

// handle takes a dial result or a link failure. Reports from an attempt
// or link that is no longer current are stale: their connection is closed
// and nothing else happens.
func (r *runner) handle(ev clientEvent) {
	c := r.c
	now := c.clk.Now()
	if ev.dialed {
		if ev.gen != r.attempt || c.State() != fsm.Connecting {
			if ev.ws != nil {
				_ = ev.ws.Close()
			}
			return
		}
		if ev.err != nil {
			r.step(now, fsm.EvDialFailed, ev.err, nil)
			return
		}
		l := newLink(r, ev.gen, ev.ws)
		r.step(now, fsm.EvDialOK, nil, func() { c.link = l })
		if c.hooks.resetOnDial() && c.State() == fsm.Connected {
			r.resetFailures(now) // the bug under test
		}
		if c.State() == fsm.Connected {
			r.wg.Add(1)
			go l.readLoop()
			if c.cfg.OnConnect != nil {
				c.cfg.OnConnect(c)
			}
			r.startDrain(l) // what was queued while down, after OnConnect's messages
		} else {
			_ = ev.ws.Close()
		}
		return
	}
	c.mu.Lock()
	current := c.link != nil && c.link.gen == ev.gen
	c.mu.Unlock()
	if current {
		r.step(now, fsm.EvDropped, ev.err, nil)
	}
}

// step hands ev to fsm and carries out the answer: under the lock, the
// bookkeeping (stats, link, subscribers, and onOK if the step succeeded);
// then, unlocked, the log line and the actions in fsm's order.
func (r *runner) step(now time.Time, ev fsm.Event, cause error, onOK func()) {
	c := r.c
	c.mu.Lock()
	f := failureOf(cause)
	if c.hooks.dropRetryAfter() {
		f.RetryAfter = 0 // the bug under test
	}
	out, err := c.fc.StepFailure(now, ev, f)
	if err != nil {
		c.mu.Unlock()
		return
	}
	if onOK != nil {
		onOK()
	}
	r.acts = append(r.acts[:0], out.Actions...)
	var tr fsm.Transition
	moved := out.Transition != nil
	if moved {
		tr = *out.Transition
		c.state.Store(uint32(tr.To))
		c.stats.State = tr.To
		switch tr.To {
		case fsm.Connecting:
			c.stats.Attempts++
		case fsm.Connected:
			c.stats.Connects++
		}
		if cause != nil {
			r.lastErr = cause
			c.stats.LastError, c.stats.LastErrorAt = cause, now
			c.stats.LastFailure, c.stats.LastClass = f, c.cfg.Failures.Classify(f)
		}
		c.publishLocked(tr)
	}
	var drop *link
	for _, a := range r.acts {
		if a.Kind == fsm.ActDrop {
			drop, c.link = c.link, nil
		}
	}
	c.mu.Unlock()
	if moved {
		logTransition(c.log, c.id, &tr, cause)
		c.observe(Observation{Kind: ObsTransition, At: c.clk.Now(), Transition: tr, Err: cause})
	}
	for _, a := range r.acts {
		switch a.Kind {
		case fsm.ActAbortDial:
			if r.cancelDial != nil {
				r.cancelDial()
			}
		case fsm.ActClose:
			if drop != nil {
				drop.writeClose(a.Code)
			}
		case fsm.ActDrop:
			if drop != nil {
				drop.drop()
			}
		case fsm.ActDial:
			r.dial(a.Attempt)
		case fsm.ActSendPing:
			c.mu.Lock()
			l := c.link
			c.mu.Unlock()
			if l != nil {
				l.ping()
			}
		}
	}
}

// dial starts attempt n on a goroutine of its own; its result comes back
// through c.events. The attempt's context is cancelled by ActAbortDial
// (connect timeout), by Run's ctx, or when the dial returns.
func (r *runner) dial(n int) {
	c := r.c
	ctx, cancel := context.WithCancel(r.ctx)
	r.attempt, r.cancelDial = n, cancel
	// Every attempt after the first follows a failure (a dial that failed
	// or timed out, or a link that dropped): it goes to the next endpoint.
	u := c.urls[r.dials%len(c.urls)]
	r.dials++
	c.url.Store(&u)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer cancel()
		ws, resp, err := c.dialOnce(ctx, u)
		if err != nil {
			de := &DialError{Attempt: n, URL: u, Err: err}
			if resp != nil {
				de.Status = resp.StatusCode
				de.RetryAfter, de.badRetryAfter = retryAfterOf(resp, c.clk.Now())
			}
			err = de
		}
		r.report(clientEvent{dialed: true, gen: n, ws: ws, err: err})
	}()
}

// dialOnce dials and shakes hands, abandoning both as soon as ctx ends.
// gorilla/websocket honours ctx while dialing but, past the TCP connect,
// only its deadline: a cancelled attempt would sit in the handshake until
// the server answered. So the raw connection is closed when ctx ends.
func (c *Client) dialOnce(ctx context.Context, u string) (*websocket.Conn, *http.Response, error) {
	var mu sync.Mutex
	var raw net.Conn
	ended := false // ctx ended: a connection that arrives now is closed at once
	d := *c.dialer
	base := c.cfg.NetDialContext
	if base == nil {
		base = (&net.Dialer{}).DialContext
	}
	d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := base(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		if ended {
			_ = nc.Close()
			return nil, ctx.Err()
		}
		raw = nc
		return nc, nil
	}
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		ended = true
		if raw != nil {
			_ = raw.Close()
		}
	})
	ws, resp, err := d.DialContext(ctx, u, c.cfg.Header)
	if !stop() && ws != nil { // ctx ended as the handshake completed
		_ = ws.Close()
		return nil, nil, ctx.Err()
	}
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return ws, resp, err
}

// report hands ev to Run, or, if Run is returning, closes what ev holds.
func (r *runner) report(ev clientEvent) {
	select {
	case r.c.events <- ev:
	case <-r.stopping:
		if ev.ws != nil {
			_ = ev.ws.Close()
		}
	}
}

// finish runs as Run returns: it aborts whatever is in flight, waits for
// every goroutine Run started, closes connections still in the event
// queue and ends the subscriptions.
func (r *runner) finish() {
	c := r.c
	close(r.stopping)
	if r.cancelDial != nil {
		r.cancelDial()
	}
	c.mu.Lock()
	l := c.link
	c.link = nil
	c.mu.Unlock()
	if l != nil {
		l.drop()
	}
	r.wg.Wait()
	r.clearOutbox()
	for {
		select {
		case ev := <-c.events:
			if ev.ws != nil {
				_ = ev.ws.Close()
			}
			continue
		default:
		}
		break
	}
	c.mu.Lock()
	c.closeSubsLocked()
	c.mu.Unlock()
}
