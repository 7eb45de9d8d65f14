package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/gobwas/ws"
)

// gobwasEpollServe is the "million WebSockets" shape (the one mailru/easygo
// was written for; its module is not served to us, so the poller is the
// few lines below): a raw TCP listener, gobwas/ws's zero-copy upgrade on
// the accepted connection (no net/http), then the descriptor goes into
// one epoll set and the connection holds no goroutine and no buffer while
// idle. When it becomes readable a fixed pool of workers reads one frame
// straight from the socket (no bufio: nothing stays buffered, so the
// level-triggered one-shot re-arm cannot miss data), answers it and
// re-arms. One goroutine pings every connection each interval.
func gobwasEpollServe(ping time.Duration) (string, error) {
	ep, err := newEpoll()
	if err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	pg := newPinger(ping)
	work := make(chan *epConn, 1024)
	for range 2 * runtime.GOMAXPROCS(0) {
		go func() {
			for c := range work {
				if err := c.readFrame(); err != nil {
					c.close(ep, pg)
					continue
				}
				if err := ep.ctl(syscall.EPOLL_CTL_MOD, c); err != nil {
					c.close(ep, pg)
				}
			}
		}()
	}
	go ep.wait(work)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				if err := epAccept(nc, ep, pg); err != nil {
					_ = nc.Close()
				}
			}()
		}
	}()
	return ln.Addr().String(), nil
}

// epAccept upgrades nc and registers it; the goroutine that ran it ends.
func epAccept(nc net.Conn, ep *epoll, pg *pinger) error {
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := ws.Upgrade(nc); err != nil {
		return err
	}
	_ = nc.SetDeadline(time.Time{})
	rc, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	c := &epConn{nc: nc}
	if err := rc.Control(func(fd uintptr) { c.fd = int(fd) }); err != nil {
		return err
	}
	ep.mu.Lock()
	ep.conns[c.fd] = c
	ep.mu.Unlock()
	if err := ep.ctl(syscall.EPOLL_CTL_ADD, c); err != nil {
		return err
	}
	accepted.Add(1)
	pg.add(c, func() error { return c.write(ws.OpPing, nil) })
	return nil
}

// epConn is one upgraded connection: the socket, its descriptor, and a
// lock that serialises the heartbeat's pings with the worker's writes.
type epConn struct {
	nc net.Conn
	fd int
	mu sync.Mutex
}

const epReadLimit = 4096

func (c *epConn) write(op ws.OpCode, p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	return ws.WriteFrame(c.nc, ws.NewFrame(op, true, p))
}

// readFrame reads and answers one frame. Echo frames go back as they
// came (a fragmented message is echoed fragment by fragment).
func (c *epConn) readFrame() error {
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second)) // a frame started must finish
	h, err := ws.ReadHeader(c.nc)
	if err != nil {
		return err
	}
	if h.Length > epReadLimit {
		return fmt.Errorf("frame of %d bytes over the limit", h.Length)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(c.nc, p); err != nil {
		return err
	}
	if h.Masked {
		ws.Cipher(p, h.Mask, 0)
	}
	switch h.OpCode {
	case ws.OpPing:
		return c.write(ws.OpPong, p)
	case ws.OpPong:
		pongs.Add(1)
		return nil
	case ws.OpClose:
		_ = c.write(ws.OpClose, p)
		return io.EOF
	default:
		c.mu.Lock()
		defer c.mu.Unlock()
		_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		return ws.WriteFrame(c.nc, ws.NewFrame(h.OpCode, h.Fin, p))
	}
}

func (c *epConn) close(ep *epoll, pg *pinger) {
	pg.remove(c)
	_ = syscall.EpollCtl(ep.fd, syscall.EPOLL_CTL_DEL, c.fd, nil)
	ep.mu.Lock()
	delete(ep.conns, c.fd)
	ep.mu.Unlock()
	_ = c.nc.Close()
}

// epoll is one epoll set and the connections in it, by descriptor.
type epoll struct {
	fd    int
	mu    sync.Mutex
	conns map[int]*epConn
}

func newEpoll() (*epoll, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	return &epoll{fd: fd, conns: map[int]*epConn{}}, nil
}

// ctl adds or re-arms c for one readiness event.
func (e *epoll) ctl(op int, c *epConn) error {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(c.fd)}
	return syscall.EpollCtl(e.fd, op, c.fd, &ev)
}

// wait hands each readable connection to the workers.
func (e *epoll) wait(work chan<- *epConn) {
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(e.fd, events, -1)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range events[:n] {
			e.mu.Lock()
			c := e.conns[int(ev.Fd)]
			e.mu.Unlock()
			if c != nil {
				work <- c
			}
		}
	}
}
