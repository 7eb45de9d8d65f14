package fsm

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// checkFieldErrors fails t unless err is made only of *FieldError values
// whose messages name their field.
func checkFieldErrors(t *testing.T, err error) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("validation error is not a *FieldError: %v", err)
	}
	if !strings.Contains(err.Error(), fe.Field) {
		t.Fatalf("error %q does not name field %s", err, fe.Field)
	}
}

// FuzzLivenessValidate: any Liveness either fails Validate with named
// *FieldError values, or is usable: its defaults are positive, the pong
// timeout is shorter than the ping interval, and a session built on it
// has a deadline.
func FuzzLivenessValidate(f *testing.F) {
	f.Add(int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), 0)
	f.Add(int64(30e9), int64(10e9), int64(0), int64(10e9), int64(10e9), int64(5e9), 3)
	f.Add(int64(1), int64(0), int64(0), int64(0), int64(0), int64(0), 0)
	f.Add(int64(-1), int64(1), int64(1<<62), int64(-1<<63), int64(1), int64(-1), -5)
	f.Fuzz(func(t *testing.T, ping, pong, idle, write, hs, cl int64, maxErr int) {
		l := Liveness{PingInterval: time.Duration(ping), PongTimeout: time.Duration(pong),
			IdleTimeout: time.Duration(idle), WriteTimeout: time.Duration(write),
			HandshakeTimeout: time.Duration(hs), CloseTimeout: time.Duration(cl), MaxErrors: maxErr}
		if err := l.Validate(); err != nil {
			checkFieldErrors(t, err)
			if _, serr := NewSession(time.Unix(0, 0), l); serr == nil {
				t.Fatal("NewSession accepted a policy Validate rejects")
			}
			return
		}
		d := l.WithDefaults()
		if d.PingInterval <= 0 || d.PongTimeout <= 0 || d.WriteTimeout <= 0 || d.HandshakeTimeout <= 0 ||
			d.CloseTimeout <= 0 || d.MaxErrors <= 0 || d.PongTimeout >= d.PingInterval {
			t.Fatalf("Validate accepted %+v, whose defaults are unusable: %+v", l, d)
		}
		s, err := NewSession(time.Unix(0, 0), l)
		if err != nil {
			t.Fatalf("NewSession refused a valid policy: %v", err)
		}
		if _, ok := s.Deadline(); !ok {
			t.Fatal("a new session has no handshake deadline")
		}
	})
}

// FuzzBackoffValidate: any Backoff either fails Validate with named
// *FieldError values, or every delay it draws lies within its own oracle
// bounds [Earliest(n), Latest(n)], and those within [0, Max].
func FuzzBackoffValidate(f *testing.F) {
	f.Add(int64(0), 0.0, int64(0), uint8(0), 0, false, int64(0), 0.0, uint64(1))
	f.Add(int64(1e9), 2.0, int64(30e9), uint8(1), 10, true, int64(5e9), 0.2, uint64(2))
	f.Add(int64(1), 1e300, int64(1<<62), uint8(4), 0, true, int64(0), 0.0, uint64(3))
	f.Add(int64(-1), -1.0, int64(-1), uint8(9), -1, false, int64(-1), 2.0, uint64(4))
	f.Fuzz(func(t *testing.T, initial int64, mult float64, max int64, jitter uint8, attempts int,
		first bool, timeout int64, frac float64, seed uint64) {
		b := Backoff{Initial: time.Duration(initial), Multiplier: mult, Max: time.Duration(max),
			Jitter: JitterKind(jitter), MaxAttempts: attempts, FirstImmediate: first,
			ConnectTimeout: time.Duration(timeout), JitterFraction: frac}
		if err := b.Validate(); err != nil {
			checkFieldErrors(t, err)
			return
		}
		d := b.WithDefaults()
		r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		var prev time.Duration
		for n := 1; n <= 64; n++ {
			lo, hi := b.Earliest(n), b.Latest(n)
			got := b.Delay(n, prev, r)
			if got < lo || got > hi || lo < 0 || hi > d.Max {
				t.Fatalf("%+v: delay %d = %s outside [%s, %s] (Max %s)", b, n, got, lo, hi, d.Max)
			}
			prev = got
		}
	})
}

// FuzzLeaseValidate: any Lease either fails Validate with named
// *FieldError values (and NewNode refuses it), or its defaults keep the
// promises the cluster rests on: whole-second TTL, a heartbeat of at most
// TTL/3, a fence at least two heartbeats after the proof and strictly before the earliest
// declared death, and a latest declared death after both.
func FuzzLeaseValidate(f *testing.F) {
	f.Add(int64(0), int64(0), int64(0), int64(0), int64(0))
	f.Add(int64(10e9), int64(3e9), int64(7e9), int64(10e9), int64(1e9))
	f.Add(int64(3e9), int64(1e9), int64(0), int64(0), int64(0))
	f.Add(int64(1), int64(0), int64(0), int64(0), int64(0))
	f.Add(int64(2e9), int64(2e9), int64(2e9), int64(-1), int64(1<<62))
	f.Fuzz(func(t *testing.T, ttl, hb, fence, failover, slack int64) {
		l := Lease{TTL: time.Duration(ttl), Heartbeat: time.Duration(hb), Fence: time.Duration(fence),
			Failover: time.Duration(failover), Slack: time.Duration(slack)}
		if err := l.Validate(); err != nil {
			checkFieldErrors(t, err)
			if _, nerr := NewNode(time.Unix(0, 0), l, 1); nerr == nil {
				t.Fatal("NewNode accepted a policy Validate rejects")
			}
			return
		}
		d := l.WithDefaults()
		p := time.Unix(1000, 0)
		if d.TTL < time.Second || d.TTL%time.Second != 0 || d.Heartbeat <= 0 || d.Heartbeat > d.TTL/3 ||
			d.Fence < 2*d.Heartbeat || !l.FenceAt(p).Before(l.EarliestDead(p)) ||
			!l.LatestDead(p, false).After(l.EarliestDead(p)) || l.LatestDead(p, true).Before(l.LatestDead(p, false)) {
			t.Fatalf("Validate accepted %+v, whose defaults break a bound: %+v", l, d)
		}
		n, err := NewNode(time.Unix(0, 0), l, 1)
		if err != nil {
			t.Fatalf("NewNode refused a valid policy: %v", err)
		}
		if _, ok := n.Deadline(); !ok {
			t.Fatal("a new node has no deadline")
		}
	})
}
