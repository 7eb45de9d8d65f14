package fsm

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// fixed is a Rand that returns the same value every time.
type fixed float64

func (f fixed) Float64() float64 { return float64(f) }

const almostOne = fixed(1 - 1e-12)

func TestBackoffBaseSequence(t *testing.T) {
	cases := []struct {
		name string
		b    Backoff
		want []time.Duration
	}{
		{"defaults", Backoff{}, []time.Duration{1000 * ms, 1600 * ms, 2560 * ms, 4096 * ms, 6553600 * time.Microsecond}},
		{"first immediate", Backoff{FirstImmediate: true}, []time.Duration{0, 1000 * ms, 1600 * ms, 2560 * ms}},
		{"doubling to a cap", Backoff{Initial: time.Second, Multiplier: 2, Max: 5 * time.Second},
			[]time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}},
		{"constant", Backoff{Initial: 3 * time.Second, Multiplier: 1}, []time.Duration{3 * time.Second, 3 * time.Second, 3 * time.Second}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for i, want := range c.want {
				if got := c.b.Base(i + 1); got != want {
					t.Errorf("Base(%d) = %v, want %v", i+1, got, want)
				}
			}
		})
	}
	// The cap holds for absurd failure counts without overflow.
	if got := (Backoff{}).Base(100000); got != 120*time.Second {
		t.Fatalf("Base(1e5) = %v", got)
	}
}

const ms = time.Millisecond

// Each jitter kind maps the random draw onto its interval: the ends of
// [0, 1) give the ends of the interval, the middle gives the middle.
func TestJitterKindsAtFixedDraws(t *testing.T) {
	base := 10 * time.Second // failure 3 of Initial 2.5s ×2, Max 1m
	pol := Backoff{Initial: 2500 * ms, Multiplier: 2, Max: time.Minute}
	cases := []struct {
		kind     JitterKind
		frac     float64
		u        fixed
		want     time.Duration
		lo, hi   time.Duration
		prevNote time.Duration
	}{
		{JitterNone, 0, 0.5, base, base, base, 0},
		{JitterSymmetric, 0, 0, 5 * time.Second, 5 * time.Second, 15 * time.Second, 0}, // f 0 means 0.5
		{JitterSymmetric, 0, 0.5, base, 5 * time.Second, 15 * time.Second, 0},
		{JitterSymmetric, 0.2, 0, 8 * time.Second, 8 * time.Second, 12 * time.Second, 0},
		{JitterSymmetric, 0.5, 0, 5 * time.Second, 5 * time.Second, 15 * time.Second, 0},
		{JitterFull, 0, 0, base, 0, base, 0},
		{JitterFull, 0, 0.5, 5 * time.Second, 0, base, 0},
		{JitterFull, 0.3, 0.5, 8500 * ms, 7 * time.Second, base, 0},
		{JitterEqual, 0, 0, 5 * time.Second, 5 * time.Second, base, 0},
		{JitterEqual, 0, 0.5, 7500 * ms, 5 * time.Second, base, 0},
		// Decorrelated: [Initial, prev × Multiplier] = [2.5s, 12s] for prev 6s.
		{JitterDecorrelated, 0, 0, 2500 * ms, 2500 * ms, 20 * time.Second, 6 * time.Second},
		{JitterDecorrelated, 0, 0.5, 7250 * ms, 2500 * ms, 20 * time.Second, 6 * time.Second},
	}
	for _, c := range cases {
		b := pol
		b.Jitter, b.JitterFraction = c.kind, c.frac
		if err := b.Validate(); err != nil {
			t.Fatal(err)
		}
		got := b.Delay(3, c.prevNote, c.u)
		if got != c.want {
			t.Errorf("%s f=%v u=%v: Delay = %v, want %v", c.kind, c.frac, c.u, got, c.want)
		}
		if lo, hi := b.Earliest(3), b.Latest(3); lo != c.lo || hi != c.hi {
			t.Errorf("%s f=%v: bounds = [%v, %v], want [%v, %v]", c.kind, c.frac, lo, hi, c.lo, c.hi)
		}
		if top := b.Delay(3, c.prevNote, almostOne); top > c.hi {
			t.Errorf("%s: top draw %v above Latest %v", c.kind, top, c.hi)
		}
	}
}

// Seeded sources give reproducible sequences, and different seeds differ.
func TestJitterSequencesAreSeeded(t *testing.T) {
	for _, kind := range []JitterKind{JitterSymmetric, JitterFull, JitterEqual, JitterDecorrelated} {
		seq := func(seed uint64) []time.Duration {
			b := Backoff{Jitter: kind, FirstImmediate: true}
			r := newRand(seed)
			var out []time.Duration
			var prev time.Duration
			for n := 1; n <= 12; n++ {
				prev = b.Delay(n, prev, r)
				if prev < b.Earliest(n) || prev > b.Latest(n) {
					t.Fatalf("%s n=%d: %v outside [%v, %v]", kind, n, prev, b.Earliest(n), b.Latest(n))
				}
				out = append(out, prev)
			}
			return out
		}
		a, b, c := seq(7), seq(7), seq(8)
		if !slices.Equal(a, b) {
			t.Errorf("%s: same seed, different delays", kind)
		}
		if slices.Equal(a, c) {
			t.Errorf("%s: different seeds, same delays", kind)
		}
		if a[0] != 0 {
			t.Errorf("%s: first retry not immediate: %v", kind, a[0])
		}
	}
}

func TestBackoffValidate(t *testing.T) {
	cases := []struct {
		name  string
		b     Backoff
		field string
	}{
		{"negative initial", Backoff{Initial: -1}, "Initial"},
		{"negative max", Backoff{Max: -time.Second}, "Max"},
		{"max below initial", Backoff{Initial: 5 * time.Second, Max: time.Second}, "Max"},
		{"max below default initial", Backoff{Max: 500 * ms}, "Max"},
		{"multiplier below one", Backoff{Multiplier: 0.5}, "Multiplier"},
		{"multiplier NaN", Backoff{Multiplier: math.NaN()}, "Multiplier"},
		{"multiplier Inf", Backoff{Multiplier: math.Inf(1)}, "Multiplier"},
		{"fraction above one", Backoff{JitterFraction: 1.5}, "JitterFraction"},
		{"fraction negative", Backoff{Jitter: JitterFull, JitterFraction: -0.1}, "JitterFraction"},
		{"fraction NaN", Backoff{JitterFraction: math.NaN()}, "JitterFraction"},
		{"fraction on equal", Backoff{Jitter: JitterEqual, JitterFraction: 0.3}, "JitterFraction"},
		{"fraction on none", Backoff{Jitter: JitterNone, JitterFraction: 0.3}, "JitterFraction"},
		{"unknown kind", Backoff{Jitter: 99}, "Jitter"},
		{"negative attempts", Backoff{MaxAttempts: -1}, "MaxAttempts"},
		{"negative connect timeout", Backoff{ConnectTimeout: -time.Second}, "ConnectTimeout"},
		{"negative stable", Backoff{StableAfter: -time.Second}, "StableAfter"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.b.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("err = %v, want a *FieldError", err)
			}
			if fe.Field != c.field || fe.Policy != "Backoff" {
				t.Fatalf("error names %s.%s, want Backoff.%s: %v", fe.Policy, fe.Field, c.field, err)
			}
		})
	}
	for _, ok := range []Backoff{{}, DefaultBackoff(), {Jitter: JitterFull, JitterFraction: 1}, {Initial: time.Second, Max: time.Second, Multiplier: 1}} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	// Every problem is reported at once.
	err := Backoff{Initial: -1, MaxAttempts: -1, Multiplier: 0.1}.Validate()
	for _, f := range []string{"Initial", "MaxAttempts", "Multiplier"} {
		if err == nil || !strings.Contains(err.Error(), "Backoff."+f) {
			t.Errorf("joined error lacks %s: %v", f, err)
		}
	}
}

func TestParseJitter(t *testing.T) {
	for _, k := range []JitterKind{JitterNone, JitterSymmetric, JitterFull, JitterEqual, JitterDecorrelated} {
		got, err := ParseJitter(k.String())
		if err != nil || got != k {
			t.Errorf("ParseJitter(%q) = %v, %v", k.String(), got, err)
		}
	}
	if _, err := ParseJitter("gaussian"); err == nil {
		t.Error("ParseJitter accepted an unknown kind")
	}
}

// genBackoff draws a valid Backoff covering every jitter kind, with and
// without the immediate first retry.
func genBackoff(t *rapid.T) Backoff {
	b := Backoff{
		Initial:        time.Duration(rapid.Int64Range(1, int64(10*time.Second)).Draw(t, "initial")),
		Multiplier:     rapid.Float64Range(1, 4).Draw(t, "multiplier"),
		Jitter:         JitterKind(rapid.IntRange(0, int(JitterDecorrelated)).Draw(t, "jitter")),
		MaxAttempts:    rapid.IntRange(0, 12).Draw(t, "maxAttempts"),
		FirstImmediate: rapid.Bool().Draw(t, "firstImmediate"),
		StableAfter:    time.Duration(rapid.Int64Range(1, int64(time.Minute)).Draw(t, "stableAfter")),
	}
	b.Max = b.Initial + time.Duration(rapid.Int64Range(0, int64(5*time.Minute)).Draw(t, "maxOverInitial"))
	if b.Jitter == JitterSymmetric || b.Jitter == JitterFull {
		b.JitterFraction = rapid.Float64Range(0, 1).Draw(t, "fraction")
	}
	return b
}

// Every delay lies within [Earliest(n), Latest(n)]; Latest never exceeds
// Max and never decreases; Earliest never exceeds Latest.
func TestPropDelayWithinBounds(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := genBackoff(t)
		if err := b.Validate(); err != nil {
			t.Fatalf("generator made an invalid policy: %v", err)
		}
		r := newRand(rapid.Uint64().Draw(t, "seed"))
		var prev, prevLatest time.Duration
		for n := 1; n <= 40; n++ {
			lo, hi := b.Earliest(n), b.Latest(n)
			if lo > hi || hi > b.WithDefaults().Max || hi < prevLatest {
				t.Fatalf("n=%d: bounds [%v, %v], max %v, previous latest %v", n, lo, hi, b.WithDefaults().Max, prevLatest)
			}
			d := b.Delay(n, prev, r)
			if d < lo || d > hi {
				t.Fatalf("n=%d: delay %v outside [%v, %v]", n, d, lo, hi)
			}
			prev, prevLatest = d, hi
		}
	})
}
