package sim

import (
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/trace"
)

// faultStart opens fault i's window and does what happens at its start.
func (w *world) faultStart(i int) {
	w.active = append(w.active, i)
	f := &w.faults[i]
	switch f.Kind {
	case Kill, Crash:
		for ci := range w.clients {
			if c := &w.clients[ci]; c.alive && f.Clients.has(ci) {
				w.killClient(c, f.Kind == Kill)
			}
		}
	case Blackhole, RST:
		for ci := range w.clients {
			c := &w.clients[ci]
			if !c.alive || c.link == noLink || !f.Clients.has(ci) || !f.hasServer(int(c.server)) {
				continue
			}
			l := w.links.at(uint32(c.link))
			if f.Kind == Blackhole {
				l.blackholed = true
			} else {
				l.reset = true
			}
			w.peerDead(uint32(c.link), l.c2s)
		}
	case Restart:
		for s := range w.servers {
			if f.hasServer(s) && !w.servers[s].down {
				w.stopServer(s)
			}
		}
	case Nudge:
		w.q.push(event{at: w.now, kind: evNudge, id: uint32(i)})
	default:
		w.clusterFaultStart(f)
	}
}

// faultEndEvent closes fault i's window: restarted servers listen again,
// killed clients start again (unless the world is settling).
func (w *world) faultEndEvent(i int) {
	for j, a := range w.active {
		if a == i {
			w.active = append(w.active[:j], w.active[j+1:]...)
			break
		}
	}
	f := &w.faults[i]
	switch f.Kind {
	default:
		w.clusterFaultEnd(f)
	case Restart:
		for s := range w.servers {
			if f.hasServer(s) && w.servers[s].down && (w.cl == nil || w.cl.nodes[s].alive) {
				w.servers[s].down = false
				w.startAdmission(s)
				w.emit(trace.Record{Kind: trace.ServerUp, Server: uint32(s)})
			}
		}
	case Kill, Crash:
		if w.quiesced || f.End == 0 || f.End >= w.sc.Duration {
			return
		}
		for ci := range w.clients {
			if c := &w.clients[ci]; !c.alive && f.Clients.has(ci) {
				if err := w.startClient(c); err != nil {
					panic(err) // the same config started it before
				}
			}
		}
	}
}

// killClient ends c's process. With fin the kernel closes its socket (kill
// -9); without, its host is gone and says nothing (a crash).
func (w *world) killClient(c *client, fin bool) {
	c.alive = false
	w.ctimers[c.id].cancel()
	if w.locks != nil && w.locks[c.proc] == int32(c.id) {
		w.locks[c.proc] = -1
	}
	w.emit(trace.Record{Kind: trace.ClientExit, ID: c.id})
	if c.link == noLink {
		return
	}
	li := uint32(c.link)
	l := w.links.at(li)
	l.clientUp = false
	if fin {
		w.transmit(li, true, fFIN, w.now)
	}
	w.peerDead(li, l.c2s)
	c.link, c.up = noLink, false
}

// peerDead records that nothing more will come from link li's client
// after the frame arriving at lastSign.
func (w *world) peerDead(li uint32, lastSign int64) {
	l := w.links.at(li)
	if l.peerDead {
		return
	}
	l.peerDead, l.lastSign = true, lastSign
	w.emit(trace.Record{Kind: trace.PeerDead, ID: li, LastSign: durationOf(lastSign)})
}

// stopServer shuts server s down: every open session is closed with 1001
// (going away) at once, and the listener refuses until the restart ends.
func (w *world) stopServer(s int) {
	w.servers[s].down = true
	w.emit(trace.Record{Kind: trace.ServerDown, Server: uint32(s)})
	for li := uint32(0); int(li) < w.links.len(); li++ {
		if l := w.links.at(li); l.serverOpen && int(l.server) == s {
			w.sessionStep(li, fsm.EvShutdown)
		}
	}
}
