package fsm

import (
	"errors"
	"strconv"
	"time"
)

// Outbox is the policy of a client's bounded outbox (graceful
// degradation): while the client has no link, messages sent are held, at
// most Count of them, at most Bytes of payload, each for at most Age, and
// written in order once a link is up again. The zero value means off: a
// send without a link fails at once, as it always did. Any non-zero field
// turns it on; the other fields then take the defaults given on each.
//
// The rules, and why (docs/decisions.md, "the bounded outbox"):
//   - Over a bound, the oldest message is dropped to make room
//     (DropOverCount, DropOverBytes): the newest are the ones an
//     application most wants delivered, and the oldest are the nearest to
//     their age anyway. A message larger than Bytes on its own is refused,
//     not queued (ErrOutboxTooLarge).
//   - Age is judged when a message would be written, not when it is
//     queued: one that waited longer than Age is dropped (DropExpired),
//     never sent late in a burst.
//   - Messages leave in the order they were queued, written or dropped:
//     every drop takes the oldest, so the queue is strictly first in,
//     first out, and a send made while it holds anything joins its tail.
type Outbox struct {
	// Count is the most messages held. Zero (with the outbox on) means 100.
	Count int
	// Bytes is the most payload bytes held, all messages together. Zero
	// (with the outbox on) means 1 MiB.
	Bytes int
	// Age is how long a message may wait: one queued at t is written no
	// later than t+Age, or dropped. Zero (with the outbox on) means 30s.
	Age time.Duration
}

// On reports whether the outbox is switched on (any field set).
func (o Outbox) On() bool { return o != Outbox{} }

// WithDefaults returns o with every zero field replaced by its default,
// or the zero Outbox (off) when o is off.
func (o Outbox) WithDefaults() Outbox {
	if !o.On() {
		return o
	}
	if o.Count == 0 {
		o.Count = 100
	}
	if o.Bytes == 0 {
		o.Bytes = 1 << 20
	}
	if o.Age == 0 {
		o.Age = 30 * time.Second
	}
	return o
}

// Validate reports every field that breaks a rule, as *FieldError values
// joined with errors.Join. It does not change o.
func (o Outbox) Validate() error {
	var errs []error
	bad := func(field, rule string, v any) {
		errs = append(errs, &FieldError{Policy: "Outbox", Field: field, Rule: rule, Value: v})
	}
	if o.Count < 0 {
		bad("Count", "must not be negative (0 means 100 with the outbox on)", o.Count)
	}
	if o.Bytes < 0 {
		bad("Bytes", "must not be negative (0 means 1 MiB with the outbox on)", o.Bytes)
	}
	negative(bad, []namedDuration{{"Age", o.Age}})
	return errors.Join(errs...)
}

// Fresh reports whether a message queued at queued may still be written at
// now: it has waited no longer than Age. o must have its defaults.
func (o Outbox) Fresh(queued, now time.Time) bool { return now.Sub(queued) <= o.Age }

// DropReason says why the outbox dropped a message it had accepted. A send
// the outbox does not accept at all (the client gave up or stopped, the
// message is ephemeral, or larger than Bytes) is a refusal, returned to
// the caller as an error, and no drop: the caller knows.
type DropReason uint8

const (
	// DropOverCount: a newer message needed room and Count were held; the
	// oldest went.
	DropOverCount DropReason = iota + 1
	// DropOverBytes: a newer message needed room and its bytes would pass
	// Bytes; the oldest went.
	DropOverBytes
	// DropExpired: the message had waited longer than Age when it was due
	// to be written (or when a newer one was queued behind it).
	DropExpired
	// DropWriteFailed: the link failed while the message was being written
	// from the outbox; whether the server got it is unknown, and it is
	// not written again (at most once).
	DropWriteFailed
	// DropStopped: the client stopped (its Run ended) with the message
	// still held.
	DropStopped
	// DropGaveUp: the client gave up reconnecting with the message still
	// held.
	DropGaveUp
)

var dropNames = [...]string{DropOverCount: "over_count", DropOverBytes: "over_bytes", DropExpired: "expired",
	DropWriteFailed: "write_failed", DropStopped: "stopped", DropGaveUp: "gave_up"}

// String returns the reason's name, e.g. "expired".
func (r DropReason) String() string {
	if r >= DropOverCount && int(r) < len(dropNames) {
		return dropNames[r]
	}
	return "DropReason(" + strconv.Itoa(int(r)) + ")"
}

// DropReasons lists every DropReason.
func DropReasons() []DropReason {
	return []DropReason{DropOverCount, DropOverBytes, DropExpired, DropWriteFailed, DropStopped, DropGaveUp}
}

// ErrOutboxTooLarge is returned by OutboxQueue.Push for a message larger
// than Outbox.Bytes: it could never be held, so it is refused, not queued.
var ErrOutboxTooLarge = errors.New("fsm: message larger than the outbox's byte bound")

// DropCounts counts dropped messages by reason.
type DropCounts struct {
	OverCount   int // DropOverCount: the oldest, pushed out by a message over Outbox.Count
	OverBytes   int // DropOverBytes: the oldest, pushed out by a message over Outbox.Bytes
	Expired     int // DropExpired: older than Outbox.Age when its turn came
	WriteFailed int // DropWriteFailed: taken for writing, and the write failed
	Stopped     int // DropStopped: still held when the driver stopped
	GaveUp      int // DropGaveUp: still held when the client gave up
}

// Of returns the count for reason r.
func (d DropCounts) Of(r DropReason) int {
	switch r {
	case DropOverCount:
		return d.OverCount
	case DropOverBytes:
		return d.OverBytes
	case DropExpired:
		return d.Expired
	case DropWriteFailed:
		return d.WriteFailed
	case DropStopped:
		return d.Stopped
	case DropGaveUp:
		return d.GaveUp
	}
	return 0
}

// Total returns the drops of every reason.
func (d DropCounts) Total() int {
	return d.OverCount + d.OverBytes + d.Expired + d.WriteFailed + d.Stopped + d.GaveUp
}

func (d *DropCounts) add(r DropReason) {
	switch r {
	case DropOverCount:
		d.OverCount++
	case DropOverBytes:
		d.OverBytes++
	case DropExpired:
		d.Expired++
	case DropWriteFailed:
		d.WriteFailed++
	case DropStopped:
		d.Stopped++
	case DropGaveUp:
		d.GaveUp++
	}
}

// OutboxCounts is a snapshot of an outbox: what it holds and what went
// through it. Enqueued = Written + Dropped.Total() + Held, always.
type OutboxCounts struct {
	Held     int // messages held now
	Bytes    int // their payload bytes
	Enqueued int // messages accepted since the start
	Written  int // messages taken out to be written
	Dropped  DropCounts
}

// Queued is one message held by an OutboxQueue: its number (1, 2, ... in
// the order queued), its size, when it was queued, and the driver's item
// (the payload, or nothing in a simulator).
type Queued[T any] struct {
	Seq  uint64    // 1, 2, ... in the order queued
	Size int       // bytes, as counted against Outbox.Bytes
	At   time.Time // when it was queued: Age is measured from here
	Item T         // the driver's payload
}

// OutboxDrop is a message the outbox dropped, and why.
type OutboxDrop[T any] struct {
	Queued[T]
	Reason DropReason // why it was dropped
}

// OutboxQueue is the pure model of an outbox: a first-in first-out queue
// bounded by an Outbox policy that decides, given the time, what is held,
// written and dropped. It has no clock and no goroutine; a driver calls
// Push while it has no link, Next to take the next message to write once
// it has one, and Clear when it stops. Every call that drops appends the
// dropped messages, oldest first, to the slice it is given and returns
// it, so a driver can count and report them after releasing its locks.
// Not safe for concurrent use.
type OutboxQueue[T any] struct {
	p      Outbox
	items  []Queued[T]
	head   int
	bytes  int
	seq    uint64
	counts OutboxCounts
}

// NewOutboxQueue returns an empty queue for p (defaults applied), or p's
// validation error. p must be on.
func NewOutboxQueue[T any](p Outbox) (*OutboxQueue[T], error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if !p.On() {
		return nil, &FieldError{Policy: "Outbox", Field: "Count", Rule: "must be set (the zero Outbox means off)", Value: p}
	}
	return &OutboxQueue[T]{p: p.WithDefaults()}, nil
}

// Policy returns the queue's policy, defaults applied.
func (q *OutboxQueue[T]) Policy() Outbox { return q.p }

// Len returns the number of messages held.
func (q *OutboxQueue[T]) Len() int { return len(q.items) - q.head }

// Counts returns the queue's counters.
func (q *OutboxQueue[T]) Counts() OutboxCounts {
	c := q.counts
	c.Held, c.Bytes = q.Len(), q.bytes
	return c
}

// Oldest returns the oldest message held, without taking it.
func (q *OutboxQueue[T]) Oldest() (Queued[T], bool) {
	if q.Len() == 0 {
		return Queued[T]{}, false
	}
	return q.items[q.head], true
}

// NextSeq numbers a message that is not queued (written at once, the
// outbox being empty and a link up), so that queued and direct messages
// share one order.
func (q *OutboxQueue[T]) NextSeq() uint64 {
	q.seq++
	return q.seq
}

// Push queues a message of size bytes at now and returns its number. To
// make room it first drops what has expired, then the oldest messages
// while Count are held or the bytes would pass Bytes. A message larger
// than Bytes is refused (ErrOutboxTooLarge) and nothing is dropped.
func (q *OutboxQueue[T]) Push(now time.Time, size int, item T, drops []OutboxDrop[T]) (uint64, []OutboxDrop[T], error) {
	if size > q.p.Bytes {
		return 0, drops, ErrOutboxTooLarge
	}
	drops = q.Expire(now, drops)
	for q.Len() > 0 && q.Len() >= q.p.Count {
		drops = q.drop(DropOverCount, drops)
	}
	for q.Len() > 0 && q.bytes+size > q.p.Bytes {
		drops = q.drop(DropOverBytes, drops)
	}
	if q.head > 0 && 2*q.head >= len(q.items) {
		// Reclaim the taken prefix: a queue that never empties (full,
		// dropping its oldest) must not grow its array without end.
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.seq++
	q.items = append(q.items, Queued[T]{Seq: q.seq, Size: size, At: now, Item: item})
	q.bytes += size
	q.counts.Enqueued++
	return q.seq, drops, nil
}

// Next takes the oldest message still fresh at now, to be written now,
// dropping the expired ones before it. ok is false when nothing is left.
func (q *OutboxQueue[T]) Next(now time.Time, drops []OutboxDrop[T]) (m Queued[T], ok bool, _ []OutboxDrop[T]) {
	drops = q.Expire(now, drops)
	if q.Len() == 0 {
		return m, false, drops
	}
	m = q.pop()
	q.counts.Written++
	return m, true, drops
}

// Expire drops the messages that have waited longer than Age at now.
// Messages are queued in time order, so they are the oldest ones.
func (q *OutboxQueue[T]) Expire(now time.Time, drops []OutboxDrop[T]) []OutboxDrop[T] {
	for q.Len() > 0 && !q.p.Fresh(q.items[q.head].At, now) {
		drops = q.drop(DropExpired, drops)
	}
	return drops
}

// Clear drops everything held at now: the expired ones as DropExpired,
// the rest for reason (DropStopped, DropGaveUp).
func (q *OutboxQueue[T]) Clear(now time.Time, reason DropReason, drops []OutboxDrop[T]) []OutboxDrop[T] {
	drops = q.Expire(now, drops)
	for q.Len() > 0 {
		drops = q.drop(reason, drops)
	}
	return drops
}

// Failed counts m, taken by Next, as dropped for reason (DropWriteFailed:
// its write failed).
func (q *OutboxQueue[T]) Failed(m Queued[T], reason DropReason) OutboxDrop[T] {
	q.counts.Written--
	q.counts.Dropped.add(reason)
	return OutboxDrop[T]{Queued: m, Reason: reason}
}

func (q *OutboxQueue[T]) drop(r DropReason, drops []OutboxDrop[T]) []OutboxDrop[T] {
	m := q.pop()
	q.counts.Dropped.add(r)
	return append(drops, OutboxDrop[T]{Queued: m, Reason: r})
}

func (q *OutboxQueue[T]) pop() Queued[T] {
	m := q.items[q.head]
	var zero Queued[T]
	q.items[q.head] = zero // release the item (a payload) at once
	q.head++
	q.bytes -= m.Size
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	return m
}
