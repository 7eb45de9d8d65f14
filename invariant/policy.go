package invariant

import (
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/trace"
)

// The reconnect policy v2 checks: (h) permanent failures are retried no
// faster than the slow schedule; (i) a reconnect-now never starts an
// attempt closer than the floor to the one before. They work from the
// driver's facts (Down with its code, Nudge, Dial), so a driver that
// hands its machine a plain failure for a 401, or dials on a nudge behind
// its machine's back, is caught.

// failureOf reads a Down record's code as the failure table does: below
// 1000 an HTTP status, else a close code.
func failureOf(code uint16) fsm.Failure {
	if code == 0 {
		return fsm.Failure{}
	}
	if code < 1000 {
		return fsm.Failure{Status: int(code)}
	}
	return fsm.Failure{Code: int(code)}
}

// classify notes the class of the failure a Down reports; a new failure
// ends any earlier nudge.
func (s *Suite) classify(c *clientFacts, r *trace.Record) {
	class := s.o.fp.Classify(failureOf(r.Code))
	c.permanent, c.fatal, c.nudged, c.failCode = class == fsm.Permanent, class == fsm.Fatal, false, r.Code
	if c.permanent {
		s.check(PermanentSlow) // the failure arms the rule: its retry will be judged
		c.rejections++
	}
}

// policyDial judges a pending attempt that follows a permanent failure or
// a nudge, and reports whether it did (then (a) does not judge it).
func (s *Suite) policyDial(c *clientFacts, r *trace.Record, idx int) bool {
	since := r.At - c.lastFail
	if c.nudged {
		s.check(ReconnectFloor) // a nudge arms the rule for this attempt
	}
	if c.permanent {
		sched := s.o.fp.Schedule
		s.check(PermanentSlow)
		if lo := sched.Earliest(int(c.rejections)); since < lo {
			s.fail(PermanentSlow, r.At, fsm.MachineClient, r.ID, idx,
				"attempt %d came %s after permanent failure %d (code %d) at %s; the slow schedule's earliest is %s",
				r.Attempt, since, c.rejections, c.failCode, c.lastFail, lo)
		}
		if hi := max(sched.Latest(int(c.rejections)), c.raTop); since > hi+s.o.slack {
			s.fail(BoundedRetries, r.At, fsm.MachineClient, r.ID, idx,
				"attempt %d came %s after permanent failure %d at %s; the slow schedule's latest is %s",
				r.Attempt, since, c.rejections, c.lastFail, hi)
		}
		return true
	}
	if c.nudged && since < s.retries.lowest(s, c) {
		// Brought forward by a reconnect-now: the floor, not the
		// schedule's earliest (or a policy change's promise), bounds it.
		// At or after that earliest the schedule allowed it anyway, and
		// (a) and (b) judge it. (Brought forward, it is early, never late.)
		if c.moved {
			// A policy change drew this retry's delay again and the nudge
			// cut it short: the trace shows neither, and decorrelated
			// jitter grows from it. Take the most it could have been.
			c.prevDelay = c.movedHi
		}
		if gap, floor := r.At-c.lastDial, s.o.b.ReconnectFloor; gap < floor {
			s.fail(ReconnectFloor, r.At, fsm.MachineClient, r.ID, idx,
				"attempt %d started %s after attempt %d, which a reconnect-now may not bring closer than the floor %s",
				r.Attempt, gap, r.Attempt-1, floor)
		}
		return true
	}
	return false
}

// policyTransition judges a client's move into BackingOff or Rejected that
// the v2 rules own, and reports whether it did: a re-entry by
// reconnect-now or reset (its attempt is judged at the dial), or a
// rejection's delay against the slow schedule.
func (s *Suite) policyTransition(c *clientFacts, r *trace.Record, idx int) bool {
	if r.Trigger == fsm.ReconnectNow || r.Trigger == fsm.ResetBackoff {
		return true
	}
	if r.To == fsm.Rejected {
		s.check(PermanentSlow)
		if lo := s.o.fp.Schedule.Earliest(int(c.rejections)); r.Delay < lo {
			s.fail(PermanentSlow, r.At, fsm.MachineClient, r.ID, idx,
				"slow-schedule delay %s after permanent failure %d is below its earliest %s", r.Delay, c.rejections, lo)
		}
		return true
	}
	return false
}

// lowest is the earliest the schedule itself allows c's pending retry:
// the policy's bound, or the one a policy change promised.
func (rt *retries) lowest(s *Suite, c *clientFacts) time.Duration {
	lo, _ := rt.window(s, c)
	return lo
}
