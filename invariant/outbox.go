package invariant

import (
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/trace"
)

// (o) OutboxFaithful: a client's outbox never writes a message older than
// its Age, never out of order, and loses nothing without counting it.
//
// The checker keeps its own model of each client's outbox from the
// driver's records (OutboxQueued adds the message at the tail; Written and
// Dropped remove one) and holds every removal to the rules of
// fsm.OutboxQueue, which make the queue strictly first in, first out:
//   - a message taken out (written or dropped) is the oldest held: one
//     taken past an older one is out of order, and the older one, if it
//     never comes, was lost;
//   - a message written from the outbox has waited at most Age (judged at
//     the record's time, when the driver committed it to the link);
//   - a message written without being queued (the outbox was empty) finds
//     the model empty: written while older ones wait, it overtook them;
//   - the model never holds more than Count messages or Bytes bytes: a
//     driver that evicted one without a Dropped record shows up here;
//   - a drop for expiry is of a message older than Age, one for the count
//     bound happens with Count held;
//   - at the end of the run nothing is held: the driver counts what is
//     left as dropped when it stops (fsm.DropStopped).
//
// A killed client process (ClientExit) loses its outbox with its memory:
// nothing is promised about it, and the model starts over.

// obMsg is one message in the model of a client's outbox.
type obMsg struct {
	seq  uint64
	at   time.Duration
	size int32
}

// outboxModel is the checker's copy of one client's outbox.
type outboxModel struct {
	q     []obMsg
	head  int
	bytes int
	last  uint64 // the highest message number seen
}

func (m *outboxModel) len() int { return len(m.q) - m.head }

// take removes the message at position i (0 is the oldest).
func (m *outboxModel) take(i int) obMsg {
	k := m.head + i
	msg := m.q[k]
	copy(m.q[m.head+1:k+1], m.q[m.head:k])
	m.head++
	m.bytes -= int(msg.size)
	if m.head == len(m.q) {
		m.q, m.head = m.q[:0], 0
	}
	return msg
}

// find returns the position of message seq in the model, or -1.
func (m *outboxModel) find(seq uint64) int {
	for i := m.head; i < len(m.q); i++ {
		if m.q[i].seq == seq {
			return i - m.head
		}
	}
	return -1
}

// outboxPolicy is the oracle (o) judges by: the configured outbox, or
// fsm's outbox defaults when a run carries outbox records without one.
func outboxPolicy(o fsm.Outbox) fsm.Outbox {
	if !o.On() {
		o.Count = 100
	}
	return o.WithDefaults()
}

func (s *Suite) outbox(r *trace.Record, idx int) {
	c := s.client(r.ID)
	m, p := &c.ob, s.o.ob
	s.outboxOn = true
	s.check(OutboxFaithful)
	fail := func(format string, args ...any) {
		s.fail(OutboxFaithful, r.At, fsm.MachineClient, r.ID, idx, format, args...)
	}
	switch r.Kind {
	case trace.OutboxQueued:
		if r.Inc <= m.last {
			fail("message %d queued after message %d: numbers must grow (queued twice?)", r.Inc, m.last)
		}
		m.last = max(m.last, r.Inc)
		m.q = append(m.q, obMsg{seq: r.Inc, at: r.At, size: r.Attempt})
		m.bytes += int(r.Attempt)
		if n := m.len(); n > p.Count {
			fail("the outbox holds %d messages, over Count %d: the oldest (message %d) should have been dropped and counted",
				n, p.Count, m.q[m.head].seq)
		} else if m.bytes > p.Bytes {
			fail("the outbox holds %d bytes, over Bytes %d: the oldest (message %d) should have been dropped and counted",
				m.bytes, p.Bytes, m.q[m.head].seq)
		}
	case trace.OutboxWritten:
		// (if-chains, not tagless switches: gremlins can tell whether an
		// if's condition ran, not a case's; docs/decisions.md.)
		i := m.find(r.Inc)
		if i == 0 {
			if msg := m.take(0); r.At-msg.at > p.Age {
				fail("message %d written %s after it was queued (at %s), older than Age %s: sent late", r.Inc, r.At-msg.at, msg.at, p.Age)
			}
		} else if i > 0 {
			fail("message %d written before message %d, queued earlier: out of order (or %d was lost without being counted)",
				r.Inc, m.q[m.head].seq, m.q[m.head].seq)
			m.take(i)
		} else if r.Inc > m.last {
			m.last = r.Inc
			if n := m.len(); n > 0 {
				fail("message %d written at once while %d queued messages (the oldest %d) wait: it overtook them", r.Inc, n, m.q[m.head].seq)
			}
		} else {
			fail("message %d written, but it is not held: written twice, or after it was dropped", r.Inc)
		}
	case trace.OutboxDropped:
		reason := fsm.DropReason(r.Code)
		i := m.find(r.Inc)
		if i < 0 {
			fail("message %d dropped (%s), but it is not held", r.Inc, reason)
			return
		}
		if i > 0 {
			fail("message %d dropped (%s) while message %d, queued earlier, is held: drops take the oldest first", r.Inc, reason, m.q[m.head].seq)
			m.take(i)
			return
		}
		n := m.len()
		msg := m.take(0)
		if age := r.At - msg.at; reason == fsm.DropExpired && age <= p.Age {
			fail("message %d dropped as expired after %s, within Age %s", r.Inc, age, p.Age)
		} else if reason == fsm.DropOverCount && n < p.Count {
			fail("message %d dropped for the count bound with %d held, under Count %d", r.Inc, n, p.Count)
		}
	}
}

// outboxFinish judges what each running client's outbox still holds at
// the end: its driver counts what is left as dropped when it stops.
func (s *Suite) outboxFinish(end time.Duration) {
	for id := range s.clients {
		c := &s.clients[id]
		if m := &c.ob; m.len() > 0 && !c.exited {
			s.fail(OutboxFaithful, end, fsm.MachineClient, uint32(id), s.n,
				"%d messages (the oldest %d, queued at %s) were neither written nor counted as dropped by the end",
				m.len(), m.q[m.head].seq, m.q[m.head].at)
		}
	}
}
