package fsm

import (
	"fmt"
	"testing"
	"time"

	"github.com/qmuntal/stateless"
)

// benchInst is a bare instance: the state and a guard that always lets the
// retry happen.
type benchInst struct {
	instanceCtx
	state State
}

func (b *benchInst) LifecycleState() State     { return b.state }
func (b *benchInst) SetLifecycleState(s State) { b.state = s }
func (b *benchInst) GuardHolds(g Guard) bool   { return g == RetriesLeft }

// fireCycle fires Connecting -dial_failed-> BackingOff -retry_due-> Connecting.
func fireCycle(b *testing.B, sm *stateless.StateMachine, in *benchInst) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := sm.FireCtx(in, DialFailed); err != nil {
			b.Fatal(err)
		}
		if err := sm.FireCtx(in, RetryDue); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/fire")
}

// One machine shared by all instances, state kept in the instance (what
// Client and Session use).
func BenchmarkFireShared(b *testing.B) {
	sm, err := build(ClientTable())
	if err != nil {
		b.Fatal(err)
	}
	fireCycle(b, sm, &benchInst{state: Connecting})
}

// A machine per instance, state kept inside it (the alternative).
func BenchmarkFirePerInstance(b *testing.B) {
	sm := stateless.NewStateMachineWithMode(Connecting, stateless.FiringImmediate)
	configure(sm, ClientTable())
	fireCycle(b, sm, &benchInst{state: Connecting})
}

// B/op here is the memory a machine per session would cost.
func BenchmarkBuildMachinePerInstance(b *testing.B) {
	for _, tb := range Tables() {
		b.Run(tb.Machine.String(), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				sm := stateless.NewStateMachineWithMode(tb.Initial, stateless.FiringImmediate)
				configure(sm, tb)
			}
		})
	}
}

// B/op here is the memory of a Client or Session on the shared machine.
func BenchmarkNewInstance(b *testing.B) {
	b.Run("client", func(b *testing.B) {
		b.ReportAllocs()
		cfg := ClientConfig{Rand: newRand(1)}
		for i := 0; i < b.N; i++ {
			if _, err := NewClient(cfg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("session", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := NewSession(t0, Liveness{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A transition through Step: a failed dial and the retry that follows,
// backoff draw included.
func BenchmarkClientStepTransition(b *testing.B) {
	c := mustClient(b, ClientConfig{Rand: newRand(1)})
	now := t0
	c.Step(now, EvStart)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Step(now, EvDialFailed); err != nil {
			b.Fatal(err)
		}
		now, _ = c.RetryAt()
		if _, err := c.Step(now, EvTick); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/step")
}

// The hot path of a heartbeating session: a pong, and a tick that sends a
// ping. No transition.
func BenchmarkSessionStepHeartbeat(b *testing.B) {
	s := mustSession(b, Liveness{})
	now := t0
	s.Step(now, EvUpgraded)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, _ := s.Deadline()
		now = d
		if _, err := s.Step(now, EvTick); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Step(now.Add(time.Millisecond), EvPong); err != nil {
			b.Fatal(err)
		}
	}
	if s.State() != Alive {
		b.Fatalf("session ended in %s", s.State())
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/step")
}

// One backoff decision per jitter kind.
func BenchmarkBackoffDelay(b *testing.B) {
	for _, k := range []JitterKind{JitterNone, JitterSymmetric, JitterFull, JitterEqual, JitterDecorrelated} {
		b.Run(k.String(), func(b *testing.B) {
			pol := Backoff{Jitter: k, FirstImmediate: true}
			r := newRand(1)
			var prev time.Duration
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				prev = pol.Delay(i%20+1, prev, r)
			}
		})
	}
}

func BenchmarkDiagram(b *testing.B) {
	for _, f := range []struct {
		name string
		fn   func(*Table) string
	}{{"mermaid", Mermaid}, {"dot", DOT}} {
		b.Run(fmt.Sprint(f.name), func(b *testing.B) {
			tb := SessionTable()
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				_ = f.fn(tb)
			}
		})
	}
}
