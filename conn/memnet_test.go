package conn

import (
	"context"
	"net"
	"sync"
	"syscall"
)

// memListener is an in-memory network for testing/synctest bubbles, where
// real TCP sockets never count as durably blocked: dial makes a net.Pipe
// and hands the far end to Accept. Everything runs in virtual time.
type memListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newMemListener() *memListener {
	return &memListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *memListener) Addr() net.Addr { return memAddr{} }

// dial connects to the listener; a closed listener refuses.
func (l *memListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	return l.dialConn(ctx, func(c net.Conn) net.Conn { return c })
}

// dialConn is dial with the server's end wrapped, to tell the server
// handler something about this connection.
func (l *memListener) dialConn(ctx context.Context, wrap func(net.Conn) net.Conn) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- wrap(server):
		return client, nil
	case <-l.done:
	case <-ctx.Done():
	}
	_ = client.Close()
	_ = server.Close()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, &net.OpError{Op: "dial", Net: "mem", Err: syscall.ECONNREFUSED}
}

type memAddr struct{}

func (memAddr) Network() string { return "mem" }
func (memAddr) String() string  { return "mem" }
