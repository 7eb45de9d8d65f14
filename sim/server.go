package sim

import (
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/trace"
)

// server is one server process: its listener and its registry, which is
// the set of links with registered set.
type server struct {
	down  bool           // restarting: the listener refuses
	admit *fsm.Admission // Scenario.HandshakeRate's bucket, nil when off
}

// startAdmission gives server s a full handshake bucket (at the start and
// at each restart), if the scenario has a rate.
func (w *world) startAdmission(s int) {
	if !w.sc.HandshakeRate.On() {
		return
	}
	a, err := fsm.NewAdmission(w.sc.HandshakeRate, at(w.now))
	if err != nil {
		panic(err) // the scenario was validated
	}
	w.servers[s].admit = a
}

// atServer handles a frame arriving at a server.
func (w *world) atServer(e event) {
	l := w.links.at(e.id)
	if e.arg == fHello {
		w.accept(e.id)
		return
	}
	if !l.serverOpen {
		return // no session (yet, or any more): the kernel discards it
	}
	switch e.arg {
	case fPing:
		w.sessionStep(e.id, fsm.EvPong)
		w.transmit(e.id, false, fPong, w.now)
	case fPong:
		w.sessionStep(e.id, fsm.EvPong)
	case fMsg:
		w.emit(trace.Record{Kind: trace.Recv, ID: e.id})
		if w.bugs[BugMessageAsPong] {
			w.sessionStep(e.id, fsm.EvPong)
		} else {
			w.sessionStep(e.id, fsm.EvMessage)
		}
	case fBad:
		w.emit(trace.Record{Kind: trace.BadRecv, ID: e.id})
		w.sessionStep(e.id, fsm.EvProtocolError)
	case fCloseAck:
		if l.sess.State() == fsm.Closing {
			w.sessionStep(e.id, fsm.EvClosed)
		} else {
			w.sessionStep(e.id, fsm.EvPeerClose)
		}
	case fFIN:
		w.sessionStep(e.id, fsm.EvReadError) // EOF without a close frame
	case fRST:
		w.emit(trace.Record{Kind: trace.SendFailed, ID: e.id})
		if !w.bugs[BugSwallowSendError] {
			w.sessionStep(e.id, fsm.EvSendError)
		}
	}
}

// accept answers a connection attempt as the server and the open faults
// say.
func (w *world) accept(li uint32) {
	l := w.links.at(li)
	s := int(l.server)
	answer := frame(0)
	if w.servers[s].down || (w.cl != nil && !w.cl.serving(s)) {
		answer = fRefused // a node that cannot prove its lease takes no sessions
	}
	for _, i := range w.active {
		f := &w.faults[i]
		if answer != 0 || !f.hasServer(s) || !f.Clients.has(int(l.client)) {
			continue
		}
		switch f.Kind {
		case Refused:
			answer = fRefused
		case Occupied:
			answer = fNotWS
		case Stall:
			return // accepted by the kernel, never answered
		case Auth:
			answer = fHTTPError
			l.code = uint16(max(f.Code, 401))
		case AcceptClose:
			answer = fAcceptClose
		}
	}
	if answer == fRefused || answer == fNotWS || answer == fAcceptClose {
		w.transmit(li, false, answer, w.now)
		return
	}
	if a := w.servers[s].admit; a != nil && answer == 0 {
		if ok, ra := a.Admit(at(w.now)); !ok { // before anything else: no session
			w.stats.RateLimited++
			l.code, l.retryAfter = 503, uint16(ra/time.Second)
			w.transmit(li, false, fHTTPError, w.now)
			return
		}
	}
	sess, err := fsm.NewSession(at(w.now), w.sc.ServerLiveness)
	if err != nil {
		panic(err) // the scenario was validated
	}
	l.sess, l.serverOpen, l.registered = sess, true, true
	w.emit(trace.Record{Kind: trace.Register, ID: li, Peer: l.client, Server: uint32(s)})
	if w.cl != nil {
		w.cl.nodes[s].links = append(w.cl.nodes[s].links, li)
	}
	if answer == fHTTPError {
		w.sessionStep(li, fsm.EvHandshakeFailed)
		w.transmit(li, false, fHTTPError, w.now)
		return
	}
	w.sessionStep(li, fsm.EvUpgraded)
	w.transmit(li, false, fUpgraded, w.now)
	if iv := int64(w.sc.EventInterval); iv > 0 {
		l.eventGen++
		w.q.push(event{at: w.now + 1 + int64(w.rng.Float64()*float64(iv)), kind: evAppEvent, id: li, gen: l.eventGen})
	}
}

// sessionStep hands ev to link li's session and carries out its answer.
func (w *world) sessionStep(li uint32, ev fsm.Event) {
	l := w.links.at(li)
	out, err := l.sess.Step(at(w.now), ev)
	if err != nil {
		return // not accepted in this state: a late frame
	}
	w.sessionOut(li, out)
}

func (w *world) sessionOut(li uint32, out fsm.Output) {
	l := w.links.at(li)
	if tr := out.Transition; tr != nil {
		w.emitTransition(li, tr)
		if w.cl != nil && tr.From == fsm.Handshaking && tr.To == fsm.Alive {
			w.dirChanged(li, true)
		}
	}
	pinged := false
	for i := range out.Actions {
		a := &out.Actions[i]
		switch a.Kind {
		case fsm.ActSendPing:
			w.transmit(li, false, fPing, w.now)
			pinged = true
		case fsm.ActClose:
			w.links.at(li).code = uint16(a.Code)
			w.transmit(li, false, fClose, w.now)
		case fsm.ActReap:
			l.serverOpen = false
			if !l.reset {
				w.transmit(li, false, fFIN, w.now)
			}
			w.stats.reaped(w, l, a.Reason)
			if !w.bugs[BugSendAfterClose] {
				l.sess = nil // done with it: a long run keeps only live sessions in memory
			}
			if !w.bugs[BugLeakOnReap] {
				l.registered = false
				w.emit(trace.Record{Kind: trace.Unregister, ID: li})
				if w.cl != nil {
					w.dirChanged(li, false)
				}
			}
		}
	}
	if pinged && w.bugs[BugPongTimeoutOverPing] && l.sess != nil {
		// The broken driver re-arms its pong deadline at each ping: to the
		// machine that is as if the peer had just been heard from.
		if out, err := l.sess.Step(at(w.now), fsm.EvPong); err == nil {
			w.sessionOut(li, out)
			return
		}
	}
	w.armSession(li)
}

func (w *world) armSession(li uint32) {
	l := w.links.at(li)
	if w.bugs[BugNoPing] || !l.serverOpen {
		l.timer.cancel()
		return
	}
	d, ok := l.sess.Deadline()
	if !ok {
		l.timer.cancel()
		return
	}
	w.arm(&l.timer, int64(d.Sub(epoch)), evSessionTimer, li)
}

func (w *world) sessionTimer(e event) {
	if w.due(&w.links.at(e.id).timer, e) {
		w.sessionStep(e.id, fsm.EvTick)
	}
}

// appEvent writes one application message on link li's session, as a
// server pushing events does, and schedules the next.
func (w *world) appEvent(e event) {
	l := w.links.at(e.id)
	if e.gen != l.eventGen {
		return
	}
	open := l.serverOpen && l.sess.Open()
	if !open {
		// A correct driver stops writing; the broken one writes on (a few
		// times, enough to be seen) and ignores the error Step returns.
		if !w.bugs[BugSendAfterClose] || l.sendsAfterEnd >= 3 {
			return
		}
		l.sendsAfterEnd++
	}
	_, _ = l.sess.Step(at(w.now), fsm.EvSent) // never a transition; an error only off Alive/Suspect
	w.emit(trace.Record{Kind: trace.Send, ID: e.id})
	w.transmit(e.id, false, fMsg, w.now)
	w.q.push(event{at: w.now + int64(w.sc.EventInterval), kind: evAppEvent, id: e.id, gen: l.eventGen})
}
