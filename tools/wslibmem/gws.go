package main

import (
	"net/http"
	"time"

	"github.com/lxzan/gws"
)

// gwsHandler is lxzan/gws's echo server as its README's "Best Practice"
// writes it: the upgrade on net/http's goroutine, ReadLoop on a fresh
// goroutine (gws has a goroutine per connection and no read-less idle
// mode), a deadline of interval + wait pushed on by every ping, pong and
// message. Compression is left off (the clients do not offer it) and the
// options are gws's defaults (4 KiB read buffer). The server pings every
// connection each interval from one goroutine.
type gwsHandler struct {
	gws.BuiltinEventHandler
	pg      *pinger
	timeout time.Duration
}

func (h *gwsHandler) alive(s *gws.Conn) { _ = s.SetDeadline(time.Now().Add(h.timeout)) }

func (h *gwsHandler) OnOpen(s *gws.Conn) {
	h.alive(s)
	h.pg.add(s, func() error { return s.WritePing(nil) })
}

func (h *gwsHandler) OnClose(s *gws.Conn, _ error) { h.pg.remove(s) }

func (h *gwsHandler) OnPing(s *gws.Conn, p []byte) { h.alive(s); _ = s.WritePong(p) }

func (h *gwsHandler) OnPong(s *gws.Conn, _ []byte) { pongs.Add(1); h.alive(s) }

func (h *gwsHandler) OnMessage(s *gws.Conn, m *gws.Message) {
	defer m.Close()
	h.alive(s)
	_ = s.WriteMessage(m.Opcode, m.Bytes())
}

func gwsLean(ping time.Duration) http.HandlerFunc {
	up := gws.NewUpgrader(&gwsHandler{pg: newPinger(ping), timeout: ping + 3*time.Second},
		&gws.ServerOption{Recovery: gws.Recovery})
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		accepted.Add(1)
		go s.ReadLoop()
	}
}
