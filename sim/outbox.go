package sim

import (
	"slices"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/trace"
)

// The clients' bounded outbox (Scenario.Outbox): with it on, each client
// process's application sends a message every ClientEventInterval whether
// or not it has a link, as an application does; the driver writes it at
// once when connected with nothing queued, queues it otherwise, drains the
// queue in order as soon as a link comes up, counts what is left as
// dropped when the client gives up or the run ends, and records every
// step for invariant (o). fsm.OutboxQueue decides; the driver carries out.

// obQueue is a client's outbox: the pure model, with nothing to carry.
type obQueue = fsm.OutboxQueue[struct{}]

// outboxOn reports whether the clients' applications send through an outbox.
func (w *world) outboxOn() bool { return w.sc.Outbox.On() && w.sc.ClientEventInterval > 0 }

// startOutbox gives a freshly started client process an empty outbox and
// starts its application's sends, at a random phase.
func (w *world) startOutbox(c *client) {
	if !w.outboxOn() {
		return
	}
	q, err := fsm.NewOutboxQueue[struct{}](w.sc.Outbox)
	if err != nil {
		panic(err) // the scenario was validated
	}
	c.ob = q
	c.appGen++
	iv := int64(w.sc.ClientEventInterval)
	w.q.push(event{at: w.now + 1 + int64(w.rng.Float64()*float64(iv)), kind: evOutboxSend, id: c.id, gen: c.appGen})
}

// connected reports whether c can write an application message now.
func (w *world) connected(c *client) bool {
	return c.alive && c.up && c.link != noLink && w.links.at(uint32(c.link)).clientUp && c.fsm.State() == fsm.Connected
}

// outboxSend is one application send of client e.id, and the next one
// scheduled.
func (w *world) outboxSend(e event) {
	c := &w.clients[e.id]
	if e.gen != c.appGen || !c.alive || c.ob == nil {
		return // a send of a process that died
	}
	w.q.push(event{at: w.now + int64(w.sc.ClientEventInterval), kind: evOutboxSend, id: c.id, gen: c.appGen})
	st := c.fsm.State()
	if st == fsm.GaveUp || st == fsm.Stopped {
		return // refused: the application gets an error, nothing is queued
	}
	if w.connected(c) && c.ob.Len() == 0 {
		w.emit(trace.Record{Kind: trace.OutboxWritten, ID: c.id, Inc: c.ob.NextSeq()})
		w.writeApp(c, uint32(c.link))
		return
	}
	size := 1 + w.rng.IntN(1024)
	seq, drops, err := c.ob.Push(at(w.now), size, struct{}{}, w.obDrops[:0])
	if w.bugs[BugOutboxSilentDrop] {
		drops = drops[:0] // the bug: evicted and expired messages vanish uncounted
	}
	w.emitDrops(c, drops)
	if err != nil {
		return // larger than Bytes: refused
	}
	w.emit(trace.Record{Kind: trace.OutboxQueued, ID: c.id, Inc: seq, Attempt: int32(size)})
}

// drainOutbox writes what c's outbox holds, oldest first, on the link
// that just came up, dropping what has waited past Age.
func (w *world) drainOutbox(c *client) {
	if c.ob == nil || !w.connected(c) {
		return
	}
	var taken []fsm.Queued[struct{}]
	for {
		now := at(w.now)
		if w.bugs[BugOutboxNoAgeCheck] {
			// The bug: age judged by the clock of the moment it was
			// queued, so nothing ever expires.
			if m, ok := c.ob.Oldest(); ok {
				now = m.At
			}
		}
		m, ok, drops := c.ob.Next(now, w.obDrops[:0])
		w.emitDrops(c, drops)
		if !ok {
			break
		}
		taken = append(taken, m)
	}
	if w.bugs[BugOutboxReorder] {
		slices.Reverse(taken) // the bug: the outbox used as a stack
	}
	for _, m := range taken {
		w.emit(trace.Record{Kind: trace.OutboxWritten, ID: c.id, Inc: m.Seq})
		w.writeApp(c, uint32(c.link))
	}
}

// clearOutbox counts what c's outbox holds as dropped for reason.
func (w *world) clearOutbox(c *client, reason fsm.DropReason) {
	if c.ob == nil {
		return
	}
	w.emitDrops(c, c.ob.Clear(at(w.now), reason, w.obDrops[:0]))
}

func (w *world) emitDrops(c *client, drops []fsm.OutboxDrop[struct{}]) {
	for i := range drops {
		w.emit(trace.Record{Kind: trace.OutboxDropped, ID: c.id, Inc: drops[i].Seq, Code: uint16(drops[i].Reason)})
	}
	w.obDrops = drops[:0]
}
