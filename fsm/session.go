package fsm

import (
	"math"
	"time"
)

// Session is the sans-I/O lifecycle of one server-side session, from the
// upgrade to the moment it is reaped. Like Client, it is driven by Step and
// Deadline, does no I/O and is owned by one driver at a time.
//
// A session is never left behind by a dead peer: whatever path the peer
// takes out (RST, EOF, kill -9 without a close frame, a blackholed link),
// the session reaches Reaped by Liveness.ReapDeadline of the last frame
// heard, provided the driver ticks at Deadline.
type Session struct {
	// The fields a heartbeat reads and writes come first, so a step on a
	// cold session touches two cache lines, not five (the simulator at
	// 10 000 sessions is bound by those misses).
	state        State
	reason       Reason
	acts         actList // the last Step's actions
	errors       int32
	lastHeard    stamp // any frame
	lastPing     stamp
	lastActivity stamp // application messages, either way
	l            Liveness

	inst         sessionInstance
	created      time.Time // the base of every stamp
	closingSince stamp

	trans Transition
}

// actList names the actions of a session Step. They are a function of
// the session's reason, so a Session keeps which list, one byte, and
// Step returns a slice of sessionActs: 128 bytes less per session than
// room for two actions of its own (docs/decisions.md, "what an idle
// session holds").
type actList uint8

const (
	actsNone      actList = iota
	actsPing              // ActSendPing
	actsClose             // ActClose (entering Closing)
	actsCloseReap         // ActClose, ActReap (reaped straight from an open link)
	actsReap              // ActReap
)

// sessionActs holds, for each reason, a session's close and its reap;
// pingActs a tick's ping. Read-only, shared by every Session.
var (
	sessionActs = func() (t [len(reasonNames)][2]Action) {
		for r := range t {
			code, _ := Reason(r).closeCode()
			t[r] = [2]Action{{Kind: ActClose, Code: code, Reason: Reason(r)}, {Kind: ActReap, Reason: Reason(r)}}
		}
		return t
	}()
	pingActs = [1]Action{{Kind: ActSendPing}}
)

type sessionInstance struct {
	instanceCtx
	s *Session
}

func (i *sessionInstance) LifecycleState() State     { return i.s.state }
func (i *sessionInstance) SetLifecycleState(s State) { i.s.state = s }
func (i *sessionInstance) GuardHolds(g Guard) bool {
	atLimit := int(i.s.errors)+1 >= i.s.l.MaxErrors
	switch g {
	case BelowErrorLimit:
		return !atLimit
	case AtErrorLimit:
		return atLimit
	}
	return false
}

// NewSession returns a Session in Handshaking, created at now (its
// handshake deadline counts from now), or the validation error of l.
func NewSession(now time.Time, l Liveness) (*Session, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	s := &Session{
		state:   Handshaking,
		l:       l.WithDefaults(),
		created: now,
		// The zero time until set.
		lastHeard: noStamp, lastPing: noStamp, lastActivity: noStamp, closingSince: noStamp,
	}
	s.inst.s = s
	return s, nil
}

// stamp is a time kept as nanoseconds since the session was created: 8
// bytes where a time.Time is 24, which with the shared action tables makes
// a Session 192 bytes (docs/decisions.md, "what an idle session holds").
// at turns it back into a time.Time by adding it to created, so a stamp
// keeps created's monotonic reading and every comparison stays
// monotonic-safe. A session's times lie within 292 years of its creation
// (time.Duration's range). noStamp is the zero time.
type stamp int64

const noStamp stamp = math.MinInt64

// stamp returns t as a stamp of s.
func (s *Session) stamp(t time.Time) stamp {
	if t.IsZero() {
		return noStamp
	}
	return stamp(t.Sub(s.created))
}

// at returns the time st stands for.
func (s *Session) at(st stamp) time.Time {
	if st == noStamp {
		return time.Time{}
	}
	return s.created.Add(time.Duration(st))
}

// State returns the current state.
func (s *Session) State() State { return s.state }

// Open reports whether application data may be sent: Alive or Suspect.
func (s *Session) Open() bool { return s.state == Alive || s.state == Suspect }

// Reason returns why the session is closing or was reaped, or NoReason.
func (s *Session) Reason() Reason { return s.reason }

// LastHeard returns when the peer was last heard from (any frame).
func (s *Session) LastHeard() time.Time { return s.at(s.lastHeard) }

// LastActivity returns when an application message last went either way.
func (s *Session) LastActivity() time.Time { return s.at(s.lastActivity) }

// NextPing returns when the next ping is due, and false unless the session
// is open (Alive or Suspect). A driver that batches its timers should
// never send a ping late, since a late ping eats into the peer's
// PongTimeout; it may send one early, by handing in EvTick stamped with
// this time once it is that close (package conn does, within its timer
// granularity). An early ping only makes the session more careful.
func (s *Session) NextPing() (time.Time, bool) {
	return s.l.PingAt(s.at(s.lastHeard), s.at(s.lastPing)), s.Open()
}

// Liveness returns the policy in force, defaults applied.
func (s *Session) Liveness() Liveness { return s.l }

// Deadline returns when the driver must next hand in EvTick, and false once
// the session is Reaped.
func (s *Session) Deadline() (time.Time, bool) {
	switch s.state {
	case Handshaking:
		return s.created.Add(s.l.HandshakeTimeout), true
	case Alive, Suspect:
		heard := s.at(s.lastHeard)
		d := earliest(s.l.reapAt(heard), s.l.pingAt(heard, s.at(s.lastPing), 0))
		if idle, ok := s.l.IdleDeadline(s.at(s.lastActivity)); ok {
			d = earliest(d, idle)
		}
		return d, true
	case Closing:
		return s.at(s.closingSince).Add(s.l.CloseTimeout), true
	}
	return time.Time{}, false
}

// Step applies one event observed at now and returns what to do. An event
// the current state does not accept returns an *UnhandledError and changes
// nothing; in particular EvSent outside Alive and Suspect is an error, so a
// driver that writes to a closing or reaped session finds out. EvShutdown
// or EvFence on a session already Closing or Reaped is a no-op.
func (s *Session) Step(now time.Time, ev Event) (Output, error) {
	s.acts = actsNone
	var tr Trigger
	switch ev {
	case EvTick:
		tr = s.due(now)
	case EvPong:
		if s.Open() && now.After(s.at(s.lastHeard)) {
			s.lastHeard = s.stamp(now)
		}
	case EvMessage:
		if s.Open() {
			s.lastHeard, s.lastActivity = s.later(s.lastHeard, now), s.later(s.lastActivity, now)
			if s.state == Suspect {
				tr = Recovered
			}
		}
	case EvSent:
		if !s.Open() {
			return Output{}, &UnhandledError{Machine: MachineSession, State: s.state, Event: ev}
		}
		s.lastActivity = s.later(s.lastActivity, now)
	case EvShutdown, EvFence:
		if s.state == Closing || s.state == Reaped {
			break
		}
		tr = Shutdown
		if ev == EvFence {
			tr = Fence
		}
	default:
		t, ok := sessionTriggers[ev]
		if !ok {
			return Output{}, &UnhandledError{Machine: MachineSession, State: s.state, Event: ev}
		}
		tr = t
	}
	if tr == 0 {
		return Output{Actions: s.actions()}, nil
	}
	from := s.state
	if err := fire(shared.session(), &s.inst, tr, ev); err != nil {
		return Output{}, err
	}
	s.enter(now, from, tr)
	return Output{Transition: &s.trans, Actions: s.actions()}, nil
}

// sessionTriggers maps the events that name their trigger directly.
var sessionTriggers = map[Event]Trigger{
	EvUpgraded: Upgraded, EvHandshakeFailed: HandshakeFailed, EvProtocolError: ProtocolError,
	EvSendError: SendError, EvReadError: ReadError, EvPeerClose: PeerClose,
	EvSlowConsumer: SlowConsumer, EvClosed: Closed,
}

func (s *Session) due(now time.Time) Trigger {
	switch s.state {
	case Handshaking:
		if !now.Before(s.created.Add(s.l.HandshakeTimeout)) {
			return HandshakeTimeout
		}
	case Alive, Suspect:
		heard := s.at(s.lastHeard)
		if !now.Before(s.l.reapAt(heard)) {
			return PongTimeout
		}
		if idle, ok := s.l.IdleDeadline(s.at(s.lastActivity)); ok && !now.Before(idle) {
			return IdleTimeout
		}
		if !now.Before(s.l.pingAt(heard, s.at(s.lastPing), 0)) {
			s.lastPing = s.stamp(now)
			s.acts = actsPing
		}
	case Closing:
		if !now.Before(s.at(s.closingSince).Add(s.l.CloseTimeout)) {
			return CloseTimeout
		}
	}
	return 0
}

// reasonOf is the reason a trigger closes or reaps a session for. Triggers
// that end a close already under way (Closed, CloseTimeout) keep the reason
// the close started with.
var reasonOf = map[Trigger]Reason{
	SendError: ReasonSendError, PongTimeout: ReasonPongTimeout, IdleTimeout: ReasonIdleTimeout,
	ReadError: ReasonReadError, PeerClose: ReasonPeerClose, SlowConsumer: ReasonSlowConsumer,
	Shutdown: ReasonShutdown, Fence: ReasonFenced, ProtocolError: ReasonProtocolErrors,
	HandshakeTimeout: ReasonHandshakeTimeout, HandshakeFailed: ReasonHandshakeFailed,
}

// enter is the one place a session state is entered.
func (s *Session) enter(now time.Time, from State, tr Trigger) {
	to := s.state
	s.trans = Transition{Machine: MachineSession, At: now, From: from, To: to, Trigger: tr}
	switch to {
	case Alive:
		if from == Handshaking {
			s.lastHeard = s.stamp(now)
			s.lastActivity = s.lastHeard
		}
		s.errors = 0
	case Suspect:
		s.errors++
	case Closing:
		if tr == ProtocolError {
			s.errors++
		}
		s.reason = reasonOf[tr]
		s.closingSince = s.stamp(now)
		s.acts = actsClose
	case Reaped:
		if from != Closing {
			s.reason = reasonOf[tr]
			// A close frame is only worth sending on an upgraded link whose
			// write side still works; the reason says which.
			if _, ok := s.reason.closeCode(); ok && from != Handshaking {
				s.acts = actsCloseReap
				break
			}
		}
		s.acts = actsReap
	}
	if to == Closing || to == Reaped {
		s.trans.Reason = s.reason
	}
}

// actions returns the last Step's actions: a capped slice of the shared
// read-only tables, so a caller can neither change nor append to them.
func (s *Session) actions() []Action {
	switch s.acts {
	case actsPing:
		return pingActs[:]
	case actsClose:
		return sessionActs[s.reason][0:1:1]
	case actsCloseReap:
		return sessionActs[s.reason][0:2:2]
	case actsReap:
		return sessionActs[s.reason][1:2:2]
	}
	return pingActs[:0:0]
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// later returns the later of a and b, as a stamp.
func (s *Session) later(a stamp, b time.Time) stamp {
	if b.After(s.at(a)) {
		return s.stamp(b)
	}
	return a
}
