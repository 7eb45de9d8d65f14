package sim

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/invariant"
	"github.com/lifeline-go/lifeline/trace"
)

// loopback is the fastest path a Scenario can ask for: one nanosecond
// each way. The zero Latency means the 20–30 ms default, not no delay.
var loopback = Latency{Base: time.Nanosecond}

// herdFit is what worlds of one restart measured against the herd
// oracle, fsm.Backoff.HerdShare.
type herdFit struct {
	oracle float64       // HerdShare for the outage
	share  float64       // the busiest window's share of all the worlds' reconnects pooled
	at     time.Duration // where that window starts, after the listener came back
	// z holds, per world, (busiest window − n·p)/σ with σ the binomial
	// sqrt(n·p·(1−p)): what fsm.HerdLimit allows 6 of. Sorted.
	z []float64
}

// measureHerd runs worlds worlds of clients clients on policy b, dropped
// at once by a restart of the given outage over path, and compares where
// their reconnects (each client's first dial once the listener is back,
// as (g) counts them) land with the oracle's expectation.
func measureHerd(t testing.TB, b fsm.Backoff, outage time.Duration, path Latency, worlds, clients int) herdFit {
	t.Helper()
	const win = 100 * time.Millisecond
	restart := 10*time.Second + 3
	p, ok := b.HerdShare(outage, win)
	if !ok {
		t.Fatalf("no herd oracle for %+v", b)
	}
	fit := herdFit{oracle: p}
	sd := math.Sqrt(float64(clients) * p * (1 - p))
	pooled := make([]float64, int((b.WithDefaults().Max+win)/time.Millisecond)) // reconnects per 1 ms after the listener is back
	for s := range worlds {
		sc := Scenario{Seed: uint64(s), Clients: clients, Duration: restart + outage + 20*time.Second, Backoff: b,
			Latency: path, Faults: []Fault{{Kind: Restart, Start: restart, End: restart + outage}}}
		res, err := Run(context.Background(), sc, Options{KeepTrace: true, Check: invariant.Config{Only: []invariant.Invariant{invariant.HerdSpread}}})
		if err != nil {
			t.Fatal(err)
		}
		var upAt time.Duration
		seen := make([]bool, clients)
		var times []time.Duration
		for _, r := range res.Trace {
			switch {
			case r.Kind == trace.ServerUp:
				upAt = r.At
			case upAt > 0 && r.Kind == trace.Dial && !seen[r.ID]:
				seen[r.ID] = true
				times = append(times, r.At)
				if i := int((r.At - upAt) / time.Millisecond); i < len(pooled) {
					pooled[i]++
				}
			}
		}
		busiest, _ := invariant.Busiest(times, win)
		fit.z = append(fit.z, (float64(busiest)-float64(clients)*p)/sd)
	}
	slices.Sort(fit.z)
	w, sum := int(win/time.Millisecond), 0.0
	for i, v := range pooled {
		sum += v
		if i >= w {
			sum -= pooled[i-w]
		}
		if s := sum / float64(worlds*clients); s > fit.share {
			fit.share, fit.at = s, time.Duration(max(i-w+1, 0))*time.Millisecond
		}
	}
	return fit
}

// peaked is the policy and outage of the rapid case that showed the
// generator's lost zero (docs/decisions.md, "herd oracle: the world it
// judges"): ±21 % jitter on 0.5 s steps ×1.2, whose reconnect density has
// a sharp peak (22.3 % of the fleet in one 100 ms window after a 2 s
// outage).
var peaked = fsm.Backoff{Initial: 500 * time.Millisecond, Multiplier: 1.200775146484375, Max: 15 * time.Second,
	Jitter: fsm.JitterSymmetric, JitterFraction: 0.21024747973472913, FirstImmediate: true}

// The simulator's fleet draws its reconnects from the distribution the
// herd oracle integrates: over a loopback path the pooled busiest window
// holds the oracle's share, and no world's busiest window is near
// HerdLimit's six standard deviations. Over the default 20–30 ms path
// (what a drawn zero latency silently became) every failed attempt costs
// a round trip the oracle does not model, and the same check sees it.
func TestHerdOracleMatchesTheSimulator(t *testing.T) {
	const worlds, clients = 20, 1000
	for _, tc := range []struct {
		name   string
		b      fsm.Backoff
		outage time.Duration
		path   Latency
		fits   bool
	}{
		{"peaked policy, loopback", peaked, 2*time.Second + 118, loopback, true},
		{"default policy, loopback", fsm.DefaultBackoff(), 2 * time.Second, loopback, true},
		{"full jitter, loopback", fsm.Backoff{Initial: time.Second, Multiplier: 1.6, Max: 30 * time.Second, Jitter: fsm.JitterFull}, 5 * time.Second, loopback, true},
		{"peaked policy, default 20-30ms path", peaked, 2*time.Second + 118, Latency{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fit := measureHerd(t, tc.b, tc.outage, tc.path, worlds, clients)
			// The pooled share of 20 000 reconnects has a standard error
			// near 0.003 at p = 0.22; picking the busiest of the windows
			// adds a little. 0.015 is 5 of those, and a third of the shift
			// the 20–30 ms path causes (0.267 against 0.223).
			off := math.Abs(fit.share - fit.oracle)
			t.Logf("pooled busiest share %.4f at +%s, oracle %.4f; worst world %.2f σ above n·p", fit.share, fit.at, fit.oracle, fit.z[len(fit.z)-1])
			if fits := off <= 0.015 && fit.z[len(fit.z)-1] <= herdLimitZ(fit.oracle, clients); fits != tc.fits {
				t.Fatalf("pooled busiest share %.4f at +%s, oracle %.4f; worst world %.2f σ above n·p (HerdLimit %.2f σ): fits=%v, want %v",
					fit.share, fit.at, fit.oracle, fit.z[len(fit.z)-1], herdLimitZ(fit.oracle, clients), fits, tc.fits)
			}
		})
	}
}

// TestHerdOracleFit prints the figures docs/decisions.md quotes ("herd
// oracle: the world it judges"). Opt in, with the number of worlds:
// LIFELINE_HERD_FIT=2000 go test -run HerdOracleFit -v ./sim/ (about 40 s per 1000).
func TestHerdOracleFit(t *testing.T) {
	worlds, _ := strconv.Atoi(os.Getenv("LIFELINE_HERD_FIT"))
	if worlds < 2 {
		t.Skip("set LIFELINE_HERD_FIT=N (worlds per row) to measure the herd oracle's fit")
	}
	for _, row := range []struct {
		name string
		path Latency
	}{{"loopback (1ns)", loopback}, {"default 20-30ms", Latency{}}} {
		f := measureHerd(t, peaked, 2*time.Second+118, row.path, worlds, 1000)
		z := f.z
		m, v := meanVar(z)
		fmt.Printf("%-16s %d worlds: pooled busiest share %.4f at +%s (oracle %.4f); (busiest − n·p)/σ mean %.2f, variance %.3f, median %.2f, p99 %.2f, max %.2f; over HerdLimit %d\n",
			row.name, worlds, f.share, f.at, f.oracle, m, v, z[len(z)/2], z[len(z)*99/100], z[len(z)-1], len(z)-sortedBelow(z, herdLimitZ(f.oracle, 1000)))
	}
	// The same renewal process sampled with independent draws straight
	// from fsm's Delay: a simulator whose clients' jitter streams were
	// correlated would show a larger variance than this.
	p, _ := peaked.HerdShare(2*time.Second+118, 100*time.Millisecond)
	sd := math.Sqrt(1000 * p * (1 - p))
	var z []float64
	for s := range worlds {
		r := rand.New(rand.NewPCG(uint64(s), 1))
		times := make([]time.Duration, 1000)
		for c := range times {
			for k := 1; times[c] < 2*time.Second+118; k++ {
				times[c] += peaked.Delay(k, 0, r)
			}
		}
		slices.Sort(times)
		busiest, _ := invariant.Busiest(times, 100*time.Millisecond)
		z = append(z, (float64(busiest)-1000*p)/sd)
	}
	m, v := meanVar(z)
	fmt.Printf("%-16s %d fleets: (busiest − n·p)/σ mean %.2f, variance %.3f\n", "independent Delay", worlds, m, v)
}

// meanVar returns the mean and the sample variance of xs.
func meanVar(xs []float64) (mean, variance float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		variance += (x - mean) * (x - mean)
	}
	return mean, variance / float64(len(xs)-1)
}

// herdLimitZ is fsm.HerdLimit(n, p) in standard deviations above n·p:
// a world's busiest window fails (g) when it is above this.
func herdLimitZ(p float64, n int) float64 {
	return (float64(fsm.HerdLimit(n, p)) - float64(n)*p) / math.Sqrt(float64(n)*p*(1-p))
}

// sortedBelow returns how many of sorted are at most x.
func sortedBelow(sorted []float64, x float64) int {
	i, _ := slices.BinarySearchFunc(sorted, x, func(v, x float64) int {
		if v <= x {
			return -1
		}
		return 1
	})
	return i
}
