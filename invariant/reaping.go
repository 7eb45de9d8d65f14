package invariant

import (
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/trace"
)

// sessionTransition tracks a session's state and checks (c) and (d) when
// it is reaped.
func (s *Suite) sessionTransition(r *trace.Record, idx int) {
	f := s.session(r.ID)
	f.known = true
	f.state = r.To
	if r.From == fsm.Handshaking && r.To == fsm.Alive {
		f.upgradedOK, f.upgraded, f.lastActivity = true, r.At, r.At
	} else if r.To == fsm.Closing && !f.closing {
		f.closing, f.closingAt = true, r.At
		s.judgeEnd(f, r, idx)
	} else if r.To == fsm.Reaped {
		f.reaped = true
		s.checkReapBy(f, r.ID, r.At, r.At, idx, false)
		if r.From != fsm.Closing {
			s.judgeEnd(f, r, idx)
		}
	}
}

// deadBound is the latest a session whose peer is dead (or whose send
// failed) may be reaped: the liveness bound after the peer's last sign of
// life; the handshake bound if it was never upgraded; the close bound if a
// close handshake had begun before the liveness bound, since a Closing
// session waits CloseTimeout for an answer; and at once after a failed send.
func (s *Suite) deadBound(f *sessionFacts) time.Duration {
	const never = time.Duration(1<<63 - 1)
	b := never
	if f.dead {
		b = s.o.reapDeadline(f.lastSign)
		if !f.upgradedOK {
			b = max(b, f.created+s.o.l.HandshakeTimeout)
		}
		if f.closing && f.closingAt <= b {
			b = max(b, f.closingAt+s.o.l.CloseTimeout)
		}
	}
	if f.sendFailed {
		b = min(b, f.sendFailedAt)
	}
	return b
}

// checkReapBy checks (c) for a session reaped at (or, when open, still not
// reaped by) t.
func (s *Suite) checkReapBy(f *sessionFacts, id uint32, t, at time.Duration, idx int, open bool) {
	verb := "reaped at " + t.String()
	if open {
		verb = "still not reaped at " + t.String()
	}
	if f.dead || f.sendFailed {
		s.check(DeadReaped)
		if b := s.deadBound(f); t > b+s.o.slack {
			if f.sendFailed && f.sendFailedAt == b {
				s.fail(DeadReaped, at, fsm.MachineSession, id, idx,
					"%s, but a send failed at %s (the fast tier reaps at once)", verb, f.sendFailedAt)
			} else {
				s.fail(DeadReaped, at, fsm.MachineSession, id, idx,
					"%s; peer dead, last sign of life at %s, liveness bound %s", verb, f.lastSign, b)
			}
			return
		}
	}
	if f.upgradedOK && (!f.closing || f.closingAt > f.upgraded) {
		if b, ok := s.o.idleReapDeadline(f.lastActivity); ok {
			s.check(DeadReaped)
			if t > b+s.o.slack {
				s.fail(DeadReaped, at, fsm.MachineSession, id, idx,
					"%s; idle since %s, idle bound %s", verb, f.lastActivity, b)
				return
			}
		}
	}
	if !f.upgradedOK { // still handshaking, or reaped from there: the handshake bound holds
		s.check(DeadReaped)
		if b := f.created + s.o.l.HandshakeTimeout; t > b+s.o.slack {
			s.fail(DeadReaped, at, fsm.MachineSession, id, idx, "%s; handshaking since %s, bound %s", verb, f.created, b)
		}
	}
}

// send checks (e).
func (s *Suite) send(r *trace.Record, idx int) {
	f := s.session(r.ID)
	s.check(NoSendAfterClose)
	if !f.known || (f.state != fsm.Alive && f.state != fsm.Suspect) {
		state := f.state.String()
		if !f.known {
			state = "no state (never registered)"
		}
		s.fail(NoSendAfterClose, r.At, fsm.MachineSession, r.ID, idx, "message sent on a session in %s", state)
		return
	}
	f.lastActivity = r.At
}
