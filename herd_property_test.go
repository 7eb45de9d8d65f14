package lifeline_test

import (
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/invariant"
	"github.com/lifeline-go/lifeline/sim"
)

// The herd oracle (fsm.Backoff.HerdShare) as (g)'s bound: with the
// stated fraction set to 1, a restart is judged by the policy's own
// oracle alone, over drawn jitter kinds, fractions, growth and outages of
// 2 to 30 s. The path is loopback-like (≤ 5 ms each way): the oracle
// judges an attempt at its start and assumes every client saw the drop at
// the same instant. Outside that, rapid found windows over the limit: 319
// of 1 000 against 293 with 55 ms exponential latency jitter on a 1 s
// outage, and 176 against 175 on a 1 s outage at 5 ms, where the drop's
// and each refused dial's round trips are no longer small beside the
// first delays.
func oracleHerdScenario(t *rapid.T, b fsm.Backoff, clients int) sim.Scenario {
	restart := dur(t, 10*time.Second, time.Minute, "restart_at")
	down := dur(t, 2*time.Second, 30*time.Second, "down_for")
	return sim.Scenario{
		Seed: rapid.Uint64().Draw(t, "seed"), Clients: clients, Duration: restart + down + 3*time.Minute,
		Backoff: b, Latency: loopbackPath(t, true),
		Faults: []sim.Fault{{Kind: sim.Restart, Start: restart, End: restart + down}},
	}
}

// maxLoopback is the slowest one-way path the herd oracle's worlds draw.
const maxLoopback = 5 * time.Millisecond

// loopbackPath draws a loopback-like path: 1 ns to maxLoopback each way,
// plus up to maxLoopback of uniform jitter when jitter is set. Its Base
// is never zero: a zero sim.Latency means the 20–30 ms default, and a
// drawn 0 + 0 once put 1 case in about 1 500 on that path, where each
// refused dial's round trip moved the reconnects off the oracle's
// (docs/decisions.md, "herd oracle: the world it judges").
func loopbackPath(t *rapid.T, jitter bool) sim.Latency {
	l := sim.Latency{Base: dur(t, time.Nanosecond, maxLoopback, "latency")}
	if jitter {
		l.Jitter = dur(t, 0, maxLoopback, "latency_jitter")
	}
	return l
}

// checkLoopback fails t unless sc's path, defaults applied, is the one
// the herd oracle judges: a generator that lets a zero through fails
// here, by name, instead of as a herd over the oracle's limit.
func checkLoopback(t *rapid.T, sc sim.Scenario) {
	if l := sc.WithDefaults().Latency; l.Base > maxLoopback || l.Jitter > maxLoopback || l.Dist != sim.Uniform {
		t.Fatalf("the herd oracle judges loopback-like worlds (≤ %s each way); this one's path is %+v", maxLoopback, l)
	}
}

func genHerdBackoff(t *rapid.T) fsm.Backoff {
	b := fsm.Backoff{
		Initial:        dur(t, 500*time.Millisecond, 5*time.Second, "initial"),
		Multiplier:     rapid.Float64Range(1.2, 2.5).Draw(t, "multiplier"),
		Jitter:         rapid.SampledFrom([]fsm.JitterKind{fsm.JitterSymmetric, fsm.JitterFull, fsm.JitterEqual}).Draw(t, "jitter"),
		FirstImmediate: rapid.Bool().Draw(t, "first_immediate"),
	}
	if b.Jitter != fsm.JitterEqual {
		b.JitterFraction = rapid.Float64Range(0.2, 1).Draw(t, "fraction")
	}
	b.Max = b.Initial * 30
	return b
}

func oracleOnly() sim.Options {
	return sim.Options{Check: invariant.Config{HerdWindow: herdWindow, HerdMaxFraction: 1}}
}

func TestHerdWithinItsOracle(t *testing.T) {
	withHerdFlags(t, func() {
		rapid.Check(t, func(t *rapid.T) {
			sc := oracleHerdScenario(t, genHerdBackoff(t), herdClients)
			checkLoopback(t, sc)
			res := check(t, sc, oracleOnly(), invariant.HerdSpread)
			if h := res.Suite.Herds(); len(h) != 1 || h[0].Limit == 0 || h[0].OracleShare == 0 {
				t.Fatalf("the restart should be judged by the oracle: %+v", h)
			}
		})
	})
}

// Issue 13's goal in the simulator: 500 clients on the default policy, a
// 2 s outage. The oracle expects 6.3 % of the reconnects in the busiest
// 100 ms (the goal is 10 %), and (g) holds every drawn world to the
// oracle's limit (66 of 500: a sampled fleet's busiest window wanders
// above its expectation, and rapid finds worlds at 51).
func TestHerdDefaultPolicyGoal(t *testing.T) {
	if p, _ := fsm.DefaultBackoff().HerdShare(2*time.Second, herdWindow); p > herdFraction {
		t.Fatalf("the default policy's herd share after a 2 s outage is %.3f, over the goal %.2f", p, herdFraction)
	}
	withHerdFlags(t, func() {
		rapid.Check(t, func(t *rapid.T) {
			restart := dur(t, 10*time.Second, time.Minute, "restart_at")
			sc := sim.Scenario{Seed: rapid.Uint64().Draw(t, "seed"), Clients: 500, Duration: restart + 2*time.Minute,
				Backoff: fsm.DefaultBackoff(), Latency: loopbackPath(t, false),
				Faults: []sim.Fault{{Kind: sim.Restart, Start: restart, End: restart + 2*time.Second}}}
			checkLoopback(t, sc)
			res := check(t, sc, oracleOnly(), invariant.HerdSpread)
			if h := res.Suite.Herds(); len(h) != 1 || h[0].Limit != fsm.HerdLimit(500, h[0].OracleShare) {
				t.Fatalf("the restart should be judged by the oracle: %+v", h)
			}
		})
	})
}

// A fleet whose jitter sources are seeded alike herds however wide its
// policy's jitter: the oracle, not a stated fraction, catches it.
func TestHerdOracleCatchesLockStepJitter(t *testing.T) {
	withHerdFlags(t, func() {
		bites(t, "(g) herd_spread", func(t *rapid.T) {
			sc := oracleHerdScenario(t, genHerdBackoff(t), herdClients)
			sc.Bugs = []sim.Bug{sim.BugLockStepJitter}
			check(t, sc, oracleOnly(), invariant.HerdSpread)
		})
	})
}
