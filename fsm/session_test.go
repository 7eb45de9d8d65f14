package fsm

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/internal/proptest"
	"pgregory.net/rapid"
)

func mustSession(t interface {
	Helper()
	Fatal(...any)
}, l Liveness) *Session {
	t.Helper()
	s, err := NewSession(t0, l)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The field bug: a client killed with kill -9 sends nothing more, and the
// session must be reaped PingInterval+PongTimeout after it was last heard,
// with a ping in between and a best-effort close frame.
func TestSessionReapsSilentPeer(t *testing.T) {
	s := mustSession(t, Liveness{PingInterval: 30 * time.Second, PongTimeout: 10 * time.Second})
	s.Step(t0, EvUpgraded)
	last := t0.Add(12 * time.Second)
	s.Step(last, EvMessage)
	var pings int
	for s.State() != Reaped {
		d, _ := s.Deadline()
		out, err := s.Step(d, EvTick)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range out.Actions {
			if a.Kind == ActSendPing {
				pings++
				if d != last.Add(30*time.Second) {
					t.Fatalf("ping at +%v, want 30s after the last frame", d.Sub(last))
				}
			}
		}
		if out.Transition != nil {
			if d != last.Add(40*time.Second) || out.Transition.Reason != ReasonPongTimeout {
				t.Fatalf("reaped at +%v for %s, want +40s for pong_timeout", d.Sub(last), out.Transition.Reason)
			}
			if !slices.Equal(kinds(out), []ActionKind{ActClose, ActReap}) || out.Actions[0].Code != 1001 {
				t.Fatalf("actions %+v", out.Actions)
			}
		}
	}
	if pings != 1 {
		t.Fatalf("%d pings during the silence, want 1", pings)
	}
}

// NextPing is the time the tick that pings is due, moves with every frame
// heard and every ping sent, and is absent once the session is not open.
func TestSessionNextPing(t *testing.T) {
	l := Liveness{PingInterval: 30 * time.Second, PongTimeout: 10 * time.Second}
	s := mustSession(t, l)
	if _, ok := s.NextPing(); ok {
		t.Fatal("NextPing while Handshaking")
	}
	s.Step(t0, EvUpgraded)
	for _, tc := range []struct {
		at   time.Duration
		ev   Event
		want time.Duration
	}{
		{0, EvTick, 30 * time.Second},                // silent since the upgrade
		{5 * time.Second, EvPong, 35 * time.Second},  // heard: moves
		{35 * time.Second, EvTick, 65 * time.Second}, // pinged: the next one an interval later
		{36 * time.Second, EvPong, 66 * time.Second}, // answered
	} {
		out, err := s.Step(t0.Add(tc.at), tc.ev)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := s.NextPing()
		if !ok || got != t0.Add(tc.want) {
			t.Fatalf("after %s at +%s: NextPing = +%s, %v; want +%s", tc.ev, tc.at, got.Sub(t0), ok, tc.want)
		}
		if tc.ev == EvTick && tc.at == 35*time.Second && !slices.Equal(kinds(out), []ActionKind{ActSendPing}) {
			t.Fatalf("no ping at the time NextPing gave: %+v", out.Actions)
		}
	}
	s.Step(t0.Add(40*time.Second), EvReadError)
	if _, ok := s.NextPing(); ok {
		t.Fatal("NextPing after the reap")
	}
}

// A failed send reaps at once: no close handshake on a broken write side.
func TestSessionSendErrorReapsAtOnce(t *testing.T) {
	s := mustSession(t, Liveness{})
	s.Step(t0, EvUpgraded)
	out, _ := s.Step(t0.Add(time.Second), EvSendError)
	if s.State() != Reaped || s.Reason() != ReasonSendError || !slices.Equal(kinds(out), []ActionKind{ActReap}) {
		t.Fatalf("%s %s %v", s.State(), s.Reason(), kinds(out))
	}
	if _, err := s.Step(t0.Add(2*time.Second), EvSent); err == nil {
		t.Fatal("a send on a reaped session was accepted")
	}
}

func TestSessionErrorStreak(t *testing.T) {
	s := mustSession(t, Liveness{MaxErrors: 3})
	s.Step(t0, EvUpgraded)
	s.Step(t0, EvProtocolError)
	s.Step(t0, EvProtocolError)
	if s.State() != Suspect || s.errors != 2 {
		t.Fatalf("%s with %d errors", s.State(), s.errors)
	}
	s.Step(t0, EvMessage) // a good message ends the streak
	if s.State() != Alive || s.errors != 0 {
		t.Fatalf("after a good message: %s with %d errors", s.State(), s.errors)
	}
	for i := 0; i < 3; i++ {
		s.Step(t0, EvProtocolError)
	}
	if s.State() != Closing || s.Reason() != ReasonProtocolErrors {
		t.Fatalf("after 3 errors: %s %s", s.State(), s.Reason())
	}
	out, _ := s.Step(t0.Add(5*time.Second), EvTick)
	if s.State() != Reaped || out.Transition.Trigger != CloseTimeout || s.Reason() != ReasonProtocolErrors {
		t.Fatalf("close handshake not bounded: %s %+v", s.State(), out.Transition)
	}
}

func TestSessionIdleTimeout(t *testing.T) {
	l := Liveness{PingInterval: 30 * time.Second, IdleTimeout: 5 * time.Minute}
	s := mustSession(t, l)
	s.Step(t0, EvUpgraded)
	s.Step(t0.Add(time.Minute), EvSent) // activity either way counts
	for s.State() == Alive {
		d, _ := s.Deadline()
		out, _ := s.Step(d, EvTick)
		for _, a := range out.Actions {
			if a.Kind == ActSendPing {
				s.Step(d.Add(time.Millisecond), EvPong) // pongs are not activity
			}
		}
	}
	if s.State() != Closing || s.Reason() != ReasonIdleTimeout || s.at(s.closingSince) != t0.Add(6*time.Minute) {
		t.Fatalf("%s %s at +%v", s.State(), s.Reason(), s.at(s.closingSince).Sub(t0))
	}
	s.Step(s.at(s.closingSince).Add(time.Second), EvClosed)
	if s.State() != Reaped || s.Reason() != ReasonIdleTimeout {
		t.Fatalf("%s %s", s.State(), s.Reason())
	}
	if by, _ := l.IdleReapDeadline(t0.Add(time.Minute)); by.Before(s.at(s.closingSince).Add(time.Second)) {
		t.Fatal("reaped after the idle oracle's bound")
	}
}

func TestSessionHandshakeTimeout(t *testing.T) {
	s := mustSession(t, Liveness{HandshakeTimeout: 2 * time.Second})
	if d, _ := s.Deadline(); d != t0.Add(2*time.Second) {
		t.Fatalf("deadline %v", d)
	}
	out, _ := s.Step(t0.Add(2*time.Second), EvTick)
	if s.State() != Reaped || s.Reason() != ReasonHandshakeTimeout || !slices.Equal(kinds(out), []ActionKind{ActReap}) {
		t.Fatalf("%s %s %v: no close frame before the upgrade", s.State(), s.Reason(), kinds(out))
	}
}

func TestLivenessValidate(t *testing.T) {
	cases := []struct {
		name  string
		l     Liveness
		field string
	}{
		{"pong not shorter than ping", Liveness{PingInterval: 10 * time.Second, PongTimeout: 10 * time.Second}, "PongTimeout"},
		{"pong longer than default ping", Liveness{PongTimeout: time.Minute}, "PongTimeout"},
		{"negative ping", Liveness{PingInterval: -1}, "PingInterval"},
		{"negative idle", Liveness{IdleTimeout: -1}, "IdleTimeout"},
		{"negative write", Liveness{WriteTimeout: -1}, "WriteTimeout"},
		{"negative errors", Liveness{MaxErrors: -1}, "MaxErrors"},
		{"negative handshake", Liveness{HandshakeTimeout: -1}, "HandshakeTimeout"},
		{"negative close", Liveness{CloseTimeout: -1}, "CloseTimeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.l.Validate()
			if err == nil || !strings.Contains(err.Error(), "Liveness."+c.field) {
				t.Fatalf("err = %v, want one naming Liveness.%s", err, c.field)
			}
		})
	}
	// A short ping interval gets a pong timeout that fits it.
	if err := (Liveness{PingInterval: 4 * time.Second}).Validate(); err != nil {
		t.Fatal(err)
	}
	if got := (Liveness{PingInterval: 4 * time.Second}).WithDefaults().PongTimeout; got != 2*time.Second {
		t.Fatalf("default pong timeout for a 4s ping: %v", got)
	}
}

// sessionWorld is the property: a session talks to a simulated peer that
// answers every ping after a round trip shorter than PongTimeout, sends
// messages of its own, and at some point dies without a word (kill -9) or
// stays alive throughout. The driver ticks at every Deadline. Then
//   - a live peer's session is never reaped;
//   - a dead peer's session is reaped for pong_timeout no later than
//     ReapDeadline(the last frame heard), and no earlier either.
//
// mutate, when set, breaks the session after every step.
func sessionWorld(mutate func(*Session)) func(*rapid.T) {
	return func(t *rapid.T) {
		ping := time.Duration(rapid.Int64Range(int64(time.Second), int64(time.Minute)).Draw(t, "ping"))
		pong := time.Duration(rapid.Int64Range(1, int64(ping)-1).Draw(t, "pong"))
		s := mustSession(t, Liveness{PingInterval: ping, PongTimeout: pong})
		l := s.Liveness()
		rtt := time.Duration(rapid.Int64Range(0, int64(pong)-1).Draw(t, "rtt"))
		horizon := t0.Add(time.Duration(rapid.Int64Range(int64(time.Second), int64(time.Hour)).Draw(t, "horizon")))
		diesAt := horizon.Add(time.Hour) // never, unless drawn
		if rapid.Bool().Draw(t, "dies") {
			diesAt = t0.Add(time.Duration(rapid.Int64Range(0, int64(horizon.Sub(t0))).Draw(t, "diesAt")))
		}
		step := func(at time.Time, ev Event) Output {
			out, err := s.Step(at, ev)
			if err != nil {
				t.Fatalf("%s at +%v: %v", ev, at.Sub(t0), err)
			}
			if mutate != nil {
				mutate(s)
			}
			return out
		}
		step(t0, EvUpgraded)
		heard := t0
		// The peer's own messages, at random gaps.
		var msgs []time.Time
		for m := t0; ; {
			m = m.Add(time.Duration(rapid.Int64Range(int64(time.Second), int64(3*ping)).Draw(t, "msgGap")))
			if m.After(horizon) || len(msgs) > 50 {
				break
			}
			msgs = append(msgs, m)
		}
		var pongAt []time.Time
		for steps := 0; s.State() != Reaped; steps++ {
			next, _ := s.Deadline()
			if steps > 100000 {
				t.Fatalf("no progress after %d steps: deadline stuck at +%v in %s", steps, next.Sub(t0), s.State())
			}
			ev := EvTick
			// The earliest of the next pong, message and deadline goes first.
			if len(pongAt) > 0 && !pongAt[0].After(next) && (len(msgs) == 0 || !pongAt[0].After(msgs[0])) {
				next, ev, pongAt = pongAt[0], EvPong, pongAt[1:]
			} else if len(msgs) > 0 && !msgs[0].After(next) {
				next, ev, msgs = msgs[0], EvMessage, msgs[1:]
			}
			if next.After(horizon.Add(2 * (ping + pong))) {
				break
			}
			if ev != EvTick {
				if next.After(diesAt) {
					continue // the dead say nothing
				}
				heard = next
			}
			out := step(next, ev)
			if ev == EvTick {
				// A tick at the deadline must do something or move the
				// deadline; otherwise the driver spins.
				if d, _ := s.Deadline(); out.Transition == nil && len(out.Actions) == 0 && d.Equal(next) {
					t.Fatalf("tick at the deadline +%v did nothing and left the deadline there (%s)", next.Sub(t0), s.State())
				}
			}
			for _, a := range out.Actions {
				if a.Kind == ActSendPing && next.Add(rtt).Before(diesAt) {
					pongAt = append(pongAt, next.Add(rtt))
				}
			}
			if tr := out.Transition; tr != nil && tr.To == Reaped {
				if diesAt.After(tr.At) {
					t.Fatalf("live peer reaped at +%v for %s (rtt %v < pong timeout %v)", tr.At.Sub(t0), tr.Reason, rtt, pong)
				}
				if want := l.ReapDeadline(heard); !tr.At.Equal(want) {
					t.Fatalf("dead peer last heard at +%v reaped at +%v, bound +%v", heard.Sub(t0), tr.At.Sub(t0), want.Sub(t0))
				}
			}
		}
		if diesAt.Before(horizon) && s.State() != Reaped {
			t.Fatalf("dead peer last heard at +%v still %s past its reap bound +%v", heard.Sub(t0), s.State(), l.ReapDeadline(heard).Sub(t0))
		}
	}
}

func TestPropSessionReapsDeadNotLive(t *testing.T) { rapid.Check(t, sessionWorld(nil)) }

// No ping: a quiet but live peer is never asked to speak, so it is reaped.
func TestPropSessionCatchesMissingPing(t *testing.T) {
	msg := proptest.ExpectFailure(t, sessionWorld(func(s *Session) { s.lastPing = s.stamp(t0.Add(1000 * time.Hour)) }))
	if !strings.Contains(msg, "live peer reaped") {
		t.Fatalf("caught, but not as a live peer reaped:\n%s", msg)
	}
}

// A pong timeout longer than the ping interval reaps the dead too late.
func TestPropSessionCatchesLongPongTimeout(t *testing.T) {
	msg := proptest.ExpectFailure(t, sessionWorld(func(s *Session) { s.l.PongTimeout = 2 * s.l.PingInterval }))
	if !strings.Contains(msg, "dead peer") || !strings.Contains(msg, "bound") {
		t.Fatalf("caught, but not as a late reap:\n%s", msg)
	}
}
