package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/nats-io/nats.go"
)

// The send protocol: a request to <name>.send.<node> whose headers say
// what to reach, the body being the message; the node answers with a
// status and a count once every session it reached has written the
// message (conn.Session.SendNotify) or failed to.
const (
	hOp        = "Lifeline-Op"  // id, key or all
	hID        = "Lifeline-Id"  // local session number (op id)
	hInc       = "Lifeline-Inc" // the session's node incarnation (op id)
	hKey       = "Lifeline-Key"
	hStatus    = "Lifeline-Status" // ok, none or closed
	hDelivered = "Lifeline-Delivered"
	hReason    = "Lifeline-Reason"

	opID, opKey, opAll                = "id", "key", "all"
	statusOK, statusNone, statusClose = "ok", "none", "closed"
	// statusUnknown: a local send whose ctx ended before the write was
	// reported; never on the wire.
	statusUnknown = "unknown"
)

// result is what one node did with a send.
type result struct {
	delivered int
	status    string // statusOK, statusNone or statusClose
	reason    string
}

// SendTo writes msg as one text message to the session with cluster-wide
// id (<node>.<inc>/<n>, as Entry.ID shows it), wherever it lives, and returns nil once it was written
// to the session's connection. Otherwise the error says what happened:
// ErrNoSuchSession (no node holds it: answered in one round trip),
// a *SessionClosedError (it closed before the write), ErrBadID, or an
// *EngineError (ErrUnreachable: the engine or the node did not answer
// within ctx's deadline or Config.RequestTimeout; delivery unknown).
func (n *Node) SendTo(ctx context.Context, id string, msg []byte) error {
	ref, err := parseID(id)
	if err != nil {
		return err
	}
	node := ref.node
	var r result
	if node == n.cfg.Node {
		r = n.deliverLocal(ctx, opID, ref, "", msg)
	} else {
		if p := n.peer(node); p.state == fsm.Expired || p.state == fsm.Left || ref.inc < p.inc {
			// Counted dead: its sessions are dead, whatever a stopped
			// process still subscribed may say; an older incarnation's
			// sessions were counted dead when the newer one was seen.
			return fmt.Errorf("cluster: send to %s: node %s is %s (incarnation %d): %w", id, node, p.state, p.inc, ErrNoSuchSession)
		}
		h := nats.Header{}
		h.Set(hOp, opID)
		h.Set(hID, strconv.FormatUint(ref.num, 10))
		h.Set(hInc, strconv.FormatUint(ref.inc, 10))
		r, err = n.request(ctx, node, h, msg, "send to "+id)
		if err != nil {
			return err
		}
	}
	switch r.status {
	case statusOK:
		return nil
	case statusClose:
		return &SessionClosedError{ID: id, Reason: r.reason}
	case statusUnknown:
		return &EngineError{Op: "send to " + id, Err: ctx.Err()}
	}
	return fmt.Errorf("cluster: send to %s: %w", id, ErrNoSuchSession)
}

// SendKey writes msg as one text message to every session whose key is key
// (Config.KeyOf), on every node, and returns how many wrote it. It asks the
// nodes the directory shows holding the key, and this node. No session
// with the key: ErrNoSuchSession. Sessions found but all closed first: a
// *SessionClosedError. A node that did not answer adds an *EngineError
// (the count is then a lower bound).
func (n *Node) SendKey(ctx context.Context, key string, msg []byte) (int, error) {
	if key == "" {
		return 0, fmt.Errorf("cluster: SendKey needs a key: %w", ErrNoSuchSession)
	}
	nodes := n.dir.nodesWithKey(key)
	if !slices.Contains(nodes, n.cfg.Node) {
		nodes = append(nodes, n.cfg.Node)
	}
	h := nats.Header{}
	h.Set(hOp, opKey)
	h.Set(hKey, key)
	total, rs, err := n.fanOut(ctx, nodes, h, opKey, key, msg)
	if total > 0 || err != nil {
		return total, err
	}
	for _, r := range rs {
		if r.status == statusClose {
			return 0, &SessionClosedError{ID: "key " + key, Reason: r.reason}
		}
	}
	return 0, fmt.Errorf("cluster: send to key %q: %w", key, ErrNoSuchSession)
}

// Broadcast writes msg as one text message to every session of every node
// counted alive, and returns how many wrote it. A node that did not answer
// adds an *EngineError to the error (the count is then a lower bound).
func (n *Node) Broadcast(ctx context.Context, msg []byte) (int, error) {
	nodes := append(n.alivePeers(), n.cfg.Node)
	h := nats.Header{}
	h.Set(hOp, opAll)
	total, _, err := n.fanOut(ctx, nodes, h, opAll, "", msg)
	return total, err
}

// fanOut sends to several nodes at once and sums what they delivered.
func (n *Node) fanOut(ctx context.Context, nodes []string, h nats.Header, op, key string, msg []byte) (int, []result, error) {
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		total int
		rs    []result
		errs  []error
	)
	for _, node := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r result
			var err error
			if node == n.cfg.Node {
				r = n.deliverLocal(ctx, op, sessionRef{}, key, msg)
			} else {
				r, err = n.request(ctx, node, h, msg, op+" send to node "+node)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if !errors.Is(err, ErrNoSuchSession) {
					errs = append(errs, err)
				}
				return
			}
			if r.status == statusUnknown {
				errs = append(errs, &EngineError{Op: op + " send on this node", Err: ctx.Err()})
			}
			total += r.delivered
			rs = append(rs, r)
		}()
	}
	wg.Wait()
	return total, rs, errors.Join(errs...)
}

// request sends one request to node and decodes its answer. No
// responders (no node of that name holds a subscription: it is dead, or
// never was) is ErrNoSuchSession at once; no answer in time is an
// *EngineError.
func (n *Node) request(ctx context.Context, node string, h nats.Header, msg []byte, op string) (result, error) {
	e := n.eng.Load()
	if e == nil {
		return result{}, &EngineError{Op: op, Err: ErrNotRunning}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.requestTimeout())
		defer cancel()
	}
	m := &nats.Msg{Subject: n.nodeSubject(node), Header: h, Data: msg}
	resp, err := e.nc.RequestMsgWithContext(ctx, m)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return result{status: statusNone}, fmt.Errorf("cluster: %s: no node %s: %w", op, node, ErrNoSuchSession)
	case err != nil:
		return result{}, &EngineError{Op: op, Err: err}
	}
	r := result{status: resp.Header.Get(hStatus), reason: resp.Header.Get(hReason)}
	r.delivered, _ = strconv.Atoi(resp.Header.Get(hDelivered))
	if r.status == "" {
		return result{}, &EngineError{Op: op, Err: errors.New("malformed answer")}
	}
	return r, nil
}

// serveSend answers a send request from another node. It runs on the
// subscription's goroutine and never waits there: the answer goes out
// from the last write's report.
func (n *Node) serveSend(m *nats.Msg) {
	op := m.Header.Get(hOp)
	var ref sessionRef
	ref.num, _ = strconv.ParseUint(m.Header.Get(hID), 10, 64)
	ref.inc, _ = strconv.ParseUint(m.Header.Get(hInc), 10, 64)
	targets := n.targets(op, ref, m.Header.Get(hKey))
	n.deliver(targets, m.Data, func(r result) {
		resp := nats.NewMsg(m.Reply)
		resp.Header.Set(hStatus, r.status)
		resp.Header.Set(hDelivered, strconv.Itoa(r.delivered))
		if r.reason != "" {
			resp.Header.Set(hReason, r.reason)
		}
		_ = m.RespondMsg(resp)
	})
}

// deliverLocal is serveSend for a send that starts on this node: no engine
// involved, the same accounting.
func (n *Node) deliverLocal(ctx context.Context, op string, ref sessionRef, key string, msg []byte) result {
	done := make(chan result, 1)
	n.deliver(n.targets(op, ref, key), msg, func(r result) { done <- r })
	select {
	case r := <-done:
		return r
	case <-ctx.Done():
		return result{status: statusUnknown, reason: ctx.Err().Error()}
	}
}

// targets returns the local sessions a send reaches. A send by id reaches
// the session only if it was opened under the incarnation the id names.
func (n *Node) targets(op string, ref sessionRef, key string) []*local {
	switch op {
	case opID:
		if s, ok := n.loc.get(ref.num); ok && s.inc == ref.inc {
			return []*local{s}
		}
	case opKey:
		return n.loc.withKey(key)
	case opAll:
		return n.loc.all()
	}
	return nil
}

// deliver queues msg on every target with SendNotify and calls answer once
// all of them reported: delivered counts only messages written to a live
// session's connection. With no target it answers "none" at once.
func (n *Node) deliver(targets []*local, msg []byte, answer func(result)) {
	if len(targets) == 0 || !n.Serving() {
		answer(result{status: statusNone})
		return
	}
	var (
		mu        sync.Mutex
		left      = len(targets)
		delivered int
		reason    string
	)
	report := func(err error) {
		mu.Lock()
		if err == nil {
			delivered++
		} else if reason == "" {
			reason = closeReason(err)
		}
		left--
		last := left == 0
		mu.Unlock()
		if last {
			r := result{status: statusOK, delivered: delivered}
			if delivered == 0 {
				r.status, r.reason = statusClose, reason
			}
			// Off the session's lock: the notify runs under it.
			go answer(r)
		}
	}
	for _, t := range targets {
		if err := t.s.SendNotify(conn.TextMessage, msg, report); err != nil {
			report(err)
		}
	}
}

// closeReason names why a session refused or dropped a message.
func closeReason(err error) string {
	var sc *conn.SessionClosedError
	if errors.As(err, &sc) && sc.Reason != 0 {
		return sc.Reason.String()
	}
	return err.Error()
}
