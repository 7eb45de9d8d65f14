package main

import (
	"sync"
	"time"
)

// pinger is the heartbeat of the servers built around a poller (nbio's,
// our epoll) and of gws: one goroutine and one ticker for all
// connections, the shape of nbio's own keepalive example, instead of a
// runtime timer per connection. A connection whose ping fails is dropped
// from the set; its reader notices the broken socket and closes it.
type pinger struct {
	mu    sync.Mutex
	conns map[any]func() error
}

func newPinger(interval time.Duration) *pinger {
	p := &pinger{conns: map[any]func() error{}}
	go func() {
		for range time.Tick(interval) {
			p.round()
		}
	}()
	return p
}

func (p *pinger) add(key any, ping func() error) {
	p.mu.Lock()
	p.conns[key] = ping
	p.mu.Unlock()
}

func (p *pinger) remove(key any) {
	p.mu.Lock()
	delete(p.conns, key)
	p.mu.Unlock()
}

// round pings a snapshot of the set outside the lock: a library may run
// its close callback (which calls remove) inside a failing write.
func (p *pinger) round() {
	type entry struct {
		key  any
		ping func() error
	}
	p.mu.Lock()
	all := make([]entry, 0, len(p.conns))
	for k, f := range p.conns {
		all = append(all, entry{k, f})
	}
	p.mu.Unlock()
	for _, e := range all {
		if e.ping() != nil {
			p.remove(e.key)
		}
	}
}
