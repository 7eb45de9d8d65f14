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
}

// The v2 rules bite: a driver that hands its machine a plain failure for
// a 401 is caught by (l); one that dials on every reconnect-now by (m).
func TestPolicyV2BrokenVariantsAreCaught(t *testing.T) {
	for _, c := range []struct {
		name  string
		bug   sim.Bug
		kinds []sim.FaultKind
		inv   invariant.Invariant
	}{
		{"go-away handed over as a plain failure", sim.BugIgnoreGoAway, []sim.FaultKind{sim.Auth}, invariant.PermanentSlow},
		{"reconnect-now dials behind the machine", sim.BugNudgeDials, []sim.FaultKind{sim.Refused, sim.Nudge}, invariant.ReconnectFloor},
	} {
		t.Run(c.name, func(t *testing.T) {
			bites(t, "("+string(c.inv.Letter())+") "+c.inv.String(), withBug(c.bug, c.kinds, nil, c.inv))
		})
	}
}
