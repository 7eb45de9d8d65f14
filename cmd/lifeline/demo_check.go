package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/invariant"
	"github.com/lifeline-go/lifeline/trace"
)

// The demo's summary is judged by package invariant, the checkers the
// simulator and the conn property suite run, fed records built from what
// the demo saw: the fleet's transitions, the server sessions'
// transitions, the signals it sent and the end of the run. Client ids are
// the fleet's indices, then victim-kill and victim-stop; session ids are
// dense over both servers (the restart numbers sessions afresh).

// sessionKey names a session across the server's restart.
type sessionKey struct {
	gen int // which server: 0 before the restart, 1 after
	id  uint64
}

// serverObs is one server session transition, with the server it came from.
type serverObs struct {
	gen int
	o   conn.Observation
}

// sentSignal is a fault the demo injected into a victim process.
type sentSignal struct {
	name string
	at   time.Time
}

// demoSlack is the lateness allowed on upper bounds: the adapter's timer
// slot and scheduling on a loaded machine, as the demo always allowed
// (ping + pong + 50 ms).
const demoSlack = 50 * time.Millisecond

// clientIndex returns the client id of a name a session said hello with.
func (d *demo) clientIndex(name string) (uint32, bool) {
	switch name {
	case "victim-kill":
		return uint32(d.clients), true
	case "victim-stop":
		return uint32(d.clients) + 1, true
	}
	n, err := strconv.Atoi(strings.TrimPrefix(name, "fleet-"))
	if err != nil || !strings.HasPrefix(name, "fleet-") || n < 0 || n >= d.clients {
		return 0, false
	}
	return uint32(n), true
}

// records builds the run's trace, ordered by time (at one instant a
// signal comes before what it caused), up to settledAt, when the Settled
// record is added.
func (d *demo) records(settledAt time.Time) []trace.Record {
	type timed struct {
		at   time.Time
		rank int // 0: the world's facts; 1: what the adapters did
		rec  trace.Record
	}
	var recs []timed
	add := func(at time.Time, rank int, r trace.Record) { recs = append(recs, timed{at, rank, r}) }
	d.mu.Lock()
	defer d.mu.Unlock()

	// Sessions: dense ids in order of first sight; Register at the
	// upgrade, with the client the session's hello named.
	ids := map[sessionKey]uint32{}
	owner := map[uint32]uint32{} // session -> client
	for _, so := range d.sobs {
		var id uint64
		fmt.Sscan(so.o.ID, &id)
		k := sessionKey{so.gen, id}
		sid, ok := ids[k]
		if !ok {
			sid = uint32(len(ids))
			ids[k] = sid
		}
		switch {
		case so.o.Kind == conn.ObsSend:
			add(so.o.At, 1, trace.Record{Kind: trace.Send, ID: sid})
			continue
		case so.o.Kind == conn.ObsReceive:
			add(so.o.At, 1, trace.Record{Kind: trace.Recv, ID: sid})
			continue
		}
		tr := so.o.Transition
		if tr.From == fsm.Handshaking {
			c, named := d.clientIndex(d.named[k])
			if !named {
				c = uint32(d.clients) + 2 // a session that never said hello: no client of ours
			}
			owner[sid] = c
			add(so.o.At, 1, trace.Record{Kind: trace.Register, ID: sid, Peer: c, Server: uint32(so.gen)})
		}
		add(so.o.At, 1, trace.FromTransition(so.o.At, sid, &tr))
		if tr.To == fsm.Reaped {
			add(so.o.At, 1, trace.Record{Kind: trace.Unregister, ID: sid})
		}
	}
	// The victims: their process died (kill -9) or froze (SIGSTOP) at the
	// signal; nothing was heard from them after it.
	for _, s := range d.signals {
		c, _ := d.clientIndex(s.name)
		add(s.at, 0, trace.Record{Kind: trace.ClientExit, ID: c})
		for sid, o := range owner {
			if o == c {
				add(s.at, 0, trace.Record{Kind: trace.PeerDead, ID: sid, LastSign: s.at.Sub(d.start)})
			}
		}
	}
	// The fleet: attempts, failures and links from its own transitions.
	// A link's session is the one its hello named, registered last before
	// the link came up.
	// Timed by the machine's own stamps: (a) asks whether the driver's
	// timers ever fired before the policy allowed, which observation
	// times, taken a moment after the stamp, would blur.
	for i, ts := range d.trans {
		c := uint32(i)
		add(d.start, 0, trace.Record{Kind: trace.ClientStart, ID: c})
		for _, o := range ts {
			tr := o.Transition
			o.At = tr.At
			switch {
			case tr.To == fsm.Connecting:
				add(o.At, 1, trace.Record{Kind: trace.Dial, ID: c, Attempt: int32(tr.Attempt)})
			case tr.To == fsm.Connected:
				add(o.At, 1, trace.Record{Kind: trace.Up, ID: c, Peer: d.linkOf(c, ids, o.At)})
			case (tr.To == fsm.BackingOff || tr.To == fsm.GaveUp) && (tr.From == fsm.Connecting || tr.From == fsm.Connected):
				add(o.At, 1, trace.Record{Kind: trace.Down, ID: c})
			}
			add(o.At, 1, trace.FromTransition(o.At, c, &tr))
		}
	}
	add(settledAt, 2, trace.Record{Kind: trace.Quiesce})
	add(settledAt, 2, trace.Record{Kind: trace.Settled})
	slices.SortStableFunc(recs, func(a, b timed) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.rank - b.rank
	})
	out := make([]trace.Record, 0, len(recs))
	for _, r := range recs {
		r.rec.At = r.at.Sub(d.start)
		out = append(out, r.rec)
	}
	return out
}

// linkOf returns the session client c's link that came up at t is on:
// of the sessions named for c, the one whose upgrade the server saw
// closest to t (the two ends see the same upgrade a moment apart, in
// either order; a client's links are a backoff delay apart), or NoID.
func (d *demo) linkOf(c uint32, ids map[sessionKey]uint32, t time.Time) uint32 {
	link, best := trace.NoID, time.Duration(-1)
	for _, so := range d.sobs {
		if so.o.Kind != conn.ObsTransition || so.o.Transition.From != fsm.Handshaking {
			continue
		}
		var id uint64
		fmt.Sscan(so.o.ID, &id)
		k := sessionKey{so.gen, id}
		if o, ok := d.clientIndex(d.named[k]); !ok || o != c {
			continue
		}
		if gap := so.o.At.Sub(t).Abs(); best < 0 || gap < best {
			link, best = ids[k], gap
		}
	}
	return link
}

// judge runs package invariant over the run and returns its suite.
func (d *demo) judge(settledAt time.Time) (*invariant.Suite, error) {
	// (b)'s latest-retry bound is a statement about the host's scheduling
	// latency, which a demo on a busy machine cannot make; the simulator
	// and conn's synctest properties judge it. (g) needs a fleet of 100.
	s, err := invariant.New(invariant.Config{Backoff: demoBackoff(), Liveness: d.live, Slack: demoSlack,
		Only: []invariant.Invariant{invariant.NoEarlyRetry, invariant.DeadReaped, invariant.LiveKept,
			invariant.NoSendAfterClose, invariant.RegistryMatches}})
	if err != nil {
		return nil, err
	}
	recs := d.records(settledAt)
	for i := range recs {
		s.Observe(&recs[i])
	}
	s.Finish(settledAt.Sub(d.start))
	return s, nil
}
