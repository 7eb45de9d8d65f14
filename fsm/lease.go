package fsm

import (
	"errors"
	"fmt"
	"time"
)

// Lease is the policy of a cluster node's lease in the engine's key-value
// store, and of its peers' view of it. The zero value is valid and means
// the defaults given on each field.
//
// A node proves it is alive by writing its lease: a create when it joins,
// a renewal every Heartbeat. The engine expires a lease TTL after its last
// write. A node's proof time P is the moment it SENT the last write the
// engine acknowledged: the engine wrote it no earlier, so the lease cannot
// expire before P+TTL. The three bounds follow from P alone:
//
//	FenceAt(P)      = P + Fence             the node has closed its sessions
//	EarliestDead(P) = P + TTL               no other node counts them dead before
//	LatestDead(W)   = W + TTL + Heartbeat + Slack (+ Failover)
//	                                        every other node counts them dead by,
//	                                        W being the engine's last write of the lease
//
// Fence < TTL, so a node that cannot prove its lease has fenced itself
// strictly before anyone may declare it dead: no session is ever served by
// a node the cluster counts as dead. Fence ≥ 2×Heartbeat, so the renewal
// sent a heartbeat after the proof has a whole heartbeat to be answered;
// the defaults leave a node two renewals after its proof (at P+3s and
// P+6s) before it fences at P+7s.
type Lease struct {
	// TTL is how long the engine keeps a lease after its last write. It
	// must be whole seconds, at least 1s: the engine's per-key TTL is.
	// Zero means 10s.
	TTL time.Duration
	// Heartbeat is the renewal period, the period of the peers' re-check
	// of every lease (a KV watch can miss an expiry marker), and the time a
	// renewal may stay unanswered before it counts as failed. At most
	// TTL/3. Zero means min(3s, TTL/3).
	Heartbeat time.Duration
	// Fence is how long after its last proof a node that could not renew
	// fences itself. At least 2×Heartbeat, shorter than TTL. Zero means
	// TTL - Heartbeat: the latest fence that still leaves a heartbeat
	// between the fence and the earliest declared death.
	Fence time.Duration
	// Failover is the allowance LatestDead adds when the engine's own
	// leader failed over: writes and expiries pause until a new leader is
	// elected. Zero means 10s (NATS elects a new stream leader within its
	// maximum election timeout, 9s; measured 4.2-6.2s from a SIGKILL of the
	// leader's node with TTL 3s, docs/decisions.md).
	Failover time.Duration
	// Slack is the rest of LatestDead: the engine's expiry granularity
	// (NATS checks TTLs about every 250ms) and a re-check's round trip.
	// Zero means 1s.
	Slack time.Duration
}

// DefaultLease returns the defaults: TTL 10s, heartbeat 3s, fence 7s,
// failover allowance 10s, slack 1s.
func DefaultLease() Lease { return Lease{}.WithDefaults() }

// WithDefaults returns l with every zero field replaced by its default.
func (l Lease) WithDefaults() Lease {
	if l.TTL == 0 {
		l.TTL = 10 * time.Second
	}
	if l.Heartbeat == 0 {
		l.Heartbeat = min(3*time.Second, l.TTL/3)
	}
	if l.Fence == 0 {
		l.Fence = l.TTL - l.Heartbeat
	}
	if l.Failover == 0 {
		l.Failover = 10 * time.Second
	}
	if l.Slack == 0 {
		l.Slack = time.Second
	}
	return l
}

// Validate reports every field that breaks a rule, as *FieldError values
// joined with errors.Join. It does not change l; zero fields are checked as
// their defaults.
func (l Lease) Validate() error {
	var errs []error
	bad := func(field, rule string, v any) {
		errs = append(errs, &FieldError{Policy: "Lease", Field: field, Rule: rule, Value: v})
	}
	if negative(bad, []namedDuration{{"TTL", l.TTL}, {"Heartbeat", l.Heartbeat}, {"Fence", l.Fence},
		{"Failover", l.Failover}, {"Slack", l.Slack}}) {
		return errors.Join(errs...) // the cross-field rules would only repeat it
	}
	e := l.WithDefaults()
	if e.TTL < time.Second || e.TTL%time.Second != 0 {
		bad("TTL", "must be whole seconds, at least 1s (the engine's per-key TTL is)", e.TTL)
	}
	if e.Heartbeat <= 0 {
		bad("Heartbeat", fmt.Sprintf("defaults to TTL/3, which is zero for TTL %s: set it", e.TTL), e.Heartbeat)
	} else if e.Heartbeat > e.TTL/3 {
		bad("Heartbeat", fmt.Sprintf("must be at most TTL/3 (%s), so a lease survives two failed renewals", e.TTL/3), e.Heartbeat)
	}
	if e.Fence >= e.TTL {
		bad("Fence", fmt.Sprintf("must be shorter than TTL (%s): a node must fence itself before anyone may count it dead", e.TTL), e.Fence)
	}
	if e.Fence < 2*e.Heartbeat {
		// Found by the cluster property suite: with Fence a hair over
		// Heartbeat, the renewal sent a heartbeat after the proof is
		// answered after the fence, every time, and the node fences,
		// rejoins and fences again for ever.
		bad("Fence", fmt.Sprintf("must be at least 2×Heartbeat (%s): the renewal sent a heartbeat after the last proof needs a heartbeat to come back", 2*e.Heartbeat), e.Fence)
	}
	return errors.Join(errs...)
}

// namedDuration is a policy field for negative.
type namedDuration struct {
	name string
	v    time.Duration
}

// negative reports each negative field through bad, and whether there was one.
func negative(bad func(field, rule string, v any), ds []namedDuration) bool {
	found := false
	for _, d := range ds {
		if d.v < 0 {
			bad(d.name, "must not be negative", d.v)
			found = true
		}
	}
	return found
}

// FenceAt returns when a node whose last proved lease write was sent at
// proof fences itself if it proves nothing more: proof + Fence.
func (l Lease) FenceAt(proof time.Time) time.Time {
	l = l.WithDefaults()
	return proof.Add(l.Fence)
}

// EarliestDead returns the earliest moment any other node may count dead
// a node whose last proved lease write was sent at proof: proof + TTL,
// since the engine wrote the lease no earlier than it was sent. FenceAt is
// strictly before it.
func (l Lease) EarliestDead(proof time.Time) time.Time {
	l = l.WithDefaults()
	return proof.Add(l.TTL)
}

// LatestDead returns the latest moment every other node must count dead a
// node whose lease the engine last wrote at lastWrite: lastWrite + TTL (the
// expiry) + Heartbeat (the re-check that finds it even when the watch
// missed the expiry marker) + Slack (expiry granularity, the re-check's
// round trip), plus Failover if the engine's leader failed over meanwhile.
func (l Lease) LatestDead(lastWrite time.Time, failover bool) time.Time {
	l = l.WithDefaults()
	t := lastWrite.Add(l.TTL + l.Heartbeat + l.Slack)
	if failover {
		t = t.Add(l.Failover)
	}
	return t
}
