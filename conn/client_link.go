package conn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// link is one established connection of a Client, from DialOK to ActDrop.
type link struct {
	r   *runner
	c   *Client
	gen int
	ws  *websocket.Conn

	// heard is when the last frame was read, in ns since c.epoch; the reader
	// stores it, Run hands it to fsm at the next tick. stepped is Run's.
	heard   atomic.Int64
	stepped int64

	greeted bool // OnConnect has returned: the outbox may drain (Client.mu)

	wmu      chan struct{} // cap 1: one Send writes at a time, ctx-aware
	done     chan struct{} // closed when the link is dropped
	dropOnce sync.Once
}

func newLink(r *runner, gen int, ws *websocket.Conn) *link {
	c := r.c
	l := &link{r: r, c: c, gen: gen, ws: ws, wmu: make(chan struct{}, 1), done: make(chan struct{})}
	l.heard.Store(int64(c.clk.Now().Sub(c.epoch)))
	ws.SetReadLimit(c.cfg.ReadLimit)
	ws.SetPingHandler(l.onPing)
	ws.SetPongHandler(l.onPong)
	return l
}

func (l *link) heardNow() time.Time {
	now := l.c.clk.Now()
	l.heard.Store(int64(now.Sub(l.c.epoch)))
	return now
}

// readLoop reads until the link fails, then reports it to Run.
func (l *link) readLoop() {
	defer l.r.wg.Done()
	for {
		mt, data, err := l.ws.ReadMessage()
		if err != nil {
			l.r.report(clientEvent{gen: l.gen, err: fmt.Errorf("link dropped: %w", err)})
			return
		}
		now := l.heardNow()
		l.c.observe(Observation{Kind: ObsReceive, At: now, Frame: Frame(mt), Size: len(data)})
		if l.c.cfg.OnMessage != nil {
			l.c.cfg.OnMessage(MessageType(mt), data)
		}
	}
}

func (l *link) onPing(payload string) error {
	now := l.heardNow()
	l.c.observe(Observation{Kind: ObsReceive, At: now, Frame: FramePing, Size: len(payload)})
	err := l.ws.WriteControl(websocket.PongMessage, []byte(payload), time.Now().Add(l.writeTimeout()))
	var ne net.Error
	if err != nil && !errors.As(err, &ne) { // as gorilla's default: a timed-out pong is not fatal
		return err
	}
	if err == nil {
		l.c.observe(Observation{Kind: ObsSend, At: l.c.clk.Now(), Frame: FramePong, Size: len(payload)})
	}
	return nil
}

func (l *link) onPong(payload string) error {
	now := l.heardNow()
	l.c.observe(Observation{Kind: ObsReceive, At: now, Frame: FramePong, Size: len(payload)})
	return nil
}

// writeTimeout is read without the client lock: Liveness is fixed for
// the client's life.
func (l *link) writeTimeout() time.Duration { return l.c.cfg.Liveness.WithDefaults().WriteTimeout }

// send writes one message; see Client.Send.
func (l *link) send(ctx context.Context, t MessageType, data []byte) error {
	select {
	case l.wmu <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-l.done:
		return &NotConnectedError{State: l.c.State()}
	}
	defer func() { <-l.wmu }()
	select {
	case <-l.done:
		return &NotConnectedError{State: l.c.State()}
	default:
	}
	return l.write(t, data)
}

// write writes one message; the caller holds wmu. A failed write drops
// the link.
func (l *link) write(t MessageType, data []byte) error {
	err := l.ws.SetWriteDeadline(time.Now().Add(l.writeTimeout()))
	if err == nil {
		err = l.ws.WriteMessage(int(t), data)
	}
	if err != nil {
		err = fmt.Errorf("conn: client %s: send: %w", l.c.id, err)
		l.r.report(clientEvent{gen: l.gen, err: err})
		return err
	}
	l.c.observe(Observation{Kind: ObsSend, At: l.c.clk.Now(), Frame: Frame(t), Size: len(data)})
	return nil
}

// ping writes a ping on a goroutine of its own, so that a full socket
// buffer never stalls Run; a failed ping drops the link.
func (l *link) ping() {
	l.r.wg.Add(1)
	go func() {
		defer l.r.wg.Done()
		err := l.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(l.writeTimeout()))
		if err != nil {
			l.r.report(clientEvent{gen: l.gen, err: fmt.Errorf("ping: %w", err)})
			return
		}
		l.c.observe(Observation{Kind: ObsSend, At: l.c.clk.Now(), Frame: FramePing})
	}()
}

// writeClose sends a close frame, waiting at most a second, so that
// stopping stays prompt even when the server stopped reading.
func (l *link) writeClose(code int) {
	wait := min(l.writeTimeout(), closeFrameWait)
	if l.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(wait)) == nil {
		l.c.observe(Observation{Kind: ObsSend, At: l.c.clk.Now(), Frame: FrameClose})
	}
}

// drop closes the connection; the reader then reports a stale failure.
func (l *link) drop() {
	l.dropOnce.Do(func() {
		close(l.done)
		_ = l.ws.Close()
	})
}
