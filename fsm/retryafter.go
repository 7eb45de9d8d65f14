package fsm

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// RetryAfterSpread is the width of the window a client spreads its retry
// over past a server's Retry-After floor: the wait after a failure that
// carried one is at least the floor and at most RetryAfterSpread past it
// (see Backoff.RetryAfterWait). HTTP states Retry-After in whole seconds,
// so every client a server refused within one second with the same answer
// would otherwise come back at the same instant; spreading over one second
// turns each second's refusals into a uniform stream again
// (docs/decisions.md, "Retry-After: floor plus one second").
const RetryAfterSpread = time.Second

// maxRetryAfter bounds what ParseRetryAfter returns: a value beyond it is
// hostile or broken either way, and the client caps it at
// Backoff.RetryAfterMax.
const maxRetryAfter = time.Duration(math.MaxInt64)

// The three date forms RFC 9110 §5.6.7 obliges a recipient to accept:
// IMF-fixdate, the obsolete RFC 850 form and asctime. (net/http's
// ParseTime reads the same three; fsm does not import net/http.)
var httpDates = [...]string{
	"Mon, 02 Jan 2006 15:04:05 GMT",
	"Monday, 02-Jan-06 15:04:05 GMT",
	"Mon Jan _2 15:04:05 2006",
}

// ErrRetryAfter is matched (errors.Is) by every error ParseRetryAfter
// returns.
var ErrRetryAfter = errors.New("fsm: bad Retry-After")

// ParseRetryAfter reads an HTTP Retry-After value (RFC 9110 §10.2.3) as a
// wait from now: delta-seconds ("120") or an HTTP-date, which counts from
// now (a date in the past is a wait of 0). Surrounding spaces are ignored.
// Anything else, a negative or fractional number included, is an error
// naming what was wrong (errors.Is ErrRetryAfter): the caller ignores the
// header. A delta too large for a Duration is returned as the largest
// one; Backoff.RetryAfterMax caps what a client honours.
func ParseRetryAfter(v string, now time.Time) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, fmt.Errorf("%w: empty value", ErrRetryAfter)
	}
	if v[0] >= '0' && v[0] <= '9' {
		var secs uint64
		for i := 0; i < len(v); i++ {
			ch := v[i]
			if ch < '0' || ch > '9' {
				return 0, fmt.Errorf("%w: %q is neither delta-seconds (digits only) nor an HTTP-date", ErrRetryAfter, v)
			}
			if secs > math.MaxInt64/uint64(time.Second) {
				continue // keep checking the digits; the value is already past any cap
			}
			secs = secs*10 + uint64(ch-'0')
		}
		if secs > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter, nil
		}
		return time.Duration(secs) * time.Second, nil
	}
	for _, layout := range httpDates {
		if t, err := time.Parse(layout, v); err == nil {
			if d := t.Sub(now); d > 0 {
				return d, nil
			}
			return 0, nil
		}
	}
	return 0, fmt.Errorf("%w: %q is neither delta-seconds nor an HTTP-date", ErrRetryAfter, v)
}

// RetryAfterFloor returns the part of a server's Retry-After ra the policy
// honours: ra capped at RetryAfterMax, zero for none. No retry after the
// failure comes sooner.
func (b Backoff) RetryAfterFloor(ra time.Duration) time.Duration {
	if ra <= 0 {
		return 0
	}
	return min(ra, b.WithDefaults().RetryAfterMax)
}

// RetryAfterLatest returns the latest a retry may come after a failure
// that carried Retry-After ra, by the Retry-After rule alone: the floor
// plus RetryAfterSpread, but not past max(Max, floor); the floor itself
// under JitterNone, which asks for no spread. Zero for none. The policy's
// latest for such a failure is the larger of this and its backoff bound.
func (b Backoff) RetryAfterLatest(ra time.Duration) time.Duration {
	b = b.WithDefaults()
	f := b.RetryAfterFloor(ra)
	if f == 0 || b.Jitter == JitterNone {
		return f
	}
	return min(f+RetryAfterSpread, max(b.Max, f))
}

// RetryAfterWait returns the wait after a failure that carried Retry-After
// ra when the backoff schedule drew draw: max(draw, floor + u×spread),
// where u in [0, 1) is drawn from r and floor + spread is
// RetryAfterLatest. Without a Retry-After (ra ≤ 0) it is draw, and r is
// read only when there is a spread (not under JitterNone, where r may be
// nil).
func (b Backoff) RetryAfterWait(draw, ra time.Duration, r Rand) time.Duration {
	f := b.RetryAfterFloor(ra)
	if f == 0 {
		return draw
	}
	w := f
	if spread := b.RetryAfterLatest(ra) - f; spread > 0 {
		w += scale(spread, r.Float64(), spread)
	}
	return max(draw, w)
}
