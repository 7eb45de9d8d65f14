package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/gorilla/websocket"
)

// servers lists every server the tool can run, as lib/mode, in the order
// the orchestrator measures them by default.
var servers = []string{
	"gorilla/naive", "coder/naive", "gobwas/naive",
	"gorilla/lean", "coder/lean", "gobwas/lean",
	"gws/lean", "nbio/epoll", "gobwas/epoll",
}

// start serves the server named lib/mode on a loopback port and returns
// its address.
func start(name string, ping time.Duration) (string, error) {
	switch name {
	case "nbio/epoll":
		return nbioServe(ping)
	case "gobwas/epoll":
		return gobwasEpollServe(ping)
	}
	hs := map[string]http.HandlerFunc{
		"gorilla/naive": gorillaNaive,
		"gorilla/lean":  gorillaLean(ping),
		"coder/naive":   coderNaive,
		"coder/lean":    coderLean(ping),
		"gobwas/naive":  gobwasNaive,
		"gobwas/lean":   gobwasLean(ping),
		"gws/lean":      gwsLean(ping),
	}
	h, ok := hs[name]
	if !ok {
		return "", fmt.Errorf("unknown server %q (want one of %s)", name, strings.Join(servers, ", "))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() { _ = http.Serve(ln, h) }()
	return ln.Addr().String(), nil
}

// heartbeat sends a ping every interval until ping fails. It uses one
// runtime timer per connection and no goroutine while waiting.
func heartbeat(interval time.Duration, ping func() error) {
	var t *time.Timer
	t = time.AfterFunc(interval, func() {
		if ping() == nil {
			t.Reset(interval)
		}
	})
}

func gorillaNaive(w http.ResponseWriter, r *http.Request) {
	c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	accepted.Add(1)
	defer c.Close()
	for {
		mt, p, err := c.ReadMessage()
		if err != nil {
			return
		}
		if c.WriteMessage(mt, p) != nil {
			return
		}
	}
}

var gorillaPool = &sync.Pool{}

func gorillaLean(ping time.Duration) http.HandlerFunc {
	up := &websocket.Upgrader{ReadBufferSize: 256, WriteBufferSize: 256, WriteBufferPool: gorillaPool}
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		accepted.Add(1)
		c.SetPongHandler(func(string) error { pongs.Add(1); return nil })
		heartbeat(ping, func() error {
			return c.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second))
		})
		go func() {
			defer c.Close()
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
	}
}

func coderNaive(w http.ResponseWriter, r *http.Request) {
	c, err := coder.Accept(w, r, nil)
	if err != nil {
		return
	}
	accepted.Add(1)
	defer c.CloseNow()
	ctx := context.Background()
	for {
		typ, p, err := c.Read(ctx)
		if err != nil {
			return
		}
		if c.Write(ctx, typ, p) != nil {
			return
		}
	}
}

func coderLean(ping time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := coder.Accept(w, r, &coder.AcceptOptions{CompressionMode: coder.CompressionDisabled})
		if err != nil {
			return
		}
		accepted.Add(1)
		c.SetReadLimit(4096)
		heartbeat(ping, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if err := c.Ping(ctx); err != nil {
				return err
			}
			pongs.Add(1)
			return nil
		})
		go func() {
			defer c.CloseNow()
			ctx := context.Background()
			for {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
			}
		}()
	}
}

func gobwasNaive(w http.ResponseWriter, r *http.Request) {
	conn, _, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		return
	}
	accepted.Add(1)
	defer conn.Close()
	for {
		msg, op, err := wsutil.ReadClientData(conn)
		if err != nil {
			return
		}
		if wsutil.WriteServerMessage(conn, op, msg) != nil {
			return
		}
	}
}

// lockedWriter serialises the heartbeat's pings with the control-frame
// answers the reader writes.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func gobwasLean(ping time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return
		}
		accepted.Add(1)
		lw := &lockedWriter{w: conn}
		heartbeat(ping, func() error {
			_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
			return wsutil.WriteServerMessage(lw, ws.OpPing, nil)
		})
		go gobwasRead(conn, lw)
	}
}

func gobwasRead(conn net.Conn, lw *lockedWriter) {
	defer conn.Close()
	control := wsutil.ControlFrameHandler(lw, ws.StateServerSide)
	rd := &wsutil.Reader{Source: conn, State: ws.StateServerSide, CheckUTF8: true, OnIntermediate: control}
	for {
		hdr, err := rd.NextFrame()
		if err != nil {
			return
		}
		if hdr.OpCode.IsControl() {
			if hdr.OpCode == ws.OpPong {
				pongs.Add(1)
			}
			if control(hdr, rd) != nil {
				return
			}
			continue
		}
		if rd.Discard() != nil {
			return
		}
	}
}
