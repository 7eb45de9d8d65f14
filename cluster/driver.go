package cluster

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/nats-io/nats.go/jetstream"
)

// driver is Run's state: the node's own fsm.Node, one fsm.Peer per other
// node, the lease revision to renew from. Only the loop goroutine uses it.
type driver struct {
	n       *Node
	e       *engine
	fn      *fsm.Node
	peers   map[string]*fsm.Peer
	wg      *sync.WaitGroup
	quit    <-chan struct{} // closed as Run returns: retry loops give up
	started time.Time

	rev        uint64 // revision of our latest acknowledged lease write
	checking   bool   // a re-check listing is in flight
	recheckDue bool   // a peer asked for a re-check meanwhile
}

// deadline returns the earliest deadline of the node and its peers.
func (d *driver) deadline() (time.Time, bool) {
	at, ok := d.fn.Deadline()
	for _, p := range d.peers {
		if pa, pok := p.Deadline(); pok && (!ok || pa.Before(at)) {
			at, ok = pa, true
		}
	}
	return at, ok
}

// tick hands EvTick to every machine whose deadline passed.
func (d *driver) tick(now time.Time) {
	if at, ok := d.fn.Deadline(); ok && !now.Before(at) {
		d.step(now, fsm.EvTick, nil)
	}
	for name, p := range d.peers {
		if at, ok := p.Deadline(); ok && !now.Before(at) {
			d.peerStep(now, name, p, fsm.EvTick)
		}
	}
}

// step hands ev to the node machine and carries out its answer.
func (d *driver) step(now time.Time, ev fsm.Event, cause error) {
	out, err := d.fn.Step(now, ev)
	if err != nil {
		return // an event the state does not take changes nothing
	}
	d.apply(out, cause)
}

// apply logs the node's transition and carries out its actions in fsm's
// order: a fence before anything else.
func (d *driver) apply(out fsm.Output, cause error) {
	n := d.n
	if tr := out.Transition; tr != nil {
		logTransition(n.log, n.cfg.Node, tr, cause)
		n.setState(d.fn.State())
	}
	n.serving.Store(d.fn.Serving())
	n.inc.Store(d.fn.Incarnation())
	if p, ok := d.fn.Proof(); ok {
		n.fenceAt.Store(n.lease.FenceAt(p).UnixNano())
	}
	for _, a := range out.Actions {
		switch a.Kind {
		case fsm.ActFence:
			// Every session this node serves closes now (a close frame,
			// 1001): the others will count them dead from the lease's
			// expiry on. Admit already refuses new ones.
			closed := 0
			for _, srv := range n.servers() {
				closed += srv.Fence()
			}
			n.log.Warn("node fenced: closed its sessions", "node", n.cfg.Node, "sessions", closed,
				"incarnation", a.Incarnation)
		case fsm.ActCreateLease, fsm.ActRenewLease:
			d.writeLease(a)
		case fsm.ActRemoveSessions, fsm.ActDeleteLease:
			// Carried out by leaveNow, synchronously, bounded by its ctx.
		}
	}
}

// writeLease sends a lease create or renewal on a goroutine of its own,
// bounded by a heartbeat (an answer later than that has failed anyway);
// the answer comes back as a leaseWrite event stamped with the send time.
func (d *driver) writeLease(a fsm.Action) {
	n, e := d.n, d.e
	val := n.encodeLease(a.Incarnation, d.started)
	rev := d.rev
	create := a.Kind == fsm.ActCreateLease
	ttl := n.lease.TTL
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), n.lease.Heartbeat)
		defer cancel()
		var (
			r   uint64
			err error
		)
		if create {
			r, err = e.leases.Create(ctx, n.cfg.Node, val, jetstream.KeyTTL(ttl))
			if err != nil && missingBucket(err) {
				// The engine lost the buckets (an external NATS restarted
				// on memory storage): make them again and retry once.
				if berr := e.ensureBuckets(ctx, n.cfg); berr == nil {
					r, err = e.leases.Create(ctx, n.cfg.Node, val, jetstream.KeyTTL(ttl))
				}
			}
		} else {
			// A renewal that resets the per-key TTL: Put and Update drop
			// it, so the write goes to the bucket's subject with the TTL
			// and the revision it must follow.
			var ack *jetstream.PubAck
			ack, err = e.js.Publish(ctx, "$KV."+e.leases.Bucket()+"."+n.cfg.Node, val,
				jetstream.WithMsgTTL(ttl), jetstream.WithExpectLastSequencePerSubject(rev))
			if ack != nil {
				r = ack.Sequence
			}
		}
		if err != nil {
			err = &EngineError{Op: a.Kind.String(), Err: err}
		}
		n.post(event{kind: leaseWrite, sentAt: a.At, inc: a.Incarnation, rev: r, err: err})
	}()
}

// handle takes one event from the node's goroutines.
func (d *driver) handle(now time.Time, ev event) {
	switch ev.kind {
	case leaseWrite:
		if ev.inc != d.fn.Incarnation() {
			return // an answer for an incarnation given up
		}
		if ev.err != nil {
			d.step(now, fsm.EvLeaseFailed, ev.err)
			return
		}
		d.rev = ev.rev
		out, err := d.fn.Proved(now, ev.sentAt)
		if err == nil {
			d.apply(out, nil)
		}
	case engineUp:
		d.step(now, fsm.EvEngineUp, nil)
	case leaseWatch:
		d.leaseEntry(now, ev.entry)
	case recheckDone:
		d.checking = false
		d.recheckDone(now, ev)
		if d.recheckDue {
			d.recheckDue = false
			d.recheck()
		}
	case dirWatch:
		d.n.dir.apply(ev.entry, d.deadInc)
	}
}

// deadInc returns the newest incarnation of node counted dead (0: none).
func (d *driver) deadInc(node string) uint64 {
	p, ok := d.peers[node]
	if !ok {
		return 0
	}
	if p.State() == fsm.Alive {
		return p.Incarnation() - 1
	}
	return p.Incarnation()
}

// leaseEntry takes one change of the lease bucket from the watch.
func (d *driver) leaseEntry(now time.Time, en jetstream.KeyValueEntry) {
	name := en.Key()
	if name == d.n.cfg.Node {
		return
	}
	switch en.Operation() {
	case jetstream.KeyValuePut:
		v, err := decodeLease(en.Value())
		if err != nil {
			d.n.log.Warn("unreadable lease", "node", d.n.cfg.Node, "peer", name, "error", err)
			return
		}
		d.seen(now, name, v.Incarnation, en.Created())
	case jetstream.KeyValueDelete:
		d.peerEvent(now, name, fsm.EvPeerLeft)
	case jetstream.KeyValuePurge: // the expiry marker (or a purge)
		d.peerEvent(now, name, fsm.EvLeaseGone)
	}
}

// seen reports peer name's lease of incarnation inc, creating its view.
func (d *driver) seen(now time.Time, name string, inc uint64, renewed time.Time) {
	p, ok := d.peers[name]
	if !ok {
		np, err := fsm.NewPeer(now, d.n.lease, inc)
		if err != nil {
			return
		}
		d.peers[name] = np
		d.n.setPeer(name, peerInfo{state: fsm.Alive, inc: inc, renewed: renewed})
		d.n.log.Info("peer seen", "node", d.n.cfg.Node, "peer", name, "incarnation", inc)
		return
	}
	out, err := p.Seen(now, inc)
	if err == nil {
		d.peerApply(name, p, out, nil)
	}
	if p.State() == fsm.Alive && inc == p.Incarnation() {
		d.n.setPeer(name, peerInfo{state: fsm.Alive, inc: inc, renewed: renewed})
	}
}

func (d *driver) peerEvent(now time.Time, name string, ev fsm.Event) {
	if p, ok := d.peers[name]; ok {
		d.peerStep(now, name, p, ev)
	}
}

func (d *driver) peerStep(now time.Time, name string, p *fsm.Peer, ev fsm.Event) {
	out, err := p.Step(now, ev)
	if err == nil {
		d.peerApply(name, p, out, nil)
	}
}

// peerApply logs a peer transition and carries out its actions: a
// re-check listing, or counting an incarnation's sessions dead.
func (d *driver) peerApply(name string, p *fsm.Peer, out fsm.Output, cause error) {
	n := d.n
	if tr := out.Transition; tr != nil {
		logTransition(n.log, n.cfg.Node+"→"+name, tr, cause)
		info := n.peer(name)
		info.state, info.inc = p.State(), p.Incarnation()
		n.setPeer(name, info)
	}
	for _, a := range out.Actions {
		switch a.Kind {
		case fsm.ActRecheck:
			d.recheck()
		case fsm.ActDeclareDead:
			dropped := n.dir.declareDead(name, a.Incarnation, a.Reason)
			n.log.Info("peer's sessions counted dead", "node", n.cfg.Node, "peer", name,
				"incarnation", a.Incarnation, "sessions", dropped)
			d.purge(name, a.Incarnation)
		}
	}
}

// recheck reads the lease of every peer due a re-check, on a goroutine of
// its own (one at a time): an expiry the watch missed shows here within a
// heartbeat (leaseReader: a silent replica costs it a quarter of the Slack).
func (d *driver) recheck() {
	if d.checking {
		d.recheckDue = true
		return
	}
	d.checking = true
	n, e := d.n, d.e
	// Every peer, in every state (fsm.Peer.Deadline): an Alive one's
	// expiry the watch missed, an Expired or Left one's new incarnation.
	names := make([]string, 0, len(d.peers))
	for name := range d.peers {
		names = append(names, name)
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), n.lease.Heartbeat)
		defer cancel()
		rd := newLeaseReader(e, n.lease)
		found, err := rd.readLeases(ctx, names)
		if rd.timeouts > 0 {
			n.log.Warn("lease re-check: a replica did not answer a direct get, read through the stream leader",
				"node", n.cfg.Node, "timeouts", rd.timeouts, "after", rd.try, "error", err)
		}
		leader := ""
		if st, serr := e.js.Stream(ctx, "KV_"+e.leases.Bucket()); serr == nil && st.CachedInfo().Cluster != nil {
			leader = st.CachedInfo().Cluster.Leader
		}
		n.post(event{kind: recheckDone, listing: found, err: err, leader: leader})
	}()
}

// recheckDone compares the leases read with the peer views: an Alive peer
// whose lease is missing is gone (the watch missed its expiry marker); a
// lease of a newer incarnation is seen, reviving an Expired or Left peer
// whose new lease the watch missed.
func (d *driver) recheckDone(now time.Time, ev event) {
	if ev.leader != "" {
		d.n.setLeader(ev.leader)
	}
	if ev.err != nil {
		d.n.log.Warn("lease re-check failed", "node", d.n.cfg.Node, "error", ev.err)
		return
	}
	for name, p := range d.peers {
		if ls, ok := ev.listing[name]; ok {
			d.seen(now, name, ls.inc, ls.renewed)
		} else if p.State() == fsm.Alive {
			d.peerStep(now, name, p, fsm.EvLeaseGone)
		}
	}
}

// purge removes a dead incarnation's entries from the directory bucket.
// Every node that counts it dead does this; it is idempotent.
func (d *driver) purge(name string, inc uint64) {
	n, e := d.n, d.e
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		// Retried for a few TTLs: the purge needs the stream's leader,
		// which the dead node may have been. Until it succeeds the
		// entries stay in the bucket, but no replica shows them: each
		// drops a dead incarnation's entries itself.
		for try := 0; try < 10; try++ {
			ctx, cancel := context.WithTimeout(context.Background(), n.lease.Heartbeat)
			err := purgeNode(ctx, e, name, inc)
			cancel()
			if err == nil {
				return
			}
			n.log.Warn("directory purge failed", "node", n.cfg.Node, "peer", name, "error", err, "try", try+1)
			select {
			case <-d.quit:
				return
			case <-time.After(n.lease.Heartbeat):
			}
		}
	}()
}

// purgeNode purges the directory entries of node's incarnation inc, or of
// every incarnation when inc is 0.
func purgeNode(ctx context.Context, e *engine, node string, inc uint64) error {
	st, err := e.js.Stream(ctx, "KV_"+e.dirName)
	if err != nil {
		return err
	}
	subj := "$KV." + e.dirName + "." + node + "."
	if inc == 0 {
		subj += ">"
	} else {
		subj += incString(inc) + ".*"
	}
	return st.Purge(ctx, jetstream.WithPurgeSubject(subj))
}

// leaveNow carries out a clean leave: the fsm's Left actions, each bounded
// by ctx.
func (d *driver) leaveNow(ctx context.Context) error {
	n, e := d.n, d.e
	out, err := d.fn.Step(time.Now(), fsm.EvLeave)
	if err != nil {
		return err
	}
	if tr := out.Transition; tr != nil {
		logTransition(n.log, n.cfg.Node, tr, nil)
		n.setState(d.fn.State())
	}
	n.serving.Store(false)
	n.write.stop() // nothing more is written for this node
	var errs []error
	for _, a := range out.Actions {
		switch a.Kind {
		case fsm.ActRemoveSessions:
			if err := purgeNode(ctx, e, n.cfg.Node, 0); err != nil {
				errs = append(errs, &EngineError{Op: "remove sessions", Err: err})
			}
		case fsm.ActDeleteLease:
			if err := e.leases.Delete(ctx, n.cfg.Node); err != nil {
				errs = append(errs, &EngineError{Op: "delete lease", Err: err})
			}
		}
	}
	return errors.Join(errs...)
}
