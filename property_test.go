// The root property suite: rapid generates reconnect and liveness
// policies, fleets, fault schedules and latencies, runs them in the
// simulator, and checks every invariant of package invariant over the
// trace. Each invariant is also shown to bite: a deliberately broken
// variant (the historical bugs, package sim's Bug values) must be caught.
//
// It runs by default in a few seconds; -rapid.checks=N runs more cases.
// On failure it prints the rapid seed, the scenario seed, the shrunk
// scenario as JSON (save it and run `lifeline sim --scenario FILE`), the
// violation and the shortest trace excerpt that shows it.
package lifeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/proptest"
	"github.com/lifeline-go/lifeline/invariant"
	"github.com/lifeline-go/lifeline/sim"
	"github.com/lifeline-go/lifeline/trace"
)

// dur draws a duration in [lo, hi]; rapid shrinks it towards lo.
func dur(t *rapid.T, lo, hi time.Duration, label string) time.Duration {
	return time.Duration(rapid.Int64Range(int64(lo), int64(hi)).Draw(t, label))
}

func genBackoff(t *rapid.T) fsm.Backoff {
	b := fsm.Backoff{
		Initial:        dur(t, 10*time.Millisecond, 5*time.Second, "initial"),
		Multiplier:     rapid.Float64Range(1, 3).Draw(t, "multiplier"),
		Jitter:         rapid.SampledFrom([]fsm.JitterKind{fsm.JitterNone, fsm.JitterSymmetric, fsm.JitterFull, fsm.JitterEqual, fsm.JitterDecorrelated}).Draw(t, "jitter"),
		MaxAttempts:    rapid.IntRange(0, 8).Draw(t, "max_attempts"),
		FirstImmediate: rapid.Bool().Draw(t, "first_immediate"),
		ConnectTimeout: dur(t, 500*time.Millisecond, 20*time.Second, "connect_timeout"),
		StableAfter:    dur(t, time.Second, time.Minute, "stable_after"),
	}
	b.Max = b.Initial * time.Duration(rapid.IntRange(1, 60).Draw(t, "max_factor"))
	if b.Jitter == fsm.JitterSymmetric || b.Jitter == fsm.JitterFull {
		b.JitterFraction = rapid.Float64Range(0, 1).Draw(t, "jitter_fraction")
	}
	return b
}

func genLiveness(t *rapid.T, side string) fsm.Liveness {
	l := fsm.Liveness{PingInterval: dur(t, 2*time.Second, time.Minute, side+"_ping")}
	l.PongTimeout = dur(t, time.Second, l.PingInterval-time.Millisecond, side+"_pong")
	l.CloseTimeout = dur(t, 100*time.Millisecond, 10*time.Second, side+"_close")
	if rapid.IntRange(0, 2).Draw(t, side+"_idle_on") > 0 {
		l.IdleTimeout = dur(t, l.PingInterval, 5*time.Minute, side+"_idle")
	}
	l.MaxErrors = rapid.IntRange(1, 5).Draw(t, side+"_max_errors")
	return l
}

func genLatency(t *rapid.T, label string) sim.Latency {
	return sim.Latency{
		Base:   dur(t, 0, 200*time.Millisecond, label+"_base"),
		Jitter: dur(t, 0, 300*time.Millisecond, label+"_jitter"),
		Dist:   rapid.SampledFrom([]sim.Dist{sim.Uniform, sim.Exponential}).Draw(t, label+"_dist"),
	}
}

var allFaults = []sim.FaultKind{sim.Refused, sim.Occupied, sim.DNS, sim.Stall, sim.Auth, sim.AcceptClose,
	sim.Kill, sim.Crash, sim.Blackhole, sim.RST, sim.LatencySpike, sim.Loss, sim.Partition, sim.Restart, sim.Garbage, sim.Nudge}

func genFault(t *rapid.T, sc *sim.Scenario, i int, kinds []sim.FaultKind) sim.Fault {
	p := func(s string) string { return "fault" + string(rune('0'+i)) + "_" + s }
	f := sim.Fault{Kind: rapid.SampledFrom(kinds).Draw(t, p("kind"))}
	f.Start = dur(t, 0, sc.Duration-time.Second, p("start"))
	f.End = f.Start + dur(t, time.Second, sc.Duration/2, p("length"))
	if rapid.Bool().Draw(t, p("some_clients")) {
		from := rapid.IntRange(0, sc.Clients-1).Draw(t, p("from"))
		f.Clients = sim.Range{From: from, To: rapid.IntRange(from+1, sc.Clients).Draw(t, p("to"))}
	}
	if sc.Servers > 1 && rapid.Bool().Draw(t, p("one_server")) {
		f.Servers = []int{rapid.IntRange(0, sc.Servers-1).Draw(t, p("server"))}
	}
	switch f.Kind {
	case sim.Loss:
		f.Rate = rapid.Float64Range(0, 0.5).Draw(t, p("rate"))
	case sim.Garbage:
		f.Rate = rapid.Float64Range(0, 0.99).Draw(t, p("rate"))
	case sim.Auth:
		f.Code = rapid.SampledFrom([]int{401, 403}).Draw(t, p("code"))
	case sim.LatencySpike:
		f.Latency = genLatency(t, p("latency"))
		f.Latency.Base = dur(t, 0, 3*time.Second, p("spike_base"))
	}
	return f
}

// durationTiers spread virtual durations from a minute to hours: rapid's
// draws over one wide range crowd at its low end (the median was the
// minimum), so a tier is drawn first, then a duration within it.
var durationTiers = [][2]time.Duration{{time.Minute, 5 * time.Minute}, {5 * time.Minute, 20 * time.Minute},
	{20 * time.Minute, time.Hour}, {time.Hour, 3 * time.Hour}}

// genScenario draws a small world: few clients, a minute to hours of
// virtual time, every kind of fault, policies anywhere in their valid
// ranges, traffic both ways (or none) and the idle tier and error limits on.
func genScenario(t *rapid.T, kinds []sim.FaultKind) sim.Scenario {
	return genScenarioIn(t, kinds, durationTiers)
}

// genScenarioIn is genScenario with its durations drawn from tiers.
func genScenarioIn(t *rapid.T, kinds []sim.FaultKind, tiers [][2]time.Duration) sim.Scenario {
	tier := tiers[rapid.IntRange(0, len(tiers)-1).Draw(t, "duration_tier")]
	sc := sim.Scenario{
		Seed:           rapid.Uint64().Draw(t, "seed"),
		Clients:        rapid.IntRange(1, 8).Draw(t, "clients"),
		Servers:        rapid.IntRange(1, 2).Draw(t, "servers"),
		Duration:       dur(t, tier[0], tier[1], "duration"),
		Backoff:        genBackoff(t),
		ClientLiveness: genLiveness(t, "client"),
		ServerLiveness: genLiveness(t, "server"),
		Latency:        genLatency(t, "latency"),
	}
	if rapid.IntRange(0, 3).Draw(t, "traffic") > 0 {
		sc.EventInterval = dur(t, 500*time.Millisecond, time.Minute, "event_interval")
	}
	if rapid.IntRange(0, 3).Draw(t, "client_traffic") > 0 {
		sc.ClientEventInterval = dur(t, 500*time.Millisecond, time.Minute, "client_event_interval")
	}
	// A policy change at run time in a third of the cases: pending
	// retries move, never before the old policy promised.
	if rapid.IntRange(0, 2).Draw(t, "policy_changes") == 0 {
		for i, n := 0, rapid.IntRange(1, 2).Draw(t, "changes"); i < n; i++ {
			at := dur(t, 0, sc.Duration-time.Nanosecond, "change_at")
			if i > 0 {
				at = max(at, sc.BackoffChanges[i-1].At)
			}
			sc.BackoffChanges = append(sc.BackoffChanges, sim.BackoffChange{At: at, Backoff: genBackoff(t)})
		}
	}
	// At least one fault in most cases: a world without faults exercises
	// little but the steady state.
	for i, n := 0, rapid.IntRange(0, 6).Draw(t, "faults")+rapid.IntRange(0, 2).Draw(t, "faults_extra"); i < n; i++ {
		sc.Faults = append(sc.Faults, genFault(t, &sc, i, kinds))
	}
	genPolicyV2(t, &sc, kinds)
	genOutbox(t, &sc)
	// A correct client refused for the whole run makes about Duration /
	// (mean delay) attempts; at Max 30 ms over an hour that is ~10^5 per
	// client, more events than check's budget allows and nothing a
	// thousand attempts would not show. So a long run's policies get a Max
	// of at least Duration/10 000: at most ~20 000 attempts per client
	// (full jitter halves the mean), fast policies stay in short runs.
	floorMax(&sc.Backoff, sc.Duration)
	for i := range sc.BackoffChanges {
		floorMax(&sc.BackoffChanges[i].Backoff, sc.Duration)
	}
	return sc
}

// floorMax raises b.Max to d/10 000 if it is lower (see genScenarioIn).
func floorMax(b *fsm.Backoff, d time.Duration) {
	b.Max = max(b.Max, d/10_000)
}

// check runs sc and fails t, with everything needed to reproduce and
// understand it, if an invariant in only (all when empty) is violated.
func check(t *rapid.T, sc sim.Scenario, opt sim.Options, only ...invariant.Invariant) *sim.Result {
	opt.KeepTrace, opt.StopOnViolation = true, true
	if opt.MaxEvents == 0 {
		// A million events per 30 minutes of virtual time: generous for a
		// correct driver (see floorMax), while a driver stuck in a tight
		// loop still runs out of it within a few virtual seconds.
		opt.MaxEvents = max(1_000_000, uint64(sc.Duration/(30*time.Minute))*1_000_000)
	}
	opt.Check.Only = only
	res, err := sim.Run(context.Background(), sc, opt)
	if err != nil && !errors.Is(err, sim.ErrEventBudget) {
		t.Fatalf("sim.Run: %v", err)
	}
	if err != nil || res.Suite.Failed() {
		t.Fatal(failureReport(sc, res, err))
	}
	return res
}

// failureReport renders the seed, the shrunk scenario, the violation and
// the trace excerpt that shows it.
func failureReport(sc sim.Scenario, res *sim.Result, runErr error) string {
	var b strings.Builder
	js, _ := json.Marshal(sc)
	b.WriteString("scenario seed: ")
	b.WriteString(jsonNumber(sc.Seed))
	b.WriteString("\nscenario (save as a file for `lifeline sim --scenario FILE`):\n")
	b.Write(js)
	b.WriteString("\n")
	if runErr != nil {
		b.WriteString("run error: " + runErr.Error() + "\n")
		tail := res.Trace[max(0, len(res.Trace)-20):]
		b.WriteString("last records:\n")
		_ = trace.Write(&b, tail)
		return b.String()
	}
	v := res.Suite.Violations()[0]
	b.WriteString("violation: " + v.String() + "\n")
	m, id := v.Machine, v.ID
	if m == 0 && len(res.Trace) > 0 { // a world-level violation: show the end
		m, id = fsm.MachineClient, trace.NoID
	}
	ex := trace.Excerpt(res.Trace, m, id, v.Index, 30)
	b.WriteString("trace excerpt (" + jsonNumber(uint64(len(ex))) + " records):\n")
	_ = trace.Write(&b, ex)
	return b.String()
}

func jsonNumber(n uint64) string { js, _ := json.Marshal(n); return string(js) }

// TestInvariantsHold is the main property: under every fault, for any
// valid policy, the correct driver keeps (a) to (g), (l) to (o). A share of the cases
// (two fifths) is a fleet of herdClients dropped by a server restart, the
// only world (g) is judged in; the rest are small worlds under every fault.
// It counts the cases that exercised each invariant (checked it at least
// once) and fails if any was exercised in fewer than minExercised of them:
// a property no case reaches proves nothing.
func TestInvariantsHold(t *testing.T) {
	var cases int
	exercised := map[invariant.Invariant]int{}
	rapid.Check(t, func(t *rapid.T) {
		var res *sim.Result
		if rapid.IntRange(0, 4).Draw(t, "herd_case") < 2 {
			sc := herdScenario(t, fsm.JitterFull)
			// Half a minute after the herd, kill -9 a few of the fleet: their
			// sessions end by read errors (d) judges and (c) bounds.
			back := sc.Faults[0].End
			sc.Faults = append(sc.Faults, sim.Fault{Kind: sim.Kill, Start: back + 30*time.Second, Clients: sim.Range{From: 0, To: 50}})
			sc.EventInterval = dur(t, 10*time.Second, time.Minute, "herd_event_interval") // and (e) has sends to judge
			if rapid.IntRange(0, 2).Draw(t, "herd_rate_limited") > 0 {
				// The restarted server admits the herd at a rate: refusals
				// with a Retry-After for (n), while (g) still judges the
				// first attempts, which come before any refusal. At
				// 250/s or more the whole fleet (at most 1 000) is in
				// well before the restart at 10 s, so (g)'s herd is the
				// dropped fleet alone.
				sc.HandshakeRate = fsm.HandshakeRate{PerSecond: rapid.Float64Range(250, 1000).Draw(t, "herd_handshake_rate")}
			}
			res = check(t, sc, herdOptions())
		} else {
			sc := genScenario(t, allFaults)
			if rapid.Bool().Draw(t, "ending_fault") {
				// One more fault that ends open links, so (d) has ends to judge.
				sc.Faults = append(sc.Faults, genFault(t, &sc, 9, endingFaults))
			}
			res = check(t, sc, sim.Options{})
		}
		cases++
		for _, v := range res.Suite.Verdicts() {
			if v.Checked > 0 {
				exercised[v.Invariant]++
			}
		}
	})
	if t.Failed() || cases == 0 {
		return
	}
	for _, inv := range invariant.All {
		if inv >= invariant.NodeDeclaredDead && inv <= invariant.DirectoryMatches {
			continue // the cluster's promises: these worlds have no cluster (cluster properties reach them)
		}
		share := float64(exercised[inv]) / float64(cases)
		t.Logf("(%c) %-20s exercised in %3d of %d cases (%.0f%%)", inv.Letter(), inv, exercised[inv], cases, 100*share)
		if cases >= 50 && share < minExercised {
			t.Errorf("(%c) %s exercised in only %.0f%% of the cases; the generators must reach it in at least %.0f%%",
				inv.Letter(), inv, 100*share, 100*minExercised)
		}
	}
}

// endingFaults end open links for a reason (d) judges.
var endingFaults = []sim.FaultKind{sim.Kill, sim.Crash, sim.Blackhole, sim.RST, sim.Garbage}

// minExercised is the least share of TestInvariantsHold's cases each
// invariant must be exercised in (judged at 50 cases or more).
const minExercised = 0.20

// The herd bound (g), stated: with full jitter and Initial ≥ 3 s, after a
// server restart drops 1000 clients, no 100 ms window holds more than 10 %
// of their reconnects (the first attempt each makes once the listener is
// back). Measured (docs/decisions.md): at Initial 2 s rapid found 10.9 %
// (a 1 s outage, Multiplier 1.3); at 1 s full jitter reaches 15 %; without
// jitter every client lands in one window.
const (
	herdClients  = 1000
	herdWindow   = 100 * time.Millisecond
	herdFraction = 0.10
)

func herdScenario(t *rapid.T, jitter fsm.JitterKind) sim.Scenario {
	restart := dur(t, 10*time.Second, time.Minute, "restart_at")
	down := dur(t, time.Second, 30*time.Second, "down_for")
	b := fsm.Backoff{Initial: dur(t, 3*time.Second, 5*time.Second, "initial"), Multiplier: rapid.Float64Range(1.2, 2.5).Draw(t, "multiplier"),
		Jitter: jitter, FirstImmediate: rapid.Bool().Draw(t, "first_immediate")}
	b.Max = b.Initial * 30
	return sim.Scenario{
		Seed: rapid.Uint64().Draw(t, "seed"), Clients: herdClients, Duration: restart + down + 2*time.Minute,
		Backoff: b, Latency: genLatency(t, "latency"),
		Faults: []sim.Fault{{Kind: sim.Restart, Start: restart, End: restart + down}},
	}
}

func herdOptions() sim.Options {
	return sim.Options{Check: invariant.Config{HerdWindow: herdWindow, HerdMaxFraction: herdFraction}}
}

func TestHerdSpreadsWithFullJitter(t *testing.T) {
	withHerdFlags(t, func() {
		rapid.Check(t, func(t *rapid.T) {
			res := check(t, herdScenario(t, fsm.JitterFull), herdOptions(), invariant.HerdSpread)
			if h := res.Suite.Herds(); len(h) != 1 || h[0].Dropped != herdClients {
				t.Fatalf("the restart should drop all %d clients: %+v", herdClients, h)
			}
		})
	})
}

// withHerdFlags runs fn with rapid's -rapid.checks divided by 5 (at least
// 10) and shrinking capped at 5s: every herd case is a 1000-client world,
// about 30 ms (300 ms under -race), and the other properties get the full
// count. -rapid.checks still scales it: -rapid.checks=1000 runs 200 herds.
func withHerdFlags(t *testing.T, fn func()) {
	t.Helper()
	checks := flag.Lookup("rapid.checks")
	shrink := flag.Lookup("rapid.shrinktime")
	if checks == nil || shrink == nil {
		t.Fatal("rapid's flags are not registered")
	}
	oldChecks, oldShrink := checks.Value.String(), shrink.Value.String()
	n, _ := strconv.Atoi(oldChecks)
	if err := checks.Value.Set(strconv.Itoa(max(10, n/5))); err != nil {
		t.Fatal(err)
	}
	if d, _ := time.ParseDuration(oldShrink); d > 5*time.Second {
		_ = shrink.Value.Set("5s")
	}
	defer func() {
		_ = checks.Value.Set(oldChecks)
		_ = shrink.Value.Set(oldShrink)
	}()
	fn()
}

var rapidSeed = regexp.MustCompile(`-rapid\.seed=(\d+)`)

// bites runs prop, which must fail, and logs the seed that caught it and
// rapid's shrunk report.
func bites(t *testing.T, want string, prop func(*rapid.T)) {
	t.Helper()
	report := proptest.ExpectFailure(t, prop)
	if !strings.Contains(report, want) {
		t.Fatalf("the property failed, but not with %q:\n%s", want, report)
	}
	seed := "?"
	if m := rapidSeed.FindStringSubmatch(report); m != nil {
		seed = m[1]
	}
	t.Logf("caught, rapid seed %s; shrunk report:\n%s", seed, report)
}

// withBug returns a property that runs generated scenarios, adjusted by
// tweak if not nil, under bug and checks only the invariant inv.
func withBug(bug sim.Bug, kinds []sim.FaultKind, tweak func(*rapid.T, *sim.Scenario), inv invariant.Invariant) func(*rapid.T) {
	return func(t *rapid.T) {
		sc := genScenario(t, kinds)
		if tweak != nil {
			tweak(t, &sc)
		}
		sc.Bugs = []sim.Bug{bug}
		check(t, sc, sim.Options{}, inv)
	}
}

// pairOnTwoServers makes the two links of one process dial different
// servers and restarts only the first for a while: one link backs off
// holding the lock, each sleep spanning a server ping interval, while the
// other is alive and must answer pings.
func pairOnTwoServers(t *rapid.T, sc *sim.Scenario) {
	sc.Servers, sc.Clients = 2, max(sc.Clients, 2)
	b := &sc.Backoff
	b.Initial = max(b.Initial, 2*sc.ServerLiveness.PingInterval)
	b.Max = max(b.Max, b.Initial)
	at := dur(t, 0, sc.Duration/2, "pair_restart_at")
	sc.Faults = append(sc.Faults, sim.Fault{Kind: sim.Restart, Start: at, End: at + 4*b.Initial, Servers: []int{0}})
	for i := range sc.Faults {
		if r := &sc.Faults[i].Clients; r.To > sc.Clients {
			*r = sim.Range{}
		}
	}
}

// chattyClientsIdleServer makes the clients the only ones talking, more
// often than the server's idle timeout: a session is never idle.
func chattyClientsIdleServer(t *rapid.T, sc *sim.Scenario) {
	l := &sc.ServerLiveness
	l.IdleTimeout = max(l.IdleTimeout, l.PingInterval)
	sc.EventInterval = 0
	sc.ClientEventInterval = dur(t, 100*time.Millisecond, l.IdleTimeout/4, "chatty_interval")
}

// someGarbage spoils some of the clients' messages, never all: a streak
// of protocol errors keeps being broken by good messages.
func someGarbage(t *rapid.T, sc *sim.Scenario) {
	sc.ServerLiveness.IdleTimeout = 0
	sc.ServerLiveness.MaxErrors = rapid.IntRange(2, 5).Draw(t, "garbage_max_errors")
	sc.ClientEventInterval = dur(t, 100*time.Millisecond, 2*time.Second, "garbage_interval")
	sc.Faults = append(sc.Faults, sim.Fault{Kind: sim.Garbage, Rate: rapid.Float64Range(0.2, 0.6).Draw(t, "garbage_rate")})
}

// policyChangeDuringOutage refuses every attempt for a while and changes
// the policy in the middle of it, while retries are pending.
func policyChangeDuringOutage(t *rapid.T, sc *sim.Scenario) {
	sc.Faults = append(sc.Faults, sim.Fault{Kind: sim.Refused, Start: 0, End: sc.Duration / 2})
	sc.Backoff.Initial = max(sc.Backoff.Initial, time.Second)
	sc.Backoff.Max = max(sc.Backoff.Max, sc.Backoff.Initial)
	sc.Backoff.MaxAttempts = 0
	sc.BackoffChanges = []sim.BackoffChange{{At: dur(t, time.Second, sc.Duration/2, "change_at"), Backoff: genBackoff(t)}}
}

// TestBrokenVariantsAreCaught shows each invariant biting on the
// historical bug it exists for. The fault kinds offered are those that
// can expose the bug; rapid finds and shrinks a case.
func TestBrokenVariantsAreCaught(t *testing.T) {
	silentDeath := []sim.FaultKind{sim.Crash, sim.Blackhole, sim.Kill}
	cases := []struct {
		name  string
		bug   sim.Bug
		kinds []sim.FaultKind
		tweak func(*rapid.T, *sim.Scenario)
		inv   invariant.Invariant
	}{
		{"tight loop on the exception path", sim.BugNoWaitOnError, []sim.FaultKind{sim.Refused, sim.DNS, sim.Occupied}, nil, invariant.NoEarlyRetry},
		{"lock held across the backoff sleep delays retries", sim.BugLockAcrossBackoff, []sim.FaultKind{sim.Restart, sim.Kill, sim.RST}, nil, invariant.BoundedRetries},
		{"lock held across the backoff sleep starves live links", sim.BugLockAcrossBackoff, []sim.FaultKind{sim.Refused, sim.Restart}, pairOnTwoServers, invariant.LiveKept},
		{"no reconnect after the link drops", sim.BugNoReconnectAfterDrop, []sim.FaultKind{sim.Restart, sim.RST, sim.Blackhole}, nil, invariant.BoundedRetries},
		{"no ping leaves a stale session after kill -9", sim.BugNoPing, silentDeath, nil, invariant.DeadReaped},
		{"no ping leaks sessions", sim.BugNoPing, silentDeath, nil, invariant.RegistryMatches},
		{"swallowed send error", sim.BugSwallowSendError, []sim.FaultKind{sim.RST}, nil, invariant.DeadReaped},
		{"pong timeout longer than the ping interval", sim.BugPongTimeoutOverPing, silentDeath, nil, invariant.DeadReaped},
		{"send after the session closed", sim.BugSendAfterClose, allFaults, nil, invariant.NoSendAfterClose},
		{"registry leaks reaped sessions", sim.BugLeakOnReap, allFaults, nil, invariant.RegistryMatches},
		{"idle tier deaf to the peer's messages", sim.BugMessageAsPong, []sim.FaultKind{sim.LatencySpike}, chattyClientsIdleServer, invariant.LiveKept},
		{"a good message never ends a streak of errors", sim.BugMessageAsPong, []sim.FaultKind{sim.LatencySpike}, someGarbage, invariant.LiveKept},
		{"client deaf to a live server", sim.BugClientDeaf, []sim.FaultKind{sim.LatencySpike, sim.Refused}, nil, invariant.LiveKept},
		{"backoff reset at connect", sim.BugResetOnConnect, []sim.FaultKind{sim.AcceptClose}, nil, invariant.NoEarlyRetry},
		{"a policy change restarts the reconnect loop", sim.BugPolicyRestartsLoop, []sim.FaultKind{sim.Refused}, policyChangeDuringOutage, invariant.NoEarlyRetry},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bites(t, "("+string(c.inv.Letter())+") "+c.inv.String(), withBug(c.bug, c.kinds, c.tweak, c.inv))
		})
	}
	t.Run("lock-step jitter", func(t *testing.T) {
		withHerdFlags(t, func() {
			bites(t, "(g) herd_spread", func(t *rapid.T) {
				sc := herdScenario(t, fsm.JitterFull)
				sc.Bugs = []sim.Bug{sim.BugLockStepJitter}
				check(t, sc, herdOptions(), invariant.HerdSpread)
			})
		})
	})
	t.Run("herd without jitter", func(t *testing.T) {
		withHerdFlags(t, func() {
			bites(t, "(g) herd_spread", func(t *rapid.T) {
				check(t, herdScenario(t, fsm.JitterNone), herdOptions(), invariant.HerdSpread)
			})
		})
	})
}
