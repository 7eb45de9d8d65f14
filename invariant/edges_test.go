package invariant_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/invariant"
	"github.com/lifeline-go/lifeline/trace"
)

// The cases here pin the edges of each rule, found unpinned by the
// mutation run (scripts/mutation): each bound is met exactly once on
// either side, and the slack widens only what it should.
func TestEdges(t *testing.T) {
	const s = time.Second
	dead := func(at, last time.Duration) trace.Record {
		return trace.Record{At: at, Kind: trace.PeerDead, ID: 0, LastSign: last}
	}
	degraded := func(at, d time.Duration) trace.Record {
		return trace.Record{At: at, Kind: trace.Degraded, ID: 0, Delay: d}
	}
	slack := func(d time.Duration) func(*invariant.Config) { return func(c *invariant.Config) { c.Slack = d } }
	equal := func(c *invariant.Config) {
		c.Backoff = fsm.Backoff{Initial: 2 * time.Microsecond, Multiplier: 1, Max: time.Hour, Jitter: fsm.JitterEqual}
	}
	decor := func(c *invariant.Config) {
		c.Backoff = fsm.Backoff{Initial: s, Multiplier: 2, Max: time.Hour, Jitter: fsm.JitterDecorrelated}
	}
	none := func(c *invariant.Config) {
		c.Backoff = fsm.Backoff{Initial: s, Multiplier: 1, Max: time.Hour, Jitter: fsm.JitterNone}
	}
	clientWindow := 30*s + 10*s + 10*s/4 // the client's silence window under cfg
	tests := []struct {
		name string
		recs []trace.Record
		end  time.Duration
		cfg  func(*invariant.Config)
		want string
	}{
		// (d) silence: a degradation exactly one window before the reap excuses it; a nanosecond earlier does not.
		{"degraded exactly one window before", cat(open(), []trace.Record{degraded(5*s, 0), sess(45*s, 0, fsm.Alive, fsm.Reaped, fsm.PongTimeout)}), 45 * s, nil, ""},
		{"degraded just before the window", cat(open(), []trace.Record{degraded(5*s-1, 0), sess(45*s, 0, fsm.Alive, fsm.Reaped, fsm.PongTimeout)}), 45 * s, nil,
			"(d) live_kept violated at 45s by session 0: reaped for silence while its peer lived and its path reported no loss or delay ≥ PongTimeout/2 since 5s"},
		{"a frame of exactly PongTimeout/2 excuses", cat(open(), []trace.Record{degraded(40*s, 5*s), sess(45*s, 0, fsm.Alive, fsm.Reaped, fsm.PongTimeout)}), 45 * s, nil, ""},
		{"a frame just under PongTimeout/2 does not", cat(open(), []trace.Record{degraded(40*s, 5*s-1), sess(45*s, 0, fsm.Alive, fsm.Reaped, fsm.PongTimeout)}), 45 * s, nil, "(d) live_kept"},
		// (d) client side.
		{"client: degraded exactly one client window before", cat(open(), []trace.Record{degraded(60*s-clientWindow, 0), down(60*s, 0),
			cli(60*s, 0, fsm.Connected, fsm.BackingOff, fsm.PongTimeout, 0)}), 60 * s, nil, ""},
		{"client: degraded just before it", cat(open(), []trace.Record{degraded(60*s-clientWindow-1, 0), down(60*s, 0),
			cli(60*s, 0, fsm.Connected, fsm.BackingOff, fsm.PongTimeout, 0)}), 60 * s, nil,
			"(d) live_kept violated at 1m0s by client 0: dropped session 0 for silence while the server end lived and the path reported no loss or delay ≥ 3/8 PongTimeout since 17.5s"},
		{"client: a held frame (no transit time) excuses", cat(open(), []trace.Record{degraded(50*s, 0), down(60*s, 0),
			cli(60*s, 0, fsm.Connected, fsm.BackingOff, fsm.PongTimeout, 0)}), 60 * s, nil, ""},
		{"client: a frame of exactly ClientSlowFrame excuses", cat(open(), []trace.Record{degraded(50*s, 3750*ms), down(60*s, 0),
			cli(60*s, 0, fsm.Connected, fsm.BackingOff, fsm.PongTimeout, 0)}), 60 * s, nil, ""},
		{"client: a frame just under it does not", cat(open(), []trace.Record{degraded(50*s, 3750*ms-1), down(60*s, 0),
			cli(60*s, 0, fsm.Connected, fsm.BackingOff, fsm.PongTimeout, 0)}), 60 * s, nil, "(d) live_kept"},
		{"client gives up on a live server for silence", cat(open(), []trace.Record{down(60*s, 0),
			cli(60*s, 0, fsm.Connected, fsm.GaveUp, fsm.PongTimeout, 0)}), 60 * s,
			func(c *invariant.Config) { c.Backoff.MaxAttempts = 1 }, "(d) live_kept violated at 1m0s by client 0"},
		{"client up on a session the trace never registered", []trace.Record{
			dial(0, 0, 1), reg(0, 0, 1), sess(0, 0, fsm.Handshaking, fsm.Alive, fsm.Upgraded), up(0, 0, 1), down(60*s, 0),
			cli(60*s, 0, fsm.Connected, fsm.BackingOff, fsm.PongTimeout, 0)}, 60 * s, nil, ""},
		// (c): the close bound applies to a close begun exactly at the liveness bound.
		{"close begun at the liveness bound", cat(open(), []trace.Record{dead(s, s),
			sess(41*s, 0, fsm.Alive, fsm.Closing, fsm.Shutdown), sess(46*s, 0, fsm.Closing, fsm.Reaped, fsm.CloseTimeout)}), time.Minute, nil, ""},
		{"close begun after it", cat(open(), []trace.Record{dead(s, s),
			sess(41*s+1, 0, fsm.Alive, fsm.Closing, fsm.Shutdown), sess(46*s, 0, fsm.Closing, fsm.Reaped, fsm.CloseTimeout)}), time.Minute, nil,
			"(c) dead_reaped violated at 46s by session 0: reaped at 46s; peer dead, last sign of life at 1s, liveness bound 41s"},
		// (c) idle: reaped exactly at the bound is in time; slack widens it; a session closing at its upgrade is not idle.
		{"idle reap exactly at the bound", cat(open(), []trace.Record{sess(5*time.Minute, 0, fsm.Alive, fsm.Closing, fsm.IdleTimeout),
			sess(5*time.Minute+5*s, 0, fsm.Closing, fsm.Reaped, fsm.CloseTimeout)}), 6 * time.Minute, nil, ""},
		{"idle reap within the slack", cat(open(), []trace.Record{sess(5*time.Minute, 0, fsm.Alive, fsm.Closing, fsm.IdleTimeout),
			sess(5*time.Minute+5*s+s/2, 0, fsm.Closing, fsm.Reaped, fsm.CloseTimeout)}), 6 * time.Minute, slack(s), ""},
		{"closing from the upgrade is not idle", cat(open(), []trace.Record{sess(0, 0, fsm.Alive, fsm.Closing, fsm.Shutdown),
			sess(10*time.Minute, 0, fsm.Closing, fsm.Reaped, fsm.CloseTimeout)}), 10 * time.Minute, nil, ""},
		{"a handshake never finished", []trace.Record{dial(0, 0, 1), reg(0, 0, 0)}, time.Minute, nil,
			"(c) dead_reaped violated at 1m0s by session 0: still not reaped at 1m0s; handshaking since 0s, bound 10s"},
		// (a), (b): the stable-link reset, the slack on the latest retry.
		{"a link up 7s of a 10s StableAfter does not reset the count", []trace.Record{
			dial(0, 0, 1), down(0, 0), dial(0, 0, 2), up(5*s, 0, 0), down(12*s, 0), dial(13*s, 0, 3)}, 13 * s, nil, ""},
		{"a retry late within the slack", []trace.Record{dial(0, 0, 1), down(0, 0), dial(0, 0, 2), down(0, 0), dial(s+s/2, 0, 3)}, 2 * s, slack(s), ""},
		{"a retry owed, not yet late by the slack", []trace.Record{dial(0, 0, 1), down(0, 0), dial(0, 0, 2), down(0, 0)}, s + s/2, slack(s), ""},
		// (a) growth: the bottom quarter's top counts as low; just above it does not; no jitter is never judged.
		{"delays exactly at the quarter are low", failures(repeat(1250*ms, 20)...), time.Hour, decor, "20 backoff delays in a row in the bottom quarter"},
		{"delays at the quarter of a range grown from them are low", failures(repeat(1500*ms, 21)...), time.Hour, decor, "20 backoff delays in a row in the bottom quarter"},
		{"delays just above the quarter are not", failures(repeat(1600*ms, 30)...), 46 * s, decor, ""},
		{"no jitter: a constant delay is the policy", failures(repeat(s, 30)...), 30 * s, none, ""},
		{"a range of exactly 1µs is judged", failures(repeat(time.Microsecond, 20)...), time.Hour, equal, "20 backoff delays in a row"},
		// (e) and (f) bookkeeping.
		{"an unregistered session leaves the count", cat(open(), []trace.Record{sess(s, 0, fsm.Alive, fsm.Reaped, fsm.PeerClose), unreg(s, 0),
			down(s, 0), rec(s, trace.Quiesce, 0), rec(time.Minute, trace.Settled, 0)}), time.Minute, nil, ""},
		{"a client up on a link past the registry", []trace.Record{dial(0, 0, 1), up(0, 0, 0), rec(time.Minute, trace.Settled, 0)}, time.Minute, nil,
			"this client is up on no registered session"},
		{"a restart of a server with no sessions", cat(open(), []trace.Record{{At: s, Kind: trace.ServerDown, Server: 1}, {At: 2 * s, Kind: trace.ServerUp, Server: 1}}), 2 * s, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expect(t, tt.cfg, tt.recs, tt.end, tt.want) })
	}
}

func TestClientSlowFrame(t *testing.T) {
	if got := invariant.ClientSlowFrame(fsm.Liveness{PongTimeout: 8 * time.Second}); got != 3*time.Second {
		t.Fatalf("ClientSlowFrame = %s, want 3s", got)
	}
}

// Verdicts count each check; Index numbers the record that revealed a
// violation; at most 64 violations are kept, all are counted.
func TestBookkeeping(t *testing.T) {
	s, _ := invariant.New(cfg)
	recs := []trace.Record{dial(0, 0, 1), down(0, 0), dial(0, 0, 2), rec(s2(1), trace.Send, 9)}
	for i := 0; i < 70; i++ {
		recs = append(recs, rec(s2(2), trace.Send, 9))
	}
	for i := range recs {
		s.Observe(&recs[i])
	}
	s.Finish(s2(3))
	v := s.Violations()
	if len(v) != 64 || v[0].Index != 3 || v[1].Index != 4 {
		t.Fatalf("%d violations kept, first indices %d %d; want 64, 3, 4", len(v), v[0].Index, v[1].Index)
	}
	for _, vd := range s.Verdicts() {
		switch vd.Invariant {
		case invariant.NoEarlyRetry, invariant.BoundedRetries:
			if vd.Checked != 2 || !vd.Held() {
				t.Errorf("%s: %+v, want 2 checks held", vd.Name, vd)
			}
		case invariant.NoSendAfterClose:
			if vd.Checked != 71 || vd.Violations != 71 || vd.Held() {
				t.Errorf("%s: %+v, want 71 checks and violations", vd.Name, vd)
			}
		}
	}
}

func s2(n int) time.Duration { return time.Duration(n) * time.Second }

// (g) is judged from HerdMinClients dropped clients on; zero means 100.
func TestHerdMinimum(t *testing.T) {
	run := func(clients, min int, spacing time.Duration) (*invariant.Suite, []invariant.HerdResult) {
		c := cfg
		c.HerdMaxFraction, c.HerdMinClients = 0.1, min
		s, _ := invariant.New(c)
		var recs []trace.Record
		for i := uint32(0); i < uint32(clients); i++ {
			recs = append(recs, reg(0, i, i), up(0, i, i))
		}
		recs = append(recs, trace.Record{At: time.Second, Kind: trace.ServerDown}, trace.Record{At: 2 * time.Second, Kind: trace.ServerUp})
		for i := uint32(0); i < uint32(clients); i++ {
			recs = append(recs, dial(2*time.Second+time.Duration(i)*spacing, i, 2))
		}
		for i := range recs {
			s.Observe(&recs[i])
		}
		s.Finish(time.Hour)
		return s, s.Herds()
	}
	if s, _ := run(99, 0, 0); hasViolation(s, invariant.HerdSpread) || checked(s, invariant.HerdSpread) != 0 {
		t.Fatal("99 dropped clients judged under the default minimum of 100")
	}
	s, h := run(10, 10, time.Second)
	if checked(s, invariant.HerdSpread) != 1 || hasViolation(s, invariant.HerdSpread) {
		t.Fatalf("10 dropped clients with HerdMinClients 10: checked %d", checked(s, invariant.HerdSpread))
	}
	// 10 reconnects one second apart: each 100ms window holds one, the
	// first at 2s; the spread from the 10th to the 90th percentile is 8s.
	if len(h) != 1 || h[0].MaxInWindow != 1 || h[0].MaxAt != 2*time.Second || h[0].Spread != 8*time.Second {
		t.Fatalf("herd %+v", h)
	}
	s, _ = run(10, 10, 0)
	if v := s.Violations(); len(v) == 0 || !strings.Contains(v[len(v)-1].String(), "(g) herd_spread violated at 2s by world: after server 0's restart, 10 of 10 dropped clients reconnected within 100ms of 2s (limit 10%)") {
		t.Fatalf("violation %q", v)
	}
}

func checked(s *invariant.Suite, inv invariant.Invariant) int {
	for _, v := range s.Verdicts() {
		if v.Invariant == inv {
			return v.Checked
		}
	}
	return -1
}

// Two servers restart at once and come back in the other order: each
// restart's reconnects are its own.
func TestHerdTwoServers(t *testing.T) {
	c := cfg
	s, _ := invariant.New(c)
	recs := []trace.Record{
		{At: time.Second, Kind: trace.ServerDown, Server: 0}, {At: time.Second, Kind: trace.ServerDown, Server: 1},
		{At: 2 * time.Second, Kind: trace.ServerUp, Server: 0}, {At: 3 * time.Second, Kind: trace.ServerUp, Server: 1},
		{At: 4 * time.Second, Kind: trace.Dial, ID: 0, Attempt: 1, Server: 1},
	}
	for i := range recs {
		s.Observe(&recs[i])
	}
	s.Finish(time.Minute)
	h := s.Herds()
	if len(h) != 2 || h[0].Server != 0 || h[0].UpAt != 2*time.Second || h[0].Reconnects != 0 || h[1].UpAt != 3*time.Second || h[1].Reconnects != 1 {
		t.Fatalf("herds %+v", h)
	}
}

func TestConfigEdges(t *testing.T) {
	for _, c := range []invariant.Config{
		{HerdMaxFraction: 1}, {Only: []invariant.Invariant{invariant.NoEarlyRetry, invariant.HerdSpread}},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if err := (invariant.Config{Only: []invariant.Invariant{0}}).Validate(); err == nil {
		t.Error("Only holding invariant 0 accepted")
	}
}

// A server going down closes only its own restart's window: server 0's
// reconnects are still counted after server 1 goes down.
func TestHerdOtherServerDown(t *testing.T) {
	s, _ := invariant.New(cfg)
	recs := []trace.Record{
		{At: time.Second, Kind: trace.ServerDown, Server: 0}, {At: 2 * time.Second, Kind: trace.ServerUp, Server: 0},
		{At: 3 * time.Second, Kind: trace.ServerDown, Server: 1},
		{At: 4 * time.Second, Kind: trace.Dial, ID: 0, Attempt: 1, Server: 0},
	}
	for i := range recs {
		s.Observe(&recs[i])
	}
	s.Finish(time.Minute)
	if h := s.Herds(); len(h) != 1 || h[0].Server != 0 || h[0].Reconnects != 1 {
		t.Fatalf("herds %+v, want server 0's with its one reconnect", h)
	}
}

// The handshake bound: a session reaped exactly at it, or late within the
// slack, is in time.
func TestHandshakeBound(t *testing.T) {
	hs := func(at time.Duration) []trace.Record {
		return []trace.Record{dial(0, 0, 1), reg(0, 0, 0), sess(at, 0, fsm.Handshaking, fsm.Reaped, fsm.HandshakeTimeout)}
	}
	expect(t, nil, hs(10*time.Second), time.Minute, "")
	expect(t, func(c *invariant.Config) { c.Slack = time.Second }, hs(10*time.Second+500*ms), time.Minute, "")
	expect(t, nil, hs(10*time.Second+1), time.Minute, "reaped at 10.000000001s; handshaking since 0s, bound 10s")
}

// A peer dead before its handshake finished: the session may take the
// later of the liveness bound and the handshake bound (created +
// HandshakeTimeout), here the handshake's, 60 s after it was created.
func TestDeadBeforeUpgrade(t *testing.T) {
	long := func(c *invariant.Config) { c.Liveness.HandshakeTimeout = time.Minute }
	deadHs := func(at time.Duration) []trace.Record {
		return []trace.Record{dial(0, 0, 1), reg(0, 0, 0), {At: time.Second, Kind: trace.PeerDead, ID: 0, LastSign: time.Second},
			sess(at, 0, fsm.Handshaking, fsm.Reaped, fsm.HandshakeTimeout)}
	}
	expect(t, long, deadHs(time.Minute), 2*time.Minute, "")
	expect(t, long, deadHs(time.Minute+1), 2*time.Minute, "(c) dead_reaped violated at 1m0.000000001s by session 0: reaped at 1m0.000000001s")
}

// Two policy changes at one instant are in order.
func TestBackoffChangesAtOneInstant(t *testing.T) {
	c := invariant.Config{BackoffChanges: []invariant.BackoffChange{{At: time.Second}, {At: time.Second}}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// Config.Only accepts the last invariant and nothing past it.
func TestOnlyLastInvariant(t *testing.T) {
	last := invariant.All[len(invariant.All)-1]
	if err := (invariant.Config{Only: []invariant.Invariant{last}}).Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (invariant.Config{Only: []invariant.Invariant{last + 1}}).Validate(); err == nil {
		t.Fatal("Only holding the invariant past the last accepted")
	}
}

// (g)'s oracle is asked about the outage the restart really had (down at
// 1s, up at 2s); its limit replaces the fraction's only when lower.
func TestHerdOracleOutage(t *testing.T) {
	c := cfg
	c.Backoff.Jitter = fsm.JitterSymmetric // ±50 %: the oracle's share depends on the outage
	const n = 10
	p, ok := c.Backoff.HerdShare(time.Second, 100*ms)
	if q, _ := c.Backoff.HerdShare(3*time.Second, 100*ms); !ok || p == q {
		t.Fatalf("the oracle cannot tell a 1s outage from a 3s one (%v, %v)", p, q)
	}
	l := fsm.HerdLimit(n, p)
	if l >= n {
		t.Fatalf("oracle limit %d of %d leaves no herd to catch", l, n)
	}
	judge := func(fraction float64, want string) {
		t.Helper()
		c.HerdMaxFraction, c.HerdMinClients, c.HerdWindow = fraction, n, 100*ms
		s, _ := invariant.New(c)
		var recs []trace.Record
		for i := uint32(0); i < n; i++ {
			recs = append(recs, reg(0, i, i), up(0, i, i))
		}
		recs = append(recs, trace.Record{At: time.Second, Kind: trace.ServerDown}, trace.Record{At: 2 * time.Second, Kind: trace.ServerUp})
		for i := uint32(0); i < n; i++ {
			recs = append(recs, dial(2*time.Second, i, 2))
		}
		for i := range recs {
			s.Observe(&recs[i])
		}
		s.Finish(time.Hour)
		if h := s.Herds(); len(h) != 1 || h[0].OracleShare != p || h[0].Limit != l {
			t.Fatalf("herds %+v, want the oracle's share %v of a 1s outage and limit %d", h, p, l)
		}
		want = "(g) herd_spread violated at 2s by world: after server 0's restart, 10 of 10 dropped clients reconnected within 100ms of 2s (" + want + ")"
		if v := s.Violations(); len(v) == 0 || v[len(v)-1].String() != want {
			t.Fatalf("violations %q\nwant last %q", v, want)
		}
	}
	// The fraction's limit equals the oracle's: the fraction's stands.
	f := (float64(l) + 0.5) / n
	judge(f, fmt.Sprintf("limit %.0f%%", f*100))
	// All may come at once by the fraction: the oracle's lower limit rules.
	judge(1, fmt.Sprintf("limit %d, from the policy's herd oracle: share %.3f over a 1s outage", l, p))
}
