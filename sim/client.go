package sim

import (
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/trace"
)

// client is one client process and the driver that runs its fsm.Client.
type client struct {
	fsm      *fsm.Client
	id       uint32
	proc     int32 // lock group (BugLockAcrossBackoff)
	link     int32 // current link (dialing or up), or noLink
	server   uint16
	alive    bool
	up       bool     // the current link is up
	orphaned bool     // BugNoReconnectAfterDrop: the driver stopped waking the machine
	ob       *obQueue // the outbox (Scenario.Outbox), nil when off
	appGen   uint32   // the process's application sends; a dead process's are stale
}

// startClient starts c's process: a fresh machine, a fresh run.
func (w *world) startClient(c *client) error {
	m, err := w.newMachine()
	if err != nil {
		return err
	}
	c.fsm, c.alive, c.up, c.orphaned, c.link = m, true, false, false, noLink
	w.ctimers[c.id].cancel()
	w.emit(trace.Record{Kind: trace.ClientStart, ID: c.id})
	w.startOutbox(c)
	out, err := m.Step(at(w.now), fsm.EvStart)
	if err != nil {
		return err
	}
	w.clientOut(c, out)
	return nil
}

// clientOut carries out what c's machine answered.
func (w *world) clientOut(c *client, out fsm.Output) {
	if tr := out.Transition; tr != nil {
		w.emitTransition(c.id, tr)
		w.clientEntered(c, tr)
	}
	for i := range out.Actions {
		a := &out.Actions[i]
		switch a.Kind {
		case fsm.ActAbortDial, fsm.ActDrop:
			w.closeClientLink(c)
		case fsm.ActSendPing:
			if c.link != noLink && c.up {
				w.transmit(uint32(c.link), true, fPing, w.sendTime(c))
			}
		case fsm.ActDial:
			w.dial(c, int32(a.Attempt))
		}
	}
	w.armClient(c)
}

// clientEntered is the driver's bookkeeping for a new client state: the
// broken variants live here.
func (w *world) clientEntered(c *client, tr *fsm.Transition) {
	if tr.To == fsm.GaveUp {
		w.clearOutbox(c, fsm.DropGaveUp)
	}
	if w.bugs[BugNoReconnectAfterDrop] && tr.From == fsm.Connected && tr.To == fsm.BackingOff {
		c.orphaned = true
	}
	if w.bugs[BugLockAcrossBackoff] {
		lock := &w.locks[c.proc]
		switch {
		case tr.To == fsm.BackingOff && *lock == -1:
			*lock = int32(c.id)
		case tr.From == fsm.BackingOff && *lock == int32(c.id):
			*lock = -1
		}
	}
}

// sendTime is when c can write a frame it wants to write now: at once,
// unless BugLockAcrossBackoff has another link of its process asleep with
// the lock, in which case when that link wakes.
func (w *world) sendTime(c *client) int64 {
	if w.locks == nil {
		return w.now
	}
	h := w.locks[c.proc]
	if h == -1 || h == int32(c.id) {
		return w.now
	}
	holder := &w.clients[h]
	if t, ok := holder.fsm.RetryAt(); ok && holder.alive {
		return max(w.now, int64(t.Sub(epoch)))
	}
	return w.now
}

// armClient makes sure a timer event is queued no later than c's deadline.
func (w *world) armClient(c *client) {
	tm := &w.ctimers[c.id]
	d, ok := c.fsm.Deadline()
	if !ok || !c.alive || c.orphaned {
		tm.cancel()
		return
	}
	w.arm(tm, int64(d.Sub(epoch)), evClientTimer, c.id)
}

func (w *world) clientTimer(e event) {
	tm := &w.ctimers[e.id]
	if !w.due(tm, e) {
		return
	}
	c := &w.clients[e.id]
	if c.fsm.State() == fsm.BackingOff {
		if w.quiesced {
			return // settling: no new attempts
		}
		if t := w.sendTime(c); t > w.now { // BugLockAcrossBackoff: wait for the lock
			tm.deadline = t
			w.arm(tm, t, evClientTimer, c.id)
			return
		}
	}
	out, err := c.fsm.Step(at(w.now), fsm.EvTick)
	if err != nil {
		panic(err) // a tick is accepted in every state
	}
	if tr := out.Transition; tr != nil && (tr.Trigger == fsm.DialTimeout || tr.Trigger == fsm.PongTimeout) {
		w.emit(trace.Record{Kind: trace.Down, ID: c.id})
		w.failOver(c)
	}
	w.clientOut(c, out)
}

// dial starts attempt n on a new link.
func (w *world) dial(c *client, n int32) {
	li := w.links.add(link{client: c.id, server: c.server, timer: timer{armed: never, deadline: never}, clientUp: true, lastSign: -1})
	c.link, c.up = int32(li), false
	w.emit(trace.Record{Kind: trace.Dial, ID: c.id, Attempt: n, Server: uint32(c.server)})
	for _, i := range w.active {
		f := &w.faults[i]
		if !f.Clients.has(int(c.id)) || !f.hasServer(int(c.server)) {
			continue
		}
		switch f.Kind {
		case DNS:
			w.q.push(event{at: w.now + int64(w.sc.Latency.Base), kind: evToClient, id: li, arg: fDNSFail})
			return
		case Blackhole:
			w.links.at(li).blackholed = true
		}
	}
	w.transmit(li, true, fHello, w.now)
}

// closeClientLink releases c's transport: the server sees EOF, when the
// FIN gets through. Either way nothing more comes from this end, so the
// link's peer is dead from here on: a FIN held up by loss past the
// liveness bound leaves the server to reap the session for silence, and
// that reap is due (an abandoned handshake whose hello arrived late is
// the case that showed it).
func (w *world) closeClientLink(c *client) {
	if c.link == noLink {
		return
	}
	li := uint32(c.link)
	l := w.links.at(li)
	l.clientUp = false
	lastSign := l.c2s // before the FIN: the last frame that could keep the session alive
	w.transmit(li, true, fFIN, w.now)
	if !l.peerDead {
		// Recorded for the invariants only: the report's reap latency
		// (l.lastSign) stays about peers that died, not links closed.
		l.peerDead = true
		w.emit(trace.Record{Kind: trace.PeerDead, ID: li, LastSign: durationOf(lastSign)})
	}
	c.link, c.up = noLink, false
}

// atClient handles a frame arriving at a client.
func (w *world) atClient(e event) {
	l := w.links.at(e.id)
	c := &w.clients[l.client]
	if !c.alive || c.link != int32(e.id) || !l.clientUp {
		return // a stale link, or nobody there
	}
	if !c.up { // the attempt in flight
		switch e.arg {
		case fUpgraded:
			c.up = true
			w.emit(trace.Record{Kind: trace.Up, ID: c.id, Peer: e.id})
			if w.bugs[BugResetOnConnect] {
				w.resetMachine(c)
			}
			w.clientStep(c, fsm.EvDialOK)
			w.startClientEvents(e.id)
			w.drainOutbox(c) // what the application sent while down, in order, before anything newer
		case fAcceptClose:
			c.up = true
			w.emit(trace.Record{Kind: trace.Up, ID: c.id, Peer: trace.NoID})
			if w.bugs[BugResetOnConnect] {
				w.resetMachine(c)
			}
			w.clientStep(c, fsm.EvDialOK)
			w.clientFailed(c, fsm.EvDropped, false)
		case fRefused, fNotWS, fDNSFail:
			w.clientFailed(c, fsm.EvDialFailed, true)
		case fHTTPError, fFIN, fRST:
			// l.code is the status of a refused handshake (Auth, a rate
			// limit), whose FIN may overtake the answer it follows; zero
			// otherwise.
			w.clientFailedWith(c, fsm.EvDialFailed, false, l.code, time.Duration(l.retryAfter)*time.Second)
		}
		return
	}
	deaf := w.bugs[BugClientDeaf]
	switch e.arg {
	case fPing:
		if !deaf {
			w.clientStep(c, fsm.EvPong) // any frame is a sign of life
		}
		w.transmit(e.id, true, fPong, w.sendTime(c))
	case fPong:
		if !deaf {
			w.clientStep(c, fsm.EvPong)
		}
	case fMsg:
		if !deaf {
			w.clientStep(c, fsm.EvMessage)
		}
	case fClose:
		w.transmit(e.id, true, fCloseAck, w.now)
		w.clientFailedWith(c, fsm.EvDropped, false, l.code, 0)
	case fFIN, fRST:
		if e.arg == fRST {
			l.clientUp = false // nothing more to write on it
		}
		w.clientFailed(c, fsm.EvDropped, false)
	}
}

func (w *world) clientStep(c *client, ev fsm.Event) {
	out, err := c.fsm.Step(at(w.now), ev)
	if err != nil {
		return // an event the state does not take: a late frame, nothing to do
	}
	w.clientOut(c, out)
}

// clientFailed reports a failed attempt or link. exception marks the
// exception path of the field report (refused, DNS), where
// BugNoWaitOnError dials again without asking the machine.
func (w *world) clientFailed(c *client, ev fsm.Event, exception bool) {
	w.clientFailedWith(c, ev, exception, 0, 0)
}

// clientFailedWith is clientFailed for a failure that carried an HTTP
// status or a close code, which the machine's failure table classes, and
// maybe a Retry-After ra, the floor of the next wait.
func (w *world) clientFailedWith(c *client, ev fsm.Event, exception bool, code uint16, ra time.Duration) {
	w.emit(trace.Record{Kind: trace.Down, ID: c.id, Code: code, Delay: ra})
	w.failOver(c)
	if exception && w.bugs[BugNoWaitOnError] {
		c.link, c.up = noLink, false
		if !w.quiesced {
			w.dial(c, int32(c.fsm.Attempt()))
		}
		return
	}
	if ev == fsm.EvDialFailed || (c.link != noLink && !w.links.at(uint32(c.link)).clientUp) {
		c.link, c.up = noLink, false // nothing left to close: the attempt failed, or the link was reset
	}
	if code == 0 || w.bugs[BugIgnoreGoAway] {
		w.clientStep(c, ev)
		return
	}
	f := fsm.Failure{Code: int(code)}
	if code < 1000 {
		f = fsm.Failure{Status: int(code), RetryAfter: ra}
	}
	if w.bugs[BugIgnoreRetryAfter] {
		f.RetryAfter = 0
	}
	out, err := c.fsm.StepFailure(at(w.now), ev, f)
	if err == nil {
		w.clientOut(c, out)
	}
}
