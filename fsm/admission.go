package fsm

import (
	"errors"
	"math"
	"time"
)

// MaxRetryAfterAnswer bounds the Retry-After an Admission answers with: a
// flood of refused handshakes reserves slots no further ahead than this,
// and every refusal past it is told to come back after it. A minute is
// long enough to drain a herd many times the rate (a 100/s server
// reschedules 6 000 refused clients within it) and short enough that a
// client never waits on a backlog that has long gone.
const MaxRetryAfterAnswer = time.Minute

// HandshakeRate is a server's admission policy: a token bucket that lets
// PerSecond handshakes through per second on average and Burst at once.
// The zero value is off: every handshake is admitted.
type HandshakeRate struct {
	// PerSecond is the sustained rate of admitted handshakes. Zero means
	// off.
	PerSecond float64
	// Burst is how many handshakes may be admitted at one instant (the
	// bucket's size). Zero means a tenth of a second's worth,
	// ceil(PerSecond/10), at least 1: a restart herd then reaches the
	// server at most 2×PerSecond/10 per 100 ms (docs/decisions.md,
	// "handshake rate: a token bucket").
	Burst int
}

// WithDefaults returns h with a zero Burst replaced by its default.
func (h HandshakeRate) WithDefaults() HandshakeRate {
	if h.Burst == 0 && h.PerSecond > 0 {
		h.Burst = max(1, int(math.Ceil(h.PerSecond/10)))
	}
	return h
}

// On reports whether the policy limits anything.
func (h HandshakeRate) On() bool { return h.PerSecond > 0 }

// Validate reports every field that breaks a rule, as *FieldError values
// joined with errors.Join. It does not change h.
func (h HandshakeRate) Validate() error {
	var errs []error
	if math.IsNaN(h.PerSecond) || math.IsInf(h.PerSecond, 0) || h.PerSecond < 0 {
		errs = append(errs, &FieldError{Policy: "HandshakeRate", Field: "PerSecond",
			Rule: "must be a finite number, not negative (0 means off)", Value: h.PerSecond})
	}
	if h.Burst < 0 {
		errs = append(errs, &FieldError{Policy: "HandshakeRate", Field: "Burst",
			Rule: "must not be negative (0 means ceil(PerSecond/10))", Value: h.Burst})
	}
	if h.Burst > 0 && h.PerSecond == 0 {
		errs = append(errs, &FieldError{Policy: "HandshakeRate", Field: "Burst",
			Rule: "needs PerSecond (a burst without a rate limits nothing)", Value: h.Burst})
	}
	return errors.Join(errs...)
}

// Admission is the state of one server's HandshakeRate: the token bucket
// and the backlog of refused handshakes it has told when to come back. It
// is pure (time is an input) and not safe for concurrent use.
type Admission struct {
	h      HandshakeRate // effective
	tokens float64
	last   time.Time // of the latest refill
	next   time.Time // the first slot not yet promised to a refused handshake
}

// NewAdmission returns a full bucket for h at now, or h's validation
// error. An Admission for a zero h admits everything.
func NewAdmission(h HandshakeRate, now time.Time) (*Admission, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	h = h.WithDefaults()
	return &Admission{h: h, tokens: float64(h.Burst), last: now, next: now}, nil
}

// Admit decides a handshake that arrived at now. It admits it if a token
// is left. Otherwise it refuses it and returns the Retry-After to answer
// with, in whole seconds as HTTP states it: the refused handshake is given
// the next slot of the backlog (slots follow one another 1/PerSecond
// apart, from when the bucket next holds a token), so that the refused
// come back spread at the rate the server admits rather than all at once;
// the answer is that slot's distance rounded up, at least 1 s and at most
// MaxRetryAfterAnswer (a refusal past it takes no slot). Calls must come
// in time order; an earlier now counts as the latest one.
func (a *Admission) Admit(now time.Time) (ok bool, retryAfter time.Duration) {
	if !a.h.On() {
		return true, 0
	}
	if now.After(a.last) {
		a.tokens = min(float64(a.h.Burst), a.tokens+now.Sub(a.last).Seconds()*a.h.PerSecond)
		a.last = now
	}
	if a.tokens >= 1 {
		a.tokens--
		return true, 0
	}
	per := time.Duration(float64(time.Second) / a.h.PerSecond)
	slot := a.last.Add(time.Duration((1 - a.tokens) * float64(per)))
	if a.next.After(slot) {
		slot = a.next
	}
	wait := slot.Sub(a.last)
	if wait >= MaxRetryAfterAnswer {
		return false, MaxRetryAfterAnswer
	}
	a.next = slot.Add(per)
	secs := max(1, (wait+time.Second-1)/time.Second)
	return false, secs * time.Second
}
