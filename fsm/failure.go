package fsm

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Failure is what a driver saw when an attempt or a link failed, as far as
// it matters to the failure table: the HTTP status of a refused handshake,
// or the close code of a link the server closed. The zero Failure is a
// network failure (refused, reset, timeout, DNS, a drop without a close
// frame), which is always transient.
type Failure struct {
	// Status is the HTTP status a handshake was answered with instead of
	// 101; zero when there was no HTTP answer.
	Status int
	// Code is the WebSocket close code the server sent (RFC 6455 §7.4);
	// zero when the link ended without a close frame (1006).
	Code int
	// RetryAfter is the wait the server asked for with a refused
	// handshake's Retry-After header (ParseRetryAfter reads it); zero when
	// it sent none. Whatever the failure's class, no retry comes sooner
	// than Backoff.RetryAfterFloor of it (see Backoff.RetryAfterWait).
	RetryAfter time.Duration
}

// String names the failure the way logs and Stats show it: "http 401",
// "close 1008" or "network".
func (f Failure) String() string {
	if f.Status != 0 {
		return "http " + strconv.Itoa(f.Status)
	}
	if f.Code != 0 {
		return "close " + strconv.Itoa(f.Code)
	}
	return "network"
}

// FailureClass is what the client does about a failure.
type FailureClass uint8

const (
	// Transient (the zero value): "try later". The failure counts toward
	// the run and the client waits by Backoff. A transient failure never
	// ends the client on its own (only MaxAttempts or GiveUpAfter do).
	Transient FailureClass = iota
	// Permanent: "go away". The client enters Rejected and waits by the
	// slow schedule (FailurePolicy.Schedule), counted in consecutive
	// rejections, so it never hammers a server that refused it.
	Permanent
	// Fatal: give up at once (GaveUp, GiveUpRejected): for a failure the
	// operator knows will not heal by waiting (a revoked token, say). Only
	// by configuration; no failure is fatal by default.
	Fatal
)

var classNames = [...]string{Transient: "transient", Permanent: "permanent", Fatal: "fatal"}

// String returns the class's name, as ParseFailureClass accepts it.
func (c FailureClass) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "FailureClass(" + strconv.Itoa(int(c)) + ")"
}

// ParseFailureClass returns the class named s.
func ParseFailureClass(s string) (FailureClass, error) {
	for c, n := range classNames {
		if n == s {
			return FailureClass(c), nil
		}
	}
	return 0, fmt.Errorf("fsm: unknown failure class %q (want transient, permanent or fatal)", s)
}

// FailureRule classes one HTTP status (Status set) or one close code (Code
// set).
type FailureRule struct {
	Status int          // an HTTP status, or zero
	Code   int          // a WebSocket close code, or zero
	Class  FailureClass // the class a matching failure gets
}

// DefaultFailureRules is the failure table of the zero FailurePolicy:
// 401, 403 and 404 answers and close codes 1002 (protocol error), 1003
// (unsupported data), 1007 (invalid payload), 1008 (policy violation) and
// 1009 (message too big) are permanent. Everything else, 5xx and 429
// answers, and close codes 1001 (going away), 1006, 1011 (server error),
// 1012 (service restart), 1013 (try again later) included, is transient.
func DefaultFailureRules() []FailureRule {
	return []FailureRule{
		{Status: 401, Class: Permanent}, {Status: 403, Class: Permanent}, {Status: 404, Class: Permanent},
		{Code: 1002, Class: Permanent}, {Code: 1003, Class: Permanent}, {Code: 1007, Class: Permanent},
		{Code: 1008, Class: Permanent}, {Code: 1009, Class: Permanent},
	}
}

// FailurePolicy is the failure table: which failures are transient,
// permanent or fatal, and how slowly a client retries after a permanent
// one. The zero value is valid and means DefaultFailureRules with the
// default slow schedule.
type FailurePolicy struct {
	// Rules classes HTTP statuses and close codes; the first rule that
	// matches wins. Nil means DefaultFailureRules(); a non-nil empty slice
	// means no rule (everything not matched by AppCodes is transient).
	Rules []FailureRule
	// AppCodes classes the application close codes 4000-4999 that no rule
	// names. The zero value is Transient.
	AppCodes FailureClass
	// Schedule is the slow schedule after a permanent failure: the delay
	// after the k-th consecutive rejection is Schedule.Delay(k). A link
	// that comes up ends the rejections. The zero value means
	// DefaultSchedule() with the client's Backoff.Jitter and
	// JitterFraction.
	Schedule Backoff
}

// DefaultSchedule is the slow schedule of the zero FailurePolicy: 30 s,
// ×2 per rejection, up to 10 min, ±50 % jitter, no immediate retry. A
// misconfigured fleet of 1 000 clients then costs a server about 33
// handshakes a second at first and under 2 a second after five rejections.
func DefaultSchedule() Backoff {
	return Backoff{Initial: 30 * time.Second, Multiplier: 2, Max: 10 * time.Minute}.WithDefaults()
}

// WithDefaults returns p with nil Rules and a zero Schedule replaced by
// their defaults for a client whose reconnect policy is b.
func (p FailurePolicy) WithDefaults(b Backoff) FailurePolicy {
	if p.Rules == nil {
		p.Rules = DefaultFailureRules()
	}
	if p.Schedule == (Backoff{}) {
		p.Schedule = Backoff{Initial: 30 * time.Second, Multiplier: 2, Max: 10 * time.Minute,
			Jitter: b.Jitter, JitterFraction: b.JitterFraction}
	}
	p.Schedule = p.Schedule.WithDefaults()
	return p
}

// Validate reports every rule or field that breaks a rule, as *FieldError
// values joined with errors.Join. It does not change p.
func (p FailurePolicy) Validate() error {
	var errs []error
	bad := func(field, rule string, v any) {
		errs = append(errs, &FieldError{Policy: "FailurePolicy", Field: field, Rule: rule, Value: v})
	}
	for i, r := range p.Rules {
		f := "Rules[" + strconv.Itoa(i) + "]"
		if (r.Status == 0) == (r.Code == 0) {
			bad(f, "must set exactly one of Status and Code", r)
		} else if r.Status != 0 && (r.Status < 100 || r.Status > 599 || r.Status == 101) {
			bad(f+".Status", "must be an HTTP status other than 101", r.Status)
		} else if r.Code != 0 && (r.Code < 1001 || r.Code > 4999) {
			bad(f+".Code", "must be a close code within 1001-4999", r.Code)
		}
		if int(r.Class) >= len(classNames) {
			bad(f+".Class", "must be transient, permanent or fatal", r.Class)
		}
	}
	if int(p.AppCodes) >= len(classNames) {
		bad("AppCodes", "must be transient, permanent or fatal", p.AppCodes)
	}
	if err := p.Schedule.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("fsm: FailurePolicy.Schedule: %w", err))
	}
	return errors.Join(errs...)
}

// Classify returns f's class under p: the first rule naming f's status or
// close code, else AppCodes for a close code within 4000-4999, else
// Transient.
func (p FailurePolicy) Classify(f Failure) FailureClass {
	rules := p.Rules
	if rules == nil {
		rules = DefaultFailureRules()
	}
	for _, r := range rules {
		if (r.Status != 0 && r.Status == f.Status) || (r.Code != 0 && r.Code == f.Code) {
			return r.Class
		}
	}
	if f.Status == 0 && f.Code >= 4000 && f.Code <= 4999 {
		return p.AppCodes
	}
	return Transient
}
