package conn

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// Session is one upgraded connection on a Server, from the upgrade until it
// is reaped. Its methods are safe for concurrent use. A Session stays a
// valid handle after it is reaped: Send then returns ErrSessionClosed.
//
// The struct is kept small on purpose (docs/decisions.md, the per-session
// memory budget, and "what an idle session holds"): the fsm lifecycle,
// the connection, what the writer owes (nil while nothing is), and the
// timer bookkeeping: 96 bytes.
type Session struct {
	srv *Server
	w   wire // set once, under mu, at the upgrade
	fs  *fsm.Session
	id  uint64

	// heard is when the last frame was read, in ns since srv.epoch. The
	// reader stores it without the lock (a pong costs no lock and no fsm
	// step); the next tick hands it to fs before deciding anything.
	heard atomic.Int64

	mu    sync.Mutex
	flags uint8
	owed  *owed // what the writer owes beyond a ping; nil while nothing
	// tqSlot is the timer wheel slot the session is queued in (0: none),
	// tqPrev and tqNext its neighbours there.
	tqSlot         int64
	tqPrev, tqNext *Session
}

// owed is what a session's writer owes beyond a ping. It is allocated when
// the first of it is owed and dropped when the writer finds nothing left
// (or the session is reaped), so an idle session holds a nil pointer
// instead of these 48 bytes.
type owed struct {
	queue     []outgoing // application messages not yet written; nil when empty
	pong      string     // payload of the pong owed (flagPong)
	closeCode int32      // close code the writer owes (Closing), 0 for none
}

// oweLocked returns what the writer owes, allocating it if nothing was.
func (s *Session) oweLocked() *owed {
	if s.owed == nil {
		s.owed = new(owed)
	}
	return s.owed
}

// queuedLocked returns how many application messages wait for the writer.
func (s *Session) queuedLocked() int {
	if s.owed == nil {
		return 0
	}
	return len(s.owed.queue)
}

type outgoing struct {
	t    MessageType
	data []byte
	done Delivered // nil unless sent with SendNotify
}

const (
	flagWriting uint8 = 1 << iota // a writer goroutine is running
	flagPing                      // a ping is owed
	flagPong                      // a pong is owed
)

// ID returns the session's id, unique within its Server, counting from 1.
func (s *Session) ID() uint64 { return s.id }

// State returns the session's lifecycle state.
func (s *Session) State() fsm.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fs.State()
}

// Reason returns why the session is closing or was reaped, or NoReason.
func (s *Session) Reason() fsm.Reason {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fs.Reason()
}

// RemoteAddr returns the peer's address, or nil before the upgrade.
func (s *Session) RemoteAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return nil
	}
	return s.w.remoteAddr()
}

// Send queues one message for the session's writer and returns at once.
// It returns a *SessionClosedError (errors.Is ErrSessionClosed) if the
// session is closing or was reaped. If the queue already holds
// ServerConfig.QueueSize messages the peer is not keeping up: the session
// is reaped for slow_consumer and Send returns that error. A nil error
// means queued, not delivered: a message still queued when the session
// closes is dropped and counted in ServerStats.DroppedMessages.
func (s *Session) Send(t MessageType, data []byte) error {
	return s.send(t, data, nil)
}

func (s *Session) send(t MessageType, data []byte, done Delivered) error {
	if t != TextMessage && t != BinaryMessage {
		return fmt.Errorf("conn: session %d: Send takes TextMessage or BinaryMessage, not %d", s.id, t)
	}
	now := s.srv.clk.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.fs.Open() && !s.srv.hooks.unguardedSend() {
		err := s.closedErrLocked()
		s.observeLocked(Observation{Kind: ObsRefused, At: now, Frame: Frame(t), Size: len(data), Err: err})
		return err
	}
	if n := s.queuedLocked(); n >= s.srv.queueSize {
		s.stepLocked(now, fsm.EvSlowConsumer, fmt.Errorf("send queue full (%d messages)", n))
		err := s.closedErrLocked()
		s.observeLocked(Observation{Kind: ObsRefused, At: now, Frame: Frame(t), Size: len(data), Err: err})
		return err
	}
	o := s.oweLocked()
	o.queue = append(o.queue, outgoing{t, data, done})
	s.wakeWriterLocked()
	return nil
}

func (s *Session) closedErrLocked() error {
	return &SessionClosedError{ID: s.id, State: s.fs.State(), Reason: s.fs.Reason()}
}

// step applies ev under the lock.
func (s *Session) step(now time.Time, ev fsm.Event, cause error) {
	s.mu.Lock()
	s.stepLocked(now, ev, cause)
	s.mu.Unlock()
}

// stepLocked is driveLocked with the close code fsm chooses.
func (s *Session) stepLocked(now time.Time, ev fsm.Event, cause error) {
	_ = s.driveLocked(now, ev, cause, fsmCode)
}

// fsmCode tells driveLocked to close with the code fsm's actions carry.
const fsmCode = -1

// driveLocked is the one place a server session's lifecycle is stepped:
// every goroutine that drives a session (handler, reader or poller,
// writer, timer, Send, Shutdown, Fence) comes through here, on either
// engine, so what a step does cannot differ between them. It hands ev,
// observed at now, to fs and carries out the answer: count and log the
// transition, observe it, tell the state hook, then the actions in the
// order fsm gives them (a ping owed, a close frame owed, a reap), and
// re-arm the timer. code overrides the close code a reap writes (the
// code of a peer's close, echoed; 1002, 1007 or 1009 for a protocol
// failure the framer found; 0 for none); fsmCode keeps fsm's. An event
// the state does not take (a read error on a session already reaped,
// say) changes nothing and returns fsm's error.
func (s *Session) driveLocked(now time.Time, ev fsm.Event, cause error, code int) error {
	out, err := s.fs.Step(now, ev)
	if err != nil {
		return err
	}
	srv := s.srv
	if tr := out.Transition; tr != nil {
		if cause == nil && tr.Trigger == fsm.PongTimeout {
			cause = errSilent{s.fs.Liveness().PingInterval + s.fs.Liveness().PongTimeout}
		}
		srv.count(tr)
		logTransition(srv.log, sessionID(s.id), tr, cause, endFacts(s.fs, tr)...)
		s.observeLocked(Observation{Kind: ObsTransition, At: tr.At, Transition: *tr, Err: cause})
		if h := srv.stateHook; h != nil && tr.From != tr.To && tr.From != fsm.Handshaking && tr.To != fsm.Reaped {
			h.StateChanged(s, tr.To)
		}
	}
	closeCode, reap, reason := 0, false, fsm.NoReason
	for _, a := range out.Actions {
		switch a.Kind {
		case fsm.ActSendPing:
			if srv.hooks.skipPing() {
				continue // the bug under test: no ping written
			}
			s.flags |= flagPing
			s.wakeWriterLocked()
		case fsm.ActClose:
			closeCode = a.Code
		case fsm.ActReap:
			reap, reason = true, a.Reason
		}
	}
	switch {
	case reap:
		if code != fsmCode {
			closeCode = code
		}
		s.reapLocked(reason, closeCode)
		return nil
	case closeCode != 0: // entering Closing: no more data, a close frame next
		s.dropQueueLocked()
		s.oweLocked().closeCode = int32(closeCode)
		s.wakeWriterLocked()
	}
	if out.Transition != nil {
		s.rescheduleLocked()
	}
	return nil
}

// rescheduleLocked arms the shared timer for the session's next deadline.
// The timer works in slots of its granularity: a reap or close deadline
// takes the slot after it (late by less than one slot, the stated slack),
// a ping the slot before it, where tick sends it early (pingEarlyLocked).
func (s *Session) rescheduleLocked() {
	d, ok := s.fs.Deadline()
	if !ok {
		s.srv.tq.remove(s)
		return
	}
	p, open := s.fs.NextPing()
	s.srv.tq.schedule(s, d, open && p.Equal(d))
}

// pingEarlyLocked sends the next ping now if it is due within one timer
// slot and nothing else is due before it. A ping sent up to a slot early
// only makes the session more careful; one sent late would eat into the
// peer's PongTimeout, and a live peer whose round trip is just under it
// would be reaped.
func (s *Session) pingEarlyLocked(now time.Time) {
	p, open := s.fs.NextPing()
	if d, ok := s.fs.Deadline(); !open || !ok || !p.Equal(d) || !p.After(now) || p.Sub(now) > s.srv.tq.granularity() {
		return
	}
	s.stepLocked(p, fsm.EvTick, nil)
}

// reapLocked releases everything the session holds: its queue, its timer
// slot and its registry entry at once; its connection on a goroutine of
// its own, after a best-effort close frame (closeCode, 0 for none).
func (s *Session) reapLocked(reason fsm.Reason, closeCode int) {
	s.dropQueueLocked()
	s.flags &^= flagPing | flagPong
	s.owed = nil // the queue dropped, no pong or close frame owed
	s.srv.tq.remove(s)
	if !s.srv.hooks.keepReaped() {
		s.srv.unregister(s)
	}
	s.srv.wg.Add(1)
	go s.teardown(s.w, closeCode, reason)
}

func (s *Session) teardown(w wire, closeCode int, reason fsm.Reason) {
	defer s.srv.wg.Done()
	if w != nil {
		if w.closeWith(closeCode, min(s.srv.live.WriteTimeout, closeFrameWait)) {
			s.srv.observe(Observation{Kind: ObsSend, Machine: fsm.MachineSession, ID: sessionID(s.id),
				At: s.srv.clk.Now(), Frame: FrameClose})
		}
	}
	if h := s.srv.cfg.Hook; h != nil && w != nil {
		h.Closed(s, reason)
	}
	if s.srv.cfg.OnClose != nil {
		s.srv.cfg.OnClose(s, reason)
	}
}

// fence closes the session because its cluster node fenced itself
// (Server.Fence): a close frame (1001) and Closing, like a shutdown, with
// reason fenced. It reports whether the session was open or handshaking.
func (s *Session) fence(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.fs.State() {
	case fsm.Reaped, fsm.Closing:
		return false
	}
	s.stepLocked(now, fsm.EvFence, nil)
	return true
}

// forceClose ends a session Shutdown could not wait for any longer.
func (s *Session) forceClose(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.fs.State() {
	case fsm.Closing:
		s.stepLocked(now, fsm.EvClosed, errors.New("shutdown deadline passed before the peer answered the close"))
	case fsm.Alive, fsm.Suspect, fsm.Handshaking:
		s.stepLocked(now, fsm.EvShutdown, nil)
		s.stepLocked(now, fsm.EvClosed, nil)
	}
}

func (s *Session) dropQueueLocked() {
	if s.owed == nil {
		return
	}
	q := s.owed.queue
	if n := len(q); n > 0 {
		s.srv.dropped.Add(uint64(n))
		for _, m := range q {
			if m.done != nil {
				m.done(s.closedErrLocked())
			}
		}
	}
	clear(q)
	s.owed.queue = nil
}

// heardAt records that a frame was read at t.
func (s *Session) heardAt(t time.Time) {
	s.heard.Store(int64(t.Sub(s.srv.epoch)))
}

// syncHeardLocked hands the latest frame time the reader recorded to fs.
func (s *Session) syncHeardLocked() {
	// fs's own LastHeard says what it has seen, so the Session keeps no
	// copy (8 bytes): a frame heard while fs takes no pongs (Handshaking,
	// Closing) is offered again at the next tick, and changes nothing.
	if h := s.heard.Load(); h > int64(s.fs.LastHeard().Sub(s.srv.epoch)) && !s.srv.hooks.ignorePongs() {
		s.stepLocked(s.srv.epoch.Add(time.Duration(h)), fsm.EvPong, nil)
	}
}

// tick is the shared timer firing for this session.
func (s *Session) tick(now time.Time) {
	if s.srv.hooks.skipTicks() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fs.State() == fsm.Reaped {
		return
	}
	s.syncHeardLocked()
	s.stepLocked(now, fsm.EvTick, nil)
	s.pingEarlyLocked(now)
	if s.fs.State() != fsm.Reaped {
		s.rescheduleLocked()
		s.setReadDeadlineLocked(now)
	}
}

// setReadDeadlineLocked keeps the socket's read deadline past the
// liveness bound, on EngineGoroutine (the poll engine has no reader to
// unblock: its timer is the only reaper). The timer reaps first; the
// deadline is a backstop that unblocks the reader should the timer ever
// not run. Moving a deadline costs a runtime timer update, so it is set
// with a ping interval of headroom and moved only when the bound
// overtakes it: about once per two intervals on an idle session instead
// of on every tick.
func (s *Session) setReadDeadlineLocked(now time.Time) {
	g, ok := s.w.(*gorillaWire)
	if !ok {
		return
	}
	l := s.fs.Liveness()
	need := l.ReapDeadline(s.fs.LastHeard()).Add(l.PongTimeout)
	if int64(need.Sub(s.srv.epoch)) <= g.readBy {
		return
	}
	by := need.Add(l.PingInterval)
	g.readBy = int64(by.Sub(s.srv.epoch))
	_ = g.SetReadDeadline(time.Now().Add(by.Sub(now)))
}

// errSilent is the cause logged when a session's peer went silent.
type errSilent struct{ after time.Duration }

func (e errSilent) Error() string {
	return fmt.Sprintf("peer silent for %s: no pong (killed, stopped or cut off)", e.after)
}

func (s *Session) observeLocked(o Observation) {
	if s.srv.cfg.Observer == nil {
		return
	}
	o.Machine, o.ID = fsm.MachineSession, sessionID(s.id)
	s.srv.cfg.Observer(o)
}
