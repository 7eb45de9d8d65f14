package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Node is one member of a lifeline cluster: it hooks the conn.Servers
// whose ServerConfig.Hook it is, records their sessions in the cluster
// directory, delivers messages sent to them from any node, and keeps its
// lease in the engine. Its lifecycle is an fsm.Node driven by Run's
// goroutine: it serves sessions only while Member or Degraded, and when
// it cannot prove its lease for Lease.Fence it closes every session it
// serves (fsm.ReasonFenced) before the other nodes may count them dead.
//
// Create it with New, pass it as conn.ServerConfig.Hook, call Run, and
// on the way down Shutdown (before the conn.Server's own Shutdown).
type Node struct {
	cfg   Config
	lease fsm.Lease
	log   *slog.Logger
	subj  string // <name>.

	ran     atomic.Bool
	serving atomic.Bool
	// fenceAt is FenceAt of the latest proof (Unix ns). The session path
	// checks it itself, so a node whose loop has not run yet (a process
	// resumed after SIGSTOP) serves nothing past its fence deadline.
	fenceAt atomic.Int64
	inc     atomic.Uint64
	eng     atomic.Pointer[engine]

	loc   locals
	dir   *directory
	write *writer

	events chan event
	leave  chan chan error // Shutdown asks Run to leave
	done   chan struct{}   // closed as Run returns

	smu    sync.Mutex // the node view, for Stats
	state  fsm.State
	view   map[string]peerInfo
	leader string // the server leading the lease stream, as last seen
}

// peerInfo is what Stats shows of another node.
type peerInfo struct {
	state   fsm.State
	inc     uint64
	renewed time.Time
}

// leaseValue is the lease's JSON value.
type leaseValue struct {
	Node        string    `json:"node"`
	Incarnation uint64    `json:"inc"`
	Started     time.Time `json:"started"`
}

// event is what the node's goroutines hand to Run's loop.
type event struct {
	kind    eventKind
	sentAt  time.Time // leaseWrite
	inc     uint64    // leaseWrite
	rev     uint64    // leaseWrite
	err     error
	entry   jetstream.KeyValueEntry // leaseWatch, dirWatch
	listing map[string]leaseSeen    // recheck
	leader  string                  // recheck: the lease stream's leader
}

type eventKind uint8

const (
	leaseWrite eventKind = iota + 1
	leaseWatch
	recheckDone
	dirWatch
	engineUp
)

// leaseSeen is one lease found by a re-check.
type leaseSeen struct {
	inc     uint64
	renewed time.Time
}

// New returns a Node for cfg, or cfg's validation error. It starts
// nothing: Run does.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	n := &Node{
		cfg:    cfg,
		lease:  cfg.Lease.WithDefaults(),
		log:    log,
		subj:   cfg.name() + ".",
		events: make(chan event, 256),
		leave:  make(chan chan error),
		done:   make(chan struct{}),
		state:  fsm.Joining,
		view:   map[string]peerInfo{},
	}
	n.loc.init()
	n.dir = newDirectory(cfg.Node)
	n.write = newWriter()
	return n, nil
}

// ID returns the node's name.
func (n *Node) ID() string { return n.cfg.Node }

// Serving reports whether the node takes and serves sessions now: Member
// or Degraded, and not past its fence deadline.
func (n *Node) Serving() bool {
	return n.serving.Load() && time.Now().UnixNano() < n.fenceAt.Load()
}

// ClientURL returns the embedded server's client URL when
// Config.ClientListen is set and Run has started it, else "".
func (n *Node) ClientURL() string {
	if e := n.eng.Load(); e != nil && e.srv != nil && n.cfg.ClientListen != "" {
		return e.srv.ClientURL()
	}
	return ""
}

// Run starts the engine (the embedded NATS server, or a connection to the
// external one), joins the cluster and drives the node until ctx ends or
// Shutdown is called; then it leaves (removes its sessions from the
// directory and deletes its lease, bounded by a heartbeat when ctx ended)
// and stops the engine. It returns nil after a Shutdown or when ctx ends,
// or the error that kept the engine from starting. A Node runs once.
func (n *Node) Run(ctx context.Context) error {
	if n.ran.Swap(true) {
		return errors.New("cluster: node already ran; create a new one")
	}
	defer close(n.done)
	e, err := n.start(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer e.close()
	var wg sync.WaitGroup
	defer wg.Wait()
	bg, stop := context.WithCancel(context.Background())
	defer stop()
	if err := n.startWorkers(bg, e, &wg); err != nil {
		return err
	}
	n.eng.Store(e)
	defer n.eng.Store(nil)
	defer n.dir.closeAll()
	return n.loop(ctx, e, &wg, bg.Done())
}

// start brings the engine up.
func (n *Node) start(ctx context.Context) (*engine, error) {
	e := &engine{log: n.log}
	if n.cfg.NATS == "" {
		s, tmp, err := startServer(n.cfg, n.log)
		if err != nil {
			return nil, err
		}
		e.srv, e.tmpStore = s, tmp
	}
	nc, err := connect(n.cfg, e.srv, n.log)
	if err != nil {
		e.close()
		return nil, err
	}
	e.nc = nc
	e.js, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		e.close()
		return nil, &EngineError{Op: "JetStream", Err: err}
	}
	if err := e.openBuckets(ctx, n.cfg); err != nil {
		e.close()
		return nil, err
	}
	nc.SetReconnectHandler(func(c *nats.Conn) {
		n.log.Info("engine connection back", "node", n.cfg.Node, "server", c.ConnectedUrlRedacted())
		n.post(event{kind: engineUp})
	})
	return e, nil
}

// startWorkers starts the watchers, the directory writer and the send
// subscription; they stop when bg ends.
func (n *Node) startWorkers(bg context.Context, e *engine, wg *sync.WaitGroup) error {
	lw, err := e.leases.WatchAll(bg)
	if err != nil {
		return &EngineError{Op: "watch leases", Err: err}
	}
	dw, err := e.dir.WatchAll(bg)
	if err != nil {
		return &EngineError{Op: "watch directory", Err: err}
	}
	forward := func(w jetstream.KeyWatcher, kind eventKind) {
		defer wg.Done()
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-bg.Done():
				return
			case en, ok := <-w.Updates():
				if !ok {
					return
				}
				if en != nil { // nil marks the end of the initial values
					n.post(event{kind: kind, entry: en})
				}
			}
		}
	}
	wg.Add(3)
	go forward(lw, leaseWatch)
	go forward(dw, dirWatch)
	go func() { defer wg.Done(); n.write.run(bg, e, n.log) }()
	sub, err := e.nc.Subscribe(n.nodeSubject(n.cfg.Node), n.serveSend)
	if err != nil {
		return &EngineError{Op: "subscribe", Err: err}
	}
	context.AfterFunc(bg, func() { _ = sub.Unsubscribe() })
	return nil
}

// post hands ev to the loop without ever blocking a NATS callback for
// long: the loop drains the channel continuously.
func (n *Node) post(ev event) {
	select {
	case n.events <- ev:
	case <-n.done:
	}
}

// loop is the driver: the one goroutine that owns the node's and the
// peers' fsm machines and the directory replica.
func (n *Node) loop(ctx context.Context, e *engine, wg *sync.WaitGroup, quit <-chan struct{}) error {
	now := time.Now()
	inc := uint64(now.UnixNano())
	fn, err := fsm.NewNode(now, n.lease, inc)
	if err != nil {
		return err
	}
	d := &driver{n: n, e: e, fn: fn, peers: map[string]*fsm.Peer{}, wg: wg, quit: quit, started: now}
	n.inc.Store(inc)
	d.step(now, fsm.EvTick, nil)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if at, ok := d.deadline(); ok {
			timer.Reset(time.Until(at))
		}
		select {
		case <-ctx.Done():
			lctx, cancel := context.WithTimeout(context.Background(), n.lease.Heartbeat)
			_ = d.leaveNow(lctx)
			cancel()
			return nil
		case reply := <-n.leave:
			lctx, cancel := context.WithTimeout(context.Background(), n.lease.Heartbeat)
			reply <- d.leaveNow(lctx)
			cancel()
			return nil
		case <-timer.C:
			d.tick(time.Now())
		case ev := <-n.events:
			d.handle(time.Now(), ev)
		}
	}
}

// Shutdown leaves the cluster and stops the node, in this order:
//
//  1. the node stops admitting sessions (fsm Left);
//  2. its sessions are removed from the directory at once, so the other
//     nodes drop them without waiting for the lease to expire;
//  3. its lease is deleted: the other nodes see it left;
//  4. the engine stops (the embedded server shuts down).
//
// Steps 2 and 3 are bounded by a heartbeat. Shutdown then waits for Run to
// return or ctx to end (returning ctx's error). Sessions stay open: shut
// the conn.Server down afterwards (its sessions close and, as the node
// has left, nothing more is written). Shutdown of a node that is not
// running returns ErrNotRunning.
func (n *Node) Shutdown(ctx context.Context) error {
	if !n.ran.Load() {
		return ErrNotRunning
	}
	reply := make(chan error, 1)
	select {
	case n.leave <- reply:
	case <-n.done:
		return ErrNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
	var err error
	select {
	case err = <-reply:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-n.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return err
}

// nodeSubject is the subject a node answers sends on.
func (n *Node) nodeSubject(node string) string { return n.subj + "send." + node }

// encodeLease returns the lease value for incarnation inc.
func (n *Node) encodeLease(inc uint64, started time.Time) []byte {
	b, _ := json.Marshal(leaseValue{Node: n.cfg.Node, Incarnation: inc, Started: started})
	return b
}

func decodeLease(b []byte) (leaseValue, error) {
	var v leaseValue
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("cluster: lease value: %w", err)
	}
	return v, nil
}

// servers returns the conn.Servers the node has seen sessions of.
func (n *Node) servers() []*conn.Server { return n.loc.servers() }
