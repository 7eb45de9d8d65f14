package lifeline_test

import (
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/invariant"
	"github.com/lifeline-go/lifeline/sim"
)

// genPolicyV2 draws the reconnect policy v2 parts of a scenario: a slow
// schedule and a reconnect-now floor, and in every case (when the fault
// kinds allow them) a server that answers 401 or 403 for up to 30 s from
// the start and an owner calling ReconnectNow in a loop for up to 10 s
// while the server restarts, so that (l) and (m) are
// reached in a good share of the worlds rather than by the luck of the
// fault draw.
func genPolicyV2(t *rapid.T, sc *sim.Scenario, kinds []sim.FaultKind) {
	sc.Failures.Schedule = fsm.Backoff{
		Initial:    dur(t, 100*time.Millisecond, 30*time.Second, "slow_initial"),
		Multiplier: rapid.Float64Range(1, 3).Draw(t, "slow_multiplier"),
		Jitter:     rapid.SampledFrom([]fsm.JitterKind{fsm.JitterNone, fsm.JitterSymmetric, fsm.JitterFull, fsm.JitterEqual}).Draw(t, "slow_jitter"),
	}
	sc.Failures.Schedule.Max = sc.Failures.Schedule.Initial * time.Duration(rapid.IntRange(1, 20).Draw(t, "slow_max_factor"))
	sc.Backoff.ReconnectFloor = dur(t, 0, 200*time.Millisecond, "reconnect_floor")
	// The owner's loop below starts after this window: a server that is
	// down refuses before it can answer 401.
	authEnd := dur(t, time.Second, 30*time.Second, "policy_auth_length")
	if slices.Contains(kinds, sim.Auth) {
		// From the start: a client is refused only when it dials, and
		// every client dials first at 0 (a wrong token from the outset,
		// fixed within the half minute).
		sc.Faults = append(sc.Faults, sim.Fault{Kind: sim.Auth, Start: 0, End: authEnd,
			Code: rapid.SampledFrom([]int{401, 403}).Draw(t, "policy_auth_code")})
	}
	if slices.Contains(kinds, sim.Nudge) {
		// The owner's loop runs while the server is down (a restart
		// drops every link, then refuses): the network "came back" over
		// and over while the clients back off.
		// Ten seconds at most: a nudge every 10 ms is a hundred events a
		// second per client, and the event budget is shared.
		start := authEnd + dur(t, 0, sc.Duration/4, "policy_nudge_start")
		end := start + dur(t, time.Second, 10*time.Second, "policy_nudge_length")
		sc.Faults = append(sc.Faults, sim.Fault{Kind: sim.Nudge, Start: start, End: end},
			sim.Fault{Kind: sim.Restart, Start: start, End: end})
	}
	// A server that rate-limits handshakes in a third of the worlds, with
	// a crowd of clients per server that dial it together at the start
	// (and after any restart), so that (n) meets refusals with a
	// Retry-After; a client cap below the answers in half of those.
	// (Raising Clients keeps every fault's client range valid.)
	if rapid.IntRange(0, 2).Draw(t, "rate_limited") == 0 {
		sc.HandshakeRate = fsm.HandshakeRate{PerSecond: rapid.Float64Range(0.05, 5).Draw(t, "handshake_rate"),
			Burst: rapid.IntRange(1, 2).Draw(t, "handshake_burst")}
		sc.Clients = max(sc.Clients, 3*max(sc.Servers, 1))
		if rapid.Bool().Draw(t, "retry_after_capped") {
			sc.Backoff.RetryAfterMax = dur(t, time.Millisecond, 10*time.Second, "retry_after_max")
		}
	}
}

// rateLimited makes sure a world meets Retry-After refusals: a server
// admitting one handshake every five seconds, several clients dialing it
// at the start, and an immediate first retry, which a driver that drops
// the Retry-After takes at once.
func rateLimited(_ *rapid.T, sc *sim.Scenario) {
	sc.HandshakeRate = fsm.HandshakeRate{PerSecond: 0.2, Burst: 1}
	sc.Clients = max(sc.Clients, 3*max(sc.Servers, 1))
	sc.Backoff.FirstImmediate = true
	sc.Backoff.RetryAfterMax = 0
}

// The v2 rules bite: a driver that hands its machine a plain failure for
// a 401 is caught by (l); one that dials on every reconnect-now by (m);
// one that drops a 503's Retry-After by (n).
func TestPolicyV2BrokenVariantsAreCaught(t *testing.T) {
	for _, c := range []struct {
		name  string
		bug   sim.Bug
		kinds []sim.FaultKind
		tweak func(*rapid.T, *sim.Scenario)
		inv   invariant.Invariant
	}{
		{"go-away handed over as a plain failure", sim.BugIgnoreGoAway, []sim.FaultKind{sim.Auth}, nil, invariant.PermanentSlow},
		{"reconnect-now dials behind the machine", sim.BugNudgeDials, []sim.FaultKind{sim.Refused, sim.Nudge}, nil, invariant.ReconnectFloor},
		{"Retry-After dropped on the way to the machine", sim.BugIgnoreRetryAfter, []sim.FaultKind{sim.Restart}, rateLimited, invariant.RetryAfterFloor},
	} {
		t.Run(c.name, func(t *testing.T) {
			bites(t, "("+string(c.inv.Letter())+") "+c.inv.String(), withBug(c.bug, c.kinds, c.tweak, c.inv))
		})
	}
}
