package fsm

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Rand is the source of jitter. *math/rand/v2.Rand satisfies it; seed it
// and a run's delays are reproducible. Float64 must return a value in [0, 1).
type Rand interface {
	Float64() float64
}

// JitterKind is the shape of the randomness added to a backoff delay.
type JitterKind uint8

const (
	// JitterSymmetric (the zero value) spreads the delay evenly over
	// base × [1−f, 1+f], as gRPC does (with 0.2); f is JitterFraction,
	// default 0.5: the restart-herd measurement chose it (docs/decisions.md,
	// "herd: ±50 % jitter"). The mean delay is the base whatever f is.
	JitterSymmetric JitterKind = iota
	// JitterNone uses the base delay as is. A fleet then retries in
	// lock-step after a shared outage.
	JitterNone
	// JitterFull draws from base × [1−f, 1]; with the default f = 1 that is
	// [0, base], the widest spread, at the cost of some near-zero delays.
	JitterFull
	// JitterEqual draws from [base/2, base]: half the spread of full jitter,
	// with a floor. JitterFraction must be zero.
	JitterEqual
	// JitterDecorrelated draws from [Initial, previous delay × Multiplier],
	// so each delay depends on the one before. JitterFraction must be zero.
	JitterDecorrelated
)

var jitterNames = [...]string{
	JitterSymmetric: "symmetric", JitterNone: "none", JitterFull: "full",
	JitterEqual: "equal", JitterDecorrelated: "decorrelated",
}

// String returns the kind's name as ParseJitter accepts it.
func (k JitterKind) String() string {
	if int(k) < len(jitterNames) {
		return jitterNames[k]
	}
	return fmt.Sprintf("JitterKind(%d)", uint8(k))
}

// ParseJitter returns the kind named s ("none", "symmetric", "full",
// "equal", "decorrelated").
func ParseJitter(s string) (JitterKind, error) {
	for k, n := range jitterNames {
		if n == s {
			return JitterKind(k), nil
		}
	}
	return 0, fmt.Errorf("fsm: unknown jitter kind %q (want none, symmetric, full, equal or decorrelated)", s)
}

// Backoff is the reconnect policy of a client. The zero value is valid and
// means the defaults given on each field, which follow gRPC's connection
// backoff; DefaultBackoff also turns on FirstImmediate, which the zero value
// leaves off.
//
// Failures are counted per run of consecutive failed attempts: a dial that
// fails, times out, or a link that drops before it has lived StableAfter.
// The delay after the n-th failure is base(n) with jitter, where
//
//	base(n) = min(Max, Initial × Multiplier^(n−1))
//
// or, with FirstImmediate, 0 for n = 1 and min(Max, Initial × Multiplier^(n−2))
// after. Max caps every delay, jitter included. A failure that carried a
// server's Retry-After waits at least that long, up to RetryAfterMax
// (RetryAfterWait).
type Backoff struct {
	// Initial is the first non-zero base delay. Zero means 1s.
	Initial time.Duration
	// Multiplier grows the base delay per failure; at least 1. Zero means 1.6.
	Multiplier float64
	// Max caps every delay; at least Initial. Zero means 120s.
	Max time.Duration
	// Jitter is the shape of the randomness. The zero value is JitterSymmetric.
	Jitter JitterKind
	// JitterFraction f in [0, 1] is the share of the delay that is random,
	// for JitterSymmetric (zero means 0.5) and JitterFull (zero means 1).
	// It must be zero for the other kinds.
	JitterFraction float64
	// MaxAttempts is how many consecutive attempts may fail before the
	// client gives up. Zero means never give up.
	MaxAttempts int
	// ReconnectFloor is the shortest time between the start of one attempt
	// and an attempt that Client's reconnect-now (or a backoff reset)
	// starts: an owner calling ReconnectNow in a loop gets at most one
	// attempt per floor. It bounds only those attempts; the schedule's own
	// retries keep their bounds. Zero means Initial.
	ReconnectFloor time.Duration
	// GiveUpAfter is the longest the client may go without a proven link
	// (one that stayed up StableAfter), counted from Run's start or from
	// the end of the last proven link, before it gives up
	// (GiveUpOffline). It is judged at each failure, so the client gives
	// up at the first failure at or past it. Zero means never.
	GiveUpAfter time.Duration
	// RetryAfterMax caps the Retry-After a server's refusal (a 503 or 429)
	// can impose: the wait after such a failure is at least the server's
	// Retry-After, up to this, plus a spread (RetryAfterWait), so that a
	// hostile or broken "Retry-After: 999999999" cannot park the client
	// for years. Zero means Max (120 s by default): a server's answer
	// never holds a client longer than its own longest backoff does.
	RetryAfterMax time.Duration
	// FirstImmediate retries at once after the first failure of a run, for
	// the transient glitch; backoff starts from the second. Off in the zero
	// value, on in DefaultBackoff.
	FirstImmediate bool
	// ConnectTimeout bounds one attempt, dial plus handshake. Zero means 20s.
	ConnectTimeout time.Duration
	// StableAfter is how long a link must have been up for its drop to start
	// a fresh run of failures (counter reset, FirstImmediate applies again).
	// A shorter-lived link counts as one more failure, so a server that
	// accepts and then closes at once cannot pull the client into a tight
	// loop. Zero means 10s.
	StableAfter time.Duration
}

// DefaultBackoff returns the zero Backoff's defaults with FirstImmediate on:
// 1s initial, ×1.6, ±50 % jitter, 120 s cap, 20 s connect timeout, no
// attempt limit, 10 s to count as stable.
func DefaultBackoff() Backoff {
	return Backoff{FirstImmediate: true}.WithDefaults()
}

// WithDefaults returns b with every zero field replaced by its default.
func (b Backoff) WithDefaults() Backoff {
	if b.Initial == 0 {
		b.Initial = time.Second
	}
	if b.Multiplier == 0 {
		b.Multiplier = 1.6
	}
	if b.Max == 0 {
		b.Max = 120 * time.Second
	}
	if b.JitterFraction == 0 {
		switch b.Jitter {
		case JitterSymmetric:
			b.JitterFraction = 0.5
		case JitterFull:
			b.JitterFraction = 1
		}
	}
	if b.ConnectTimeout == 0 {
		b.ConnectTimeout = 20 * time.Second
	}
	if b.StableAfter == 0 {
		b.StableAfter = 10 * time.Second
	}
	if b.ReconnectFloor == 0 {
		b.ReconnectFloor = b.Initial
	}
	if b.RetryAfterMax == 0 {
		b.RetryAfterMax = b.Max
	}
	return b
}

// Validate reports every field that breaks a rule, as *FieldError values
// joined with errors.Join. It does not change b; zero fields are checked as
// their defaults.
func (b Backoff) Validate() error {
	var errs []error
	bad := func(field, rule string, v any) {
		errs = append(errs, &FieldError{Policy: "Backoff", Field: field, Rule: rule, Value: v})
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Initial", b.Initial}, {"Max", b.Max}, {"ConnectTimeout", b.ConnectTimeout}, {"StableAfter", b.StableAfter}, {"GiveUpAfter", b.GiveUpAfter}, {"ReconnectFloor", b.ReconnectFloor}, {"RetryAfterMax", b.RetryAfterMax}} {
		if d.v < 0 {
			bad(d.name, "must not be negative", d.v)
		}
	}
	if math.IsNaN(b.Multiplier) || math.IsInf(b.Multiplier, 0) || (b.Multiplier != 0 && b.Multiplier < 1) {
		bad("Multiplier", "must be at least 1 (0 means 1.6)", b.Multiplier)
	}
	if b.MaxAttempts < 0 {
		bad("MaxAttempts", "must not be negative (0 means unlimited)", b.MaxAttempts)
	}
	if int(b.Jitter) >= len(jitterNames) {
		bad("Jitter", "must be one of none, symmetric, full, equal, decorrelated", b.Jitter)
	}
	// An if chain, not a switch: mutation testing (scripts/mutation)
	// cannot see a switch's case expressions as covered, so it would never
	// try breaking these bounds.
	f := b.JitterFraction
	if math.IsNaN(f) || f < 0 || f > 1 {
		bad("JitterFraction", "must be within [0, 1]", f)
	} else if f != 0 && b.Jitter != JitterSymmetric && b.Jitter != JitterFull {
		bad("JitterFraction", fmt.Sprintf("must be zero for jitter %s (only symmetric and full take a fraction)", b.Jitter), f)
	}
	if e := b.WithDefaults(); b.Initial >= 0 && b.Max >= 0 && e.Max < e.Initial {
		bad("Max", fmt.Sprintf("must be at least Initial (%s)", e.Initial), e.Max)
	}
	return errors.Join(errs...)
}

// growth returns how many times Multiplier applies to Initial for the
// n-th failure, or -1 when the delay is the immediate first retry.
func (b Backoff) growth(n int) int {
	if b.FirstImmediate {
		return max(n-2, -1)
	}
	return max(n-1, 0)
}

// capped returns min(Max, Initial × Multiplier^k).
func (b Backoff) capped(k int) time.Duration {
	d := float64(b.Initial) * math.Pow(b.Multiplier, float64(k))
	if d >= float64(b.Max) || math.IsInf(d, 0) || math.IsNaN(d) {
		return b.Max
	}
	return time.Duration(d)
}

// scale returns d × f truncated, never above limit. Delay and the bounds all
// go through it, so a delay and its bound round the same way.
func scale(d time.Duration, f float64, limit time.Duration) time.Duration {
	v := float64(d) * f
	if v >= float64(limit) {
		return limit
	}
	if v <= 0 {
		return 0
	}
	return time.Duration(v)
}

// Base returns the delay after the n-th consecutive failure before jitter.
func (b Backoff) Base(n int) time.Duration {
	b = b.WithDefaults()
	k := b.growth(n)
	if k < 0 {
		return 0
	}
	return b.capped(k)
}

// Delay returns the wait after the n-th consecutive failure (n ≥ 1), drawn
// with r. prev is the delay chosen after failure n−1 (0 for the first);
// only JitterDecorrelated reads it. r may be nil for JitterNone.
func (b Backoff) Delay(n int, prev time.Duration, r Rand) time.Duration {
	b = b.WithDefaults()
	k := b.growth(n)
	if k < 0 {
		return 0
	}
	if b.Jitter == JitterDecorrelated {
		lo := min(b.Initial, b.Max)
		hi := b.decorrelatedHi(k, prev)
		return lo + scale(hi-lo, r.Float64(), hi-lo)
	}
	base := b.capped(k)
	f := b.JitterFraction
	switch b.Jitter {
	case JitterSymmetric:
		return scale(base, 1+f*(2*r.Float64()-1), b.Max)
	case JitterFull:
		return scale(base, 1-f*r.Float64(), b.Max)
	case JitterEqual:
		return scale(base, 0.5+0.5*r.Float64(), b.Max)
	}
	return base
}

// Earliest returns the shortest delay the policy allows after the n-th
// consecutive failure: the oracle for "no retry comes too early".
func (b Backoff) Earliest(n int) time.Duration {
	b = b.WithDefaults()
	k := b.growth(n)
	if k < 0 {
		return 0
	}
	base := b.capped(k)
	switch b.Jitter {
	case JitterSymmetric, JitterFull:
		return scale(base, 1-b.JitterFraction, b.Max)
	case JitterEqual:
		return scale(base, 0.5, b.Max)
	case JitterDecorrelated:
		return min(b.Initial, b.Max)
	}
	return base
}

// Latest returns the longest delay the policy allows after the n-th
// consecutive failure. It never exceeds Max and never decreases with n.
func (b Backoff) Latest(n int) time.Duration {
	b = b.WithDefaults()
	k := b.growth(n)
	if k < 0 {
		return 0
	}
	switch b.Jitter {
	case JitterSymmetric:
		return scale(b.capped(k), 1+b.JitterFraction, b.Max)
	case JitterDecorrelated:
		return b.capped(k + 1)
	}
	return b.capped(k)
}

// LatestAfter returns the longest delay the policy allows after the n-th
// consecutive failure when the delay chosen after failure n−1 was prev (0
// for the first of a run). It is Latest(n) for every kind but
// JitterDecorrelated, whose delay may grow by at most Multiplier per
// failure: min(Latest(n), max(prev, Initial) × Multiplier). That is the
// decorrelated kind's real growth rule; its lower bound stays Initial, and
// with Multiplier below 2 its mean settles near Initial/(2−Multiplier)
// instead of climbing to Max (docs/decisions.md).
func (b Backoff) LatestAfter(n int, prev time.Duration) time.Duration {
	b = b.WithDefaults()
	k := b.growth(n)
	if k < 0 || b.Jitter != JitterDecorrelated {
		return b.Latest(n)
	}
	return b.decorrelatedHi(k, prev)
}

// decorrelatedHi is the top of the decorrelated draw for growth k after a
// delay of prev: clamped to Latest as well, so float rounding of the
// repeated product can never put a delay a nanosecond past the oracle.
func (b Backoff) decorrelatedHi(k int, prev time.Duration) time.Duration {
	return min(b.capped(k+1), scale(max(prev, b.Initial), b.Multiplier, b.Max))
}

// GivesUpAfter reports whether the n-th consecutive failure exhausts the
// attempts.
func (b Backoff) GivesUpAfter(n int) bool {
	return b.MaxAttempts > 0 && n >= b.MaxAttempts
}
