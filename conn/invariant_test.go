package conn

import (
	"slices"
	"strconv"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/audit"
	"github.com/lifeline-go/lifeline/invariant"
	"github.com/lifeline-go/lifeline/trace"
	"pgregory.net/rapid"
)

// The properties in property_test.go also hand their runs to package
// invariant, the checkers the simulator runs: the real Client and Server
// are judged by the same statements (a)–(f) as the simulated fleet, from
// trace.Records built here. What only the test world knows (when a dial
// reached it, when a peer died, which peers are slow) comes from the
// world, not from the adapter's account of itself, so an adapter that
// lies to its own machine is still caught.
//
// The outbox's (o) is judged the same way (outbox_test.go): its records
// come from the client's outbox observations, and the server's own view
// (the application's numbers read in order, each link's hello first)
// is checked beside them.

// timedRecord is a record with the time it happened. Records made from
// observations come in the order observed, which under synctest is the
// only order among facts of one instant; the world's own facts are added
// after them and merged by time.
type timedRecord struct {
	at  time.Time
	rec trace.Record
}

// judge runs the invariant suite over recs, stably ordered by time, and
// fails t with the first violation. At one instant a peer's death comes
// before what the adapter did about it: the death caused the reap, and
// (d) judges the reap by the facts known when it happened.
func judge(t *rapid.T, cfg invariant.Config, start, end time.Time, recs []timedRecord) {
	cause := func(r *timedRecord) int {
		if r.rec.Kind == trace.PeerDead || r.rec.Kind == trace.ClientExit {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(recs, func(a, b timedRecord) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return cause(&a) - cause(&b)
	})
	s, err := invariant.New(cfg)
	if err != nil {
		t.Fatalf("invariant config: %v", err)
	}
	for i := range recs {
		recs[i].rec.At = recs[i].at.Sub(start)
		s.Observe(&recs[i].rec)
	}
	s.Finish(end.Sub(start))
	if v := s.Violations(); len(v) > 0 {
		t.Fatalf("invariant %s", v[0])
	}
}

// transitionRecord turns an observed transition into its record, timed by
// the observation (the clock when the adapter acted), not by the time the
// adapter stamped on the event it handed fsm; judge sets Record.At.
func transitionRecord(id uint32, o Observation) timedRecord {
	return timedRecord{at: o.At, rec: trace.FromTransition(o.At, id, &o.Transition)}
}

// judgeClientRun checks (a), (b) and (l) on one client run. Failures (Down)
// are the client's logged transitions into BackingOff, Rejected or GaveUp,
// with the status or close code the logged error names; attempts (Dial) are
// the world's dial calls, numbered by the attempt the client's machine had
// last started.
func judgeClientRun(t *rapid.T, c clientCase, run clientRun) {
	const id = 0
	recs := []timedRecord{{at: run.start, rec: trace.Record{Kind: trace.ClientStart, ID: id}}}
	// The log names an attempt's number on the failure that schedules it
	// (BackingOff's attempt), the first attempt being 1.
	attempt, next := int32(0), int32(1)
	var prev time.Duration // the delay recorded for the failure before, in this run of failures
	slow := fsm.FailurePolicy{}.WithDefaults(c.backoff).Schedule
	var rejections int         // consecutive permanent failures (a link that comes up ends them)
	var prevSlow time.Duration // the slow schedule's delay recorded for the rejection before
	for _, o := range run.obs {
		if o.Kind == obsWorldDial {
			recs = append(recs, timedRecord{at: o.At, rec: trace.Record{Kind: trace.Dial, ID: id, Attempt: attempt}})
			continue
		}
		if o.Kind != ObsTransition {
			continue
		}
		if o.Transition.To == fsm.Stopped {
			// The world stops the client when the horizon passes: that
			// ends the observation, and a retry owed by then is judged
			// by Finish, not excused by the stop.
			continue
		}
		switch tr := o.Transition; tr.To {
		case fsm.BackingOff, fsm.Rejected, fsm.GaveUp:
			if tr.From == fsm.Connecting || tr.From == fsm.Connected {
				recs = append(recs, timedRecord{at: o.At, rec: trace.Record{Kind: trace.Down, ID: id, Code: failureCode(o.Err)}})
			}
			if tr.To == fsm.BackingOff || tr.To == fsm.Rejected {
				next = int32(tr.Attempt)
			}
		case fsm.Connected:
			rejections, prevSlow = 0, 0
			recs = append(recs, timedRecord{at: o.At, rec: trace.Record{Kind: trace.Up, ID: id, Peer: trace.NoID}})
		case fsm.Connecting:
			attempt = next
		}
		r := transitionRecord(id, o)
		if o.Transition.To == fsm.Rejected {
			rejections++
			r.rec.Delay = audit.LoggedDelay(slow, rejections, o.Transition.Delay, prevSlow)
			prevSlow = r.rec.Delay
		}
		if o.Transition.To == fsm.BackingOff {
			n := o.Transition.Attempt - 1
			if n == 1 {
				prev = 0 // a run of failures begins: decorrelated jitter starts over
			}
			r.rec.Delay = audit.LoggedDelay(c.backoff, n, o.Transition.Delay, prev)
			prev = r.rec.Delay
		}
		recs = append(recs, r)
	}
	end := run.start.Add(c.horizon)
	if n := len(run.obs); n > 0 && run.obs[n-1].At.After(end) {
		end = run.obs[n-1].At
	}
	judge(t, invariant.Config{Backoff: c.backoff, Liveness: c.live, Only: []invariant.Invariant{
		invariant.NoEarlyRetry, invariant.BoundedRetries, invariant.PermanentSlow}}, run.start, end, recs)
}

// judgeServerRun checks (c)–(f) on one server run. The world supplies
// every frame fact (worldConn: bytes heard from the peer, data frames and
// pings written, writes that failed: the fast tier of (c)), the peers (each a client whose link is its session), their deaths with the
// last frame the server heard from them, the slow paths (a pong latency of
// at least half the pong timeout excuses a reap for silence, as (d)
// states), and the moment the world has settled: every dead peer's
// deadline passed, before the shutdown.
func judgeServerRun(t *rapid.T, c serverCase, run serverRun) {
	lastHeard := map[uint32]time.Time{}
	var recs []timedRecord
	for _, o := range run.obs {
		n, err := strconv.ParseUint(o.ID, 10, 32)
		if err != nil {
			t.Fatalf("session id %q: %v", o.ID, err)
		}
		id := uint32(n)
		switch o.Kind {
		case ObsTransition:
			tr := o.Transition
			if tr.From == fsm.Handshaking {
				recs = append(recs, timedRecord{at: o.At, rec: trace.Record{Kind: trace.Register, ID: id, Peer: id}})
			}
			recs = append(recs, transitionRecord(id, o))
			if tr.To == fsm.Reaped {
				recs = append(recs, timedRecord{at: o.At, rec: trace.Record{Kind: trace.Unregister, ID: id}})
			} else if tr.To == fsm.Alive && o.At.After(lastHeard[id]) {
				lastHeard[id] = o.At // the handshake's bytes came before it
			}
		case obsWorldHeard:
			if o.At.After(lastHeard[id]) {
				lastHeard[id] = o.At
			}
		case obsWorldSend:
			recs = append(recs, timedRecord{at: o.At, rec: trace.Record{Kind: trace.Send, ID: id}})
		case obsWorldSendFailed:
			recs = append(recs, timedRecord{at: o.At, rec: trace.Record{Kind: trace.SendFailed, ID: id}})
		case obsWorldPing:
			if 2*c.peers[id-1].latency >= c.live.PongTimeout {
				recs = append(recs, timedRecord{at: o.At, rec: trace.Record{Kind: trace.Degraded, ID: id}})
			}
		}
	}
	settled := run.start
	for i, p := range c.peers {
		id := uint32(i + 1)
		recs = append(recs, timedRecord{at: run.start, rec: trace.Record{Kind: trace.Up, ID: id, Peer: id}})
		if p.kind == peerLive {
			continue
		}
		dieAt := run.start.Add(p.dieAt)
		heard := lastHeard[id]
		recs = append(recs,
			timedRecord{at: dieAt, rec: trace.Record{Kind: trace.ClientExit, ID: id}},
			timedRecord{at: dieAt, rec: trace.Record{Kind: trace.PeerDead, ID: id, LastSign: heard.Sub(run.start)}})
		if d := c.live.ReapDeadline(heard).Add(defaultTimerGranularity); d.After(settled) {
			settled = d
		}
	}
	if settled.Before(run.shutdownAt) {
		recs = append(recs, timedRecord{at: settled, rec: trace.Record{Kind: trace.Settled}})
	}
	judge(t, invariant.Config{Liveness: c.live, Slack: defaultTimerGranularity, Only: []invariant.Invariant{
		invariant.DeadReaped, invariant.LiveKept, invariant.NoSendAfterClose, invariant.RegistryMatches}},
		run.start, run.shutdownAt, recs)
}
