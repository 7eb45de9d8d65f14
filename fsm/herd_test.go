package fsm

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The oracle against the policy's own Delay: a sampled fleet of 20 000
// clients, each drawing its delays with Delay until its first attempt at
// or after the outage, has its busiest window within a few standard
// deviations of HerdShare's expectation.
func TestHerdShareMatchesSampledDelays(t *testing.T) {
	const n = 20000
	window := 100 * time.Millisecond
	cases := []struct {
		name   string
		b      Backoff
		outage time.Duration
	}{
		{"before issue 13, ±20%", Backoff{FirstImmediate: true, JitterFraction: 0.2}, 2 * time.Second},
		{"default ±50%", DefaultBackoff(), 2 * time.Second},
		{"default ±50%, 1 s outage", DefaultBackoff(), time.Second},
		{"full", Backoff{FirstImmediate: true, Jitter: JitterFull}, 2 * time.Second},
		{"equal, no first immediate", Backoff{Jitter: JitterEqual}, 3 * time.Second},
		{"symmetric at the cap", Backoff{Initial: time.Second, Max: 2 * time.Second, JitterFraction: 0.5}, 10 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, ok := c.b.HerdShare(c.outage, window)
			if !ok {
				t.Fatal("no oracle")
			}
			r := rand.New(rand.NewPCG(1, 2))
			back := make([]time.Duration, 0, n)
			for range n {
				at, prev := time.Duration(0), time.Duration(0)
				for k := 1; ; k++ {
					prev = c.b.Delay(k, prev, r)
					if at += prev; at >= c.outage {
						break
					}
				}
				back = append(back, at)
			}
			slices.Sort(back)
			got := busiest(back, window)
			mean := p * n
			if lim := HerdLimit(n, p); got > lim || float64(got) < mean-0.05*mean-10 {
				t.Errorf("sampled busiest window %d of %d; oracle expects %.0f (share %.4f), limit %d", got, n, mean, p, lim)
			}
		})
	}
}

func busiest(sorted []time.Duration, w time.Duration) int {
	n, lo := 0, 0
	for hi, t := range sorted {
		for t-sorted[lo] >= w {
			lo++
		}
		n = max(n, hi-lo+1)
	}
	return n
}

func TestHerdShareEdges(t *testing.T) {
	w := 100 * time.Millisecond
	for _, c := range []struct {
		name   string
		b      Backoff
		outage time.Duration
		want   float64
		ok     bool
	}{
		{"no jitter herds whole", Backoff{FirstImmediate: true, Jitter: JitterNone}, 2 * time.Second, 1, true},
		{"first immediate, no outage", DefaultBackoff(), 0, 1, true},
		{"decorrelated is not modelled", Backoff{Jitter: JitterDecorrelated}, time.Second, 0, false},
		{"no window", DefaultBackoff(), time.Second, 0, false},
	} {
		ww := w
		if c.name == "no window" {
			ww = 0
		}
		got, ok := c.b.HerdShare(c.outage, ww)
		if ok != c.ok || (ok && (got < c.want-1e-9 || got > c.want+1e-9)) {
			t.Errorf("%s: HerdShare = %v, %v; want %v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
	// A delay of exactly Max after an outage under one bin lands in the
	// last bin the oracle's table holds: a table a bin short loses it.
	for _, b := range []Backoff{
		{Initial: time.Second, Multiplier: 1, Max: time.Second, Jitter: JitterNone},
		{Initial: time.Second, Multiplier: 2, Max: time.Second, Jitter: JitterSymmetric, JitterFraction: 0.5},
	} {
		if got, ok := b.HerdShare(0, time.Millisecond); !ok || got < 0.5-1e-9 {
			t.Errorf("%+v at Max after no outage: HerdShare = %v, %v; want at least the half piled on Max", b, got, ok)
		}
	}
	// The oracle follows a run for 10 000 attempts: a schedule whose
	// 10 000th delay is the first to reach a whole bin reconnects then.
	slow := Backoff{Initial: 367935 * time.Nanosecond, Multiplier: 1.0001, Max: 2 * time.Millisecond, Jitter: JitterNone}
	if slow.Base(9999) >= time.Millisecond || slow.Base(10000) < time.Millisecond {
		t.Fatalf("the slow schedule's delays 9 999 and 10 000 are %s and %s, want them either side of 1ms", slow.Base(9999), slow.Base(10000))
	}
	if got, ok := slow.HerdShare(time.Millisecond, time.Millisecond); !ok || got != 1 {
		t.Errorf("reconnect at attempt 10 000: HerdShare = %v, %v; want 1, true", got, ok)
	}
	if l := HerdLimit(500, 0.1); l != 92 {
		t.Errorf("HerdLimit(500, 0.1) = %d, want 92 (⌈50 + 6×6.7 + 1⌉)", l)
	}
}
