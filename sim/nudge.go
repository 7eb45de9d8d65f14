package sim

import (
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/trace"
)

// nudgePeriod is how often a Nudge fault's owners call ReconnectNow: a
// caller in a loop.
const nudgePeriod = int64(10 * time.Millisecond)

// nudge is one round of a Nudge fault: every affected live client's owner
// asks it to reconnect now; the next round follows until the fault ends.
func (w *world) nudge(e event) {
	f := &w.faults[e.id]
	if w.quiesced || w.now >= int64(w.faultEnd(f)) {
		return
	}
	for ci := range w.clients {
		c := &w.clients[ci]
		if !c.alive || !f.Clients.has(ci) {
			continue
		}
		w.emit(trace.Record{Kind: trace.Nudge, ID: c.id})
		if w.bugs[BugNudgeDials] && c.fsm.State() == fsm.BackingOff && c.link == noLink {
			w.dial(c, int32(c.fsm.Failures()+1)) // behind the machine's back
			continue
		}
		w.clientStep(c, fsm.EvReconnectNow)
	}
	w.q.push(event{at: w.now + nudgePeriod, kind: evNudge, id: e.id})
}
