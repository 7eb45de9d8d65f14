package sim

import "math/bits"

// event is one thing due at a virtual time. It is a small value with no
// pointers: scheduling one allocates nothing once the queue has grown, and
// the garbage collector never scans the queue.
type event struct {
	at   int64  // virtual nanoseconds since the epoch
	id   uint32 // client, link or fault number, by kind
	gen  uint32 // timer generation; a stale timer is skipped
	kind evKind
	arg  frame
}

type evKind uint8

const (
	evClientStart  evKind = iota + 1 // id = client
	evClientTimer                    // id = client
	evSessionTimer                   // id = link
	evToServer                       // id = link, arg = frame
	evToClient                       // id = link, arg = frame
	evAppEvent                       // id = link: the server writes an application message
	evFaultStart                     // id = fault
	evFaultEnd                       // id = fault
	evQuiesce
	evSettle
	evClientEvent // id = link: the client writes an application message
	evNudge       // id = fault: its clients' owners call ReconnectNow
	evPolicy      // id = BackoffChanges index
	evNodeTimer   // id = node: its lease machine's and peer views' timer
	evAtEngine    // id = cluster message: it reaches the engine
	evAtNode      // id = cluster message: it reaches a node
	evExpiry      // the engine's TTL check
	evDirFlush    // id = node: its batched directory writes go out
	evXSend       // a node sends to a session through the bus
	evOutboxSend  // id = client: its application sends through its outbox
)

// queue is a radix heap: a priority queue for keys that never go below the
// last one popped, which virtual time guarantees (nothing is scheduled in
// the past). Its key is the time in ticks of 2^tickShift ns (65.5 µs).
// Bucket i holds events whose tick differs from the last popped tick first
// in bit i-1; bucket 0 holds those of the current tick, sorted by time. An
// event moves down at most 48 buckets in its life and each move is an
// append, so push and pop cost O(1) amortised and touch memory in order;
// coarse ticks spare the moves the low bits of a time would cause. At
// 10 000 sessions this made the simulator faster than a 4-ary heap
// (docs/decisions.md).
//
// Events due at the same time come out first-in first-out: they always
// share a bucket, every move keeps their order, and bucket 0 is kept
// sorted by a stable insertion sort. So a run is a pure function of its
// scenario.
type queue struct {
	last int64 // tick of the last event popped
	head int   // next event to pop in b[0]
	n    int
	b    [65][]event
}

const tickShift = 16

func (q *queue) len() int { return q.n }

func bucket(tick, last int64) int { return bits.Len64(uint64(tick ^ last)) }

// push schedules e. e.at must not be before the last event popped.
func (q *queue) push(e event) {
	t := e.at >> tickShift
	if t < q.last {
		panic("sim: event scheduled in the past") // a driver bug: the world clamps every time to now
	}
	q.n++
	i := bucket(t, q.last)
	if i > 0 {
		q.b[i] = append(q.b[i], e)
		return
	}
	b := append(q.b[0], e) // the current tick: keep the rest of it sorted
	k := len(b) - 1
	for k > q.head && b[k-1].at > e.at {
		b[k] = b[k-1]
		k--
	}
	b[k] = e
	q.b[0] = b
}

// pop removes and returns the earliest event. The queue must not be empty.
func (q *queue) pop() event {
	if q.head == len(q.b[0]) {
		q.b[0], q.head = q.b[0][:0], 0
		i := 1
		for len(q.b[i]) == 0 {
			i++
		}
		src := q.b[i]
		m := src[0].at >> tickShift
		for k := 1; k < len(src); k++ {
			m = min(m, src[k].at>>tickShift)
		}
		q.last = m
		for k := range src {
			j := bucket(src[k].at>>tickShift, m)
			q.b[j] = append(q.b[j], src[k])
		}
		q.b[i] = src[:0]
		b := q.b[0] // stable insertion sort by time: ties keep push order
		for k := 1; k < len(b); k++ {
			e := b[k]
			j := k
			for j > 0 && b[j-1].at > e.at {
				b[j] = b[j-1]
				j--
			}
			b[j] = e
		}
	}
	e := q.b[0][q.head]
	q.head++
	q.n--
	return e
}
