package fsm

import (
	"testing"
	"time"
)

// The offline deadline: counted from the start, or from the end of the
// last link that stayed up StableAfter, judged at failures; the attempt
// limit wins when both apply.
func TestGiveUpAfter(t *testing.T) {
	t0 := time.Unix(0, 0)
	sec := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	type step struct {
		at float64
		ev Event
	}
	pol := Backoff{Initial: time.Second, Multiplier: 1, Jitter: JitterNone, StableAfter: 5 * time.Second, GiveUpAfter: 10 * time.Second}
	cases := []struct {
		name  string
		b     Backoff
		steps []step
		want  State
		cause GiveUpCause
		since float64
	}{
		{"refused from the start: the failure at 10 s gives up", pol,
			[]step{{0, EvStart}, {0, EvDialFailed}, {1, EvTick}, {1, EvDialFailed}, {2, EvTick}, {9.9, EvDialFailed}, {10.9, EvTick}, {10.9, EvDialFailed}},
			GaveUp, GiveUpOffline, 0},
		{"a short-lived link proves nothing", pol,
			[]step{{0, EvStart}, {0, EvDialOK}, {4, EvDropped}, {5, EvTick}, {5, EvDialOK}, {9, EvDropped}, {10, EvTick}, {10, EvDialFailed}},
			GaveUp, GiveUpOffline, 0},
		{"a proven link restarts the count at its drop", pol,
			[]step{{0, EvStart}, {0, EvDialOK}, {6, EvDropped}, {7, EvTick}, {7, EvDialFailed}, {8, EvTick}, {15.9, EvDialFailed}},
			BackingOff, GiveUpNone, 6},
		{"the attempt limit wins when both apply", Backoff{Initial: time.Second, Multiplier: 1, Jitter: JitterNone, MaxAttempts: 2, GiveUpAfter: time.Second},
			[]step{{0, EvStart}, {0, EvDialFailed}, {1, EvTick}, {1, EvDialFailed}},
			GaveUp, GiveUpAttempts, 0},
		{"zero means never", Backoff{Initial: time.Second, Multiplier: 1, Jitter: JitterNone},
			[]step{{0, EvStart}, {0, EvDialFailed}, {1, EvTick}, {3600, EvDialFailed}},
			BackingOff, GiveUpNone, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := NewClient(ClientConfig{Backoff: c.b})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range c.steps {
				if _, err := m.Step(sec(s.at), s.ev); err != nil {
					t.Fatalf("%v at %vs: %v", s.ev, s.at, err)
				}
			}
			if m.State() != c.want || m.GaveUpCause() != c.cause || !m.OfflineSince().Equal(sec(c.since)) {
				t.Errorf("state %s cause %q offline since %v; want %s %q %v", m.State(), m.GaveUpCause(),
					m.OfflineSince().Sub(t0), c.want, c.cause, sec(c.since).Sub(t0))
			}
		})
	}
	if err := (Backoff{GiveUpAfter: -time.Second}).Validate(); err == nil {
		t.Error("a negative GiveUpAfter validated")
	}
}
