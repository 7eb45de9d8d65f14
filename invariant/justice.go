package invariant

import (
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/trace"
)

// No unjust end: (d) judges every close or reap of an open session, and
// every client drop for silence, against the rule of its reason. The
// reasons a peer chooses (its close frame) or the operator does (shutdown)
// are not the session's judgement and are not judged; the handshake and
// close-handshake timers run on links that never were or no longer are
// open, and (c) bounds them from above.
//
//	pong_timeout, read_error  the peer is dead, a send failed, or its path was degraded
//	                          (a frame took ≥ PongTimeout/2, was lost or held) within the
//	                          last PingInterval+PongTimeout. A read error of a live peer on a
//	                          healthy path is a silence verdict the session was not entitled
//	                          to (a read-deadline backstop firing first); a BadRecv at that
//	                          instant (a frame over the read limit) also justifies it
//	idle_timeout              IdleTimeout is on and no application message went either way
//	                          (Send, Recv, the upgrade) for IdleTimeout
//	protocol_errors           the peer's last MaxErrors messages were all bad (BadRecv, no
//	                          Recv between them)
//	slow_consumer             a write found the send queue full (QueueFull)
//	send_error                a write failed (SendFailed), or the peer is dead (PeerDead: every
//	                          write to it fails, at once or at the write deadline)

// judgeEnd checks (d) for session f entering Closing or Reaped from an
// open state, by its trigger.
func (s *Suite) judgeEnd(f *sessionFacts, r *trace.Record, idx int) {
	switch r.Trigger {
	case fsm.PongTimeout, fsm.ReadError:
		s.check(LiveKept)
		window := s.o.l.PingInterval + s.o.l.PongTimeout
		if f.dead || f.sendFailed || (f.degraded && f.degradedAt >= r.At-window) ||
			(r.Trigger == fsm.ReadError && f.badAt == r.At && f.badSeen) {
			return
		}
		what := "reaped for silence"
		if r.Trigger == fsm.ReadError {
			what = "reaped for a read error"
		}
		s.fail(LiveKept, r.At, fsm.MachineSession, r.ID, idx,
			"%s while its peer lived and its path reported no loss or delay ≥ PongTimeout/2 since %s", what, r.At-window)
	case fsm.IdleTimeout:
		s.check(LiveKept)
		due, on := s.o.idleDeadline(f.lastActivity)
		if !on {
			s.fail(LiveKept, r.At, fsm.MachineSession, r.ID, idx, "closed for idleness with IdleTimeout off")
		} else if r.At < due {
			s.fail(LiveKept, r.At, fsm.MachineSession, r.ID, idx,
				"closed for idleness %s after the last application message at %s; IdleTimeout is %s",
				r.At-f.lastActivity, f.lastActivity, s.o.l.IdleTimeout)
		}
	case fsm.ProtocolError:
		s.check(LiveKept)
		if int(f.errors) < s.o.l.MaxErrors {
			s.fail(LiveKept, r.At, fsm.MachineSession, r.ID, idx,
				"closed for protocol errors after %d bad messages in a row; MaxErrors is %d", f.errors, s.o.l.MaxErrors)
		}
	case fsm.SlowConsumer:
		s.check(LiveKept)
		if !f.queueFull {
			s.fail(LiveKept, r.At, fsm.MachineSession, r.ID, idx, "closed as a slow consumer, but no write ever found its queue full")
		}
	case fsm.SendError:
		s.check(LiveKept)
		if !f.sendFailed && !f.dead {
			s.fail(LiveKept, r.At, fsm.MachineSession, r.ID, idx, "reaped for a send error, but no write on it failed and its peer lives")
		}
	}
}

// judgeClientDrop checks (d) for client c dropping its link for silence
// at r.At: the server end must have ended (its session closing or reaped,
// or never a lifeline session), the path must be dead (PeerDead, a failed
// send), or it must have been degraded for the client's pong timeout
// within the client's silence window.
func (s *Suite) judgeClientDrop(c *clientFacts, r *trace.Record, idx int) {
	s.check(LiveKept)
	li := c.link
	if li == trace.NoID {
		li = c.downLink
	}
	if li == trace.NoID || int(li) >= len(s.sessions) {
		return // not a lifeline session, or one the trace does not follow
	}
	f := &s.sessions[li]
	window := s.o.cl.PingInterval + s.o.cl.PongTimeout + s.o.cl.PongTimeout/4
	if !f.known || f.closing || f.reaped || f.dead || f.sendFailed || (f.cDegraded && f.cDegradedAt >= r.At-window) {
		return
	}
	s.fail(LiveKept, r.At, fsm.MachineClient, r.ID, idx,
		"dropped session %d for silence while the server end lived and the path reported no loss or delay ≥ 3/8 PongTimeout since %s",
		li, r.At-window)
}

// ClientSlowFrame is the one-way transit time from which a frame excuses
// a client's drop for silence: 3/8 of its PongTimeout. A client pings
// PongTimeout/4 after the server would have (fsm.Liveness), so it leaves
// its own ping 3/4 of PongTimeout for the answer; a round trip of two
// frames each under 3/8 of it always fits. (A server leaves PongTimeout,
// hence its PongTimeout/2.) l must have its defaults applied.
func ClientSlowFrame(l fsm.Liveness) time.Duration { return l.PongTimeout * 3 / 8 }

// degraded records a slow, lost or held frame on a session's path, for
// each end whose pong timeout it is slow enough for.
func (s *Suite) degraded(r *trace.Record) {
	f := s.session(r.ID)
	if r.Delay == 0 || r.Delay >= s.o.l.PongTimeout/2 {
		f.degraded, f.degradedAt = true, r.At
	}
	if r.Delay == 0 || r.Delay >= ClientSlowFrame(s.o.cl) {
		f.cDegraded, f.cDegradedAt = true, r.At
	}
}

// sessionFact records what the peer sent and what the writer found.
func (s *Suite) sessionFact(r *trace.Record) {
	f := s.session(r.ID)
	switch r.Kind {
	case trace.Recv:
		f.lastActivity = max(f.lastActivity, r.At)
		f.errors = 0
	case trace.BadRecv:
		f.errors++
		f.badSeen, f.badAt = true, r.At
	case trace.QueueFull:
		f.queueFull = true
	}
}

// growth checks that a jittered backoff delay is drawn over its whole
// range, not stuck at its floor: (a)'s growth clause. Each draw lands in
// the bottom quarter of [Earliest(n), LatestAfter(n, prev)] with
// probability at most 1/4 whatever came before (for decorrelated jitter
// too: its range is at least [Initial, min(Max, Initial×Multiplier)]), so
// growthRun of them in a row happen to a correct machine with probability
// below 4^-20 ≈ 10^-12. A machine that never grows its delay (decorrelated
// stuck at Initial, full jitter on a base that does not grow) lands there
// every time once its range has opened.
func (s *Suite) growth(c *clientFacts, r *trace.Record, idx int) {
	lo, hi := s.o.earliest(c.n), s.o.b.LatestAfter(int(c.n), c.prevDelay)
	if hi-lo < time.Microsecond {
		return // no jitter, or the immediate first retry: a point, or one only rounding widens
	}
	if r.Delay > lo+(hi-lo)/4 {
		c.lowRun = 0
		return
	}
	c.lowRun++
	if c.lowRun == growthRun {
		s.fail(NoEarlyRetry, r.At, fsm.MachineClient, r.ID, idx,
			"%d backoff delays in a row in the bottom quarter of their range (this one %s of [%s, %s] after failure %d): the delay does not grow",
			growthRun, r.Delay, lo, hi, c.n)
	}
}

// growthRun is how many delays in a row in the bottom quarter of their
// range (a) takes for a delay that does not grow.
const growthRun = 20

func (o *oracle) idleDeadline(lastActivity time.Duration) (time.Duration, bool) {
	t, ok := o.l.IdleDeadline(epoch.Add(lastActivity))
	return t.Sub(epoch), ok
}
