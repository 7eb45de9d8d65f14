package invariant_test

import (
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/invariant"
	"github.com/lifeline-go/lifeline/trace"
)

func obQueued(at time.Duration, seq uint64, size int32) trace.Record {
	return trace.Record{At: at, Kind: trace.OutboxQueued, ID: 0, Inc: seq, Attempt: size}
}

func obWritten(at time.Duration, seq uint64) trace.Record {
	return trace.Record{At: at, Kind: trace.OutboxWritten, ID: 0, Inc: seq}
}

func obDropped(at time.Duration, seq uint64, r fsm.DropReason) trace.Record {
	return trace.Record{At: at, Kind: trace.OutboxDropped, ID: 0, Inc: seq, Code: uint16(r)}
}

// (o) on hand-written traces: each rule of the outbox, kept and broken.
func TestOutboxFaithful(t *testing.T) {
	c := cfg
	c.Outbox = fsm.Outbox{Count: 2, Bytes: 100, Age: 10 * time.Second}
	s := time.Second
	for _, tt := range []struct {
		name string
		recs []trace.Record
		want string
	}{
		{"queued, drained in order within Age", []trace.Record{start(0), obQueued(0, 1, 10), obQueued(s, 2, 10),
			obWritten(10*s, 1), obWritten(10*s, 2), obWritten(11*s, 3)}, ""},
		{"written past its Age", []trace.Record{start(0), obQueued(0, 1, 10), obWritten(10*s+1, 1)},
			"(o) outbox_faithful violated at 10.000000001s by client 0: message 1 written 10.000000001s after it was queued (at 0s), older than Age 10s: sent late"},
		// Queued later than 0 s: the age is counted from the queueing.
		{"written past its Age, queued late", []trace.Record{start(0), obQueued(2*s, 1, 10), obWritten(12*s+1, 1)},
			"message 1 written 10.000000001s after it was queued (at 2s), older than Age 10s: sent late"},
		{"drained newest first", []trace.Record{start(0), obQueued(0, 1, 10), obQueued(s, 2, 10), obWritten(2*s, 2), obWritten(2*s, 1)},
			"message 2 written before message 1, queued earlier: out of order"},
		{"a send overtakes the drain", []trace.Record{start(0), obQueued(0, 1, 10), obWritten(2*s, 2)},
			"message 2 written at once while 1 queued messages (the oldest 1) wait: it overtook them"},
		{"over Count, the oldest dropped and counted", []trace.Record{start(0), obQueued(0, 1, 10), obQueued(s, 2, 10),
			obDropped(2*s, 1, fsm.DropOverCount), obQueued(2*s, 3, 10), obWritten(3*s, 2), obWritten(3*s, 3)}, ""},
		{"over Count, the oldest lost silently", []trace.Record{start(0), obQueued(0, 1, 10), obQueued(s, 2, 10), obQueued(2*s, 3, 10)},
			"the outbox holds 3 messages, over Count 2: the oldest (message 1) should have been dropped and counted"},
		{"exactly Bytes", []trace.Record{start(0), obQueued(0, 1, 60), obQueued(s, 2, 40), obWritten(2*s, 1), obWritten(2*s, 2)}, ""},
		{"over Bytes", []trace.Record{start(0), obQueued(0, 1, 60), obQueued(s, 2, 60)}, "the outbox holds 120 bytes, over Bytes 100"},
		{"a message skipped", []trace.Record{start(0), obQueued(0, 1, 10), obQueued(s, 2, 10), obDropped(20*s, 2, fsm.DropStopped)},
			"message 2 dropped (stopped) while message 1, queued earlier, is held"},
		{"expired for real", []trace.Record{start(0), obQueued(0, 1, 10), obDropped(11*s, 1, fsm.DropExpired)}, ""},
		{"expired too soon", []trace.Record{start(0), obQueued(0, 1, 10), obDropped(5*s, 1, fsm.DropExpired)},
			"message 1 dropped as expired after 5s, within Age 10s"},
		{"expired at exactly Age, queued late", []trace.Record{start(0), obQueued(2*s, 1, 10), obDropped(12*s, 1, fsm.DropExpired)},
			"message 1 dropped as expired after 10s, within Age 10s"},
		{"expired just past Age, queued late", []trace.Record{start(0), obQueued(2*s, 1, 10), obDropped(12*s+1, 1, fsm.DropExpired)}, ""},
		{"dropped for the count with room", []trace.Record{start(0), obQueued(0, 1, 10), obDropped(s, 1, fsm.DropOverCount)},
			"message 1 dropped for the count bound with 1 held, under Count 2"},
		{"written twice", []trace.Record{start(0), obQueued(0, 1, 10), obWritten(s, 1), obWritten(s, 1)},
			"message 1 written, but it is not held"},
		{"queued twice", []trace.Record{start(0), obQueued(0, 1, 10), obQueued(0, 1, 10)}, "message 1 queued after message 1"},
		{"dropped, never queued", []trace.Record{start(0), obDropped(0, 4, fsm.DropGaveUp)}, "message 4 dropped (gave_up), but it is not held"},
		{"left held at the end", []trace.Record{start(0), obQueued(0, 1, 10)},
			"1 messages (the oldest 1, queued at 0s) were neither written nor counted as dropped by the end"},
		{"a killed process loses its outbox", []trace.Record{start(0), obQueued(0, 1, 10), rec(s, trace.ClientExit, 0)}, ""},
		{"a restart starts the numbers over", []trace.Record{start(0), obQueued(0, 1, 10), rec(s, trace.ClientExit, 0), start(2 * s),
			obQueued(2*s, 1, 10), obWritten(3*s, 1)}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) { judgeTable(t, c, tt.recs, 30*s, tt.want) })
	}
}

// Without a configured outbox, (o) judges by fsm's defaults.
func TestOutboxDefaultPolicy(t *testing.T) {
	judgeTable(t, invariant.Config{}, []trace.Record{start(0), obQueued(0, 1, 10), obWritten(30*time.Second, 1)}, time.Minute, "")
	judgeTable(t, invariant.Config{}, []trace.Record{start(0), obQueued(0, 1, 10), obWritten(31*time.Second, 1)}, time.Minute, "older than Age 30s")
	if err := (invariant.Config{Outbox: fsm.Outbox{Age: -1}}).Validate(); err == nil {
		t.Error("a negative Age must not validate")
	}
}
