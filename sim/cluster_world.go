package sim

import (
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/trace"
)

// cluster is the world's cluster part: the nodes' lease machines and
// peer views, the engine (leases, directory entries, the watch, the bus)
// and the messages between them. A node is the server of the same number.
type cluster struct {
	c       Cluster    // defaults applied
	nodes   []cnode    // by server
	leases  []leaseRec // the engine's lease per node
	entries []entryRec // the engine's directory entry per link
	views   [][]viewEntry
	msgs    []cmsg // messages in flight, by slot
	free    []uint32
	// failovers and cut-offs may overlap: counters, not flags.
	failover int
}

// cnode is one node: its process, its machines and its connection to the
// engine.
type cnode struct {
	m       *fsm.Node
	peers   []*fsm.Peer // by node; nil until seen
	timer   timer
	links   []uint32 // every link a session was accepted on, in order
	lastInc uint64
	watchAt int64 // last watch arrival: the watch delivers in order
	cut     int   // open cut-off windows
	lost    int   // open watch-loss windows
	dirSeq  int64 // directory changes made
	dirAck  int64 // directory changes the engine acknowledged
	alive   bool
	flush   bool // a flush is queued
}

type leaseRec struct {
	inc       uint64
	expires   int64
	lastWrite int64
	present   bool
}

type entryRec struct {
	inc     uint64
	present bool
}

type viewEntry struct {
	inc     uint64
	present bool
}

type cmsgKind uint8

const (
	mWrite        cmsgKind = iota + 1 // node → engine: create or renew its lease
	mAck                              // engine → node: the write's answer (ok)
	mDirSync                          // node → engine: its directory entries
	mWatchLease                       // engine → node: lease put (ok) or end
	mWatchDir                         // engine → node: entry put (ok) or delete
	mRecheck                          // node → engine: read a peer's lease
	mRecheckReply                     // engine → node: present (ok), inc
	mXReq                             // sender → owner over the bus
	mXReply                           // owner → sender
	mDirAck                           // engine → node: directory written up to sentAt (a change count)
	mRemove                           // node → engine: delete its entries and its lease (a clean leave)
)

// cmsg is one message in flight. It lives in a slot of cluster.msgs from
// send to arrival, so sending allocates nothing once the slab has grown.
type cmsg struct {
	sentAt   int64
	inc      uint64
	link     uint32
	from, to uint16 // nodes; for watch and bus messages "from" is the node the news is about / the sender
	kind     cmsgKind
	ok       bool
	create   bool // mWrite: a create; mWatchLease: the lease was deleted on a leave
	result   int32
}

func newCluster(w *world) *cluster {
	cl := &cluster{c: w.sc.Cluster.withDefaults(), nodes: make([]cnode, w.sc.Servers),
		leases: make([]leaseRec, w.sc.Servers), views: make([][]viewEntry, w.sc.Servers)}
	w.cl = cl
	for i := range cl.nodes {
		cl.nodes[i].peers = make([]*fsm.Peer, len(cl.nodes))
		cl.nodes[i].timer = timer{armed: never, deadline: never}
	}
	for i := range cl.nodes {
		w.nodeStart(i)
	}
	w.q.push(event{at: int64(cl.c.ExpiryCheck), kind: evExpiry})
	if iv := int64(cl.c.SendInterval); iv > 0 {
		w.q.push(event{at: iv, kind: evXSend})
	}
	return cl
}

// serving reports whether node s may take sessions.
func (cl *cluster) serving(s int) bool {
	n := &cl.nodes[s]
	return n.alive && n.m.Serving()
}

func (w *world) clusterEvent(e event) {
	cl := w.cl
	switch e.kind {
	case evNodeTimer:
		w.nodeTimer(e)
	case evAtEngine:
		m := cl.take(e.id)
		w.atEngine(&m)
	case evAtNode:
		m := cl.take(e.id)
		w.atNode(&m)
	case evExpiry:
		w.expire()
		w.q.push(event{at: w.now + int64(cl.c.ExpiryCheck), kind: evExpiry})
	case evDirFlush:
		w.dirFlush(int(e.id))
	case evXSend:
		if !w.quiesced {
			w.xsend()
			w.q.push(event{at: w.now + int64(cl.c.SendInterval), kind: evXSend})
		}
	}
}

// put stores m in a free slot and returns its number.
func (cl *cluster) put(m cmsg) uint32 {
	if n := len(cl.free); n > 0 {
		i := cl.free[n-1]
		cl.free = cl.free[:n-1]
		cl.msgs[i] = m
		return i
	}
	cl.msgs = append(cl.msgs, m)
	return uint32(len(cl.msgs) - 1)
}

// take returns slot i's message and frees the slot.
func (cl *cluster) take(i uint32) cmsg {
	m := cl.msgs[i]
	cl.free = append(cl.free, i)
	return m
}

// reachable reports whether node i is up and reaches the engine.
func (cl *cluster) reachable(i int) bool { return cl.nodes[i].alive && cl.nodes[i].cut == 0 }

// toEngine sends m from node m.from to the engine; a cut-off node's
// message is lost.
func (w *world) toEngine(m cmsg) {
	if !w.cl.reachable(int(m.from)) {
		return
	}
	w.q.push(event{at: w.now + w.sample(w.cl.c.EngineLatency), kind: evAtEngine, id: w.cl.put(m)})
}

// toNode sends m from the engine to node m.to, after extra delay.
func (w *world) toNode(m cmsg, extra int64) {
	w.q.push(event{at: w.now + extra + w.sample(w.cl.c.EngineLatency), kind: evAtNode, id: w.cl.put(m)})
}

// watch sends a watch event to every other node, in order per node.
func (w *world) watch(m cmsg) {
	for o := range w.cl.nodes {
		n := &w.cl.nodes[o]
		if o == int(m.from) || !n.alive {
			continue
		}
		lat := w.cl.c.WatchLatency
		for _, i := range w.active {
			if f := &w.faults[i]; f.Kind == WatchDelay && f.hasServer(o) {
				lat = f.Latency
			}
		}
		at := max(w.now+w.sample(lat), n.watchAt)
		n.watchAt = at
		m.to = uint16(o)
		w.q.push(event{at: at, kind: evAtNode, id: w.cl.put(m)})
	}
}

// nodeStart starts node i's process: a new incarnation, a listing of the
// leases and entries in the engine (when it reaches it), and its first
// lease write.
func (w *world) nodeStart(i int) {
	cl := w.cl
	n := &cl.nodes[i]
	n.lastInc++
	m, err := fsm.NewNode(at(w.now), cl.c.Lease, n.lastInc)
	if err != nil {
		panic(err) // the scenario was validated
	}
	n.m, n.alive, n.dirSeq, n.dirAck, n.watchAt = m, true, 0, 0, w.now
	for j := range n.peers {
		n.peers[j] = nil
		if j != i {
			n.peers[j], _ = fsm.NewPeer(at(w.now), cl.c.Lease, 0) // configured, not yet seen
		}
	}
	w.servers[i].down = false
	v := cl.views[i]
	for k := range v {
		v[k] = viewEntry{} // a new process starts with an empty view
	}
	w.emit(trace.Record{Kind: trace.NodeStart, Server: uint32(i), Inc: n.lastInc})
	if cl.reachable(i) && cl.failover == 0 {
		w.relist(i)
	}
	w.armNode(i)
}

// relist is a node's listing of every lease and entry: at start, and when
// it reaches the engine again after a cut-off.
func (w *world) relist(i int) {
	cl := w.cl
	n := &cl.nodes[i]
	for j := range cl.nodes {
		if j == i {
			continue
		}
		ls := &cl.leases[j]
		p := n.peers[j]
		switch {
		case ls.present:
			out, _ := p.Seen(at(w.now), ls.inc)
			w.peerOut(i, j, out)
		case p.Incarnation() <= ls.inc:
			out, _ := p.Step(at(w.now), fsm.EvLeaseGone)
			w.peerOut(i, j, out)
		}
		w.reconcile(i, j)
	}
}

func (w *world) crashNode(i int) {
	n := &w.cl.nodes[i]
	n.alive, n.m = false, nil
	n.timer.cancel()
	w.servers[i].down = true
	w.emit(trace.Record{Kind: trace.NodeCrash, Server: uint32(i)})
	for _, li := range n.links {
		l := w.links.at(li)
		if !l.serverOpen && !l.registered {
			continue
		}
		// kill -9: the process and its sessions are gone; the kernel
		// closes the sockets.
		l.serverOpen, l.sess = false, nil
		l.timer.cancel()
		l.eventGen++
		if !l.reset {
			w.transmit(li, false, fFIN, w.now)
		}
		if l.registered {
			l.registered = false
			w.emit(trace.Record{Kind: trace.Unregister, ID: li})
		}
	}
	v := w.cl.views[i]
	for k := range v {
		v[k] = viewEntry{} // the view died with the process
	}
}

// leaveNode shuts node i down cleanly: its sessions close with 1001 (the
// listener refuses from now on), and its lease machine leaves, which
// deletes its directory entries and its lease at once. The process stays
// up to finish the close handshakes.
func (w *world) leaveNode(i int) {
	if !w.servers[i].down {
		w.stopServer(i)
	}
	n := &w.cl.nodes[i]
	out, err := n.m.Step(at(w.now), fsm.EvLeave)
	if err != nil {
		panic(err) // EvLeave is accepted in every state
	}
	w.nodeOut(i, out)
	w.armNode(i)
}

// armNode arms node i's timer for its machine's and its peer views'
// earliest deadline.
func (w *world) armNode(i int) {
	n := &w.cl.nodes[i]
	if !n.alive {
		n.timer.cancel()
		return
	}
	d, ok := n.m.Deadline()
	if !ok {
		d = farFuture
	}
	for _, p := range n.peers {
		if p == nil {
			continue
		}
		if pd, ok := p.Deadline(); ok && pd.Before(d) {
			d = pd
		}
	}
	if d.Equal(farFuture) {
		n.timer.cancel()
		return
	}
	w.arm(&n.timer, int64(d.Sub(epoch)), evNodeTimer, uint32(i))
}

var farFuture = epoch.Add(time.Duration(never))

func (w *world) nodeTimer(e event) {
	n := &w.cl.nodes[e.id]
	if !w.due(&n.timer, e) || !n.alive {
		return
	}
	i := int(e.id)
	now := at(w.now)
	if d, ok := n.m.Deadline(); ok && !now.Before(d) {
		out, err := n.m.Step(now, fsm.EvTick)
		if err != nil {
			panic(err) // a tick is accepted in every state
		}
		w.nodeOut(i, out)
	}
	for j, p := range n.peers {
		if p == nil || !n.alive {
			continue
		}
		if d, ok := p.Deadline(); ok && !now.Before(d) {
			out, _ := p.Step(now, fsm.EvTick)
			w.peerOut(i, j, out)
		}
	}
	w.armNode(i)
}

// nodeOut carries out what node i's lease machine answered.
func (w *world) nodeOut(i int, out fsm.Output) {
	n := &w.cl.nodes[i]
	if tr := out.Transition; tr != nil {
		w.emitTransition(uint32(i), tr)
		n.lastInc = tr.Incarnation // a rejoin counts up: the next process starts above it
		if tr.To == fsm.Member {
			w.markDirty(i) // a (re)joined node writes its whole directory
		}
	}
	for k := range out.Actions {
		a := &out.Actions[k]
		switch a.Kind {
		case fsm.ActCreateLease, fsm.ActRenewLease:
			w.toEngine(cmsg{kind: mWrite, from: uint16(i), inc: a.Incarnation, sentAt: w.now, create: a.Kind == fsm.ActCreateLease})
		case fsm.ActRemoveSessions:
			// One message carries both deletes; ActDeleteLease follows it.
			w.toEngine(cmsg{kind: mRemove, from: uint16(i), inc: a.Incarnation})
		case fsm.ActFence:
			if w.bugs[BugNoFence] {
				continue
			}
			for _, li := range n.links {
				if w.links.at(li).serverOpen {
					w.sessionStep(li, fsm.EvFence)
				}
			}
		}
	}
}

// peerOut carries out what node i's view of node j answered.
func (w *world) peerOut(i, j int, out fsm.Output) {
	if tr := out.Transition; tr != nil {
		r := trace.FromTransition(epoch, uint32(i), tr)
		r.Peer = uint32(j)
		w.emit(r)
	}
	for k := range out.Actions {
		a := &out.Actions[k]
		switch a.Kind {
		case fsm.ActRecheck:
			if !w.bugs[BugNoRecheck] {
				w.toEngine(cmsg{kind: mRecheck, from: uint16(i), to: uint16(j)})
			}
		case fsm.ActDeclareDead:
			w.emit(trace.Record{Kind: trace.Declared, ID: uint32(i), Peer: uint32(j), Inc: a.Incarnation})
			if !w.bugs[BugKeepDeadEntries] {
				for _, li := range w.cl.nodes[j].links {
					if v := w.view(i, li); v.present && v.inc <= a.Incarnation {
						w.setView(i, li, false, 0)
					}
				}
			}
		}
	}
}

// view returns node i's directory view of link li.
func (w *world) view(i int, li uint32) viewEntry {
	if v := w.cl.views[i]; int(li) < len(v) {
		return v[li]
	}
	return viewEntry{}
}

// setView changes node i's directory view of link li, recording a change.
func (w *world) setView(i int, li uint32, present bool, inc uint64) {
	v := w.cl.views[i]
	for int(li) >= len(v) {
		v = append(v, viewEntry{})
	}
	w.cl.views[i] = v
	if v[li].present == present {
		v[li].inc = inc
		return
	}
	v[li] = viewEntry{inc: inc, present: present}
	kind := trace.DirDel
	if present {
		kind = trace.DirAdd
	}
	w.emit(trace.Record{Kind: kind, ID: uint32(i), Peer: li})
}

// reconcile makes node i's view of node j's sessions the engine's valid
// entries: those of the incarnation whose lease i holds alive. It stands
// for a listing; it reads the engine at the moment the answer arrives.
func (w *world) reconcile(i, j int) {
	cl := w.cl
	p := cl.nodes[i].peers[j]
	ls := &cl.leases[j]
	valid := p != nil && p.State() == fsm.Alive && ls.present && ls.inc == p.Incarnation()
	if !valid && w.bugs[BugKeepDeadEntries] {
		return // the broken driver refreshes the entries of live peers only
	}
	for _, li := range cl.nodes[j].links {
		e := w.entry(li)
		want := valid && e.present && e.inc == ls.inc
		w.setView(i, li, want, e.inc)
	}
}

func (w *world) entry(li uint32) *entryRec {
	for int(li) >= len(w.cl.entries) {
		w.cl.entries = append(w.cl.entries, entryRec{})
	}
	return &w.cl.entries[li]
}

// dirChanged records that link li's session entered (open) or left its
// node's directory: the node's own view changes at once, the engine's
// after the next batch.
func (w *world) dirChanged(li uint32, open bool) {
	l := w.links.at(li)
	s := int(l.server)
	n := &w.cl.nodes[s]
	if !n.alive {
		return
	}
	w.setView(s, li, open, n.m.Incarnation())
	w.markDirty(s)
}

func (w *world) markDirty(i int) {
	n := &w.cl.nodes[i]
	n.dirSeq++
	if !n.flush {
		n.flush = true
		w.q.push(event{at: w.now + int64(w.cl.c.DirBatch), kind: evDirFlush, id: uint32(i)})
	}
}

// dirFlush writes node i's directory, and writes it again a heartbeat
// later until the engine has acknowledged every change: a write lost to a
// failover or a cut-off must not leave the directory behind for good.
func (w *world) dirFlush(i int) {
	n := &w.cl.nodes[i]
	n.flush = false
	if n.dirAck >= n.dirSeq || !n.alive || !n.m.Serving() {
		return // a node that joins again marks its directory changed
	}
	w.toEngine(cmsg{kind: mDirSync, from: uint16(i), inc: n.m.Incarnation(), sentAt: n.dirSeq})
	n.flush = true
	w.q.push(event{at: w.now + int64(w.cl.c.Lease.Heartbeat), kind: evDirFlush, id: uint32(i)})
}

// atEngine handles a message reaching the engine.
func (w *world) atEngine(m *cmsg) {
	cl := w.cl
	if !cl.reachable(int(m.from)) {
		return // cut off while it was on its way
	}
	if m.kind == mXReq {
		w.xDeliver(m)
		return
	}
	if cl.failover > 0 {
		return // no leader: the request fails; the node finds out by its timeout
	}
	switch m.kind {
	case mWrite:
		ls := &cl.leases[m.from]
		ok := ls.present && ls.inc == m.inc // a renewal updates the live incarnation only
		if m.create {
			ok = !ls.present || ls.inc <= m.inc // a create replaces the node's own older incarnation
		}
		if ok {
			if ls.present && ls.inc < m.inc {
				w.emit(trace.Record{Kind: trace.LeaseEnd, Server: uint32(m.from), Inc: ls.inc})
			}
			fresh := !ls.present || ls.inc != m.inc
			ttl := cl.c.Lease.TTL
			if w.bugs[BugShortLeaseTTL] {
				ttl = cl.c.Lease.Heartbeat
			}
			*ls = leaseRec{inc: m.inc, present: true, lastWrite: w.now, expires: w.now + int64(ttl)}
			w.emit(trace.Record{Kind: trace.LeaseWrite, Server: uint32(m.from), Inc: m.inc})
			if fresh {
				w.watch(cmsg{kind: mWatchLease, from: m.from, inc: m.inc, ok: true})
			}
		}
		w.toNode(cmsg{kind: mAck, to: m.from, sentAt: m.sentAt, ok: ok}, 0)
	case mDirSync:
		for _, li := range cl.nodes[m.from].links {
			l := w.links.at(li)
			want := l.registered && l.serverOpen && w.view(int(m.from), li).present
			e := w.entry(li)
			if want == e.present && (!want || e.inc == m.inc) {
				continue
			}
			e.present, e.inc = want, m.inc
			w.watch(cmsg{kind: mWatchDir, from: m.from, link: li, inc: m.inc, ok: want})
		}
		w.toNode(cmsg{kind: mDirAck, to: m.from, sentAt: m.sentAt, inc: m.inc}, 0)
	case mRemove:
		for _, li := range cl.nodes[m.from].links {
			if e := w.entry(li); e.present && e.inc <= m.inc {
				e.present = false
				w.watch(cmsg{kind: mWatchDir, from: m.from, link: li, inc: e.inc})
			}
		}
		if ls := &cl.leases[m.from]; ls.present && ls.inc == m.inc {
			ls.present = false
			w.emit(trace.Record{Kind: trace.LeaseEnd, Server: uint32(m.from), Inc: ls.inc})
			w.watch(cmsg{kind: mWatchLease, from: m.from, inc: ls.inc, create: true})
		}
	case mRecheck:
		ls := &cl.leases[m.to]
		w.toNode(cmsg{kind: mRecheckReply, to: m.from, from: m.to, inc: ls.inc, ok: ls.present}, 0)
	}
}

// atNode handles a message reaching node m.to.
func (w *world) atNode(m *cmsg) {
	cl := w.cl
	i := int(m.to)
	n := &cl.nodes[i]
	if m.kind == mXReq {
		w.xAtOwner(m)
		return
	}
	if m.kind == mXReply {
		w.xAnswer(m)
		return
	}
	if !cl.reachable(i) || ((m.kind == mWatchLease || m.kind == mWatchDir) && n.lost > 0) {
		return
	}
	now := at(w.now)
	j := int(m.from)
	switch m.kind {
	case mDirAck:
		if m.inc == n.m.Incarnation() {
			n.dirAck = max(n.dirAck, m.sentAt)
		}
	case mAck:
		var out fsm.Output
		var err error
		if m.ok {
			out, err = n.m.Proved(now, at(m.sentAt))
		} else {
			out, err = n.m.Step(now, fsm.EvLeaseFailed)
		}
		if err != nil {
			panic(err)
		}
		w.nodeOut(i, out)
	case mWatchLease, mRecheckReply:
		p := n.peers[j]
		switch {
		case m.ok:
			out, _ := p.Seen(now, m.inc)
			w.peerOut(i, j, out)
		case p.Incarnation() <= m.inc:
			ev := fsm.EvLeaseGone
			if m.create {
				ev = fsm.EvPeerLeft
			}
			out, _ := p.Step(now, ev)
			w.peerOut(i, j, out)
		}
		if m.kind == mRecheckReply {
			w.reconcile(i, j)
		}
	case mWatchDir:
		owner := int(w.links.at(m.link).server)
		if p := n.peers[owner]; m.ok && p.State() == fsm.Alive && p.Incarnation() == m.inc {
			w.setView(i, m.link, true, m.inc)
		} else if !m.ok && w.view(i, m.link).inc <= m.inc {
			w.setView(i, m.link, false, 0)
		}
	}
	w.armNode(i)
}

// expire is the engine's TTL check.
func (w *world) expire() {
	cl := w.cl
	if cl.failover > 0 {
		return
	}
	for j := range cl.leases {
		ls := &cl.leases[j]
		if ls.present && ls.expires <= w.now {
			ls.present = false
			w.emit(trace.Record{Kind: trace.LeaseEnd, Server: uint32(j), Inc: ls.inc})
			w.watch(cmsg{kind: mWatchLease, from: uint16(j), inc: ls.inc})
		}
	}
}

// xsend: a random live node sends to a random session of its directory
// view, through the bus.
func (w *world) xsend() {
	cl := w.cl
	a := w.rng.IntN(len(cl.nodes))
	if !cl.nodes[a].alive {
		return
	}
	v := cl.views[a]
	count := 0
	for k := range v {
		if v[k].present {
			count++
		}
	}
	if count == 0 {
		return
	}
	pick := w.rng.IntN(count)
	var li uint32
	for k := range v {
		if v[k].present {
			if pick == 0 {
				li = uint32(k)
				break
			}
			pick--
		}
	}
	owner := w.links.at(li).server
	w.emit(trace.Record{Kind: trace.XSend, ID: li, Server: uint32(a), Peer: uint32(owner)})
	if !cl.reachable(a) {
		w.emit(trace.Record{Kind: trace.XAnswer, ID: li, Server: uint32(a), Attempt: trace.Unreachable})
		return
	}
	m := cmsg{kind: mXReq, from: uint16(a), to: owner, link: li, sentAt: w.now}
	if w.bugs[BugStaleDirectory] {
		w.emit(trace.Record{Kind: trace.XAnswer, ID: li, Server: uint32(a), Attempt: trace.Delivered})
		m.result = -1 // fire and forget: nobody waits for the owner's answer
	}
	w.toEngine(m)
}

// xDeliver routes a send at the engine: to the owner if it is there, else
// "no responders" at once.
func (w *world) xDeliver(m *cmsg) {
	if w.cl.reachable(int(m.to)) {
		w.toNode(*m, 0)
		return
	}
	if m.result >= 0 {
		w.toNode(cmsg{kind: mXReply, to: m.from, link: m.link, sentAt: m.sentAt, result: trace.NoSuchSession}, 0)
	}
}

// xAtOwner writes the message on the session if it is live and answers.
func (w *world) xAtOwner(m *cmsg) {
	res := trace.NoSuchSession
	if w.cl.reachable(int(m.to)) {
		l := w.links.at(m.link)
		if l.serverOpen && l.sess != nil && l.sess.Open() {
			_, _ = l.sess.Step(at(w.now), fsm.EvSent)
			w.emit(trace.Record{Kind: trace.Send, ID: m.link})
			w.transmit(m.link, false, fMsg, w.now)
			res = trace.Delivered
		}
	} else {
		return // cut off while it was on its way: the sender's request times out
	}
	if m.result >= 0 {
		w.toNode(cmsg{kind: mXReply, from: m.to, to: m.from, link: m.link, sentAt: m.sentAt, result: res}, w.sample(w.cl.c.EngineLatency))
	}
}

// xAnswer is the answer reaching the sender.
func (w *world) xAnswer(m *cmsg) {
	a := int(m.to)
	if !w.cl.nodes[a].alive {
		return
	}
	res := m.result
	if !w.cl.reachable(a) {
		res = trace.Unreachable // the reply was lost: the request timed out
	}
	w.emit(trace.Record{Kind: trace.XAnswer, ID: m.link, Server: uint32(a), Attempt: res, Delay: durationOf(w.now - m.sentAt)})
}

// failOver moves a failed client to the next node of the cluster, as a
// client given every node's URL does.
func (w *world) failOver(c *client) {
	if w.cl != nil {
		c.server = uint16((int(c.server) + 1) % len(w.cl.nodes))
	}
}

func (w *world) clusterFaultStart(f *Fault) { w.clusterFault(f, true) }
func (w *world) clusterFaultEnd(f *Fault)   { w.clusterFault(f, false) }

// clusterFault opens (start) or closes cluster fault f's window.
func (w *world) clusterFault(f *Fault, start bool) {
	if w.cl == nil || !isClusterFault(f.Kind) {
		return
	}
	cl := w.cl
	step := 1
	if !start {
		step = -1
	}
	if f.Kind == EngineFailover {
		cl.failover += step
		kind := trace.FailoverStart
		if !start {
			kind = trace.FailoverEnd
		}
		w.emit(trace.Record{Kind: kind})
		return
	}
	for i := range cl.nodes {
		if !f.hasServer(i) {
			continue
		}
		n := &cl.nodes[i]
		switch f.Kind {
		case WatchLoss:
			n.lost += step
		case NodeCrash, NodeLeave:
			if start && n.alive && f.Kind == NodeCrash {
				w.crashNode(i)
			}
			if start && n.alive && f.Kind == NodeLeave && n.m.State() != fsm.Left {
				w.leaveNode(i)
			}
			if !start && (!n.alive || n.m.State() == fsm.Left) && f.End != 0 && f.End < w.sc.Duration {
				w.nodeStart(i)
			}
		case NodeCutOff:
			n.cut += step
			if start && n.cut == 1 {
				w.emit(trace.Record{Kind: trace.CutOff, Server: uint32(i)})
			}
			if !start && n.cut == 0 {
				w.emit(trace.Record{Kind: trace.Reconnected, Server: uint32(i)})
				if n.alive {
					// Back on the engine: list everything again, write the
					// whole directory, and rejoin at once if fenced.
					if cl.failover == 0 {
						w.relist(i)
					}
					w.markDirty(i)
					out, _ := n.m.Step(at(w.now), fsm.EvEngineUp)
					w.nodeOut(i, out)
					w.armNode(i)
				}
			}
		}
	}
}
