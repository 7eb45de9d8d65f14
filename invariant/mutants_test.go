package invariant_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/invariant"
	"github.com/lifeline-go/lifeline/trace"
)

// (b)'s offline clock starts at the drop of a stable link, not at 0: a
// give-up 1.9s after a drop at 20s is too soon for GiveUpAfter 2s.
func TestGiveUpAfterStableLink(t *testing.T) {
	c := cfg
	c.Backoff.MaxAttempts, c.Backoff.GiveUpAfter = 0, 2*time.Second
	s := time.Second
	recs := func(at time.Duration) []trace.Record {
		return cat([]trace.Record{start(0)}, open(), []trace.Record{down(20*s, 0), dial(20*s, 0, 2), down(20*s, 0), dial(21*s, 0, 3),
			down(at, 0), cli(at, 0, fsm.Connecting, fsm.GaveUp, fsm.DialFailed, 0)})
	}
	judgeTable(t, c, recs(22*s), 25*s, "")
	judgeTable(t, c, recs(21900*ms), 25*s, "(b) bounded_retries violated at 21.9s by client 0: gave up after 3 consecutive failures; MaxAttempts=0, GiveUpAfter=2s (1.9s offline)")
}

// (l)'s latest takes the slack: a retry exactly at the slow schedule's
// latest plus the slack is in time, 1ns later is not.
func TestPermanentSlowLatestSlack(t *testing.T) {
	c := cfg
	c.Backoff.MaxAttempts = 0
	c.Slack = 100 * ms
	c.Failures = fsm.FailurePolicy{Schedule: fsm.Backoff{Initial: 10 * time.Second, Multiplier: 2, Jitter: fsm.JitterNone}}
	recs := func(at time.Duration) []trace.Record {
		return []trace.Record{start(0), dial(0, 0, 1), downCode(0, 0, 401), dial(at, 0, 2)}
	}
	judgeTable(t, c, recs(10100*ms), 11*time.Second, "")
	judgeTable(t, c, recs(10100*ms+1), 11*time.Second,
		"(b) bounded_retries violated at 10.100000001s by client 0: attempt 2 came 10.100000001s after permanent failure 1 at 0s; the slow schedule's latest is 10s")
}

// (m)'s gap is measured from the previous attempt, wherever it was.
func TestReconnectFloorAfterLateAttempt(t *testing.T) {
	c := cfg
	c.Backoff.MaxAttempts = 0
	c.Backoff.ReconnectFloor = 300 * ms
	s := time.Second
	recs := func(at time.Duration) []trace.Record {
		return []trace.Record{start(0), dial(0, 0, 1), down(s, 0), dial(s, 0, 2), down(s, 0), rec(s+100*ms, trace.Nudge, 0), dial(at, 0, 3)}
	}
	judgeTable(t, c, recs(s+300*ms), 2*s, "")
	judgeTable(t, c, recs(s+300*ms-1), 2*s,
		"(m) reconnect_floor violated at 1.299999999s by client 0: attempt 3 started 299.999999ms after attempt 2, which a reconnect-now may not bring closer than the floor 300ms")
}

// Config.Only accepts the last invariant and nothing past it.
func TestOnlyLastInvariant(t *testing.T) {
	if err := (invariant.Config{Only: []invariant.Invariant{invariant.ReconnectFloor}}).Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (invariant.Config{Only: []invariant.Invariant{invariant.ReconnectFloor + 1}}).Validate(); err == nil {
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
