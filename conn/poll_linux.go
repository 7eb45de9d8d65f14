//go:build linux

package conn

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/gorilla/websocket"
)

// pollSupported: this build has epoll.
const pollSupported = true

// pollReadBuffer is the poller's one read buffer, shared by every session
// it serves: a read takes at most this much, and what a read leaves of an
// incomplete frame is copied to the session until the frame is whole.
const pollReadBuffer = 16 << 10

// pollSet is EnginePoll's readiness loop for one Server: an epoll set
// holding every polled session's descriptor, level-triggered, served by
// one goroutine that exists while the set holds any. A pong costs one
// epoll wakeup (shared by all sessions ready at once), one read and an
// atomic store; no goroutine is woken and no buffer allocated.
type pollSet struct {
	srv *Server

	mu      sync.Mutex
	epfd    int
	wake    [2]int      // a pipe: writing to wake[1] wakes the loop
	conns   []*pollConn // by descriptor
	n       int         // sessions attached
	running bool

	// wokeAt is when the loop last returned from epoll_wait, in ns since
	// srv.epoch (0: never): Server.Health reports it.
	wokeAt atomic.Int64
}

func newPollSet(srv *Server) *pollSet {
	if srv.cfg.Engine == EngineGoroutine {
		return nil
	}
	return &pollSet{srv: srv}
}

// pollConn is one session's connection on EnginePoll: a descriptor of its
// own (dup'ed from the upgraded *net.TCPConn, which is then closed, so Go's
// netpoller and gorilla/websocket keep nothing of it) and the reader state
// of a frame still incomplete. An idle session's pollConn holds no buffer.
type pollConn struct {
	s *Session // its poll set is s.srv.polls
	// addr is the peer's address as a value, not the *net.TCPAddr the
	// connection had (48 bytes and a 32-byte sockaddr its IP points
	// into); remoteAddr builds a net.Addr when asked.
	addr netip.AddrPort
	ep   int32 // the epoll set it is in (fixed while it is attached)

	events  uint32 // what the epoll set watches for it; 0: not in it (fdmu)
	fdmu    sync.Mutex
	fd      int           // -1 once closed
	reading bool          // startReading ran and the read side is not done
	busy    bool          // a handler goroutine owns the reader state
	wantOut bool          // a writer waits for EPOLLOUT
	dying   bool          // the teardown began: writers stop waiting
	torn    bool          // a frame was cut short: nothing may follow it (wmu)
	wready  chan struct{} // made at the first write that had to wait

	wmu sync.Mutex // one frame written at a time

	// rd is the reader state, owned by the poller, or by the session's
	// handler goroutine while busy; nil while no frame or message is
	// incomplete, which is always on an idle session.
	rd *pollReader
}

// pollReader is what a polled session's reader keeps between reads, only
// while something is incomplete: behind a pointer, an idle pollConn is
// 96 bytes instead of 144 (docs/decisions.md, "what an idle session
// holds").
type pollReader struct {
	in  []byte // the start of a frame not yet whole; nil otherwise
	msg msgAssembly
}

// detach takes the upgraded connection out of gorilla/websocket and Go's
// netpoller, into the poll set. It returns nil, nil when the connection is
// not plain TCP or the descriptor cannot be had: the session then gets the
// goroutine engine.
func (srv *Server) detach(s *Session, ws *websocket.Conn) (wire, func()) {
	ps := srv.polls
	if ps == nil {
		return nil, nil
	}
	tc, ok := ws.UnderlyingConn().(*net.TCPConn)
	if !ok {
		return nil, nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil, nil
	}
	fd := -1
	// gorilla refused the upgrade if the client sent data before the
	// handshake completed, and nothing has read since: no byte of the
	// session is left in gorilla's or net/http's buffers.
	if err := rc.Control(func(raw uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, raw, syscall.F_DUPFD_CLOEXEC, 0)
		if e == 0 {
			fd = int(r)
		}
	}); err != nil || fd < 0 {
		return nil, nil
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		_ = syscall.Close(fd)
		return nil, nil
	}
	var addr netip.AddrPort
	if ta, ok := tc.RemoteAddr().(*net.TCPAddr); ok {
		addr = ta.AddrPort()
	}
	pc := &pollConn{s: s, addr: addr, fd: fd}
	if !ps.add(pc) {
		_ = syscall.Close(fd) // tc stays open for the goroutine engine
		return nil, nil
	}
	_ = tc.Close() // the socket lives on in fd
	return pc, pc.startReading
}

// add attaches pc, starting the loop (and its epoll set) if it is not
// running.
func (ps *pollSet) add(pc *pollConn) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if !ps.running {
		ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return false
		}
		if err := syscall.Pipe2(ps.wake[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
			_ = syscall.Close(ep)
			return false
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(ps.wake[0])}
		if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, ps.wake[0], &ev); err != nil {
			ps.closeLocked(ep)
			return false
		}
		ps.epfd, ps.running = ep, true
		ps.srv.wg.Add(1)
		go ps.loop(ep, ps.wake[0])
	}
	pc.ep = int32(ps.epfd)
	for len(ps.conns) <= pc.fd {
		ps.conns = append(ps.conns, nil)
	}
	ps.conns[pc.fd] = pc
	ps.n++
	return true
}

// release detaches pc (whose descriptor fd is about to be closed) and
// wakes the loop to exit if it was the last.
func (ps *pollSet) release(pc *pollConn, fd int) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if fd < len(ps.conns) && ps.conns[fd] == pc {
		ps.conns[fd] = nil
	}
	ps.n--
	if ps.n == 0 {
		_, _ = syscall.Write(ps.wake[1], []byte{0})
	}
}

func (ps *pollSet) closeLocked(ep int) {
	_ = syscall.Close(ep)
	_ = syscall.Close(ps.wake[0])
	_ = syscall.Close(ps.wake[1])
}

// loop waits for readiness and serves it until no session is attached.
func (ps *pollSet) loop(ep, wakeFD int) {
	defer ps.srv.wg.Done()
	events := make([]syscall.EpollEvent, 128)
	ready := make([]*pollConn, 0, len(events))
	buf := make([]byte, pollReadBuffer)
	var drain [64]byte
	for {
		n, err := syscall.EpollWait(ep, events, -1)
		ps.wokeAt.Store(int64(ps.srv.clk.Now().Sub(ps.srv.epoch)))
		if err == syscall.EINTR {
			n, err = 0, nil
		}
		if err != nil {
			// Cannot happen with a valid set; without it, nothing more
			// can be read: leave the sessions to the liveness timer.
			ps.srv.log.Error("epoll_wait failed; polled sessions will be reaped by their liveness timer", "error", err)
			n = 0
		}
		ps.mu.Lock()
		ready = ready[:0]
		for _, e := range events[:n] {
			if int(e.Fd) == wakeFD {
				_, _ = syscall.Read(wakeFD, drain[:])
				continue
			}
			var pc *pollConn
			if int(e.Fd) < len(ps.conns) {
				pc = ps.conns[e.Fd]
			}
			ready = append(ready, pc)
		}
		if ps.n == 0 || err != nil {
			ps.running = false
			ps.closeLocked(ep)
			ps.mu.Unlock()
			return
		}
		ps.mu.Unlock()
		i := 0
		for _, e := range events[:n] {
			if int(e.Fd) == wakeFD {
				continue
			}
			pc := ready[i]
			ready[i] = nil
			i++
			if pc == nil {
				continue
			}
			if e.Events&(syscall.EPOLLOUT|syscall.EPOLLERR|syscall.EPOLLHUP) != 0 && !ps.srv.hooks.dropWritable() {
				pc.onWritable()
			}
			if e.Events&(syscall.EPOLLIN|syscall.EPOLLERR|syscall.EPOLLHUP) != 0 && !ps.srv.hooks.dropReadiness() {
				pc.onReadable(buf)
			}
		}
	}
}

// updateLocked makes the epoll set watch what pc needs: input while it
// reads and no handler goroutine owns the reader, output while a writer
// waits. A descriptor that needs neither leaves the set, so a hung-up
// peer cannot make a level-triggered set report it over and over.
func (pc *pollConn) updateLocked() {
	var want uint32
	if pc.fd >= 0 {
		if pc.reading && !pc.busy {
			want |= syscall.EPOLLIN
		}
		if pc.wantOut {
			want |= syscall.EPOLLOUT
		}
	}
	if want == pc.events {
		return
	}
	ev := syscall.EpollEvent{Events: want, Fd: int32(pc.fd)}
	var err error
	switch {
	case pc.events == 0:
		err = syscall.EpollCtl(int(pc.ep), syscall.EPOLL_CTL_ADD, pc.fd, &ev)
	case want == 0:
		err = syscall.EpollCtl(int(pc.ep), syscall.EPOLL_CTL_DEL, pc.fd, &ev)
	default:
		err = syscall.EpollCtl(int(pc.ep), syscall.EPOLL_CTL_MOD, pc.fd, &ev)
	}
	if err == nil {
		pc.events = want
	}
}

// startReading puts the descriptor in the epoll set for input; the
// handler calls it after OnOpen.
func (pc *pollConn) startReading() {
	pc.fdmu.Lock()
	if pc.fd >= 0 {
		pc.reading = true
		pc.updateLocked()
	}
	pc.fdmu.Unlock()
}

// stopReading ends the read side: the peer's close or a failure was read.
func (pc *pollConn) stopReading() {
	pc.fdmu.Lock()
	pc.reading = false
	pc.updateLocked()
	pc.fdmu.Unlock()
	pc.rd = nil
}

// setBusy hands the reader state to a handler goroutine (true) or back to
// the poller (false).
func (pc *pollConn) setBusy(busy bool) {
	pc.fdmu.Lock()
	pc.busy = busy
	pc.updateLocked()
	pc.fdmu.Unlock()
}

// onReadable reads what arrived into the poller's buffer and feeds it to
// the session. buf is the poller's: nothing may keep it (feed copies what
// it keeps).
func (pc *pollConn) onReadable(buf []byte) {
	pc.fdmu.Lock()
	if pc.fd < 0 || !pc.reading || pc.busy {
		pc.fdmu.Unlock()
		return
	}
	n, err := syscall.Read(pc.fd, buf)
	pc.fdmu.Unlock()
	switch {
	case err == syscall.EAGAIN || err == syscall.EINTR:
	case err != nil:
		pc.readError(os.NewSyscallError("read", err))
	case n == 0:
		pc.readError(errEOF)
	default:
		pc.feed(buf[:n], false)
	}
}

// onWritable wakes the writer waiting for room in the socket.
func (pc *pollConn) onWritable() {
	pc.fdmu.Lock()
	if pc.wantOut {
		pc.wantOut = false
		pc.updateLocked()
		pc.signalLocked()
	}
	pc.fdmu.Unlock()
}

func (pc *pollConn) signalLocked() {
	if pc.wready != nil {
		select {
		case pc.wready <- struct{}{}:
		default:
		}
	}
}

func (pc *pollConn) writeFrame(kind Frame, data []byte, deadline time.Time) error {
	return pc.write(byte(kind), data, deadline, false)
}

// write writes one whole frame without blocking a thread: a full socket
// makes it wait for EPOLLOUT, up to deadline (zero: until the session is
// torn down). final is the teardown's close frame, which alone may still
// be written once the teardown began.
func (pc *pollConn) write(op byte, data []byte, deadline time.Time, final bool) error {
	pc.wmu.Lock()
	defer pc.wmu.Unlock()
	if pc.torn {
		return errTornFrame
	}
	var hb [serverFrameHeaderMax]byte
	hdr := appendFrameHeader(hb[:0], op, len(data))
	wrote := false
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for len(hdr)+len(data) > 0 {
		pc.fdmu.Lock()
		if pc.fd < 0 || pc.dying && !final {
			pc.fdmu.Unlock()
			pc.torn = pc.torn || wrote
			return net.ErrClosed
		}
		n, err := writev(pc.fd, hdr, data)
		if err == syscall.EAGAIN {
			pc.wantOut = true
			if pc.wready == nil {
				pc.wready = make(chan struct{}, 1)
			}
			pc.updateLocked()
			ch := pc.wready
			pc.fdmu.Unlock()
			if deadline.IsZero() {
				<-ch
				continue
			}
			if timer == nil {
				timer = time.NewTimer(time.Until(deadline))
			}
			select {
			case <-ch:
				continue
			case <-timer.C:
				pc.torn = pc.torn || wrote
				return os.ErrDeadlineExceeded
			}
		}
		pc.fdmu.Unlock()
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			pc.torn = pc.torn || wrote
			return os.NewSyscallError("writev", err)
		}
		wrote = true
		k := min(n, len(hdr))
		hdr, data = hdr[k:], data[n-k:]
	}
	return nil
}

// writev writes a frame's header and payload in one system call.
func writev(fd int, hdr, data []byte) (int, error) {
	var iov [2]syscall.Iovec
	k := 0
	for _, b := range [2][]byte{hdr, data} {
		if len(b) > 0 {
			iov[k].Base = &b[0]
			iov[k].SetLen(len(b))
			k++
		}
	}
	n, _, e := syscall.Syscall(syscall.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(k))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// closeWith is the teardown: writers stop waiting, a best-effort close
// frame (unless a frame was cut short), then the descriptor is closed.
func (pc *pollConn) closeWith(code int, wait time.Duration) bool {
	pc.fdmu.Lock()
	pc.dying = true
	pc.signalLocked()
	pc.fdmu.Unlock()
	sent := false
	if code != 0 {
		sent = pc.write(opClose, websocket.FormatCloseMessage(code, ""), time.Now().Add(wait), true) == nil
	}
	pc.fdmu.Lock()
	if fd := pc.fd; fd >= 0 {
		pc.reading, pc.wantOut = false, false
		pc.updateLocked()
		pc.s.srv.polls.release(pc, fd)
		_ = syscall.Close(fd)
		pc.fd = -1
		pc.signalLocked()
	}
	pc.fdmu.Unlock()
	return sent
}

func (pc *pollConn) remoteAddr() net.Addr { return net.TCPAddrFromAddrPort(pc.addr) }

// pollerWokeAt returns when the loop last returned from epoll_wait, in ns
// since srv.epoch, 0 if never (or ps is nil: the goroutine engine).
func (ps *pollSet) pollerWokeAt() int64 {
	if ps == nil {
		return 0
	}
	return ps.wokeAt.Load()
}
