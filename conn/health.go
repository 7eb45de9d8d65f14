package conn

import "time"

// Health is what a Server's shared loops last did and how many of its
// sessions it has not heard from, for a watchdog: a server whose timer
// stopped running pings nobody, one whose poller stopped reading hears no
// pong, and either reaps every session for pong_timeout once it resumes.
// Sampled when something looks wrong (or every second or so), it tells
// which loop stopped, or that the peers really went silent.
type Health struct {
	// At is when Health was taken, by the server's clock.
	At time.Time
	// TimerAt is when the shared timer last looked for due sessions; zero
	// if it never ran. It runs at least once per ping interval while any
	// session is open.
	TimerAt time.Time
	// PollerAt is when the poll engine's loop last woke (epoll_wait
	// returned); zero if it never did or the goroutine engine reads every
	// session. It wakes whenever any polled session has input: with every
	// session answering pings, at least once per ping interval.
	PollerAt time.Time
	// Unheard counts the upgraded, registered sessions whose reader has
	// recorded no frame (pong, ping or message) for longer than
	// PingInterval: the server pings a session then, so on a healthy
	// server only those whose pong is still on its way are counted. All
	// of them counted means nobody is pinged or nothing is read; many
	// sessions reaped for pong_timeout while Unheard stayed low would
	// mean the frames were read but not believed (what the reader saw,
	// before a tick hands it to fsm).
	Unheard int
}

// Health returns the server's Health. It visits every session under the
// registry's lock, like Unproven: call it from a watchdog, not per
// message.
func (srv *Server) Health() Health {
	now := srv.clk.Now()
	h := Health{At: now, TimerAt: srv.since(srv.tq.ranAt.Load()), PollerAt: srv.since(srv.polls.pollerWokeAt())}
	h.Unheard = srv.unheardFor(now, srv.live.PingInterval)
	return h
}

// since turns ns since srv.epoch into a time, 0 into the zero time.
func (srv *Server) since(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return srv.epoch.Add(time.Duration(ns))
}
