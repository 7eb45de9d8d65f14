package conn

import (
	"context"
	"fmt"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// The bounded outbox (ClientConfig.Outbox): what Send is given while the
// client has no link is held, bounded by count, bytes and age, and written
// in order once a link is up again, after OnConnect. fsm.OutboxQueue
// decides what is held, taken and dropped; this file carries it out.
//
// The order rule: while the outbox holds anything, or its drainer is
// running, every Send joins its tail; only once the drainer has found it
// empty (under c.mu, where Send decides too) do Sends go to the link
// directly again. So no Send overtakes a queued message, and a message
// taken by the drainer is written (it holds the link's write lock) before
// any Send that came after it. One drainer runs at a time: the drainer of
// a new link waits for the previous link's to finish its last write.

// OutboxDrop is a message the outbox accepted (Send returned nil) and
// then did not write, handed to ClientConfig.OnDrop.
type OutboxDrop struct {
	Reason   fsm.DropReason // why it was not written
	Seq      uint64         // the message's number, as in Observation.Seq
	Type     MessageType    // TextMessage or BinaryMessage, as given to Send
	Data     []byte         // the payload, the outbox's own copy: the callee may keep it
	QueuedAt time.Time      // when Send queued it (the client's clock)
}

// obItem is what the outbox holds of a message: its own copy.
type obItem struct {
	t    MessageType
	data []byte
}

type obDrops = []fsm.OutboxDrop[obItem]

// outbox is a Client's outbox state, guarded by Client.mu.
type outbox struct {
	q *fsm.OutboxQueue[obItem]
	// drainer is the link whose drainer is running, nil if none: while
	// set, Sends queue. done is closed when that drainer returns.
	drainer *link
	done    chan struct{}
}

// newOutbox returns the outbox for p, nil when p is off.
func newOutbox(p fsm.Outbox) (*outbox, error) {
	if !p.On() {
		return nil, nil
	}
	q, err := fsm.NewOutboxQueue[obItem](p)
	if err != nil {
		return nil, err
	}
	return &outbox{q: q}, nil
}

// SendEphemeral is Send for a message that is only worth sending now: a
// heartbeat, a hello or a lifecycle event that belongs to the current
// link. It is never queued: with no link it fails at once with a
// *NotConnectedError, outbox or not, and with a link it goes out at once,
// even while the outbox drains (it is no part of the queued order). In
// OnConnect, send what must go before the outbox drains this way.
func (c *Client) SendEphemeral(ctx context.Context, t MessageType, data []byte) error {
	return c.send(ctx, t, data, true)
}

// sendQueuedLocked is Send with the outbox on, called with c.mu held
// (it releases it): it queues the message (or refuses it), and done is
// true with Send's result; or, when a link is up and nothing is queued or
// draining, done is false and the caller writes on l directly, as without
// an outbox.
func (c *Client) sendQueuedLocked(t MessageType, data []byte, l *link, st fsm.State) (done bool, err error) {
	ob := c.ob
	now := c.clk.Now()
	if l != nil && ob.q.Len() == 0 && ob.drainer == nil || l != nil && c.hooks.overtakeOutbox() {
		c.observe(Observation{Kind: ObsOutboxWritten, At: now, Seq: ob.q.NextSeq()})
		c.mu.Unlock()
		return false, nil
	}
	if st == fsm.GaveUp || st == fsm.Stopped {
		c.mu.Unlock()
		err := &NotConnectedError{State: st}
		c.observe(Observation{Kind: ObsRefused, At: now, Frame: Frame(t), Size: len(data), Err: err})
		return true, err
	}
	item := obItem{t: t, data: append([]byte(nil), data...)}
	seq, drops, err := ob.q.Push(now, len(data), item, nil)
	c.observeDrops(drops)
	if err != nil {
		c.mu.Unlock()
		err = fmt.Errorf("conn: client %s: cannot queue %d bytes (outbox Bytes %d): %w", c.id, len(data), ob.q.Policy().Bytes, err)
		c.observe(Observation{Kind: ObsRefused, At: now, Frame: Frame(t), Size: len(data), Err: err})
		return true, err
	}
	c.observe(Observation{Kind: ObsOutboxQueued, At: now, Seq: seq, Frame: Frame(t), Size: len(data)})
	c.drainLocked()
	c.mu.Unlock()
	c.onDrop(drops)
	return true, nil
}

// observeDrops reports drops to the Observer; c.mu is held, so that they
// are observed in the order the outbox made them.
func (c *Client) observeDrops(drops obDrops) {
	for i := range drops {
		d := &drops[i]
		c.observe(Observation{Kind: ObsOutboxDropped, At: c.clk.Now(), Seq: d.Seq, Drop: d.Reason, Size: d.Size})
	}
}

// onDrop hands drops to ClientConfig.OnDrop, with no lock held.
func (c *Client) onDrop(drops obDrops) {
	if c.cfg.OnDrop == nil {
		return
	}
	for _, d := range drops {
		c.cfg.OnDrop(OutboxDrop{Reason: d.Reason, Seq: d.Seq, Type: d.Item.t, Data: d.Item.data, QueuedAt: d.At})
	}
}

// startDrain marks l greeted (OnConnect has returned) and starts writing
// what the outbox holds on it. Run's goroutine calls it.
func (r *runner) startDrain(l *link) {
	c := r.c
	if c.ob == nil {
		return
	}
	c.mu.Lock()
	l.greeted = true
	c.drainLocked()
	c.mu.Unlock()
}

// drainLocked starts a drainer for the current link if the outbox holds
// messages, none runs, and the link's OnConnect has returned. It is called
// when OnConnect returns, when a drainer ends (the link it drained may be
// gone while a newer one is up), and when a Send queues.
func (c *Client) drainLocked() {
	ob, l := c.ob, c.link
	if ob.drainer != nil || l == nil || !l.greeted || ob.q.Len() == 0 {
		return
	}
	prev := ob.done
	done := make(chan struct{})
	ob.drainer, ob.done = l, done
	l.r.wg.Add(1) // Run's counter is not zero: its goroutine or this drainer's caller holds it
	go func() {
		defer l.r.wg.Done()
		defer close(done)
		if prev != nil {
			<-prev // the previous link's drainer ends its last write first
		}
		l.drain()
	}()
}

// drain writes the outbox's messages on l, oldest first, each taken (and
// its age judged) only once l's write lock is held, so nothing sent later
// is written before it. It returns when the outbox is empty, or l is gone
// (the rest waits for the next link).
func (l *link) drain() {
	c := l.c
	ob := c.ob
	stop := func() { // c.mu held
		if ob.drainer == l {
			ob.drainer = nil
			c.drainLocked() // a newer link may be up, with messages queued meanwhile
		}
	}
	for {
		select {
		case l.wmu <- struct{}{}:
		case <-l.done:
			c.mu.Lock()
			stop()
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		if c.link != l {
			stop()
			c.mu.Unlock()
			<-l.wmu
			return
		}
		now := c.clk.Now()
		judged := now
		if c.hooks.staleOutbox() { // the bug under test: age never judged
			if m, ok := ob.q.Oldest(); ok {
				judged = m.At
			}
		}
		m, ok, drops := ob.q.Next(judged, nil)
		c.observeDrops(drops)
		if !ok {
			stop()
			c.mu.Unlock()
			<-l.wmu
			c.onDrop(drops)
			return
		}
		c.mu.Unlock()
		c.onDrop(drops)
		err := l.write(m.Item.t, m.Item.data)
		<-l.wmu
		c.mu.Lock()
		if err != nil {
			d := ob.q.Failed(m, fsm.DropWriteFailed)
			c.observeDrops(obDrops{d})
			stop()
			c.mu.Unlock()
			c.onDrop(obDrops{d})
			return
		}
		// Stamped with the moment its age was judged; judge() orders by it.
		c.observe(Observation{Kind: ObsOutboxWritten, At: now, Seq: m.Seq})
		c.mu.Unlock()
	}
}

// clearOutbox counts what the outbox still holds as dropped: Run is
// returning (the client stopped or gave up), every goroutine it started
// has returned, and nothing will be written any more.
func (r *runner) clearOutbox() {
	c := r.c
	if c.ob == nil {
		return
	}
	reason := fsm.DropStopped
	if c.State() == fsm.GaveUp {
		reason = fsm.DropGaveUp
	}
	c.mu.Lock()
	drops := c.ob.q.Clear(c.clk.Now(), reason, nil)
	c.observeDrops(drops)
	c.mu.Unlock()
	c.onDrop(drops)
}
