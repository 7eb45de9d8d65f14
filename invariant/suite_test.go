package invariant_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/invariant"
	"github.com/lifeline-go/lifeline/trace"
)

const ms = time.Millisecond

// Shorthands for hand-written traces.
func dial(at time.Duration, c uint32, n int32) trace.Record {
	return trace.Record{At: at, Kind: trace.Dial, ID: c, Attempt: n}
}
func down(at time.Duration, c uint32) trace.Record {
	return trace.Record{At: at, Kind: trace.Down, ID: c}
}
func up(at time.Duration, c, s uint32) trace.Record {
	return trace.Record{At: at, Kind: trace.Up, ID: c, Peer: s}
}
func reg(at time.Duration, s, c uint32) trace.Record {
	return trace.Record{At: at, Kind: trace.Register, ID: s, Peer: c}
}
func unreg(at time.Duration, s uint32) trace.Record {
	return trace.Record{At: at, Kind: trace.Unregister, ID: s}
}
func sess(at time.Duration, s uint32, from, to fsm.State, tr fsm.Trigger) trace.Record {
	return trace.Record{At: at, Kind: trace.Transition, Machine: fsm.MachineSession, ID: s, From: from, To: to, Trigger: tr}
}
func cli(at time.Duration, c uint32, from, to fsm.State, tr fsm.Trigger, delay time.Duration) trace.Record {
	return trace.Record{At: at, Kind: trace.Transition, Machine: fsm.MachineClient, ID: c, From: from, To: to, Trigger: tr, Delay: delay}
}
func rec(at time.Duration, k trace.Kind, id uint32) trace.Record {
	return trace.Record{At: at, Kind: k, ID: id}
}

// open is a session 0 of client 0, upgraded at 0.
func open() []trace.Record {
	return []trace.Record{dial(0, 0, 1), reg(0, 0, 0), sess(0, 0, fsm.Handshaking, fsm.Alive, fsm.Upgraded), up(0, 0, 0)}
}

func cat(parts ...[]trace.Record) []trace.Record {
	var out []trace.Record
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Backoff: 1s then ×2, no jitter, first retry immediate, 3 attempts.
// Liveness: ping 30s, pong 10s: a peer last heard at T is dead at T+40s.
var cfg = invariant.Config{
	Backoff:  fsm.Backoff{Initial: time.Second, Multiplier: 2, Jitter: fsm.JitterNone, FirstImmediate: true, MaxAttempts: 3, StableAfter: 10 * time.Second},
	Liveness: fsm.Liveness{PingInterval: 30 * time.Second, PongTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute},
}

func TestSuite(t *testing.T) {
	tests := []struct {
		name string
		recs []trace.Record
		end  time.Duration
		cfg  func(*invariant.Config)
		want string // "" means no violation; else a substring of the first violation
	}{
		{"first retry immediate, second after 1s", []trace.Record{
			dial(0, 0, 1), down(10*ms, 0), dial(10*ms, 0, 2), down(20*ms, 0), dial(1020*ms, 0, 3)}, 2 * time.Second, nil, ""},
		{"second retry early", []trace.Record{
			dial(0, 0, 1), down(10*ms, 0), dial(10*ms, 0, 2), down(20*ms, 0), dial(500*ms, 0, 3)}, time.Second, nil,
			"(a) no_early_retry violated at 500ms by client 0: attempt 3 came 480ms after failure 2"},
		{"retry behind the machine's back", []trace.Record{
			dial(0, 0, 1), down(10*ms, 0), dial(10*ms, 0, 1)}, time.Second, nil,
			"attempt numbered 1 after 1 consecutive failures"},
		{"machine chose a delay below the bound", []trace.Record{
			dial(0, 0, 1), down(10*ms, 0), dial(10*ms, 0, 2), down(20*ms, 0),
			cli(20*ms, 0, fsm.Connecting, fsm.BackingOff, fsm.DialFailed, 100*ms)}, 21 * ms, nil,
			"backoff delay 100ms after failure 2 is below the policy's earliest 1s"},
		{"retry late", []trace.Record{
			dial(0, 0, 1), down(10*ms, 0), dial(10*ms, 0, 2), down(20*ms, 0), dial(1500*ms, 0, 3)}, 2 * time.Second, nil,
			"(b) bounded_retries violated at 1.5s by client 0: attempt 3 came 1.48s after failure 2"},
		{"never retried", []trace.Record{dial(0, 0, 1), down(10*ms, 0)}, time.Minute, nil,
			"no attempt since failure 1 at 10ms; the policy's latest retry was due at 10ms"},
		{"not owed a retry after quiescing", []trace.Record{dial(0, 0, 1), down(10*ms, 0), rec(10*ms, trace.Quiesce, 0)}, time.Minute, nil, ""},
		{"attempt after MaxAttempts", []trace.Record{
			dial(0, 0, 1), down(0, 0), dial(0, 0, 2), down(0, 0), dial(time.Second, 0, 3), down(time.Second, 0), dial(3*time.Second, 0, 4)}, 4 * time.Second, nil,
			"after failure 3 had exhausted MaxAttempts=3"},
		{"exhausted but never gave up", []trace.Record{
			dial(0, 0, 1), down(0, 0), dial(0, 0, 2), down(0, 0), dial(time.Second, 0, 3), down(time.Second, 0)}, time.Minute, nil,
			"failure 3 exhausted MaxAttempts=3 but the client never gave up"},
		{"gave up too soon", []trace.Record{dial(0, 0, 1), down(0, 0), cli(0, 0, fsm.Connecting, fsm.GaveUp, fsm.DialFailed, 0)}, time.Minute, nil,
			"gave up after 1 consecutive failures; MaxAttempts=3"},
		{"a stable link resets the count", []trace.Record{
			dial(0, 0, 1), down(0, 0), dial(0, 0, 2), up(0, 0, 0), down(10*time.Second, 0), dial(10*time.Second, 0, 2)}, 11 * time.Second, nil, ""},
		{"an unstable link does not", []trace.Record{
			dial(0, 0, 1), down(0, 0), dial(0, 0, 2), up(0, 0, 0), down(5*time.Second, 0), dial(5*time.Second, 0, 3)}, 6 * time.Second, nil,
			"attempt 3 came 0s after failure 2"},

		{"dead peer reaped at the bound", cat(open(), []trace.Record{
			{At: time.Second, Kind: trace.PeerDead, ID: 0, LastSign: time.Second},
			sess(41*time.Second, 0, fsm.Alive, fsm.Reaped, fsm.PongTimeout)}), time.Minute, nil, ""},
		{"dead peer reaped late", cat(open(), []trace.Record{
			{At: time.Second, Kind: trace.PeerDead, ID: 0, LastSign: time.Second},
			sess(42*time.Second, 0, fsm.Alive, fsm.Reaped, fsm.PongTimeout)}), time.Minute, nil,
			"(c) dead_reaped violated at 42s by session 0: reaped at 42s; peer dead, last sign of life at 1s, liveness bound 41s"},
		{"slack covers a real driver's lateness", cat(open(), []trace.Record{
			{At: time.Second, Kind: trace.PeerDead, ID: 0, LastSign: time.Second},
			sess(42*time.Second, 0, fsm.Alive, fsm.Reaped, fsm.PongTimeout)}), time.Minute,
			func(c *invariant.Config) { c.Slack = time.Second }, ""},
		{"dead peer never reaped", cat(open(), []trace.Record{
			{At: time.Second, Kind: trace.PeerDead, ID: 0, LastSign: time.Second}}), time.Minute, nil,
			"still not reaped at 1m0s; peer dead"},
		{"send failed, not reaped at once", cat(open(), []trace.Record{
			rec(time.Second, trace.SendFailed, 0), sess(2*time.Second, 0, fsm.Alive, fsm.Reaped, fsm.PongTimeout)}), time.Minute, nil,
			"but a send failed at 1s (the fast tier reaps at once)"},
		{"idle session never reaped", open(), 10 * time.Minute, nil, "idle since 0s, idle bound 5m5s"},
		{"closing peer gets the close timeout", cat(open(), []trace.Record{
			sess(30*time.Second, 0, fsm.Alive, fsm.Closing, fsm.Shutdown),
			{At: 31 * time.Second, Kind: trace.PeerDead, ID: 0, LastSign: 31 * time.Second},
			sess(35*time.Second, 0, fsm.Closing, fsm.Reaped, fsm.CloseTimeout)}), time.Minute, nil, ""},

		{"live session reaped for silence", cat(open(), []trace.Record{
			sess(40*time.Second, 0, fsm.Alive, fsm.Reaped, fsm.PongTimeout)}), time.Minute, nil,
			"(d) live_kept violated at 40s by session 0: reaped for silence while its peer lived"},
		{"degraded path excuses the reap", cat(open(), []trace.Record{
			rec(30*time.Second, trace.Degraded, 0), sess(40*time.Second, 0, fsm.Alive, fsm.Reaped, fsm.PongTimeout)}), time.Minute, nil, ""},
		{"old degradation does not", cat(open(), []trace.Record{
			rec(0, trace.Degraded, 0), sess(41*time.Second, 0, fsm.Alive, fsm.Reaped, fsm.PongTimeout)}), time.Minute, nil, "(d) live_kept"},

		{"send while alive", cat(open(), []trace.Record{rec(time.Second, trace.Send, 0)}), time.Minute, nil, ""},
		{"send after reap", cat(open(), []trace.Record{
			sess(time.Second, 0, fsm.Alive, fsm.Reaped, fsm.PeerClose), rec(2*time.Second, trace.Send, 0)}), time.Minute, nil,
			"(e) no_send_after_close violated at 2s by session 0: message sent on a session in Reaped"},
		{"send while closing", cat(open(), []trace.Record{
			sess(time.Second, 0, fsm.Alive, fsm.Closing, fsm.Shutdown), rec(2*time.Second, trace.Send, 0)}), time.Minute, nil,
			"message sent on a session in Closing"},
		{"send on an unknown session", []trace.Record{rec(0, trace.Send, 7)}, time.Minute, nil, "never registered"},

		{"settled and matching", cat(open(), []trace.Record{rec(time.Minute, trace.Settled, 0)}), time.Minute, nil, ""},
		{"settled with a leaked session", cat(open(), []trace.Record{
			sess(time.Second, 0, fsm.Alive, fsm.Reaped, fsm.PeerClose), down(time.Second, 0), rec(time.Minute, trace.Settled, 0)}), time.Minute, nil,
			"(f) registry_matches violated at 1m0s by session 0: settled with 1 registered sessions for 0 live peers"},
		{"settled with a client up on nothing", cat(open(), []trace.Record{
			sess(time.Second, 0, fsm.Alive, fsm.Reaped, fsm.PeerClose), unreg(time.Second, 0), rec(time.Minute, trace.Settled, 0)}), time.Minute, nil,
			"this client is up on no registered session"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expect(t, tt.cfg, tt.recs, tt.end, tt.want) })
	}
}

// judged runs recs through a Suite for c and finishes it at end.
func judged(t *testing.T, c invariant.Config, recs []trace.Record, end time.Duration) *invariant.Suite {
	t.Helper()
	s, err := invariant.New(c)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		s.Observe(&recs[i])
	}
	s.Finish(end)
	return s
}

// expect runs recs through a Suite configured as cfg adjusted by adjust
// (if not nil), finishing at end, and fails t unless the first violation
// contains want ("" means none) and Failed agrees.
func expect(t *testing.T, adjust func(*invariant.Config), recs []trace.Record, end time.Duration, want string) {
	t.Helper()
	c := cfg
	if adjust != nil {
		adjust(&c)
	}
	s := judged(t, c, recs, end)
	vs := s.Violations()
	switch {
	case want == "" && len(vs) > 0:
		t.Fatalf("unexpected violation: %v", vs[0])
	case want != "" && len(vs) == 0:
		t.Fatalf("no violation; want %q", want)
	case want != "" && !strings.Contains(vs[0].String(), want):
		t.Fatalf("violation %q\nwant it to contain %q", vs[0], want)
	case s.Failed() != (want != ""):
		t.Fatalf("Failed() = %v with violations %v", s.Failed(), vs)
	}
}

func TestHerd(t *testing.T) {
	build := func(spacing time.Duration) []trace.Record {
		var recs []trace.Record
		for c := uint32(0); c < 200; c++ {
			recs = append(recs, reg(0, c, c), up(0, c, c))
		}
		recs = append(recs, trace.Record{At: time.Second, Kind: trace.ServerDown})
		for c := uint32(0); c < 200; c++ {
			recs = append(recs, sess(time.Second, c, fsm.Alive, fsm.Reaped, fsm.Shutdown), unreg(time.Second, c), down(time.Second, c))
		}
		recs = append(recs, trace.Record{At: 2 * time.Second, Kind: trace.ServerUp})
		for c := uint32(0); c < 200; c++ {
			at := 2*time.Second + time.Duration(c)*spacing
			recs = append(recs, dial(at, c, 2), dial(at+time.Millisecond, c, 2)) // a second dial by one client counts once
		}
		return recs
	}
	for _, tt := range []struct {
		spacing time.Duration
		max     int
		fail    bool
	}{{0, 200, true}, {5 * ms, 20, false}, {time.Millisecond, 100, true}} {
		c := cfg
		c.HerdMaxFraction = 0.1
		s, _ := invariant.New(c)
		recs := build(tt.spacing)
		for i := range recs {
			s.Observe(&recs[i])
		}
		s.Finish(time.Minute)
		h := s.Herds()
		if len(h) != 1 || h[0].Dropped != 200 || h[0].Reconnects != 200 || h[0].MaxInWindow != tt.max {
			t.Fatalf("spacing %s: herds %+v, want 200 dropped, 200 reconnects, max %d", tt.spacing, h, tt.max)
		}
		if got := hasViolation(s, invariant.HerdSpread); got != tt.fail {
			t.Fatalf("spacing %s: herd violation %v, want %v: %v", tt.spacing, got, tt.fail, s.Violations())
		}
	}
}

func hasViolation(s *invariant.Suite, inv invariant.Invariant) bool {
	for _, v := range s.Verdicts() {
		if v.Invariant == inv {
			return v.Violations > 0
		}
	}
	return false
}

func TestOnlyLimitsVerdicts(t *testing.T) {
	c := cfg
	c.Only = []invariant.Invariant{invariant.NoSendAfterClose}
	s, _ := invariant.New(c)
	recs := []trace.Record{dial(0, 0, 1), down(0, 0), dial(0, 0, 5), rec(0, trace.Send, 3)}
	for i := range recs {
		s.Observe(&recs[i])
	}
	s.Finish(time.Minute)
	if vs := s.Violations(); len(vs) != 1 || vs[0].Invariant != invariant.NoSendAfterClose {
		t.Fatalf("violations %v, want only (e)", vs)
	}
	if v := s.Verdicts(); len(v) != 1 || v[0].Letter != "e" {
		t.Fatalf("verdicts %+v", v)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := invariant.Config{Slack: -1, HerdMaxFraction: 2, HerdMinClients: -1, HerdWindow: -1,
		Liveness: fsm.Liveness{PingInterval: time.Second, PongTimeout: 2 * time.Second}, Only: []invariant.Invariant{99}}
	err := bad.Validate()
	for _, want := range []string{"Slack", "HerdMaxFraction", "HerdMinClients", "HerdWindow", "Config.Liveness", "unknown invariant 99"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
	if _, err := invariant.New(bad); err == nil {
		t.Fatal("New accepted a bad config")
	}
}

func TestInvariantNames(t *testing.T) {
	for i, inv := range invariant.All {
		if inv.Letter() != byte('a'+i) || inv.String() == "" || strings.HasPrefix(inv.String(), "Invariant(") {
			t.Errorf("invariant %d: letter %c name %s", i, inv.Letter(), inv)
		}
	}
	if invariant.Invariant(99).String() != "Invariant(99)" {
		t.Error("unknown invariant not named by number")
	}
}
