package conn

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
)

// wheelSlots is the number of slots of the timer wheel: at the default
// 20 ms granularity it spans 82 s, longer than the default liveness bound;
// a deadline further out waits in its slot for later laps.
const wheelSlots = 4096

// timerq is the server's one timer for all its sessions: a hashed timing
// wheel of intrusive session lists, served by a single goroutine that
// runs only while some session is queued.
//
// Deadlines are rounded up to the wheel's granularity, so that every
// session due in one slot is ticked in one wakeup: at 20 000 idle sessions
// pinging every 30 s that turns ~1 300 timer wakeups a second into at most
// 50 (arithmetic: two ticks per session per interval, one wakeup per
// slot). Insert and remove are O(1). A runtime timer and an AfterFunc per
// session would cost two allocations per session and a goroutine start
// per firing; this costs three words in the Session (docs/decisions.md).
//
// fsm makes early ticks harmless, so a deadline that moves later (a pong
// heard) is left in place: the session is ticked at the old time, finds
// nothing due and is rescheduled. Only a deadline that moves earlier needs
// an update here.
type timerq struct {
	clk   clock.Clock
	epoch time.Time
	fire  func(s *Session, now time.Time) // ticks s; called without q.mu
	wg    *sync.WaitGroup                 // counts the loop goroutine
	gran  int64                           // slot width in ns, > 0

	mu      sync.Mutex
	ring    [wheelSlots]*Session // list heads, by slot number mod wheelSlots
	n       int                  // sessions queued
	cursor  int64                // the last slot processed
	running bool
	nextAt  int64         // slot the sleeping loop wakes at
	wake    chan struct{} // cap 1: a deadline before nextAt was queued
	due     []*Session    // the loop's batch buffer, reused

	// ranAt is when the loop last looked for due sessions, in ns since
	// epoch (0: never): Server.Health reports it.
	ranAt atomic.Int64
}

func newTimerq(clk clock.Clock, epoch time.Time, gran time.Duration, wg *sync.WaitGroup, fire func(*Session, time.Time)) *timerq {
	return &timerq{clk: clk, epoch: epoch, gran: int64(gran), wg: wg, fire: fire, wake: make(chan struct{}, 1)}
}

// slotOf returns the slot a deadline at is served in: the first slot
// boundary at or after it, or with early the last one at or before it.
func (q *timerq) slotOf(at time.Time, early bool) int64 {
	ns := int64(at.Sub(q.epoch))
	if early {
		return ns / q.gran
	}
	return (ns + q.gran - 1) / q.gran
}

func (q *timerq) granularity() time.Duration { return time.Duration(q.gran) }

// nowSlot returns the last slot boundary at or before now.
func (q *timerq) nowSlot(now time.Time) int64 { return int64(now.Sub(q.epoch)) / q.gran }

// schedule queues s to be ticked within one slot after at (with early,
// within one slot before it), moving it if it is queued already, and
// starts the loop if it is not running. A slot already served means the
// next one.
func (q *timerq) schedule(s *Session, at time.Time, early bool) {
	slot := q.slotOf(at, early)
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.running {
		q.cursor = q.nowSlot(q.clk.Now())
	}
	slot = max(slot, q.cursor+1)
	if s.tqSlot == slot {
		return
	}
	if s.tqSlot != 0 {
		q.unlinkLocked(s)
	}
	head := &q.ring[slot%wheelSlots]
	s.tqSlot, s.tqPrev, s.tqNext = slot, nil, *head
	if *head != nil {
		(*head).tqPrev = s
	}
	*head = s
	q.n++
	switch {
	case !q.running:
		q.running, q.nextAt = true, 0
		q.wg.Add(1)
		go q.loop()
	case slot < q.nextAt:
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// remove takes s off the wheel, if it is on it.
func (q *timerq) remove(s *Session) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if s.tqSlot != 0 {
		q.unlinkLocked(s)
		if q.n == 0 && q.running {
			// Let the loop see the wheel is empty and exit now, so an
			// idle (or shut down) server holds no goroutine.
			select {
			case q.wake <- struct{}{}:
			default:
			}
		}
	}
}

func (q *timerq) unlinkLocked(s *Session) {
	if s.tqPrev != nil {
		s.tqPrev.tqNext = s.tqNext
	} else {
		q.ring[s.tqSlot%wheelSlots] = s.tqNext
	}
	if s.tqNext != nil {
		s.tqNext.tqPrev = s.tqPrev
	}
	s.tqSlot, s.tqPrev, s.tqNext = 0, nil, nil
	q.n--
}

// loop ticks due sessions and sleeps until the next slot that holds any.
// It exits when the wheel is empty; schedule starts it again.
func (q *timerq) loop() {
	defer q.wg.Done()
	t := q.clk.Timer(time.Hour)
	defer t.Stop()
	q.mu.Lock()
	for {
		if q.n == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		now := q.clk.Now()
		q.ranAt.Store(int64(now.Sub(q.epoch)))
		due := q.due[:0]
		for until := q.nowSlot(now); q.cursor < until; {
			q.cursor++
			for s := q.ring[q.cursor%wheelSlots]; s != nil; {
				next := s.tqNext
				if s.tqSlot == q.cursor { // not a later lap's
					q.unlinkLocked(s)
					due = append(due, s)
				}
				s = next
			}
		}
		q.due = due
		if len(due) > 0 {
			q.mu.Unlock()
			for i, s := range due {
				q.fire(s, now)
				due[i] = nil
			}
			q.mu.Lock()
			continue // the fires rescheduled; look again
		}
		q.nextAt = q.nextSlotLocked()
		q.mu.Unlock()
		t.Reset(time.Duration(q.nextAt*q.gran) - now.Sub(q.epoch))
		select {
		case <-t.C:
		case <-q.wake:
		}
		q.mu.Lock()
	}
}

// nextSlotLocked returns the first slot after the cursor whose list is
// not empty. Its sessions may belong to a later lap: then the loop wakes
// early, finds nothing due and sleeps again, once per lap.
func (q *timerq) nextSlotLocked() int64 {
	for i := int64(1); i <= wheelSlots; i++ {
		if q.ring[(q.cursor+i)%wheelSlots] != nil {
			return q.cursor + i
		}
	}
	return q.cursor + wheelSlots // unreachable while n > 0
}
