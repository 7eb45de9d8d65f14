package fsm

import (
	"errors"
	"fmt"
	"time"
)

// Liveness is the policy that decides when a link is dead. It applies to
// both ends: a server session reaps a silent client, and a connected client
// drops a silent server (half-open link, blackhole) and reconnects. The
// zero value is valid and means the defaults given on each field.
//
// Tiers, fastest first: a failed read or write (RST, EOF, write deadline)
// ends the link at once; silence ends it after PingInterval+PongTimeout; an
// application that sends nothing either way is closed after IdleTimeout.
//
// Silence is measured from the last frame heard, of any kind. A session
// pings once the link has been silent for PingInterval (busy links never
// need one); if nothing answers within PongTimeout the link is dead. So a
// peer last heard at T is declared dead at exactly ReapDeadline(T) = T +
// PingInterval + PongTimeout, and a live peer whose round trip stays under
// PongTimeout never is.
//
// The server leads and the client follows: a client waits PongTimeout/4
// longer before its own ping (Client.Deadline). Were both ends to ping after
// PingInterval, their clocks would start together at the handshake and
// stay in lock-step, each ping crossing the other in flight: two exchanges
// per interval where one proves both ends alive. With the client behind,
// a pinging server's ping reaches it first whenever the round trip is
// under PongTimeout/4, and the client never pings. Facing a server that
// never pings, the client pings itself and still declares the link dead
// at ReapDeadline, leaving 3/4 of PongTimeout for the answer.
type Liveness struct {
	// PingInterval is how long a link may be silent before a ping is sent.
	// Zero means 30s.
	PingInterval time.Duration
	// PongTimeout is how long to wait for any frame after a ping. It must be
	// shorter than PingInterval. Zero means min(10s, PingInterval/2).
	PongTimeout time.Duration
	// IdleTimeout closes a session on which no application message went
	// either way for this long (control frames do not count). Zero means
	// off: liveness alone decides. Clients ignore it.
	IdleTimeout time.Duration
	// WriteTimeout bounds every write; a write that hits it is a send error
	// and reaps the session. Zero means 10s.
	WriteTimeout time.Duration
	// MaxErrors is how many consecutive recoverable errors (undecodable
	// payloads, say) move a session from Suspect to Closing; a good message
	// resets the streak. Zero means 3.
	MaxErrors int
	// HandshakeTimeout bounds a session's upgrade. Zero means 10s.
	HandshakeTimeout time.Duration
	// CloseTimeout bounds a close handshake before the transport is
	// released anyway. Zero means 5s.
	CloseTimeout time.Duration
}

// DefaultLiveness returns the defaults: ping after 30 s of silence, dead
// 10 s later, no idle timeout, 10 s write and handshake timeouts, 3
// errors, 5 s to close.
func DefaultLiveness() Liveness { return Liveness{}.WithDefaults() }

// WithDefaults returns l with every zero field replaced by its default.
func (l Liveness) WithDefaults() Liveness {
	if l.PingInterval == 0 {
		l.PingInterval = 30 * time.Second
	}
	if l.PongTimeout == 0 {
		l.PongTimeout = min(10*time.Second, l.PingInterval/2)
	}
	if l.WriteTimeout == 0 {
		l.WriteTimeout = 10 * time.Second
	}
	if l.MaxErrors == 0 {
		l.MaxErrors = 3
	}
	if l.HandshakeTimeout == 0 {
		l.HandshakeTimeout = 10 * time.Second
	}
	if l.CloseTimeout == 0 {
		l.CloseTimeout = 5 * time.Second
	}
	return l
}

// Validate reports every field that breaks a rule, as *FieldError values
// joined with errors.Join. It does not change l; zero fields are checked as
// their defaults.
func (l Liveness) Validate() error {
	var errs []error
	bad := func(field, rule string, v any) {
		errs = append(errs, &FieldError{Policy: "Liveness", Field: field, Rule: rule, Value: v})
	}
	negative(bad, []namedDuration{
		{"PingInterval", l.PingInterval}, {"PongTimeout", l.PongTimeout}, {"IdleTimeout", l.IdleTimeout},
		{"WriteTimeout", l.WriteTimeout}, {"HandshakeTimeout", l.HandshakeTimeout}, {"CloseTimeout", l.CloseTimeout},
	})
	if l.MaxErrors < 0 {
		bad("MaxErrors", "must not be negative (0 means 3)", l.MaxErrors)
	}
	// (A negative PongTimeout is reported above and is never ≥ the
	// interval; a negative PingInterval is, so it is left out here.)
	if e := l.WithDefaults(); l.PingInterval >= 0 && e.PongTimeout >= e.PingInterval {
		bad("PongTimeout", fmt.Sprintf("must be shorter than PingInterval (%s), or a second ping goes out before the first can fail", e.PingInterval), e.PongTimeout)
	}
	if e := l.WithDefaults(); l.PingInterval > 0 && l.PongTimeout == 0 && e.PongTimeout == 0 {
		// Found by FuzzLivenessValidate: the default PingInterval/2 of a
		// 1 ns interval is 0, a pong timeout that reaps every session.
		bad("PongTimeout", fmt.Sprintf("defaults to PingInterval/2, which is zero for PingInterval %s: set it", e.PingInterval), e.PongTimeout)
	}
	return errors.Join(errs...)
}

// PingAt returns when a session's ping is due on a link last heard at
// lastHeard whose last ping went out at lastPing (zero if none).
func (l Liveness) PingAt(lastHeard, lastPing time.Time) time.Time {
	l = l.WithDefaults()
	return l.pingAt(lastHeard, lastPing, 0)
}

// pingAt and reapAt are PingAt and ReapDeadline for a policy whose
// defaults are already applied, as Client and Session keep theirs: they
// run on every tick and frame, where re-applying the defaults to a copy of
// the policy cost the simulator about a tenth of its time at 10 000
// sessions. lag delays the first ping of a silence (the client's).
func (l *Liveness) pingAt(lastHeard, lastPing time.Time, lag time.Duration) time.Time {
	if lastPing.After(lastHeard) {
		return lastPing.Add(l.PingInterval)
	}
	return lastHeard.Add(l.PingInterval + lag)
}

// ReapDeadline returns when a link last heard at lastHeard is declared dead
// if nothing more is heard: lastHeard + PingInterval + PongTimeout. It is
// both the oracle's upper bound for reaping a dead peer and its lower bound
// for reaping a live one.
func (l Liveness) ReapDeadline(lastHeard time.Time) time.Time {
	l = l.WithDefaults()
	return l.reapAt(lastHeard)
}

func (l *Liveness) reapAt(lastHeard time.Time) time.Time {
	return lastHeard.Add(l.PingInterval + l.PongTimeout)
}

// IdleDeadline returns when a session whose last application message was
// at lastActivity starts closing for idleness, and false when IdleTimeout
// is off.
func (l Liveness) IdleDeadline(lastActivity time.Time) (time.Time, bool) {
	if l.IdleTimeout <= 0 {
		return time.Time{}, false
	}
	return lastActivity.Add(l.IdleTimeout), true
}

// IdleReapDeadline returns the latest time an idle session whose last
// application message was at lastActivity is reaped: the idle deadline
// plus CloseTimeout for the close handshake. False when IdleTimeout is off.
func (l Liveness) IdleReapDeadline(lastActivity time.Time) (time.Time, bool) {
	l = l.WithDefaults()
	t, ok := l.IdleDeadline(lastActivity)
	return t.Add(l.CloseTimeout), ok
}
