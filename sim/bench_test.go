package sim

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// benchScenario is the speed budget's world: n clients heartbeating every
// 30 s for one virtual hour through DefaultMix.
func benchScenario(b testing.TB, n int) Scenario {
	faults, err := Mix(DefaultMix, 7, n, 1, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	return Scenario{Seed: 7, Clients: n, Duration: time.Hour, Backoff: fsm.DefaultBackoff(), Faults: faults}
}

// benchRun runs sc b.N times, failing on any violation, and reports
// virtual seconds per real second, events per run and real time per event.
func benchRun(b *testing.B, sc Scenario) {
	b.ReportAllocs()
	var virtual, real time.Duration
	var events uint64
	for b.Loop() {
		res, err := Run(context.Background(), sc, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if res.Suite.Failed() {
			b.Fatal(res.Suite.Violations()[0])
		}
		virtual += res.Virtual
		real += res.Real
		events += res.Events
	}
	b.ReportMetric(virtual.Seconds()/real.Seconds(), "virtual-s/s")
	b.ReportMetric(float64(events)/float64(b.N), "events/op")
	b.ReportMetric(float64(real.Nanoseconds())/float64(events), "ns/event")
}

// BenchmarkWorld reports virtual seconds simulated per real second
// (virtual-s/s) for the speed budget: ≥ 10 000 at 1000 sessions, ≥ 1000 at
// 10 000.
func BenchmarkWorld(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) { benchRun(b, benchScenario(b, n)) })
	}
}
