package fsm

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestBuiltinTablesCheck(t *testing.T) {
	for _, tb := range Tables() {
		if err := tb.Check(); err != nil {
			t.Errorf("%s: %v", tb.Machine, err)
		}
	}
}

func TestCheckCatchesBrokenTables(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Table)
	}{
		{"unknown state", func(t *Table) { t.Rows = append(t.Rows, Row{Idle, Start, Alive, NoGuard}) }},
		{"leaves terminal", func(t *Table) { t.Rows = append(t.Rows, Row{GaveUp, Start, Connecting, NoGuard}) }},
		{"overlapping guards", func(t *Table) { t.Rows = append(t.Rows, Row{Connecting, DialFailed, Stopped, RetriesLeft}) }},
		{"unguarded duplicate", func(t *Table) { t.Rows = append(t.Rows, Row{Idle, Start, Stopped, NoGuard}) }},
		{"bad initial", func(t *Table) { t.Initial = Alive }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := ClientTable()
			c.edit(tb)
			if err := tb.Check(); err == nil {
				t.Fatal("Check accepted a broken table")
			}
			if _, err := build(tb); err == nil {
				t.Fatal("Build accepted a broken table")
			}
		})
	}
}

// clientFor returns a client configured so that guard g holds for the next
// failure, driven into state s. It returns the time of the last step.
func clientFor(t *testing.T, s State, g Guard) (*Client, time.Time) {
	t.Helper()
	cfg := ClientConfig{Backoff: Backoff{Jitter: JitterNone, MaxAttempts: 5}}
	if g == RetriesExhausted {
		cfg.Backoff.MaxAttempts = 1
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	step := func(ev Event) {
		t.Helper()
		if _, err := c.Step(now, ev); err != nil {
			t.Fatalf("driving to %s: %v", s, err)
		}
	}
	switch s {
	case Connecting:
		step(EvStart)
	case Connected:
		step(EvStart)
		step(EvDialOK)
	case BackingOff:
		step(EvStart)
		step(EvDialFailed)
	case Rejected:
		step(EvStart)
		if _, err := c.StepFailure(now, EvDialFailed, Failure{Status: 401}); err != nil {
			t.Fatal(err)
		}
	case GaveUp:
		c.b.MaxAttempts = 1
		step(EvStart)
		step(EvDialFailed)
	case Stopped:
		step(EvStop)
	}
	if c.State() != s {
		t.Fatalf("driving to %s ended in %s", s, c.State())
	}
	return c, now
}

// clientInput returns the event, time and failure that make trigger tr
// fire on c with guard g.
func clientInput(c *Client, now time.Time, tr Trigger, g Guard) (Event, time.Time, Failure) {
	switch tr {
	case DialTimeout, RetryDue, PongTimeout:
		d, _ := c.Deadline()
		if tr == PongTimeout {
			d = c.l.ReapDeadline(c.lastHeard)
		}
		return EvTick, d, Failure{}
	case GoAway:
		if c.State() == Connected {
			return EvDropped, now, Failure{Code: 1008}
		}
		return EvDialFailed, now, Failure{Status: 403}
	case ReconnectNow:
		if g == FloorPassed {
			return EvReconnectNow, c.reconnectFloorAt(), Failure{}
		}
		return EvReconnectNow, now, Failure{}
	case ResetBackoff:
		return EvResetBackoff, now, Failure{}
	}
	for ev, t := range map[Event]Trigger{EvStart: Start, EvDialOK: DialOK, EvDialFailed: DialFailed,
		EvDropped: Dropped, EvStop: Stop} {
		if t == tr {
			return ev, now, Failure{}
		}
	}
	panic("no client event for " + tr.String())
}

func TestClientEveryRow(t *testing.T) {
	for _, r := range ClientTable().Rows {
		t.Run(r.From.String()+"/"+r.label(), func(t *testing.T) {
			c, now := clientFor(t, r.From, r.Guard)
			ev, at, f := clientInput(c, now, r.Trigger, r.Guard)
			out, err := c.StepFailure(at, ev, f)
			if err != nil {
				t.Fatal(err)
			}
			if c.State() != r.To {
				t.Fatalf("state = %s, want %s", c.State(), r.To)
			}
			tr := out.Transition
			if tr == nil || tr.From != r.From || tr.To != r.To || tr.Trigger != r.Trigger || tr.Machine != MachineClient {
				t.Fatalf("transition = %+v, want %s -%s-> %s", tr, r.From, r.Trigger, r.To)
			}
		})
	}
}

func TestClientUnhandledPairs(t *testing.T) {
	tb := ClientTable()
	events := map[Event]Trigger{EvStart: Start, EvDialOK: DialOK, EvDialFailed: DialFailed, EvDropped: Dropped, EvStop: Stop}
	for _, s := range tb.States {
		for ev, tr := range events {
			if tb.has(s, tr) || (ev == EvStop && tb.isTerminal(s)) {
				continue
			}
			t.Run(s.String()+"/"+ev.String(), func(t *testing.T) {
				c, now := clientFor(t, s, NoGuard)
				before := *c
				_, err := c.Step(now, ev)
				var ue *UnhandledError
				if !errors.As(err, &ue) || !errors.Is(err, ErrUnhandled) {
					t.Fatalf("err = %v, want *UnhandledError", err)
				}
				if ue.State != s || ue.Trigger != tr || ue.Event != ev || ue.Machine != MachineClient {
					t.Fatalf("error fields = %+v", ue)
				}
				if c.state != before.state || c.failures != before.failures || c.attempt != before.attempt {
					t.Fatal("an unhandled event changed the client")
				}
			})
		}
	}
	c, _ := clientFor(t, Idle, NoGuard)
	if _, err := c.Step(t0, EvUpgraded); !errors.Is(err, ErrUnhandled) {
		t.Fatalf("session event on a client: err = %v", err)
	}
	for _, s := range tb.Terminal {
		c, _ := clientFor(t, s, NoGuard)
		if out, err := c.Step(t0, EvStop); err != nil || out.Transition != nil || c.State() != s {
			t.Fatalf("EvStop in %s: %v %+v", s, err, out)
		}
	}
}

// sessionFor returns a session driven into state s with the error limit
// set so that guard g holds for the next protocol error.
func sessionFor(t *testing.T, s State, g Guard) *Session {
	t.Helper()
	l := Liveness{MaxErrors: 3}
	if g == AtErrorLimit {
		l.MaxErrors = 1
		if s == Suspect {
			l.MaxErrors = 2
		}
	}
	ss, err := NewSession(t0, l)
	if err != nil {
		t.Fatal(err)
	}
	path := map[State][]Event{
		Alive:   {EvUpgraded},
		Suspect: {EvUpgraded, EvProtocolError},
		Closing: {EvUpgraded, EvShutdown},
		Reaped:  {EvUpgraded, EvReadError},
	}[s]
	for _, ev := range path {
		if _, err := ss.Step(t0, ev); err != nil {
			t.Fatalf("driving to %s: %v", s, err)
		}
	}
	if ss.State() != s {
		t.Fatalf("driving to %s ended in %s", s, ss.State())
	}
	return ss
}

// sessionInput returns the event and time that make trigger tr fire on s.
func sessionInput(s *Session, tr Trigger) (Event, time.Time) {
	switch tr {
	case HandshakeTimeout:
		return EvTick, t0.Add(s.l.HandshakeTimeout)
	case PongTimeout:
		return EvTick, s.l.ReapDeadline(s.at(s.lastHeard))
	case CloseTimeout:
		return EvTick, s.at(s.closingSince).Add(s.l.CloseTimeout)
	case IdleTimeout:
		s.l.IdleTimeout = time.Second
		return EvTick, s.at(s.lastActivity).Add(time.Second)
	case Recovered:
		return EvMessage, t0
	case Shutdown:
		return EvShutdown, t0
	case Fence:
		return EvFence, t0
	}
	for ev, t := range sessionTriggers {
		if t == tr {
			return ev, t0
		}
	}
	panic("no session event for " + tr.String())
}

func TestSessionEveryRow(t *testing.T) {
	for _, r := range SessionTable().Rows {
		t.Run(r.From.String()+"/"+r.label(), func(t *testing.T) {
			s := sessionFor(t, r.From, r.Guard)
			ev, at := sessionInput(s, r.Trigger)
			out, err := s.Step(at, ev)
			if err != nil {
				t.Fatal(err)
			}
			if s.State() != r.To {
				t.Fatalf("state = %s, want %s", s.State(), r.To)
			}
			tr := out.Transition
			if tr == nil || tr.From != r.From || tr.To != r.To || tr.Trigger != r.Trigger || tr.Machine != MachineSession {
				t.Fatalf("transition = %+v, want %s -%s-> %s", tr, r.From, r.Trigger, r.To)
			}
			if (r.To == Reaped || r.To == Closing) && tr.Reason == NoReason {
				t.Fatal("closing or reaping without a reason")
			}
			if r.To == Reaped && out.Actions[len(out.Actions)-1].Kind != ActReap {
				t.Fatalf("reaped without ActReap last: %+v", out.Actions)
			}
		})
	}
}

func TestSessionUnhandledPairs(t *testing.T) {
	tb := SessionTable()
	for _, s := range tb.States {
		for ev, tr := range sessionTriggers {
			if tb.has(s, tr) {
				continue
			}
			t.Run(s.String()+"/"+ev.String(), func(t *testing.T) {
				ss := sessionFor(t, s, NoGuard)
				_, err := ss.Step(t0, ev)
				var ue *UnhandledError
				if !errors.As(err, &ue) || ue.State != s || ue.Trigger != tr || ue.Event != ev {
					t.Fatalf("err = %v, want *UnhandledError for %s in %s", err, tr, s)
				}
				if ss.State() != s {
					t.Fatal("state changed")
				}
			})
		}
	}
	// Sending is only accepted on an open session.
	for _, s := range tb.States {
		ss := sessionFor(t, s, NoGuard)
		_, err := ss.Step(t0, EvSent)
		if ss.Open() != (err == nil) {
			t.Errorf("EvSent in %s: err = %v", s, err)
		}
	}
	// Shutdown and fence are idempotent.
	for _, s := range []State{Closing, Reaped} {
		for _, ev := range []Event{EvShutdown, EvFence} {
			ss := sessionFor(t, s, NoGuard)
			if out, err := ss.Step(t0, ev); err != nil || out.Transition != nil {
				t.Errorf("%s in %s: %v %+v", ev, s, err, out)
			}
		}
	}
	ss := sessionFor(t, Alive, NoGuard)
	if _, err := ss.Step(t0, EvDialOK); !errors.Is(err, ErrUnhandled) {
		t.Fatalf("client event on a session: err = %v", err)
	}
}

func TestBuiltMachineRejectsForeignContext(t *testing.T) {
	sm, err := build(ClientTable())
	if err != nil {
		t.Fatal(err)
	}
	if err := sm.Fire(Start); !errors.Is(err, errNotInstance) {
		t.Fatalf("Fire without an instance: err = %v", err)
	}
}

// newRand returns a seeded jitter source for tests.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
