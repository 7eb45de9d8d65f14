package fsm

import (
	"math/rand/v2"
	"testing"
	"time"
)

// An owner calling ReconnectNow in a tight loop against a refused port
// cannot start two attempts closer than the floor; the schedule's own
// retries are untouched.
func TestReconnectNowFloor(t *testing.T) {
	for _, b := range []Backoff{
		DefaultBackoff(),
		{Initial: 100 * time.Millisecond, Multiplier: 2, Max: 5 * time.Second, FirstImmediate: true, ReconnectFloor: 250 * time.Millisecond},
		{Initial: 2 * time.Second, Multiplier: 1.5, Jitter: JitterFull, ReconnectFloor: 50 * time.Millisecond},
	} {
		c, err := NewClient(ClientConfig{Backoff: b, Rand: rand.New(rand.NewPCG(1, 2))})
		if err != nil {
			t.Fatal(err)
		}
		floor := c.Backoff().ReconnectFloor
		now := t0
		var starts []time.Time
		byNow := map[int]bool{} // attempt index brought forward by a reconnect-now
		var sched time.Time     // the retry the schedule itself set
		step := func(ev Event) {
			out, err := c.Step(now, ev)
			if err != nil {
				t.Fatal(err)
			}
			if tr := out.Transition; tr != nil && tr.To == Connecting {
				starts = append(starts, now)
				byNow[len(starts)-1] = now.Before(sched)
				if _, err := c.Step(now, EvDialFailed); err != nil { // refused at once
					t.Fatal(err)
				}
				sched, _ = c.RetryAt()
			}
		}
		step(EvStart)
		for end := t0.Add(time.Minute); now.Before(end); now = now.Add(time.Millisecond) {
			if d, ok := c.Deadline(); ok && !now.Before(d) {
				step(EvTick)
			}
			step(EvReconnectNow) // the caller in a loop
		}
		nudged := 0
		for i := 1; i < len(starts); i++ {
			if !byNow[i] {
				continue
			}
			nudged++
			if gap := starts[i].Sub(starts[i-1]); gap < floor {
				t.Errorf("%+v: attempt %d started %s after the one before, under the floor %s", b, i+1, gap, floor)
			}
		}
		if max := int(time.Minute/floor) + 2; len(starts) > max || nudged == 0 {
			t.Errorf("%+v: %d attempts (%d by reconnect-now) in a minute; the floor %s allows at most %d", b, len(starts), nudged, floor, max)
		}
	}
}

// Reset forgets the run: a Connected client's next drop is a first
// failure again; a BackingOff client's retry is drawn again as after a
// first failure, not before the floor.
func TestResetBackoff(t *testing.T) {
	b := Backoff{Initial: time.Second, Multiplier: 2, Jitter: JitterNone, StableAfter: time.Hour, ReconnectFloor: 300 * time.Millisecond}
	c, err := NewClient(ClientConfig{Backoff: b})
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	must := func(ev Event) Output {
		t.Helper()
		out, err := c.Step(now, ev)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	must(EvStart)
	for range 4 { // four failures: the wait is now 8 s
		must(EvDialFailed)
		now, _ = c.RetryAt()
		must(EvTick)
	}
	must(EvDialFailed)
	if c.Failures() != 5 {
		t.Fatalf("failures = %d", c.Failures())
	}
	now = now.Add(100 * time.Millisecond)
	out := must(EvResetBackoff)
	if at, _ := c.RetryAt(); c.Failures() != 1 || !at.Equal(now.Add(-100*time.Millisecond).Add(time.Second)) || out.Transition.Trigger != ResetBackoff {
		t.Fatalf("after reset: failures %d, retry at +%s, %+v", c.Failures(), at.Sub(t0), out.Transition)
	}
	// The redrawn retry is the second attempt of the new run.
	if a := out.Actions; out.Transition.Attempt != 2 || len(a) != 1 || a[0].Kind != ActScheduleRetry || a[0].Attempt != 2 || a[0].Delay != time.Second {
		t.Fatalf("after reset: transition attempt %d, actions %+v; want attempt 2 retried after 1s", out.Transition.Attempt, a)
	}
	now, _ = c.RetryAt()
	must(EvTick)
	must(EvDialOK)
	must(EvResetBackoff)
	if c.State() != Connected {
		t.Fatalf("reset dropped the link: %s", c.State())
	}
	out = must(EvDropped)
	if out.Transition.Delay != time.Second {
		t.Fatalf("drop after a reset: delay %s, want the first failure's 1s", out.Transition.Delay)
	}
	// No row: nothing happens, no error.
	for _, s := range []Event{EvReconnectNow, EvResetBackoff} {
		i, _ := NewClient(ClientConfig{Backoff: b})
		if out, err := i.Step(t0, s); err != nil || out.Transition != nil || i.State() != Idle {
			t.Fatalf("%s on an Idle client: %v %+v", s, err, out)
		}
	}
}
