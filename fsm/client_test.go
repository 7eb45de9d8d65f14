package fsm

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/internal/proptest"
	"pgregory.net/rapid"
)

func mustClient(t interface {
	Helper()
	Fatal(...any)
}, cfg ClientConfig) *Client {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func kinds(out Output) []ActionKind {
	var ks []ActionKind
	for _, a := range out.Actions {
		ks = append(ks, a.Kind)
	}
	return ks
}

// The field bug: a refused port must not be retried in a tight loop. Every
// failure path waits the policy's delay, and the client gives up after
// MaxAttempts.
func TestClientRefusedPortFollowsSchedule(t *testing.T) {
	b := Backoff{Initial: time.Second, Multiplier: 2, Max: 8 * time.Second, Jitter: JitterNone, MaxAttempts: 6, FirstImmediate: true}
	c := mustClient(t, ClientConfig{Backoff: b})
	now := t0
	out, _ := c.Step(now, EvStart)
	if !slices.Equal(kinds(out), []ActionKind{ActDial}) || out.Actions[0].At != now.Add(20*time.Second) {
		t.Fatalf("start: %+v", out)
	}
	wantDelays := []time.Duration{0, 1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	for i, want := range wantDelays {
		out, err := c.Step(now, EvDialFailed)
		if err != nil {
			t.Fatal(err)
		}
		if c.State() != BackingOff || out.Transition.Delay != want || out.Transition.Attempt != i+2 {
			t.Fatalf("failure %d: %s delay %v attempt %d, want delay %v attempt %d", i+1, c.State(), out.Transition.Delay, out.Transition.Attempt, want, i+2)
		}
		at, _ := c.RetryAt()
		if want > 0 {
			// A tick a nanosecond early changes nothing.
			if out, _ := c.Step(at.Add(-1), EvTick); out.Transition != nil {
				t.Fatalf("retry fired %v early", time.Nanosecond)
			}
		}
		now = at
		out, _ = c.Step(now, EvTick)
		if c.State() != Connecting || out.Actions[0].Kind != ActDial || out.Actions[0].Attempt != i+2 {
			t.Fatalf("retry %d: %s %+v", i+1, c.State(), out.Actions)
		}
	}
	out, _ = c.Step(now, EvDialFailed)
	if c.State() != GaveUp || out.Transition.Attempt != 6 || c.Failures() != 6 {
		t.Fatalf("after the 6th failure: %s attempt %d failures %d", c.State(), out.Transition.Attempt, c.Failures())
	}
	if _, ok := c.Deadline(); ok {
		t.Fatal("a client that gave up still wants a timer")
	}
}

func TestClientDialTimeout(t *testing.T) {
	c := mustClient(t, ClientConfig{Backoff: Backoff{Jitter: JitterNone, ConnectTimeout: 5 * time.Second}})
	c.Step(t0, EvStart)
	if out, _ := c.Step(t0.Add(5*time.Second-1), EvTick); out.Transition != nil {
		t.Fatal("timed out early")
	}
	out, _ := c.Step(t0.Add(5*time.Second), EvTick)
	if c.State() != BackingOff || out.Transition.Trigger != DialTimeout {
		t.Fatalf("state %s trigger %v", c.State(), out.Transition)
	}
	if !slices.Equal(kinds(out), []ActionKind{ActAbortDial, ActScheduleRetry}) {
		t.Fatalf("actions %v: the dial must be aborted before the retry is scheduled", kinds(out))
	}
}

// A connected client notices a silent server (half-open link, blackhole)
// on its own: it pings after PingInterval (plus the PongTimeout/4 by which
// it follows a server's lead) and gives up on the link PingInterval +
// PongTimeout after it last heard anything.
func TestClientDetectsSilentServer(t *testing.T) {
	l := Liveness{PingInterval: 30 * time.Second, PongTimeout: 10 * time.Second}
	c := mustClient(t, ClientConfig{Backoff: Backoff{Jitter: JitterNone}, Liveness: l})
	c.Step(t0, EvStart)
	c.Step(t0, EvDialOK)
	if d, _ := c.Deadline(); d != t0.Add(32500*time.Millisecond) {
		t.Fatalf("first deadline +%v, want the ping at +32.5s", d.Sub(t0))
	}
	// Traffic postpones the ping.
	c.Step(t0.Add(20*time.Second), EvMessage)
	out, _ := c.Step(t0.Add(32500*time.Millisecond), EvTick)
	if len(out.Actions) != 0 {
		t.Fatalf("pinged a busy link: %v", kinds(out))
	}
	out, _ = c.Step(t0.Add(52500*time.Millisecond), EvTick)
	if !slices.Equal(kinds(out), []ActionKind{ActSendPing}) {
		t.Fatalf("no ping after 32.5s of silence: %v", kinds(out))
	}
	// Nothing answers: dead 40s after the last frame, as for a session.
	if out, _ := c.Step(t0.Add(60*time.Second-1), EvTick); out.Transition != nil || len(out.Actions) != 0 {
		t.Fatalf("early: %+v", out)
	}
	out, _ = c.Step(t0.Add(60*time.Second), EvTick)
	if c.State() != BackingOff || out.Transition.Trigger != PongTimeout {
		t.Fatalf("state %s, transition %+v", c.State(), out.Transition)
	}
	if kinds(out)[0] != ActDrop {
		t.Fatalf("the dead link is not dropped first: %v", kinds(out))
	}
}

// pingsOverAnHour wires a Client to a Session through a link with the
// given one-way delay, lets it sit idle for an hour with every deadline
// ticked, and counts the pings each end sends. lag overrides the client's
// lead-following delay when non-negative (to show what it prevents).
func pingsOverAnHour(t *testing.T, oneWay time.Duration, lag time.Duration) (client, server int) {
	t.Helper()
	l := Liveness{PingInterval: 30 * time.Second, PongTimeout: 10 * time.Second}
	c := mustClient(t, ClientConfig{Backoff: Backoff{Jitter: JitterNone}, Liveness: l})
	s := mustSession(t, l)
	c.Step(t0, EvStart)
	c.Step(t0, EvDialOK)
	s.Step(t0, EvUpgraded)
	type frame struct {
		at       time.Time
		toServer bool
		ping     bool
	}
	var inFlight []frame
	send := func(now time.Time, toServer, ping bool) {
		inFlight = append(inFlight, frame{now.Add(oneWay), toServer, ping})
		slices.SortStableFunc(inFlight, func(a, b frame) int { return a.at.Compare(b.at) })
	}
	end := t0.Add(time.Hour)
	if lag >= 0 {
		c.pingLag = lag
	}
	for {
		cd, _ := c.Deadline()
		sd, _ := s.Deadline()
		next := earliest(cd, sd)
		if len(inFlight) > 0 && !inFlight[0].at.After(next) {
			f := inFlight[0]
			inFlight = inFlight[1:]
			if f.toServer {
				s.Step(f.at, EvPong)
				if f.ping {
					send(f.at, false, false)
				}
			} else {
				c.Step(f.at, EvPong)
				if f.ping {
					send(f.at, true, false)
				}
			}
			continue
		}
		if next.After(end) {
			break
		}
		if next.Equal(cd) {
			out, _ := c.Step(next, EvTick)
			for _, a := range out.Actions {
				if a.Kind == ActSendPing {
					client++
					send(next, true, true)
				}
			}
		}
		if next.Equal(sd) {
			out, _ := s.Step(next, EvTick)
			for _, a := range out.Actions {
				if a.Kind == ActSendPing {
					server++
					send(next, false, true)
				}
			}
		}
		if c.State() != Connected || s.State() != Alive {
			t.Fatalf("a live idle link was dropped: client %s, session %s", c.State(), s.State())
		}
	}
	return client, server
}

// The server leads: on an idle link one ping exchange per interval proves
// both ends alive, and it is the server's.
func TestIdleLinkPingsOncePerInterval(t *testing.T) {
	for _, oneWay := range []time.Duration{0, time.Millisecond, 200 * time.Millisecond, time.Second} {
		client, server := pingsOverAnHour(t, oneWay, -1)
		if client != 0 || server < 110 || server > 120 {
			t.Errorf("one-way %v: client sent %d pings, server %d; want 0 and one per ~30s", oneWay, client, server)
		}
	}
	// Without the lag both ends ping every interval, in lock-step.
	if client, server := pingsOverAnHour(t, time.Millisecond, 0); client < 100 || server < 100 {
		t.Fatalf("without the lag: client %d, server %d pings; the test cannot see the lock-step", client, server)
	}
}

// A server that accepts and closes at once must not pull the client into a
// tight loop: a link shorter-lived than StableAfter is one more failure.
// A link that lived long enough starts a fresh run.
func TestClientStableAfter(t *testing.T) {
	b := Backoff{Initial: time.Second, Multiplier: 2, Jitter: JitterNone, FirstImmediate: true, StableAfter: 10 * time.Second}
	c := mustClient(t, ClientConfig{Backoff: b})
	now := t0
	c.Step(now, EvStart)
	var delays []time.Duration
	for i := 0; i < 4; i++ {
		c.Step(now, EvDialOK)
		now = now.Add(time.Second)
		out, _ := c.Step(now, EvDropped)
		delays = append(delays, out.Transition.Delay)
		now, _ = c.RetryAt()
		c.Step(now, EvTick)
	}
	if want := []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second}; !slices.Equal(delays, want) {
		t.Fatalf("accept-then-close delays %v, want %v", delays, want)
	}
	c.Step(now, EvDialOK)
	now = now.Add(10 * time.Second)
	out, _ := c.Step(now, EvDropped)
	if out.Transition.Delay != 0 || c.Failures() != 1 {
		t.Fatalf("after a stable link: delay %v failures %d, want an immediate retry", out.Transition.Delay, c.Failures())
	}
}

func TestClientStop(t *testing.T) {
	cases := []struct {
		from State
		want []ActionKind
	}{
		{Idle, nil},
		{Connecting, []ActionKind{ActAbortDial}},
		{Connected, []ActionKind{ActClose, ActDrop}},
		{BackingOff, nil},
	}
	for _, c := range cases {
		cl, now := clientFor(t, c.from, NoGuard)
		out, err := cl.Step(now, EvStop)
		if err != nil || cl.State() != Stopped || !slices.Equal(kinds(out), c.want) {
			t.Errorf("stop from %s: %v %s %v, want %v", c.from, err, cl.State(), kinds(out), c.want)
		}
		if _, ok := cl.Deadline(); ok {
			t.Errorf("stopped from %s but still wants a timer", c.from)
		}
	}
}

func TestClientConfigValidate(t *testing.T) {
	if _, err := NewClient(ClientConfig{}); err == nil || !strings.Contains(err.Error(), "ClientConfig.Rand") {
		t.Fatalf("jitter without a Rand: %v", err)
	}
	if _, err := NewClient(ClientConfig{Backoff: Backoff{Jitter: JitterNone}}); err != nil {
		t.Fatalf("no jitter needs no Rand: %v", err)
	}
	if _, err := NewClient(ClientConfig{Backoff: Backoff{Jitter: JitterNone}, Liveness: Liveness{PingInterval: time.Second, PongTimeout: time.Second}}); err == nil {
		t.Fatal("invalid liveness accepted")
	}
}

func TestSetBackoff(t *testing.T) {
	// The old policy drew the middle of its range: 10s after the failure,
	// of an allowed [5s, 15s].
	old := Backoff{Initial: 10 * time.Second, Multiplier: 2, JitterFraction: 0.5}
	cases := []struct {
		name   string
		newB   Backoff
		wantIn time.Duration // retry delay after the swap, from the failure
		moved  bool
	}{
		{"faster comes sooner but not before the old lower bound", Backoff{Initial: time.Second, Jitter: JitterNone}, 5 * time.Second, true},
		{"within the old range takes the new draw", Backoff{Initial: 8 * time.Second, Jitter: JitterNone}, 8 * time.Second, true},
		{"slower moves later", Backoff{Initial: 30 * time.Second, Jitter: JitterNone}, 30 * time.Second, true},
		{"same draw stays", Backoff{Initial: 10 * time.Second, Jitter: JitterNone}, 10 * time.Second, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustClient(t, ClientConfig{Backoff: old, Rand: fixed(0.5)})
			c.Step(t0, EvStart)
			c.Step(t0, EvDialFailed)
			if at, _ := c.RetryAt(); at.Sub(t0) != 10*time.Second {
				t.Fatalf("setup: retry in %v", at.Sub(t0))
			}
			out, err := c.SetBackoff(t0.Add(time.Second), tc.newB)
			if err != nil {
				t.Fatal(err)
			}
			at, _ := c.RetryAt()
			if at != t0.Add(tc.wantIn) {
				t.Fatalf("retry at +%v, want +%v", at.Sub(t0), tc.wantIn)
			}
			if tc.moved != (len(out.Actions) == 1) {
				t.Fatalf("actions %+v, moved = %v", out.Actions, tc.moved)
			}
			if tc.moved && (out.Actions[0].Kind != ActScheduleRetry || out.Actions[0].At != at) {
				t.Fatalf("reschedule action %+v", out.Actions[0])
			}
			if c.Backoff().Initial != tc.newB.WithDefaults().Initial {
				t.Fatal("policy not replaced")
			}
		})
	}
	slow := Backoff{Jitter: JitterNone}
	c := mustClient(t, ClientConfig{Backoff: slow})
	if _, err := c.SetBackoff(t0, Backoff{Max: -1}); err == nil {
		t.Fatal("invalid policy accepted at runtime")
	}
	if _, err := c.SetBackoff(t0, Backoff{Jitter: JitterFull}); err == nil {
		t.Fatal("jitter without a Rand accepted at runtime")
	}
}

// clientModel is the property: a client driven through random dial
// outcomes, link lifetimes and silences agrees with a few lines of model
// (the failure count, when it gives up) and never schedules or makes a
// retry outside the policy's bounds. mutate, when set, breaks the client
// after every step, to show the property catches the bug.
func clientModel(mutate func(*Client)) func(*rapid.T) {
	return func(t *rapid.T) {
		b := genBackoff(t)
		l := Liveness{PingInterval: time.Duration(rapid.Int64Range(int64(time.Second), int64(time.Minute)).Draw(t, "ping"))}
		c := mustClient(t, ClientConfig{Backoff: b, Liveness: l, Rand: newRand(rapid.Uint64().Draw(t, "seed"))})
		b, l = c.Backoff(), c.Liveness()
		now := t0
		step := func(at time.Time, ev Event) Output {
			out, err := c.Step(at, ev)
			if err != nil {
				t.Fatalf("%s at +%v in %s: %v", ev, at.Sub(t0), c.State(), err)
			}
			if mutate != nil {
				mutate(c)
			}
			now = at
			return out
		}
		failures := 0
		var failedAt time.Time
		fail := func(at time.Time, ev Event) {
			step(at, ev)
			failures++
			failedAt = at
			want := BackingOff
			if b.GivesUpAfter(failures) {
				want = GaveUp
			}
			if c.State() != want || c.Failures() != failures {
				t.Fatalf("after failure %d: %s with %d failures, model says %s", failures, c.State(), c.Failures(), want)
			}
		}
		step(now, EvStart)
		for i := 0; i < 25 && c.State() != GaveUp && c.State() != Stopped; i++ {
			switch c.State() {
			case Connecting:
				deadline, _ := c.Deadline()
				within := time.Duration(rapid.Int64Range(0, int64(b.ConnectTimeout)-1).Draw(t, "dialTook"))
				switch rapid.IntRange(0, 2).Draw(t, "dial") {
				case 0:
					step(now.Add(within), EvDialOK)
				case 1:
					fail(now.Add(within), EvDialFailed)
				case 2:
					if step(deadline.Add(-1), EvTick).Transition != nil {
						t.Fatal("dial timed out before its deadline")
					}
					fail(deadline, EvTick)
				}
			case Connected:
				connectedAt := now
				switch rapid.IntRange(0, 2).Draw(t, "link") {
				case 0: // dropped after some lifetime
					life := time.Duration(rapid.Int64Range(0, 3*int64(b.StableAfter)).Draw(t, "life"))
					if life >= b.StableAfter {
						failures = 0
					}
					fail(connectedAt.Add(life), EvDropped)
				case 1: // the server goes silent: ping, then give up on the link
					dead := l.ReapDeadline(connectedAt)
					for c.State() == Connected {
						d, _ := c.Deadline()
						if d.Before(dead) {
							step(d, EvTick)
							if d2, _ := c.Deadline(); d2.Equal(d) && c.State() == Connected {
								t.Fatalf("tick at the deadline +%v left it there", d.Sub(t0))
							}
							continue
						}
						if d != dead {
							t.Fatalf("silent link not dropped at +%v (deadline +%v)", dead.Sub(t0), d.Sub(t0))
						}
						if l.PingInterval+l.PongTimeout >= b.StableAfter {
							failures = 0
						}
						fail(d, EvTick)
					}
				case 2:
					step(now, EvStop)
				}
			case BackingOff:
				at, _ := c.RetryAt()
				d := at.Sub(failedAt)
				if d < b.Earliest(failures) || d > b.Latest(failures) {
					t.Fatalf("retry after failure %d scheduled in %v, policy allows [%v, %v]", failures, d, b.Earliest(failures), b.Latest(failures))
				}
				if d > 0 && step(at.Add(-1), EvTick).Transition != nil {
					t.Fatal("retry fired before it was due")
				}
				out := step(at, EvTick)
				if c.State() != Connecting || out.Actions[0].Attempt != failures+1 {
					t.Fatalf("retry at its time: %s, actions %+v, want attempt %d", c.State(), out.Actions, failures+1)
				}
			}
		}
	}
}

func TestPropClientAgreesWithModel(t *testing.T) {
	rapid.Check(t, clientModel(nil))
}

// The historical bug: the exception path skipped the wait.
func TestPropClientCatchesTightLoop(t *testing.T) {
	msg := proptest.ExpectFailure(t, clientModel(func(c *Client) {
		if c.state == BackingOff {
			c.retryAt = c.failedAt
		}
	}))
	if !strings.Contains(msg, "policy allows") {
		t.Fatalf("caught, but not by the retry bound:\n%s", msg)
	}
}

// An off-by-one in the attempt limit.
func TestPropClientCatchesLateGiveUp(t *testing.T) {
	var bumped bool
	msg := proptest.ExpectFailure(t, clientModel(func(c *Client) {
		if !bumped && c.b.MaxAttempts > 0 {
			c.b.MaxAttempts++
			bumped = true
		}
		if c.state == Idle || c.attempt == 1 {
			bumped = false
		}
	}))
	if !strings.Contains(msg, "model says GaveUp") {
		t.Fatalf("caught, but not by the attempt limit:\n%s", msg)
	}
}

// A retry already scheduled never moves earlier than the old policy's
// lower bound, whatever policy replaces it.
func setBackoffProp(naive bool) func(*rapid.T) {
	return func(t *rapid.T) {
		oldB, newB := genBackoff(t), genBackoff(t)
		oldB.MaxAttempts = 0
		c := mustClient(t, ClientConfig{Backoff: oldB, Rand: newRand(rapid.Uint64().Draw(t, "seed"))})
		now := t0
		c.Step(now, EvStart)
		n := rapid.IntRange(1, 10).Draw(t, "failures")
		for i := 1; i < n; i++ {
			c.Step(now, EvDialFailed)
			now, _ = c.RetryAt()
			c.Step(now, EvTick)
		}
		c.Step(now, EvDialFailed)
		failedAt := now
		if _, err := c.SetBackoff(now.Add(time.Duration(rapid.Int64Range(0, int64(time.Second)).Draw(t, "swapAfter"))), newB); err != nil {
			t.Fatal(err)
		}
		if naive { // the bug: re-draw without the floor
			c.retryAt = c.failedAt.Add(c.b.Delay(c.failures, c.prevDelay, c.rng))
		}
		at, _ := c.RetryAt()
		if floor := failedAt.Add(oldB.Earliest(n)); at.Before(floor) {
			t.Fatalf("pending retry moved to +%v, before the old policy's bound +%v", at.Sub(failedAt), floor.Sub(failedAt))
		}
	}
}

func TestPropSetBackoffNeverEarlier(t *testing.T) { rapid.Check(t, setBackoffProp(false)) }

func TestPropSetBackoffCatchesNaiveRedraw(t *testing.T) {
	proptest.ExpectFailure(t, setBackoffProp(true))
}
