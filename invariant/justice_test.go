package invariant_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/invariant"
	"github.com/lifeline-go/lifeline/trace"
)

// failures is a client's run of n refused attempts, the i-th backing off
// delays[i] (the last of them not followed by an attempt).
func failures(delays ...time.Duration) []trace.Record {
	var recs []trace.Record
	t := time.Duration(0)
	for i, d := range delays {
		recs = append(recs, dial(t, 0, int32(i+1)), down(t, 0), cli(t, 0, fsm.Connecting, fsm.BackingOff, fsm.DialFailed, d))
		t += d
	}
	return recs
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

// TestNoUnjustEnd shows (d) judging every reason a session or a client
// ends an open link for, against the reason's own rule; each broken case
// is the record shape of a driver that got the rule wrong.
func TestNoUnjustEnd(t *testing.T) {
	const s = time.Second
	idle := func(at time.Duration) trace.Record { return sess(at, 0, fsm.Alive, fsm.Closing, fsm.IdleTimeout) }
	decor := func(c *invariant.Config) {
		c.Backoff = fsm.Backoff{Initial: s, Multiplier: 2, Max: time.Hour, Jitter: fsm.JitterDecorrelated}
	}
	full := func(c *invariant.Config) {
		c.Backoff = fsm.Backoff{Initial: s, Multiplier: 2, Max: time.Hour, Jitter: fsm.JitterFull}
	}
	tests := []struct {
		name string
		recs []trace.Record
		end  time.Duration
		cfg  func(*invariant.Config)
		want string
	}{
		{"idle close at the idle deadline", cat(open(), []trace.Record{rec(time.Minute, trace.Send, 0), idle(6 * time.Minute)}), 6 * time.Minute, nil, ""},
		{"idle close counted from the upgrade, not the last send", cat(open(), []trace.Record{rec(time.Minute, trace.Send, 0), idle(5 * time.Minute)}), 7 * time.Minute, nil,
			"(d) live_kept violated at 5m0s by session 0: closed for idleness 4m0s after the last application message at 1m0s; IdleTimeout is 5m0s"},
		{"idle close that ignored the peer's messages", cat(open(), []trace.Record{rec(4*time.Minute, trace.Recv, 0), idle(5 * time.Minute)}), 7 * time.Minute, nil,
			"closed for idleness 1m0s after the last application message at 4m0s"},
		{"idle close with the idle tier off", cat(open(), []trace.Record{idle(5 * time.Minute)}), 7 * time.Minute,
			func(c *invariant.Config) { c.Liveness.IdleTimeout = 0 }, "closed for idleness with IdleTimeout off"},
		{"a message from the peer keeps (c)'s idle bound away", cat(open(), []trace.Record{rec(4*time.Minute, trace.Recv, 0)}), 9 * time.Minute, nil, ""},
		{"closed after MaxErrors bad messages in a row", cat(open(), []trace.Record{
			rec(s, trace.BadRecv, 0), sess(s, 0, fsm.Alive, fsm.Suspect, fsm.ProtocolError),
			rec(2*s, trace.BadRecv, 0), sess(2*s, 0, fsm.Suspect, fsm.Suspect, fsm.ProtocolError),
			rec(3*s, trace.BadRecv, 0), sess(3*s, 0, fsm.Suspect, fsm.Closing, fsm.ProtocolError)}), time.Minute, nil, ""},
		{"a good message ends the streak", cat(open(), []trace.Record{
			rec(s, trace.BadRecv, 0), rec(2*s, trace.BadRecv, 0), rec(3*s, trace.Recv, 0),
			rec(4*s, trace.BadRecv, 0), sess(4*s, 0, fsm.Suspect, fsm.Closing, fsm.ProtocolError)}), time.Minute, nil,
			"closed for protocol errors after 1 bad messages in a row; MaxErrors is 3"},
		{"slow consumer with its queue full", cat(open(), []trace.Record{rec(s, trace.QueueFull, 0), sess(s, 0, fsm.Alive, fsm.Reaped, fsm.SlowConsumer)}), time.Minute, nil, ""},
		{"slow consumer with room in its queue", cat(open(), []trace.Record{sess(s, 0, fsm.Alive, fsm.Reaped, fsm.SlowConsumer)}), time.Minute, nil,
			"closed as a slow consumer, but no write ever found its queue full"},
		{"send error after a failed write", cat(open(), []trace.Record{rec(s, trace.SendFailed, 0), sess(s, 0, fsm.Alive, fsm.Reaped, fsm.SendError)}), time.Minute, nil, ""},
		{"send error with no failed write", cat(open(), []trace.Record{sess(s, 0, fsm.Alive, fsm.Reaped, fsm.SendError)}), time.Minute, nil,
			"reaped for a send error, but no write on it failed"},
		{"read error of a dead peer", cat(open(), []trace.Record{
			{At: s, Kind: trace.PeerDead, ID: 0, LastSign: s}, sess(s, 0, fsm.Alive, fsm.Reaped, fsm.ReadError)}), time.Minute, nil, ""},
		{"read error of a frame over the limit", cat(open(), []trace.Record{
			rec(s, trace.BadRecv, 0), sess(s, 0, fsm.Alive, fsm.Reaped, fsm.ReadError)}), time.Minute, nil, ""},
		{"read error of a live peer on a healthy path", cat(open(), []trace.Record{sess(45*s, 0, fsm.Alive, fsm.Reaped, fsm.ReadError)}), time.Minute, nil,
			"(d) live_kept violated at 45s by session 0: reaped for a read error while its peer lived"},
		{"client drops a live server for silence", cat(open(), []trace.Record{
			down(50*s, 0), cli(50*s, 0, fsm.Connected, fsm.BackingOff, fsm.PongTimeout, 0)}), time.Minute, nil,
			"(d) live_kept violated at 50s by client 0: dropped session 0 for silence while the server end lived"},
		{"client drops a reaped server end", cat(open(), []trace.Record{
			sess(45*s, 0, fsm.Alive, fsm.Reaped, fsm.PeerClose), down(50*s, 0), cli(50*s, 0, fsm.Connected, fsm.BackingOff, fsm.PongTimeout, 0)}), 50 * s, nil, ""},
		{"client drops over a slow path", cat(open(), []trace.Record{
			{At: 40 * s, Kind: trace.Degraded, ID: 0, Delay: 5 * s}, down(50*s, 0), cli(50*s, 0, fsm.Connected, fsm.BackingOff, fsm.PongTimeout, 0)}), 50 * s, nil, ""},
		{"a delay slow only for the client's pong timeout does not excuse the server", cat(open(), []trace.Record{
			{At: 40 * s, Kind: trace.Degraded, ID: 0, Delay: 2 * s}, sess(45*s, 0, fsm.Alive, fsm.Reaped, fsm.PongTimeout)}), time.Minute,
			func(c *invariant.Config) { c.ClientLiveness = fsm.Liveness{PingInterval: 10 * s, PongTimeout: 4 * s} }, "(d) live_kept violated at 45s by session 0"},
		{"... and excuses the client", cat(open(), []trace.Record{
			{At: 40 * s, Kind: trace.Degraded, ID: 0, Delay: 1500 * ms}, down(45*s, 0), cli(45*s, 0, fsm.Connected, fsm.BackingOff, fsm.PongTimeout, 0)}), 45 * s,
			func(c *invariant.Config) { c.ClientLiveness = fsm.Liveness{PingInterval: 10 * s, PongTimeout: 4 * s} }, ""},
		{"decorrelated delays that grow", failures(1900*ms, 3700*ms, 7300*ms, 14*s, 27*s), 27 * s, decor, ""},
		{"decorrelated delay past Multiplier × the one before", failures(1500*ms, 3500*ms), time.Minute, decor,
			"(b) bounded_retries violated at 1.5s by client 0: backoff delay 3.5s after failure 2 (the one before: 1.5s) is above the policy's latest 3s"},
		{"decorrelated delay below Initial", failures(900 * ms), time.Minute, decor, "backoff delay 900ms after failure 1 is below the policy's earliest 1s"},
		{"decorrelated delays stuck at Initial", failures(repeat(s, 20)...), time.Hour, decor,
			"(a) no_early_retry violated at 19s by client 0: 20 backoff delays in a row in the bottom quarter of their range (this one 1s of [1s, 2s] after failure 20)"},
		{"19 low draws are luck", failures(repeat(s, 19)...), time.Hour, decor, ""},
		{"full jitter whose base does not grow", failures(repeat(100*ms, 20)...), time.Hour, full, "20 backoff delays in a row in the bottom quarter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expect(t, tt.cfg, tt.recs, tt.end, tt.want) })
	}
}

// A policy change at run time reaches a pending retry: it may move to the
// new policy's bounds, never before the old earliest bound.
func TestBackoffChanges(t *testing.T) {
	const s = time.Second
	slow := fsm.Backoff{Initial: 10 * s, Jitter: fsm.JitterNone}
	fast := fsm.Backoff{Initial: s, Jitter: fsm.JitterNone}
	slower := fsm.Backoff{Initial: 30 * s, Jitter: fsm.JitterNone}
	run := func(changes []invariant.BackoffChange, recs ...trace.Record) []invariant.Violation {
		si, err := invariant.New(invariant.Config{Backoff: slow, BackoffChanges: changes})
		if err != nil {
			t.Fatal(err)
		}
		for i := range recs {
			si.Observe(&recs[i])
		}
		si.Finish(recs[len(recs)-1].At)
		return si.Violations()
	}
	failed := []trace.Record{dial(0, 0, 1), down(0, 0)}
	toFast := []invariant.BackoffChange{{At: 2 * s, Backoff: fast}}
	if v := run(toFast, append(failed, dial(10*s, 0, 2))...); len(v) > 0 {
		t.Fatalf("a retry at the old bound after a change to a faster policy: %v", v)
	}
	if v := run(toFast, append(failed, dial(5*s, 0, 2))...); len(v) == 0 || !strings.Contains(v[0].String(), "attempt 2 came 5s after failure 1 at 0s; the policy's earliest is 10s") {
		t.Fatalf("a retry moved before the old promise: %v", v)
	}
	twice := []invariant.BackoffChange{{At: 2 * s, Backoff: fast}, {At: 3 * s, Backoff: fast}}
	if v := run(twice, append(failed, dial(5*s, 0, 2))...); len(v) == 0 {
		t.Fatal("two changes added up to a retry before the first promise")
	}
	toSlower := []invariant.BackoffChange{{At: 2 * s, Backoff: slower}}
	if v := run(toSlower, append(failed, dial(30*s, 0, 2))...); len(v) > 0 {
		t.Fatalf("a retry moved to the slower policy's bound: %v", v)
	}
	if v := run(toSlower, append(failed, dial(20*s, 0, 2))...); len(v) == 0 {
		t.Fatal("a retry before the slower policy's bound after the change")
	}
	if v := run(toSlower, append(failed, dial(31*s, 0, 2))...); len(v) == 0 || !strings.Contains(v[0].String(), "(b) bounded_retries") {
		t.Fatalf("a retry after the slower policy's latest: %v", v)
	}
	if err := (invariant.Config{BackoffChanges: []invariant.BackoffChange{{At: 2 * s}, {At: s}}}).Validate(); err == nil {
		t.Fatal("changes out of order accepted")
	}
}

// A new MaxAttempts applies from the next failure: the retry pending at
// the change still happens.
func TestBackoffChangeMaxAttempts(t *testing.T) {
	b := fsm.Backoff{Initial: 10 * ms, Jitter: fsm.JitterNone}
	limited := b
	limited.MaxAttempts = 1
	expect(t, func(c *invariant.Config) {
		c.Backoff, c.BackoffChanges = b, []invariant.BackoffChange{{At: ms, Backoff: limited}}
	}, []trace.Record{dial(0, 0, 1), down(0, 0), dial(10*ms, 0, 2)}, 10*ms, "")
	expect(t, func(c *invariant.Config) {
		c.Backoff, c.BackoffChanges = b, []invariant.BackoffChange{{At: 0, Backoff: limited}}
	}, []trace.Record{dial(0, 0, 1), down(0, 0), dial(10*ms, 0, 2)}, 10*ms, "after failure 1 had exhausted MaxAttempts=1")
}

// A retry the new policy puts in the past is due at the change itself.
func TestBackoffChangeInThePast(t *testing.T) {
	b := fsm.Backoff{Initial: time.Minute, Jitter: fsm.JitterNone}
	fast := fsm.Backoff{Initial: 10 * ms, Jitter: fsm.JitterNone}
	change := func(c *invariant.Config) {
		c.Backoff, c.BackoffChanges = b, []invariant.BackoffChange{{At: 1500 * ms, Backoff: fast}}
	}
	// The old policy promised nothing before a minute: a faster one cannot
	// move the retry earlier, so it stays due at a minute.
	expect(t, change, []trace.Record{dial(0, 0, 1), down(time.Second, 0), dial(61*time.Second, 0, 2)}, 61*time.Second, "")
	b.Initial = 10 * ms
	change2 := func(c *invariant.Config) {
		c.Backoff, c.BackoffChanges = b, []invariant.BackoffChange{{At: 1500 * ms, Backoff: fast}}
	}
	// Pending at 1s, due at 1.01s, not yet made at the change at 1.5s: due at once.
	expect(t, change2, []trace.Record{dial(0, 0, 1), down(time.Second, 0), dial(1500*ms, 0, 2)}, 2*time.Second, "")
	expect(t, change2, []trace.Record{dial(0, 0, 1), down(time.Second, 0), dial(2*time.Second, 0, 2)}, 2*time.Second,
		"(b) bounded_retries violated at 2s by client 0: attempt 2 came 1s after failure 1 at 1s; the policy's latest is 500ms")
}
