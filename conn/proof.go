package conn

import "time"

// Unproven counts the registered sessions whose peer the server can no
// longer prove alive: upgraded, and nothing heard from the peer for longer
// than any bound the server keeps — the liveness window (PingInterval +
// PongTimeout), then a close handshake (CloseTimeout), then one more
// PongTimeout for a late tick on a loaded host. A healthy server has
// reaped and released every such session, so the count is 0; a registry
// that keeps sessions it reaped (the field report's leak: sessions
// accumulating after kill -9'd peers) shows them here however the state
// counts look. Handshaking sessions are not counted (HandshakeTimeout and
// the HTTP server bound them). It visits every session under the
// registry's lock: call it when metrics are collected, not per message.
func (srv *Server) Unproven() int {
	return srv.unheardFor(srv.clk.Now(), srv.live.PingInterval+2*srv.live.PongTimeout+srv.live.CloseTimeout)
}

// unheardFor counts the upgraded, registered sessions whose reader has
// recorded no frame for longer than bound at now (Unproven, Health).
func (srv *Server) unheardFor(now time.Time, bound time.Duration) int {
	ns := int64(now.Sub(srv.epoch))
	n := 0
	srv.mu.Lock()
	for _, s := range srv.sessions {
		if h := s.heard.Load(); h > 0 && ns-h > int64(bound) {
			n++
		}
	}
	srv.mu.Unlock()
	return n
}
