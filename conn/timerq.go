package conn

import (
	"sync"
	"time"

	"github.com/benbjohnson/clock"
)

// timerq is the server's one timer for all its sessions: an indexed
// min-heap of sessions by deadline, served by a single goroutine that runs
// only while the heap is non-empty. A runtime timer and an AfterFunc
// goroutine per session would cost ~200 B per session and a goroutine
// start per firing; this costs 8 B per session (the heap slot) plus the
// index and deadline kept in the Session (docs/decisions.md).
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

	mu      sync.Mutex
	h       []*Session
	running bool
	wake    chan struct{} // cap 1: the earliest deadline moved earlier
	due     []*Session    // the loop's batch buffer, reused
}

func newTimerq(clk clock.Clock, epoch time.Time, wg *sync.WaitGroup, fire func(*Session, time.Time)) *timerq {
	return &timerq{clk: clk, epoch: epoch, wg: wg, fire: fire, wake: make(chan struct{}, 1)}
}

// schedule sets s's deadline to at, moving it if s is already queued, and
// starts the loop if it is not running.
func (q *timerq) schedule(s *Session, at time.Time) {
	ns := int64(at.Sub(q.epoch))
	q.mu.Lock()
	defer q.mu.Unlock()
	s.tqAt = ns
	if s.tqIdx >= 0 {
		q.fix(int(s.tqIdx))
	} else {
		s.tqIdx = int32(len(q.h))
		q.h = append(q.h, s)
		q.up(int(s.tqIdx))
	}
	if !q.running {
		q.running = true
		q.wg.Add(1)
		go q.loop()
		return
	}
	if q.h[0] == s { // the earliest deadline may have moved earlier
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// remove takes s off the heap, if it is on it.
func (q *timerq) remove(s *Session) {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := int(s.tqIdx)
	if i < 0 {
		return
	}
	last := len(q.h) - 1
	q.swap(i, last)
	q.h[last] = nil
	q.h = q.h[:last]
	s.tqIdx = -1
	if i < last {
		q.fix(i)
	}
	if len(q.h) == 0 {
		// Let the loop notice it has nothing left and exit, so an idle
		// server holds no goroutine.
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// loop ticks due sessions and sleeps until the earliest deadline. It exits
// when the heap is empty; schedule starts it again.
func (q *timerq) loop() {
	defer q.wg.Done()
	t := q.clk.Timer(time.Hour)
	defer t.Stop()
	for {
		q.mu.Lock()
		if len(q.h) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		now := q.clk.Now()
		nowNs := int64(now.Sub(q.epoch))
		due := q.due[:0]
		for len(q.h) > 0 && q.h[0].tqAt <= nowNs {
			s := q.h[0]
			q.popLocked()
			due = append(due, s)
		}
		var wait time.Duration
		if len(q.h) > 0 {
			wait = time.Duration(q.h[0].tqAt - nowNs)
		}
		q.due = due
		q.mu.Unlock()
		if len(due) > 0 {
			for i, s := range due {
				q.fire(s, now)
				due[i] = nil
			}
			continue // the fires rescheduled; look again
		}
		t.Reset(wait)
		select {
		case <-t.C:
		case <-q.wake:
		}
	}
}

func (q *timerq) popLocked() {
	s := q.h[0]
	last := len(q.h) - 1
	q.swap(0, last)
	q.h[last] = nil
	q.h = q.h[:last]
	s.tqIdx = -1
	if last > 0 {
		q.down(0)
	}
}

func (q *timerq) less(i, j int) bool { return q.h[i].tqAt < q.h[j].tqAt }

func (q *timerq) swap(i, j int) {
	q.h[i], q.h[j] = q.h[j], q.h[i]
	q.h[i].tqIdx = int32(i)
	q.h[j].tqIdx = int32(j)
}

func (q *timerq) fix(i int) {
	if !q.down(i) {
		q.up(i)
	}
}

func (q *timerq) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			return
		}
		q.swap(i, p)
		i = p
	}
}

// down sifts i down and reports whether it moved.
func (q *timerq) down(i0 int) bool {
	i, n := i0, len(q.h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && q.less(r, l) {
			c = r
		}
		if !q.less(c, i) {
			break
		}
		q.swap(i, c)
		i = c
	}
	return i > i0
}
