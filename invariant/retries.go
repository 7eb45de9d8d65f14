package invariant

import (
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/trace"
)

// retries checks (a) and (b) from the driver's own facts (Dial, Up, Down),
// not from the client machine's counters, so a driver that retries behind
// its machine's back (the historical tight loop) is caught too. The
// failure count follows fsm's rule: a link that lived Backoff.StableAfter
// ends the run of failures.
type retries struct {
	quiesced  bool
	quiesceAt time.Duration
}

func (rt *retries) down(s *Suite, r *trace.Record) {
	c := s.client(r.ID)
	if c.exited {
		return
	}
	if c.up && r.At-c.upAt >= s.o.b.StableAfter {
		c.n, c.prevDelay, c.lowRun = 0, 0, 0
		c.offlineSince = r.At
	}
	c.up, c.link, c.downLink = false, trace.NoID, c.link
	c.n++
	c.lastFail = r.At
	c.raFloor, c.raTop = s.o.b.RetryAfterFloor(r.Delay), s.o.b.RetryAfterLatest(r.Delay)
	s.classify(c, r)
	c.exhausted = c.fatal || s.o.b.GivesUpAfter(int(c.n)) ||
		(s.o.b.GiveUpAfter > 0 && r.At-c.offlineSince >= s.o.b.GiveUpAfter)
	c.pending, c.moved = !c.exhausted, false
}

func (rt *retries) dial(s *Suite, r *trace.Record, idx int) {
	c := s.client(r.ID)
	s.check(NoEarlyRetry)
	s.check(BoundedRetries)
	if c.exhausted || c.gaveUp {
		s.fail(BoundedRetries, r.At, fsm.MachineClient, r.ID, idx,
			"attempt %d started after failure %d had exhausted MaxAttempts=%d or GiveUpAfter=%s", r.Attempt, c.n, s.o.b.MaxAttempts, s.o.b.GiveUpAfter)
	} else if s.o.b.MaxAttempts > 0 && int(c.n)+1 > s.o.b.MaxAttempts && !c.moved {
		// (A retry pending when the policy changed still happens: a new
		// MaxAttempts applies from the next failure, as fsm states.)
		s.fail(BoundedRetries, r.At, fsm.MachineClient, r.ID, idx,
			"attempt number %d exceeds MaxAttempts=%d", c.n+1, s.o.b.MaxAttempts)
	}
	if r.Attempt != c.n+1 {
		// The machine numbers attempts by the failures it was told of; a
		// number that lags the failures seen means the driver retried
		// without asking it, whatever the delay.
		s.fail(NoEarlyRetry, r.At, fsm.MachineClient, r.ID, idx,
			"attempt numbered %d after %d consecutive failures: the driver retried without its machine's decision", r.Attempt, c.n)
	}
	if c.pending && c.raFloor > 0 {
		// (n), whatever else judges this attempt: the server's word
		// holds over the schedule, a nudge and a policy change alike.
		s.check(RetryAfterFloor)
		if since := r.At - c.lastFail; since < c.raFloor {
			s.fail(RetryAfterFloor, r.At, fsm.MachineClient, r.ID, idx,
				"attempt %d came %s after failure %d at %s, whose Retry-After floor is %s (RetryAfterMax %s)",
				r.Attempt, since, c.n, c.lastFail, c.raFloor, s.o.b.RetryAfterMax)
		}
	}
	// policyDial judges an attempt after a permanent failure (l) or a
	// nudge (m); the others are (a)'s.
	if c.pending && !s.policyDial(c, r, idx) {
		since := r.At - c.lastFail
		if c.moved {
			// A policy change drew this retry's delay again; the trace
			// shows it only as the gap (at least the delay, for a driver
			// that may be late), and decorrelated jitter grows from it.
			c.prevDelay = since
		}
		if lo, _ := rt.window(s, c); since < lo {
			s.fail(NoEarlyRetry, r.At, fsm.MachineClient, r.ID, idx,
				"attempt %d came %s after failure %d at %s; the policy's earliest is %s", r.Attempt, since, c.n, c.lastFail, lo)
		}
		if _, hi := rt.window(s, c); since > hi+s.o.slack {
			s.fail(BoundedRetries, r.At, fsm.MachineClient, r.ID, idx,
				"attempt %d came %s after failure %d at %s; the policy's latest is %s", r.Attempt, since, c.n, c.lastFail, hi)
		}
	}
	c.pending = false
	c.lastDial = r.At
}

func (rt *retries) transition(s *Suite, r *trace.Record, idx int) {
	c := s.client(r.ID)
	switch r.To {
	case fsm.BackingOff:
		if s.policyTransition(c, r, idx) {
			break // a reconnect-now or a reset moved the retry: its dial is judged
		}
		// The machine's own decision, checked against the same oracle.
		s.check(NoEarlyRetry)
		if lo := s.o.earliest(c.n); r.Delay < lo {
			s.fail(NoEarlyRetry, r.At, fsm.MachineClient, r.ID, idx,
				"backoff delay %s after failure %d is below the policy's earliest %s", r.Delay, c.n, lo)
		}
		if hi := max(s.o.b.LatestAfter(int(c.n), c.prevDelay), c.raTop); r.Delay > hi {
			s.fail(BoundedRetries, r.At, fsm.MachineClient, r.ID, idx,
				"backoff delay %s after failure %d (the one before: %s) is above the policy's latest %s", r.Delay, c.n, c.prevDelay, hi)
		}
		s.growth(c, r, idx)
		c.prevDelay = r.Delay
		if r.From == fsm.Connected && r.Trigger == fsm.PongTimeout {
			s.judgeClientDrop(c, r, idx)
		}
	case fsm.Rejected:
		s.policyTransition(c, r, idx)
	case fsm.GaveUp:
		if r.From == fsm.Connected && r.Trigger == fsm.PongTimeout {
			s.judgeClientDrop(c, r, idx)
		}
		s.check(BoundedRetries)
		if !c.exhausted {
			s.fail(BoundedRetries, r.At, fsm.MachineClient, r.ID, idx,
				"gave up after %d consecutive failures; MaxAttempts=%d, GiveUpAfter=%s (%s offline)",
				c.n, s.o.b.MaxAttempts, s.o.b.GiveUpAfter, r.At-c.offlineSince)
		}
		c.gaveUp, c.pending = true, false
	case fsm.Stopped:
		c.pending = false
	}
}

// finish reports clients still owed a retry whose latest bound passed
// before the run ended (or before the world quiesced), and clients that
// used up their attempts without giving up.
func (rt *retries) finish(s *Suite, end time.Duration) {
	limit := end
	if rt.quiesced && rt.quiesceAt < limit {
		limit = rt.quiesceAt
	}
	for id := range s.clients {
		c := &s.clients[id]
		if c.exited {
			continue
		}
		if c.pending {
			s.check(BoundedRetries)
			_, hi := rt.window(s, c)
			if due := c.lastFail + hi + s.o.slack; due < limit {
				s.fail(BoundedRetries, end, fsm.MachineClient, uint32(id), s.n,
					"no attempt since failure %d at %s; the policy's latest retry was due at %s", c.n, c.lastFail, due)
			}
		}
		if c.exhausted && !c.gaveUp {
			s.fail(BoundedRetries, end, fsm.MachineClient, uint32(id), s.n,
				"failure %d exhausted MaxAttempts=%d but the client never gave up", c.n, s.o.b.MaxAttempts)
		}
	}
}

// window returns how long after its failure c's pending retry may come:
// the policy's bounds for its failure count, or the bounds a policy
// change moved it to.
//
// A Retry-After raises only the latest (to the spread past its floor):
// its floor is (n)'s to judge, so a retry before it is reported once,
// under its own name.
func (rt *retries) window(s *Suite, c *clientFacts) (lo, hi time.Duration) {
	switch {
	case c.permanent: // the slow schedule, counted in rejections (policy.go)
		lo, hi = s.o.fp.Schedule.Earliest(int(c.rejections)), s.o.fp.Schedule.Latest(int(c.rejections))
	case c.moved:
		lo, hi = c.movedLo, c.movedHi
	default:
		lo, hi = s.o.earliest(c.n), s.o.latest(c.n)
	}
	return lo, max(hi, c.raTop)
}

// applyChanges puts the policy changes due by t into force. A retry
// pending at a change keeps the old policy's promise, as
// fsm.Client.SetBackoff states: it may move, but not before the old
// earliest bound; it is drawn again under the new policy, so it comes by
// the later of that bound and the new latest.
func (s *Suite) applyChanges(t time.Duration) {
	for len(s.changes) > 0 && s.changes[0].At <= t {
		old, at := s.o.b, s.changes[0].At
		s.o.b = s.changes[0].Backoff.WithDefaults()
		s.changes = s.changes[1:]
		for i := range s.clients {
			c := &s.clients[i]
			if !c.pending || c.exited {
				continue
			}
			// The promise so far: the old earliest, or what earlier
			// changes already raised it to.
			oldLo := old.Earliest(int(c.n))
			if c.moved {
				oldLo = c.movedLo
			}
			c.moved = true
			c.movedLo = max(oldLo, s.o.earliest(c.n))
			// (A retry the new policy puts in the past is due at once.)
			c.movedHi = max(oldLo, s.o.latest(c.n), at-c.lastFail)
		}
	}
}
