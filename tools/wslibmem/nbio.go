package main

import (
	"net"
	"net/http"
	"os"
	"time"

	"github.com/lesismal/nbio/logging"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"
)

// nbioServe is lesismal/nbio's own echo server with a heartbeat, built the
// way its keepalive example builds it: nbhttp's engine (epoll, a few
// poller goroutines, IOModNonBlocking by default) serves the upgrade and
// every read; the upgrader's OnMessage echoes; one goroutine pings every
// connection each interval; a read deadline of interval + 3 s, pushed on
// by every pong and message, drops a silent peer. Engine defaults
// otherwise, as its examples use them.
func nbioServe(ping time.Duration) (string, error) {
	logging.Output = os.Stderr // its Info lines would mix with our result lines
	logging.SetLevel(logging.LevelError)
	timeout := ping + 3*time.Second
	pg := newPinger(ping)
	up := websocket.NewUpgrader()
	up.OnMessage(func(c *websocket.Conn, mt websocket.MessageType, data []byte) {
		_ = c.WriteMessage(mt, data)
		_ = c.SetReadDeadline(time.Now().Add(timeout))
	})
	up.SetPongHandler(func(c *websocket.Conn, _ string) {
		pongs.Add(1)
		_ = c.SetReadDeadline(time.Now().Add(timeout))
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		accepted.Add(1)
		_ = c.SetReadDeadline(time.Now().Add(timeout))
		pg.add(c, func() error { return c.WriteMessage(websocket.PingMessage, nil) })
		c.OnClose(func(c *websocket.Conn, _ error) { pg.remove(c) })
	})
	var addr string
	engine := nbhttp.NewEngine(nbhttp.Config{
		Network:                 "tcp",
		Addrs:                   []string{"127.0.0.1:0"},
		Handler:                 mux,
		ReleaseWebsocketPayload: true,
		Listen: func(network, a string) (net.Listener, error) {
			ln, err := net.Listen(network, a)
			if err == nil {
				addr = ln.Addr().String()
			}
			return ln, err
		},
	})
	if err := engine.Start(); err != nil {
		return "", err
	}
	return addr, nil
}
