package invariant

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// Invariant names one of the promises, (a) to (i).
type Invariant uint8

// The invariants; see the package doc for each statement.
const (
	NoEarlyRetry Invariant = iota + 1
	BoundedRetries
	DeadReaped
	LiveKept
	NoSendAfterClose
	RegistryMatches
	HerdSpread
	// The cluster's promises, judged only on runs with cluster records.
	NodeDeclaredDead
	FencedFirst
	DeliveredLive
	DirectoryMatches
	// PermanentSlow (h): no attempt after a permanent failure comes sooner
	// than the failure table's slow schedule allows.
	PermanentSlow
	// ReconnectFloor (i): no attempt a reconnect-now brought forward starts
	// closer than Backoff.ReconnectFloor to the attempt before it.
	ReconnectFloor
	// RetryAfterFloor: no attempt after a failure that carried a server's
	// Retry-After (a Down record's Delay) comes sooner than that wait,
	// capped at Backoff.RetryAfterMax (fsm.Backoff.RetryAfterFloor).
	RetryAfterFloor
	// OutboxFaithful (o): a client's outbox never writes a message older
	// than its Age, never out of order, and loses nothing uncounted.
	OutboxFaithful
)

// All lists the invariants in letter order.
var All = []Invariant{NoEarlyRetry, BoundedRetries, DeadReaped, LiveKept, NoSendAfterClose, RegistryMatches, HerdSpread,
	NodeDeclaredDead, FencedFirst, DeliveredLive, DirectoryMatches, PermanentSlow, ReconnectFloor, RetryAfterFloor, OutboxFaithful}

// numInvariants sizes the per-invariant tables.
const numInvariants = int(OutboxFaithful) + 1

var invNames = [...]string{
	NoEarlyRetry: "no_early_retry", BoundedRetries: "bounded_retries", DeadReaped: "dead_reaped",
	LiveKept: "live_kept", NoSendAfterClose: "no_send_after_close", RegistryMatches: "registry_matches",
	HerdSpread: "herd_spread", NodeDeclaredDead: "node_declared_dead", FencedFirst: "fenced_first",
	DeliveredLive: "delivered_live", DirectoryMatches: "directory_matches",
	PermanentSlow: "permanent_slow", ReconnectFloor: "reconnect_floor", RetryAfterFloor: "retry_after_floor", OutboxFaithful: "outbox_faithful",
}

// String returns the invariant's name, e.g. "no_early_retry".
func (i Invariant) String() string {
	if i >= NoEarlyRetry && int(i) < len(invNames) {
		return invNames[i]
	}
	return "Invariant(" + strconv.Itoa(int(i)) + ")"
}

// Letter returns the invariant's letter, 'a' onward in the order of All,
// as the issues name them.
func (i Invariant) Letter() byte { return 'a' + byte(i) - 1 }

// Config sets the oracles and the tolerances. The zero value of each field
// means what its comment says.
type Config struct {
	// Backoff is the clients' reconnect policy; zero fields mean fsm's defaults.
	Backoff fsm.Backoff
	// Failures is the clients' failure table: which Down codes are
	// permanent, and the slow schedule (h) holds them to. The zero value
	// means fsm's defaults.
	Failures fsm.FailurePolicy
	// Liveness is the server sessions' liveness policy; zero fields mean
	// fsm's defaults.
	Liveness fsm.Liveness
	// ClientLiveness is the clients' liveness policy, by which (d) judges a
	// client that drops its link for silence. The zero value means
	// Liveness: one policy for both ends.
	ClientLiveness fsm.Liveness
	// BackoffChanges are the clients' reconnect policy changes at run time
	// (fsm.Client.SetBackoff, conn.Client.SetPolicy), in time order. From
	// each one's At the new policy judges new failures; a retry already
	// pending then may move, but never before the old policy's earliest
	// bound, and must come by the later of that bound and the new latest.
	BackoffChanges []BackoffChange
	// Outbox is the clients' outbox policy, the oracle of (o): its bounds
	// and Age. The zero value means fsm's outbox defaults (100 messages,
	// 1 MiB, 30s), used only when a run carries outbox records.
	Outbox fsm.Outbox
	// Lease is a cluster's lease policy, the oracle of (h); zero fields
	// mean fsm's defaults. Unused without cluster records.
	Lease fsm.Lease
	// Slack is how late an upper bound (latest retry, reap deadline) may be
	// met. Zero suits the simulator, which ticks exactly at deadlines; a
	// real driver states its timer and scheduling latency here.
	Slack time.Duration
	// HerdWindow is the width of the window (g) counts reconnects in.
	// Zero means 100ms.
	HerdWindow time.Duration
	// HerdMaxFraction is the share of a restart's dropped clients one
	// window may hold. Zero turns (g) off (a policy without jitter cannot
	// meet any useful bound); the figures are still measured.
	HerdMaxFraction float64
	// HerdMinClients is the fewest dropped clients for which (g) is
	// judged: a bound on shares means nothing for a handful. Zero means 100.
	HerdMinClients int
	// Only, when not empty, limits the verdicts to these invariants (the
	// others are still tracked, as they share state, but never fail).
	Only []Invariant
}

// BackoffChange is one change of the clients' reconnect policy.
type BackoffChange struct {
	At      time.Duration // when the new policy took effect
	Backoff fsm.Backoff   // the new policy
}

// Validate reports what is wrong with c, naming each field.
func (c Config) Validate() error {
	var errs []error
	if err := c.Failures.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("invariant: Config.Failures: %w", err))
	}
	if err := c.Backoff.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("invariant: Config.Backoff: %w", err))
	}
	if err := c.Liveness.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("invariant: Config.Liveness: %w", err))
	}
	if err := c.ClientLiveness.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("invariant: Config.ClientLiveness: %w", err))
	}
	for i, ch := range c.BackoffChanges {
		if err := ch.Backoff.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("invariant: Config.BackoffChanges[%d].Backoff: %w", i, err))
		}
		if i > 0 && ch.At < c.BackoffChanges[i-1].At {
			errs = append(errs, fmt.Errorf("invariant: Config.BackoffChanges[%d].At %s is before the change before it", i, ch.At))
		}
	}
	if err := c.Outbox.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("invariant: Config.Outbox: %w", err))
	}
	if err := c.Lease.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("invariant: Config.Lease: %w", err))
	}
	if c.Slack < 0 {
		errs = append(errs, fmt.Errorf("invariant: Config.Slack must not be negative (got %s)", c.Slack))
	}
	if c.HerdWindow < 0 {
		errs = append(errs, fmt.Errorf("invariant: Config.HerdWindow must not be negative (got %s)", c.HerdWindow))
	}
	if math.IsNaN(c.HerdMaxFraction) || c.HerdMaxFraction < 0 || c.HerdMaxFraction > 1 {
		errs = append(errs, fmt.Errorf("invariant: Config.HerdMaxFraction must be within [0, 1] (got %v)", c.HerdMaxFraction))
	}
	if c.HerdMinClients < 0 {
		errs = append(errs, fmt.Errorf("invariant: Config.HerdMinClients must not be negative (got %d)", c.HerdMinClients))
	}
	for _, i := range c.Only {
		if i < NoEarlyRetry || int(i) >= numInvariants {
			errs = append(errs, fmt.Errorf("invariant: Config.Only holds unknown invariant %d", i))
		}
	}
	return errors.Join(errs...)
}

// Violation is one broken promise.
type Violation struct {
	Invariant Invariant // the promise broken
	// At is the time of the record that revealed it (the end of the run
	// for what Finish finds).
	At time.Duration
	// Machine and ID name the instance it concerns (zero for the world).
	Machine fsm.Machine
	ID      uint32
	// Index is the number of the record that revealed it (0-based, in the
	// order observed), or the count of records seen when Finish found it.
	Index  int
	Detail string // what happened, in words
}

// String renders the violation on one line.
func (v Violation) String() string {
	subject := "world"
	if v.Machine != 0 {
		subject = v.Machine.String() + " " + strconv.FormatUint(uint64(v.ID), 10)
	}
	return fmt.Sprintf("(%c) %s violated at %s by %s: %s", v.Invariant.Letter(), v.Invariant, v.At, subject, v.Detail)
}

// Verdict sums up one invariant over a run.
type Verdict struct {
	Invariant  Invariant `json:"-"`          // the invariant judged
	Name       string    `json:"invariant"`  // Invariant.String, for JSON
	Letter     string    `json:"letter"`     // Invariant.Letter, for JSON
	Checked    int       `json:"checked"`    // how many times it was checked
	Violations int       `json:"violations"` // how many of those failed
}

// Held reports whether the invariant was checked at least once and never
// violated.
func (v Verdict) Held() bool { return v.Violations == 0 }

// keepViolations bounds the violations kept in full; all are counted.
const keepViolations = 64

// oracle converts the fsm policies, which speak time.Time, to the
// durations-since-epoch of a trace.
type oracle struct {
	b     fsm.Backoff
	fp    fsm.FailurePolicy // defaults applied
	l     fsm.Liveness
	cl    fsm.Liveness // the clients' (defaults applied)
	lease fsm.Lease
	ob    fsm.Outbox // defaults applied (outboxPolicy)
	slack time.Duration
}

var epoch = time.Unix(0, 0).UTC()

func (o *oracle) earliest(n int32) time.Duration { return o.b.Earliest(int(n)) }
func (o *oracle) latest(n int32) time.Duration   { return o.b.Latest(int(n)) }
func (o *oracle) reapDeadline(lastHeard time.Duration) time.Duration {
	return o.l.ReapDeadline(epoch.Add(lastHeard)).Sub(epoch)
}
func (o *oracle) idleReapDeadline(lastActivity time.Duration) (time.Duration, bool) {
	t, ok := o.l.IdleReapDeadline(epoch.Add(lastActivity))
	return t.Sub(epoch), ok
}
