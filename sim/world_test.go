package sim

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/trace"
)

// tiny is a two-client world with short timers, so each fault shows
// within minutes. A peer last heard at T is dead at T+15s.
func tiny(faults ...Fault) Scenario {
	l := fsm.Liveness{PingInterval: 10 * time.Second, PongTimeout: 5 * time.Second}
	return Scenario{Seed: 1, Clients: 2, Duration: 5 * time.Minute, Backoff: fsm.DefaultBackoff(),
		ClientLiveness: l, ServerLiveness: l, EventInterval: 2 * time.Second, Faults: faults}
}

func count(recs []trace.Record, keep func(*trace.Record) bool) int {
	n := 0
	for i := range recs {
		if keep(&recs[i]) {
			n++
		}
	}
	return n
}

func reaped(reason fsm.Reason) func(*trace.Record) bool {
	return func(r *trace.Record) bool {
		return r.Kind == trace.Transition && r.To == fsm.Reaped && r.Reason == reason
	}
}

func kind(k trace.Kind) func(*trace.Record) bool {
	return func(r *trace.Record) bool { return r.Kind == k }
}

// Each fault leaves its own mark on the trace, and the correct driver
// keeps every invariant through it.
func TestFaultSignatures(t *testing.T) {
	min := time.Minute
	tests := []struct {
		name  string
		fault Fault
		check func(t *testing.T, recs []trace.Record)
	}{
		{"refused", Fault{Kind: Refused, End: 30 * time.Second}, func(t *testing.T, recs []trace.Record) {
			if n := count(recs, func(r *trace.Record) bool { return r.Kind == trace.Register && r.At < 30*time.Second }); n != 0 {
				t.Errorf("%d sessions registered while the port refused", n)
			}
			if count(recs, kind(trace.Down)) < 4 {
				t.Error("refused attempts were not seen failing")
			}
		}},
		{"occupied", Fault{Kind: Occupied, End: 30 * time.Second}, func(t *testing.T, recs []trace.Record) {
			if count(recs, func(r *trace.Record) bool { return r.Kind == trace.Down && r.At < 30*time.Second }) < 4 {
				t.Error("attempts against a non-WebSocket listener did not fail")
			}
		}},
		{"dns", Fault{Kind: DNS, End: 30 * time.Second}, func(t *testing.T, recs []trace.Record) {
			if count(recs, func(r *trace.Record) bool { return r.Kind == trace.Register && r.At < 30*time.Second }) != 0 {
				t.Error("a server was reached without a name")
			}
		}},
		{"stall", Fault{Kind: Stall, End: 30 * time.Second}, func(t *testing.T, recs []trace.Record) {
			if count(recs, func(r *trace.Record) bool { return r.Kind == trace.Transition && r.Trigger == fsm.DialTimeout }) == 0 {
				t.Error("stalled handshakes did not time out")
			}
		}},
		{"auth", Fault{Kind: Auth, Code: 403, End: 30 * time.Second}, func(t *testing.T, recs []trace.Record) {
			if count(recs, reaped(fsm.ReasonHandshakeFailed)) == 0 {
				t.Error("rejected handshakes were not reaped as handshake_failed")
			}
		}},
		{"accept_close", Fault{Kind: AcceptClose, End: 30 * time.Second}, func(t *testing.T, recs []trace.Record) {
			if count(recs, func(r *trace.Record) bool { return r.Kind == trace.Up && r.Peer == trace.NoID }) == 0 {
				t.Error("no link came up and closed at once")
			}
		}},
		{"kill", Fault{Kind: Kill, Start: min, End: 2 * min, Clients: Range{0, 1}}, func(t *testing.T, recs []trace.Record) {
			if count(recs, reaped(fsm.ReasonReadError)) != 1 || count(recs, kind(trace.ClientStart)) != 3 {
				t.Error("kill -9 should be seen as EOF once, and the client restart")
			}
		}},
		{"crash reaped exactly at the liveness bound", Fault{Kind: Crash, Start: min, Clients: Range{0, 1}}, func(t *testing.T, recs []trace.Record) {
			var lastSign time.Duration
			var session uint32
			for _, r := range recs {
				if r.Kind == trace.PeerDead {
					lastSign, session = r.LastSign, r.ID
				}
				if r.Kind == trace.Transition && r.Machine == fsm.MachineSession && r.ID == session && r.To == fsm.Reaped {
					if want := lastSign + 15*time.Second; r.At != want || r.Reason != fsm.ReasonPongTimeout {
						t.Errorf("reaped at %s for %s, want %s (last sign %s + ping 10s + pong 5s) for pong_timeout", r.At, r.Reason, want, lastSign)
					}
					return
				}
			}
			t.Error("the crashed peer's session was never reaped")
		}},
		{"blackhole", Fault{Kind: Blackhole, Start: min, End: 2 * min, Clients: Range{0, 1}}, func(t *testing.T, recs []trace.Record) {
			if count(recs, reaped(fsm.ReasonPongTimeout)) == 0 ||
				count(recs, func(r *trace.Record) bool { return r.Machine == fsm.MachineClient && r.Trigger == fsm.PongTimeout }) == 0 {
				t.Error("neither end noticed the half-open link")
			}
		}},
		{"rst", Fault{Kind: RST, Start: min, Clients: Range{0, 1}}, func(t *testing.T, recs []trace.Record) {
			if count(recs, kind(trace.SendFailed)) == 0 || count(recs, reaped(fsm.ReasonSendError)) == 0 {
				t.Error("the reset was not noticed by the next write")
			}
		}},
		{"latency", Fault{Kind: LatencySpike, Start: min, End: 2 * min, Latency: Latency{Base: 3 * time.Second}}, func(t *testing.T, recs []trace.Record) {
			if count(recs, kind(trace.Degraded)) == 0 {
				t.Error("3s frames against a 5s pong timeout were not reported degraded")
			}
		}},
		{"loss", Fault{Kind: Loss, Rate: 0.5, Start: min, End: 2 * min}, func(t *testing.T, recs []trace.Record) {
			if count(recs, kind(trace.Degraded)) == 0 {
				t.Error("half the frames lost, none delayed past half the pong timeout")
			}
		}},
		{"partition", Fault{Kind: Partition, Start: min, End: min + 30*time.Second}, func(t *testing.T, recs []trace.Record) {
			if count(recs, kind(trace.Degraded)) == 0 || count(recs, reaped(fsm.ReasonPongTimeout)) == 0 {
				t.Error("a 30s partition against a 15s bound should hold frames and reap")
			}
		}},
		{"restart", Fault{Kind: Restart, Start: min, End: min + 10*time.Second}, func(t *testing.T, recs []trace.Record) {
			if count(recs, reaped(fsm.ReasonShutdown)) != 2 || count(recs, kind(trace.ServerDown)) != 1 || count(recs, kind(trace.ServerUp)) != 1 {
				t.Error("a restart should close both sessions with 1001 and come back")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(context.Background(), tiny(tt.fault), Options{KeepTrace: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range res.Suite.Violations() {
				t.Errorf("invariant broken: %v", v)
			}
			tt.check(t, res.Trace)
			if t.Failed() {
				var b bytes.Buffer
				_ = trace.Write(&b, res.Trace)
				t.Logf("trace:\n%s", b.String())
			}
		})
	}
}

func traceBytes(t *testing.T, sc Scenario) []byte {
	t.Helper()
	res, err := Run(context.Background(), sc, Options{KeepTrace: true})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := trace.Write(&b, res.Trace); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestSameSeedSameTrace(t *testing.T) {
	faults, err := Mix(DefaultMix, 3, 50, 2, 20*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	sc := Scenario{Seed: 3, Clients: 50, Servers: 2, Duration: 20 * time.Minute, Faults: faults, EventInterval: 10 * time.Second,
		Backoff: fsm.Backoff{Jitter: fsm.JitterDecorrelated}}
	a, b := traceBytes(t, sc), traceBytes(t, sc)
	if !bytes.Equal(a, b) {
		t.Fatal("the same scenario produced two traces")
	}
	sc.Seed = 4
	if bytes.Equal(a, traceBytes(t, sc)) {
		t.Fatal("another seed produced the same trace")
	}
}

func TestRunStops(t *testing.T) {
	sc := tiny()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sc.Clients, sc.Duration = 2000, 10*time.Hour // over 65 536 events, so the context is consulted
	if _, err := Run(ctx, sc, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run returned %v", err)
	}
	res, err := Run(context.Background(), tiny(), Options{MaxEvents: 100})
	if !errors.Is(err, ErrEventBudget) || res.Events != 101 {
		t.Fatalf("budget: err %v after %d events", err, res.Events)
	}
	if _, err := Run(context.Background(), Scenario{}, Options{}); !errors.Is(err, ErrScenario) {
		t.Fatalf("zero scenario: %v", err)
	}
}

// The world settles: every fault over, every live client connected and
// registered, nothing more.
func TestSettles(t *testing.T) {
	res, err := Run(context.Background(), tiny(Fault{Kind: Crash, Start: time.Minute, Clients: Range{0, 1}}), Options{KeepTrace: true})
	if err != nil {
		t.Fatal(err)
	}
	last := res.Trace[len(res.Trace)-1]
	if last.Kind != trace.Settled || last.Peer != 1 || last.ID != 1 || res.Stats.FinalSessions != 1 {
		t.Fatalf("ended with %v, %d sessions; want settled with the one live client", last, res.Stats.FinalSessions)
	}
}
