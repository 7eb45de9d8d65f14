package fsm

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The tests in this file pin edges the mutation run (scripts/mutation)
// found unpinned: each names the surviving mutant it kills.

// fixedRand always draws the same value.
type fixedRand float64

func (f fixedRand) Float64() float64 { return float64(f) }

// Names of values past the last known one are numbered, not indexed out of
// range (the bound checks in every String).
func TestNamesPastTheEnd(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{JitterKind(len(jitterNames)).String(), "JitterKind(5)"},
		{Reason(len(reasonNames)).String(), "Reason(" + strconv.Itoa(len(reasonNames)) + ")"},
		{Guard(len(guardNames)).String(), "Guard(" + strconv.Itoa(len(guardNames)) + ")"},
		// Values no constant names (the zero values included).
		{Machine(0).String(), "Machine(0)"},
		{Machine(200).String(), "Machine(200)"},
		{State(0).String(), "State(0)"},
		{State(99).String(), "State(99)"},
		{Trigger(0).String(), "Trigger(0)"},
		{Trigger(199).String(), "Trigger(199)"},
		{Event(0).String(), "Event(0)"},
		{Event(250).String(), "Event(250)"},
		{ActionKind(0).String(), "ActionKind(0)"},
		{ActionKind(240).String(), "ActionKind(240)"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	rs := Reasons()
	if len(rs) != len(reasonNames)-1 || rs[0] != ReasonSendError || rs[len(rs)-1] != Reason(len(reasonNames)-1) {
		t.Fatalf("Reasons() = %v", rs)
	}
	for _, r := range rs {
		if strings.HasPrefix(r.String(), "Reason(") {
			t.Errorf("reason %d has no name", r)
		}
	}
}

// The default StableAfter is 10 s, and a set one is kept.
func TestDefaultStableAfter(t *testing.T) {
	if got := DefaultBackoff().StableAfter; got != 10*time.Second {
		t.Fatalf("default StableAfter %s, want 10s", got)
	}
	if got := (Backoff{StableAfter: 3 * time.Second}).WithDefaults().StableAfter; got != 3*time.Second {
		t.Fatalf("StableAfter 3s became %s", got)
	}
}

// Validate's boundaries: the last valid value of each rule passes, the
// first invalid one fails.
func TestBackoffValidateEdges(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name string
		b    Backoff
		ok   bool
	}{
		{"last jitter kind", Backoff{Jitter: JitterDecorrelated}, true},
		{"past the last jitter kind", Backoff{Jitter: JitterKind(len(jitterNames))}, false},
		{"fraction 1", Backoff{Jitter: JitterFull, JitterFraction: 1}, true},
		{"fraction above 1", Backoff{Jitter: JitterFull, JitterFraction: 1.01}, false},
		{"fraction 0 for equal", Backoff{Jitter: JitterEqual}, true},
		{"negative fraction", Backoff{JitterFraction: -0.01}, false},
		{"NaN fraction", Backoff{JitterFraction: nan}, false},
		{"fraction for equal", Backoff{Jitter: JitterEqual, JitterFraction: 0.5}, false},
		{"fraction for none", Backoff{Jitter: JitterNone, JitterFraction: 0.5}, false},
		{"fraction for symmetric", Backoff{Jitter: JitterSymmetric, JitterFraction: 0.5}, true},
		{"Max equal to Initial", Backoff{Initial: time.Second, Max: time.Second}, true},
		{"Max below Initial", Backoff{Initial: time.Second, Max: time.Second - 1}, false},
		{"Initial above the default Max", Backoff{Initial: 200 * time.Second}, false},
		{"Max below the default Initial", Backoff{Max: time.Second - 1}, false},
	} {
		if err := tc.b.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestLivenessValidateEdges(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    Liveness
		ok   bool
	}{
		{"pong timeout above the default interval", Liveness{PongTimeout: 40 * time.Second}, false},
		{"pong timeout equal to the default interval", Liveness{PongTimeout: 30 * time.Second}, false},
		{"pong timeout just under the default interval", Liveness{PongTimeout: 30*time.Second - 1}, true},
		{"pong timeout just under the interval", Liveness{PingInterval: time.Second, PongTimeout: time.Second - 1}, true},
		{"pong timeout equal to the interval", Liveness{PingInterval: time.Second, PongTimeout: time.Second}, false},
	} {
		if err := tc.l.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// Decorrelated jitter draws from [Initial, min(prev×Multiplier, the cap)]:
// the exact value for a fixed draw pins the formula's sign and terms.
func TestDecorrelatedFormula(t *testing.T) {
	b := Backoff{Initial: time.Second, Multiplier: 3, Max: time.Minute, Jitter: JitterDecorrelated}
	for _, tc := range []struct {
		n    int
		prev time.Duration
		u    float64
		want time.Duration
	}{
		{1, 0, 0.5, 2 * time.Second},                       // [1s, 3s]
		{2, 2 * time.Second, 0.5, 3500 * time.Millisecond}, // [1s, 6s]
		{2, 2 * time.Second, 0, time.Second},
		{5, 50 * time.Second, 0.5, 30500 * time.Millisecond}, // [1s, 60s]: capped by Max
	} {
		if got := b.Delay(tc.n, tc.prev, fixedRand(tc.u)); got != tc.want {
			t.Errorf("Delay(%d, %s, %v) = %s, want %s", tc.n, tc.prev, tc.u, got, tc.want)
		}
		if hi := b.LatestAfter(tc.n, tc.prev); b.Delay(tc.n, tc.prev, fixedRand(0.999999999)) > hi {
			t.Errorf("Delay above LatestAfter %s", hi)
		}
	}
	if got := b.LatestAfter(2, 2*time.Second); got != 6*time.Second {
		t.Errorf("LatestAfter(2, 2s) = %s, want 6s", got)
	}
	if got := b.LatestAfter(3, 0); got != 3*time.Second {
		t.Errorf("LatestAfter(3, 0) = %s, want 3s (Initial × Multiplier)", got)
	}
	other := Backoff{Initial: time.Second, Multiplier: 2, Max: time.Minute, Jitter: JitterFull}
	if got, want := other.LatestAfter(3, time.Hour), other.Latest(3); got != want {
		t.Errorf("full jitter: LatestAfter %s, want Latest %s", got, want)
	}
	imm := Backoff{Initial: time.Second, Jitter: JitterDecorrelated, FirstImmediate: true}
	if got := imm.LatestAfter(1, time.Minute); got != 0 {
		t.Errorf("immediate first retry: LatestAfter = %s, want 0", got)
	}
}

// A jittered draw scales the base within its range, never beyond Max.
func TestJitterDraws(t *testing.T) {
	for _, tc := range []struct {
		b    Backoff
		u    float64
		want time.Duration
	}{
		{Backoff{Initial: time.Second, Jitter: JitterSymmetric, JitterFraction: 0.5}, 1, 1500 * time.Millisecond},
		{Backoff{Initial: time.Second, Jitter: JitterFull}, 0.25, 750 * time.Millisecond},
		{Backoff{Initial: time.Second, Jitter: JitterEqual}, 0.5, 750 * time.Millisecond},
		{Backoff{Initial: time.Second, Max: time.Second, Jitter: JitterSymmetric}, 1, time.Second},
	} {
		if got := tc.b.Delay(1, 0, fixedRand(tc.u)); got != tc.want {
			t.Errorf("%s: Delay(1, %v) = %s, want %s", tc.b.Jitter, tc.u, got, tc.want)
		}
	}
}

// The attempt numbers a retry action carries: the failure count plus one,
// when scheduled and when SetBackoff moves it.
func TestRetryActionAttempts(t *testing.T) {
	b := Backoff{Initial: time.Second, Multiplier: 2, Jitter: JitterNone}
	c := mustClient(t, ClientConfig{Backoff: b})
	now := t0
	c.Step(now, EvStart)
	for want := 2; want <= 4; want++ {
		out, _ := c.Step(now, EvDialFailed)
		i := slices.IndexFunc(out.Actions, func(a Action) bool { return a.Kind == ActScheduleRetry })
		if i < 0 || out.Actions[i].Attempt != want || out.Transition.Attempt != want {
			t.Fatalf("after failure %d: actions %+v, transition %+v; want attempt %d", want-1, out.Actions, out.Transition, want)
		}
		if at, ok := c.RetryAt(); !ok || !at.Equal(out.Actions[i].At) {
			t.Fatalf("RetryAt() = %v, %v; want %v, true", at, ok, out.Actions[i].At)
		}
		if want < 4 {
			now = out.Actions[i].At
			c.Step(now, EvTick)
			if _, ok := c.RetryAt(); ok {
				t.Fatal("RetryAt reports a retry while Connecting")
			}
		}
	}
	out, err := c.SetBackoff(now, Backoff{Initial: 10 * time.Second, Jitter: JitterNone})
	if err != nil || len(out.Actions) != 1 || out.Actions[0].Attempt != 4 || out.Actions[0].Kind != ActScheduleRetry {
		t.Fatalf("SetBackoff moved the retry with %+v, %v; want one schedule_retry for attempt 4", out.Actions, err)
	}
}

func TestConnectedSince(t *testing.T) {
	c := mustClient(t, ClientConfig{Backoff: Backoff{Jitter: JitterNone}})
	c.Step(t0, EvStart)
	if _, ok := c.ConnectedSince(); ok {
		t.Fatal("ConnectedSince while Connecting")
	}
	c.Step(t0.Add(time.Second), EvDialOK)
	if at, ok := c.ConnectedSince(); !ok || !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("ConnectedSince() = %v, %v", at, ok)
	}
}

// A client pings PongTimeout/4 after a server would.
func TestClientPingLag(t *testing.T) {
	l := Liveness{PingInterval: 8 * time.Second, PongTimeout: 4 * time.Second}
	c := mustClient(t, ClientConfig{Backoff: Backoff{Jitter: JitterNone}, Liveness: l})
	c.Step(t0, EvStart)
	c.Step(t0, EvDialOK)
	if got, ok := c.Deadline(); !ok || !got.Equal(t0.Add(9*time.Second)) {
		t.Fatalf("client Deadline() = %v, %v; want its ping at 9s", got, ok)
	}
	if got, want := l.PingAt(t0, time.Time{}), t0.Add(8*time.Second); !got.Equal(want) {
		t.Fatalf("PingAt = %v, want %v", got, want)
	}
}

// The error that closes a session counts in its streak.
func TestErrorsCountTheClosingOne(t *testing.T) {
	s, err := NewSession(t0, Liveness{MaxErrors: 3})
	if err != nil {
		t.Fatal(err)
	}
	s.Step(t0, EvUpgraded)
	for i := 1; i <= 3; i++ {
		s.Step(t0, EvProtocolError)
		if int(s.errors) != i {
			t.Fatalf("after %d protocol errors the streak is %d", i, s.errors)
		}
	}
	if s.State() != Closing || s.Reason() != ReasonProtocolErrors {
		t.Fatalf("state %s reason %s, want closing for protocol_errors", s.State(), s.Reason())
	}
}

func TestUnhandledErrorText(t *testing.T) {
	e := &UnhandledError{Machine: MachineSession, State: Closing, Event: EvSent}
	if got := e.Error(); got != "fsm: session in state Closing does not accept event sent" {
		t.Fatalf("Error() = %q", got)
	}
	if !errors.Is(e, ErrUnhandled) {
		t.Fatal("not ErrUnhandled")
	}
}

func TestTableHas(t *testing.T) {
	tb := ClientTable()
	if !tb.has(Idle, Start) || tb.has(Idle, DialOK) || tb.has(Connected, Start) {
		t.Fatal("Has answers for the wrong row")
	}
}

// Rows that differ only by guard, or only by target, sort by guard name,
// then by the target's position.
func TestSortedRowsTieBreaks(t *testing.T) {
	tb := &Table{States: []State{Idle, Connecting, BackingOff, GaveUp}, Rows: []Row{
		{Connecting, DialFailed, GaveUp, RetriesExhausted},
		{Connecting, DialFailed, BackingOff, RetriesLeft},
		{Idle, Start, GaveUp, NoGuard},
		{Idle, Start, Connecting, NoGuard},
	}}
	got := tb.sortedRows()
	want := []Row{
		{Idle, Start, Connecting, NoGuard}, {Idle, Start, GaveUp, NoGuard},
		{Connecting, DialFailed, GaveUp, RetriesExhausted}, {Connecting, DialFailed, BackingOff, RetriesLeft},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("sortedRows() = %v\nwant %v", got, want)
	}
}

// A pending retry keeps the earliest bound of every policy in force since
// its failure, however many changes follow: two changes to a faster
// policy do not add up to a retry before the first policy's promise.
func TestSetBackoffKeepsTheFirstPromise(t *testing.T) {
	slow := Backoff{Initial: 10 * time.Second, Jitter: JitterNone}
	fast := Backoff{Initial: time.Second, Jitter: JitterNone}
	c := mustClient(t, ClientConfig{Backoff: slow})
	c.Step(t0, EvStart)
	c.Step(t0, EvDialFailed)
	for i := range 2 {
		if _, err := c.SetBackoff(t0.Add(time.Second), fast); err != nil {
			t.Fatal(err)
		}
		if at, _ := c.RetryAt(); at.Before(t0.Add(10 * time.Second)) {
			t.Fatalf("after change %d the retry moved to +%s, before the first policy's promise of +10s", i+1, at.Sub(t0))
		}
	}
}

// TestSessionActionsShareNothingWritable: a session's actions are slices
// of tables every Session shares, so a driver that appends to one Step's
// actions must not change what a later Step returns, its own or another
// session's.
func TestSessionActionsShareNothingWritable(t *testing.T) {
	a, _ := NewSession(t0, Liveness{})
	b, _ := NewSession(t0, Liveness{})
	a.Step(t0, EvUpgraded)
	b.Step(t0, EvUpgraded)
	out, _ := a.Step(t0, EvShutdown) // Closing: a close frame owed
	want := []Action{{Kind: ActClose, Code: 1001, Reason: ReasonShutdown}}
	if !slices.Equal(out.Actions, want) {
		t.Fatalf("shutdown actions %+v, want %+v", out.Actions, want)
	}
	_ = append(out.Actions, Action{Kind: ActSendPing}) // a careless driver
	for _, s := range []*Session{a, b} {
		if s == b {
			b.Step(t0, EvShutdown)
		}
		out, _ = s.Step(t0, EvClosed)
		want = []Action{{Kind: ActReap, Reason: ReasonShutdown}}
		if !slices.Equal(out.Actions, want) {
			t.Fatalf("reap after the close: actions %+v, want %+v", out.Actions, want)
		}
	}
}

// TestSessionStampsKeepTimes: a Session keeps its times as offsets from
// its creation; what its accessors return must be the times it was
// given (the zero time included), to the nanosecond, and its deadlines
// must fall where they did with time.Time fields.
func TestSessionStampsKeepTimes(t *testing.T) {
	created := time.Now() // with a monotonic reading
	s, _ := NewSession(created, Liveness{})
	if !s.LastHeard().IsZero() || !s.LastActivity().IsZero() {
		t.Fatalf("before the upgrade LastHeard %v LastActivity %v, want the zero time", s.LastHeard(), s.LastActivity())
	}
	up := created.Add(1500 * time.Millisecond)
	s.Step(up, EvUpgraded)
	heard := up.Add(7*time.Second + 3)
	s.Step(heard, EvPong)
	if got := s.LastHeard(); !got.Equal(heard) || got.Sub(heard) != 0 {
		t.Fatalf("LastHeard %v, want %v", got, heard)
	}
	if got := s.LastActivity(); !got.Equal(up) {
		t.Fatalf("LastActivity %v, want %v", got, up)
	}
	l := s.Liveness()
	if d, _ := s.Deadline(); !d.Equal(heard.Add(l.PingInterval)) {
		t.Fatalf("Deadline %v, want the ping at %v", d, heard.Add(l.PingInterval))
	}
	reap := heard.Add(l.PingInterval + l.PongTimeout)
	s.Step(reap.Add(-1), EvTick) // the ping
	if out, _ := s.Step(reap, EvTick); out.Transition == nil || out.Transition.Trigger != PongTimeout {
		t.Fatalf("not reaped at the reap deadline: %+v", out.Transition)
	}
}
