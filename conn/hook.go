package conn

import (
	"net/http"

	"github.com/lifeline-go/lifeline/fsm"
)

// SessionHook lets a layer above a Server (package cluster) follow its
// sessions without conn knowing that layer. Every method runs on a session
// or handler goroutine, so each must return at once: record, queue, never
// wait on the network.
type SessionHook interface {
	// Admit runs first for every upgrade request, before Authorize. A
	// non-nil error answers 503 with Retry-After and creates no session: a
	// fenced cluster node refuses sessions it could not vouch for.
	Admit(r *http.Request) error
	// Opened runs once per session right after its upgrade, before
	// ServerConfig.OnOpen, on the handler goroutine. r is the upgrade
	// request (read what you need, do not keep it).
	Opened(s *Session, r *http.Request)
	// Closed runs once per opened session after it was reaped, before
	// ServerConfig.OnClose, on the session's teardown goroutine.
	Closed(s *Session, reason fsm.Reason)
}

// SessionStateHook is what a SessionHook may also implement to be told of
// an opened session's state changes between Opened and Closed: Alive ⇄
// Suspect and into Closing (a reap is Closed). It runs with the session's
// lock held, on whichever goroutine stepped the session: record or queue,
// call no Session method but ID (the others take that lock), never wait.
// A change just after the upgrade may come before Opened: read the state
// when the change is written, not when it is reported.
type SessionStateHook interface {
	// StateChanged reports that s moved to state to.
	StateChanged(s *Session, to fsm.State)
}

// hookAdmit asks the hook, if any, whether to take r.
func (srv *Server) hookAdmit(r *http.Request) error {
	if srv.cfg.Hook == nil {
		return nil
	}
	return srv.cfg.Hook.Admit(r)
}

// Delivered is called once for a message sent with SendNotify: with nil
// once the message was written to the connection, or with a
// *SessionClosedError once it was dropped because the session closed first.
// It runs on the session's writer or on the goroutine that closed the
// session, with the session's lock held: it must not call the Session.
type Delivered func(err error)

// SendNotify is Send with a report of the message's fate: notify is
// called with nil when the message was written to the socket, or with an
// error when it never will be. A non-nil return means the message was not
// queued and notify will not be called.
//
// A cluster node answers "delivered" only after this report, so that no
// send is counted as delivered that a reap dropped from the queue.
func (s *Session) SendNotify(t MessageType, data []byte, notify Delivered) error {
	return s.send(t, data, notify)
}

// Fence closes every registered session because the cluster node this
// server belongs to can no longer prove its lease (fsm.ReasonFenced): open
// sessions get a close frame (1001, going away: the client moves to
// another node) and accept no more messages at once; handshaking ones are
// reaped. It returns how many sessions it closed, and does not wait for
// their close handshakes. Sessions opened after it returns are not
// affected: refuse them with SessionHook.Admit.
func (srv *Server) Fence() int {
	now := srv.clk.Now()
	n := 0
	for _, s := range srv.snapshot() {
		if s.fence(now) {
			n++
		}
	}
	return n
}

// Server returns the Server the session belongs to.
func (s *Session) Server() *Server { return s.srv }
