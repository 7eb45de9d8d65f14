package sim

import (
	"math/rand/v2"

	"github.com/lifeline-go/lifeline/fsm"
)

// newMachine returns a fresh client machine with the scenario's policies.
// Every client draws jitter from the world's one source, so their draws
// are independent; BugLockStepJitter gives each a source seeded alike.
func (w *world) newMachine() (*fsm.Client, error) {
	var r fsm.Rand = w.rng
	if w.bugs[BugLockStepJitter] {
		r = rand.New(rand.NewPCG(w.sc.Seed, 1))
	}
	return fsm.NewClient(fsm.ClientConfig{Backoff: w.backoff, Liveness: w.sc.ClientLiveness, Rand: r, Failures: w.sc.Failures})
}

// resetMachine is BugResetOnConnect's driver: on every link that comes up
// it starts a fresh machine (and so a fresh run of failures), brought to
// Connecting without a trace, where the real one was.
func (w *world) resetMachine(c *client) {
	m, err := w.newMachine()
	if err != nil {
		panic(err) // the same config built the first one
	}
	if _, err := m.Step(at(w.now), fsm.EvStart); err != nil {
		panic(err)
	}
	c.fsm = m
}

// startClientEvents starts the application messages a client writes on
// link li, once it is up, at a random phase.
func (w *world) startClientEvents(li uint32) {
	iv := int64(w.sc.ClientEventInterval)
	if iv <= 0 || w.outboxOn() {
		return // none, or sent by the process's application through its outbox
	}
	l := w.links.at(li)
	l.cEventGen++
	w.q.push(event{at: w.now + 1 + int64(w.rng.Float64()*float64(iv)), kind: evClientEvent, id: li, gen: l.cEventGen})
}

// clientEvent writes one application message from the client of link
// e.id, spoilt by an open Garbage fault, and schedules the next.
func (w *world) clientEvent(e event) {
	l := w.links.at(e.id)
	c := &w.clients[l.client]
	if e.gen != l.cEventGen || !c.alive || c.link != int32(e.id) || !c.up || !l.clientUp {
		return
	}
	w.writeApp(c, e.id)
	w.q.push(event{at: w.now + int64(w.sc.ClientEventInterval), kind: evClientEvent, id: e.id, gen: l.cEventGen})
}

// writeApp writes one application message from c on link li, spoilt by
// an open Garbage fault.
func (w *world) writeApp(c *client, li uint32) {
	l := w.links.at(li)
	fr := fMsg
	for _, i := range w.active {
		f := &w.faults[i]
		if f.Kind == Garbage && f.Clients.has(int(c.id)) && f.hasServer(int(l.server)) &&
			(f.Rate == 0 || w.rng.Float64() < f.Rate) {
			fr = fBad
		}
	}
	w.clientStep(c, fsm.EvSent)
	w.transmit(li, true, fr, w.sendTime(c))
}

// setPolicy hands a new reconnect policy to every client's machine, which
// moves a pending retry as fsm.Client.SetBackoff states; the driver
// re-arms its timer for it. BugPolicyRestartsLoop restarts the loop of
// each client waiting to retry instead.
func (w *world) setPolicy(b fsm.Backoff) {
	w.backoff = b
	for i := range w.clients {
		c := &w.clients[i]
		if !c.alive || c.orphaned {
			continue
		}
		if w.bugs[BugPolicyRestartsLoop] && c.fsm.State() == fsm.BackingOff && !w.quiesced {
			m, err := w.newMachine()
			if err != nil {
				panic(err) // the scenario was validated
			}
			c.fsm = m
			w.clientStep(c, fsm.EvStart)
			continue
		}
		if _, err := c.fsm.SetBackoff(at(w.now), b); err != nil {
			panic(err) // the scenario was validated
		}
		w.armClient(c)
	}
}
