package cluster

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// writer records session opens, state changes and closes in the directory
// bucket off the session path: the hook only puts the change in a map
// keyed by session (an open followed by its close before the next batch
// cancels out and is never written; repeated state changes of one session
// in a batch are one write, of the state it has when written), and one
// goroutine publishes each batch asynchronously and waits for the
// acknowledgements together. The cost is a delay: a change reaches the
// other nodes' replicas a batch round trip after it happened (about a
// millisecond on loopback). The death bound does not depend on it: a dead
// node's sessions are dropped on its lease, not on these writes.
type writer struct {
	mu      sync.Mutex
	pending map[uint64]dirOp
	wake    chan struct{}
	stopped bool
}

// dirOp is one pending write: an entry (an open or a state change) or a
// close.
type dirOp struct {
	key   string // directory key
	entry *Entry // nil for a close
	// state, if set, gives the entry's State when it is written: the
	// session's latest, whatever changes were reported before.
	state func() fsm.State
	// written marks an entry that may be in the bucket already (a state
	// change, or an open that failed once and may have been written all
	// the same): its close must be written too.
	written bool
}

// batchTimeout bounds a batch's acknowledgements; what is not acknowledged
// by then is retried.
const batchTimeout = 5 * time.Second

func newWriter() *writer {
	return &writer{pending: map[uint64]dirOp{}, wake: make(chan struct{}, 1)}
}

// opKind says how put merges a change with one pending for the session.
type opKind uint8

const (
	putOpen opKind = iota
	putUpdate
	putClose
)

func (w *writer) put(id uint64, op dirOp, kind opKind) {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	prev, ok := w.pending[id]
	switch {
	case ok && kind == putUpdate:
		// An entry pending reads the state when written; a close wins.
		w.mu.Unlock()
		return
	case ok && kind == putClose && prev.entry != nil && !prev.written:
		// The open was never written: neither is the close.
		delete(w.pending, id)
		w.mu.Unlock()
		return
	}
	w.pending[id] = op
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// open queues a new entry; state, if set, is read when it is written.
func (w *writer) open(id uint64, e Entry, state func() fsm.State) {
	w.put(id, dirOp{key: dirKey(e.Node, e.Incarnation, id), entry: &e, state: state}, putOpen)
}

// update queues a state change of an entry opened before.
func (w *writer) update(id uint64, e Entry, state func() fsm.State) {
	w.put(id, dirOp{key: dirKey(e.Node, e.Incarnation, id), entry: &e, state: state, written: true}, putUpdate)
}

func (w *writer) close(id uint64, key string) {
	w.put(id, dirOp{key: key}, putClose)
}

// stop drops what is pending and refuses more: the node left, its entries
// are purged.
func (w *writer) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	clear(w.pending)
}

// take returns the pending changes and empties the map.
func (w *writer) take() map[uint64]dirOp {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 {
		return nil
	}
	b := w.pending
	w.pending = make(map[uint64]dirOp, len(b))
	return b
}

// run writes batches until ctx ends.
func (w *writer) run(ctx context.Context, e *engine, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		}
		for b := w.take(); b != nil; b = w.take() {
			failed := w.flush(ctx, e, b)
			if len(failed) > 0 {
				log.Warn("directory writes failed; retrying", "writes", len(failed))
				w.retry(failed)
				select { // the engine is down: retry after a pause, not in a spin
				case <-ctx.Done():
					return
				case <-time.After(reconnectWait):
				}
			}
		}
	}
}

// flush publishes a batch and returns the changes not acknowledged.
func (w *writer) flush(ctx context.Context, e *engine, b map[uint64]dirOp) map[uint64]dirOp {
	type sent struct {
		id  uint64
		op  dirOp
		ack jetstream.PubAckFuture
	}
	acks := make([]sent, 0, len(b))
	failed := map[uint64]dirOp{}
	for id, op := range b {
		m := &nats.Msg{Subject: "$KV." + e.dirName + "." + op.key, Header: nats.Header{}}
		if op.entry != nil {
			e := *op.entry
			if op.state != nil {
				e.State = op.state().String()
			}
			m.Data, _ = json.Marshal(e)
		} else {
			m.Header.Set("KV-Operation", "DEL")
		}
		f, err := e.js.PublishMsgAsync(m)
		if err != nil {
			failed[id] = op
			continue
		}
		acks = append(acks, sent{id, op, f})
	}
	timeout := time.NewTimer(batchTimeout)
	defer timeout.Stop()
	for _, s := range acks {
		select {
		case <-s.ack.Ok():
		case <-s.ack.Err():
			failed[s.id] = s.op
		case <-timeout.C:
			failed[s.id] = s.op
			timeout.Reset(0)
		case <-ctx.Done():
			return nil
		}
	}
	return failed
}

// retry puts failed changes back unless a newer change for the same
// session arrived meanwhile.
func (w *writer) retry(failed map[uint64]dirOp) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	for id, op := range failed {
		if _, newer := w.pending[id]; newer {
			continue
		}
		op.written = true
		w.pending[id] = op
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}
