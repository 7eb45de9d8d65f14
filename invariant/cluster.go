package invariant

import (
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/trace"
)

// cluster judges the cluster's promises, (h) to (k), from the cluster
// records (package trace's NodeStart to XAnswer) and the session facts the
// other checkers keep. It stays off, and costs nothing, until the first
// cluster record.
//
//	(h) NodeDeclaredDead  every node that counted an incarnation of a node alive, and was up and
//	                      reaching the engine, counts it dead once its lease ended, by
//	                      Lease.LatestDead of the lease's last write (with Failover when the
//	                      engine failed over meanwhile); a node that never saw the incarnation
//	                      holds none of its sessions
//	(i) FencedFirst       when a node counts a peer's incarnation dead, that incarnation
//	                      serves nothing: it is fenced, left or crashed, with no open session
//	(j) DeliveredLive     a send answered "delivered" was written on its session between
//	                      the send and the answer (so never to a session reaped before it)
//	(k) DirectoryMatches  once the world settles, every live node's directory view is the
//	                      set of open sessions of the live nodes
type cluster struct {
	on        bool
	nodes     []nodeFacts
	failovers []span
	lastSend  []time.Duration // by session: At+1 of its latest Send, 0 if none
	sessInc   []uint64        // by session: its node's incarnation when it registered
	views     [][]bool        // by node, by session: its directory view
}

type span struct{ from, to time.Duration }

const forever = time.Duration(1<<63 - 1)

// nodeFacts is what the checkers know of one node: as a process and lease
// holder, and as an observer of the others.
type nodeFacts struct {
	alive    bool
	started  time.Duration
	inc      uint64
	state    fsm.State
	writes   map[uint64]time.Duration // the engine's last write per incarnation
	ends     []leaseEnd               // incarnations whose lease ended
	declared []uint64                 // by node: the newest incarnation this one counted dead
	knew     map[[2]uint64]bool       // {node, incarnation} this one counted alive
	down     []span                   // crashed or cut off
}

type leaseEnd struct {
	inc uint64
	at  time.Duration
}

func (c *cluster) node(id uint32) *nodeFacts {
	for int(id) >= len(c.nodes) {
		c.nodes = append(c.nodes, nodeFacts{writes: map[uint64]time.Duration{}, knew: map[[2]uint64]bool{}})
		c.views = append(c.views, nil)
	}
	return &c.nodes[id]
}

func (n *nodeFacts) openDown(at time.Duration) {
	if len(n.down) == 0 || n.down[len(n.down)-1].to != forever {
		n.down = append(n.down, span{at, forever})
	}
}

func (n *nodeFacts) closeDown(at time.Duration) {
	if k := len(n.down); k > 0 && n.down[k-1].to == forever {
		n.down[k-1].to = at
	}
}

// excused reports whether observer n was crashed or cut off at some time
// in [from, to]: it could not learn in time.
func (n *nodeFacts) excused(from, to time.Duration) bool {
	for _, d := range n.down {
		if d.from <= to && d.to >= from {
			return true
		}
	}
	return false
}

func (c *cluster) setView(node, session uint32, v bool) {
	c.node(node)
	vs := c.views[node]
	for int(session) >= len(vs) {
		vs = append(vs, false)
	}
	vs[session] = v
	c.views[node] = vs
}

func (c *cluster) registered(r *trace.Record) {
	if !c.on {
		return
	}
	for int(r.ID) >= len(c.sessInc) {
		c.sessInc = append(c.sessInc, 0)
	}
	c.sessInc[r.ID] = c.node(r.Server).inc
}

func (c *cluster) sent(r *trace.Record) {
	if !c.on {
		return
	}
	for int(r.ID) >= len(c.lastSend) {
		c.lastSend = append(c.lastSend, 0)
	}
	c.lastSend[r.ID] = r.At + 1
}

// observe takes the cluster records.
func (c *cluster) observe(s *Suite, r *trace.Record, idx int) {
	switch r.Kind {
	case trace.NodeStart:
		c.on = true
		n := c.node(r.Server)
		n.closeDown(r.At)
		n.alive, n.started, n.inc, n.state = true, r.At, r.Inc, fsm.Joining
		n.declared = n.declared[:0]
		clear(n.knew)
		c.views[r.Server] = c.views[r.Server][:0]
	case trace.NodeCrash:
		n := c.node(r.Server)
		n.alive = false
		n.openDown(r.At)
		c.views[r.Server] = c.views[r.Server][:0]
		for id := range s.sessions {
			if f := &s.sessions[id]; f.known && f.server == r.Server && !f.reaped {
				f.reaped, f.state = true, fsm.Reaped // gone with the process
			}
		}
	case trace.CutOff:
		c.node(r.Server).openDown(r.At)
	case trace.Reconnected:
		c.node(r.Server).closeDown(r.At)
	case trace.FailoverStart:
		c.failovers = append(c.failovers, span{r.At, forever})
	case trace.FailoverEnd:
		for i := len(c.failovers) - 1; i >= 0; i-- {
			if c.failovers[i].to == forever {
				c.failovers[i].to = r.At
				break
			}
		}
	case trace.LeaseWrite:
		c.node(r.Server).writes[r.Inc] = r.At
	case trace.LeaseEnd:
		n := c.node(r.Server)
		n.ends = append(n.ends, leaseEnd{r.Inc, r.At})
	case trace.Transition:
		if r.Machine == fsm.MachineNode {
			n := c.node(r.ID)
			n.state, n.inc = r.To, r.Inc
		} else if r.Machine == fsm.MachinePeer && r.To == fsm.Alive {
			c.node(r.ID).knew[[2]uint64{uint64(r.Peer), r.Inc}] = true
		}
	case trace.Declared:
		c.declared(s, r, idx)
	case trace.DirAdd, trace.DirDel:
		c.setView(r.ID, r.Peer, r.Kind == trace.DirAdd)
	case trace.XAnswer:
		c.answered(s, r, idx)
	}
}

// deadline is (h)'s bound for a lease last written at w.
func (c *cluster) deadline(s *Suite, w time.Duration) time.Duration {
	l := s.o.lease
	plain := l.LatestDead(epoch.Add(w), false).Sub(epoch)
	fo := false
	for _, f := range c.failovers {
		if f.from <= plain && f.to >= w {
			fo = true
		}
	}
	return l.LatestDead(epoch.Add(w), fo).Sub(epoch) + s.o.slack
}

// declared checks (i), and (h) for a late declaration.
func (c *cluster) declared(s *Suite, r *trace.Record, idx int) {
	obs, dead := c.node(r.ID), c.node(r.Peer)
	if int(r.Peer) >= len(obs.declared) {
		obs.declared = append(obs.declared, make([]uint64, int(r.Peer)+1-len(obs.declared))...)
	}
	obs.declared[r.Peer] = max(obs.declared[r.Peer], r.Inc)

	s.check(FencedFirst)
	if dead.alive {
		// Sessions opened under the incarnation counted dead, or an older
		// one, must all be closed; and that incarnation must not serve.
		open := 0
		for id := range s.sessions {
			f := &s.sessions[id]
			if f.known && f.server == r.Peer && f.registered && !f.reaped && (f.state == fsm.Alive || f.state == fsm.Suspect) &&
				id < len(c.sessInc) && c.sessInc[id] <= r.Inc {
				open++
			}
		}
		if (dead.inc == r.Inc && (dead.state == fsm.Member || dead.state == fsm.Degraded)) || open > 0 {
			s.fail(FencedFirst, r.At, fsm.MachineNode, r.Peer, idx,
				"node %d counted incarnation %d dead while it was %s and served %d open sessions (it must fence first)",
				r.ID, r.Inc, dead.state, open)
		}
	}

	w, ok := dead.writes[r.Inc]
	if !ok {
		return
	}
	s.check(NodeDeclaredDead)
	if b := c.deadline(s, w); r.At > b && !obs.excused(w, b) {
		s.fail(NodeDeclaredDead, r.At, fsm.MachineNode, r.ID, idx,
			"counted node %d's incarnation %d dead at %s; its lease was last written at %s, bound %s", r.Peer, r.Inc, r.At, w, b)
	}
}

// answered checks (j).
func (c *cluster) answered(s *Suite, r *trace.Record, idx int) {
	if r.Attempt != trace.Delivered {
		return
	}
	s.check(DeliveredLive)
	from := r.At - r.Delay
	var last time.Duration
	if int(r.ID) < len(c.lastSend) {
		last = c.lastSend[r.ID]
	}
	if last == 0 || last-1 < from {
		state := "unknown"
		if int(r.ID) < len(s.sessions) && s.sessions[r.ID].known {
			state = s.sessions[r.ID].state.String()
		}
		s.fail(DeliveredLive, r.At, fsm.MachineSession, r.ID, idx,
			"node %d's send of %s was answered delivered, but nothing was written on the session (now %s) since", r.Server, from, state)
	}
}

// finish checks (h) for declarations never made by the end of the run.
func (c *cluster) finish(s *Suite, end time.Duration) {
	if !c.on {
		return
	}
	for d := range c.nodes {
		dead := &c.nodes[d]
		for _, e := range dead.ends {
			w, ok := dead.writes[e.inc]
			if !ok {
				continue
			}
			b := c.deadline(s, w)
			if end <= b {
				continue
			}
			for o := range c.nodes {
				obs := &c.nodes[o]
				if o == d || !obs.alive || !obs.knew[[2]uint64{uint64(d), e.inc}] || obs.excused(w, b) {
					continue
				}
				s.check(NodeDeclaredDead)
				if d >= len(obs.declared) || obs.declared[d] < e.inc {
					s.fail(NodeDeclaredDead, end, fsm.MachineNode, uint32(o), s.n,
						"never counted node %d's incarnation %d dead; its lease ended at %s, last written at %s, bound %s", d, e.inc, e.at, w, b)
				}
			}
		}
	}
}

// settled checks (k).
func (c *cluster) settled(s *Suite, r *trace.Record, idx int) {
	if !c.on {
		return
	}
	for o := range c.nodes {
		obs := &c.nodes[o]
		if !obs.alive || (len(obs.down) > 0 && obs.down[len(obs.down)-1].to == forever) {
			continue
		}
		s.check(DirectoryMatches)
		view := c.views[o]
		n := max(len(view), len(s.sessions))
		for id := 0; id < n; id++ {
			want := false
			if id < len(s.sessions) {
				f := &s.sessions[id]
				want = f.known && f.registered && f.upgradedOK && int(f.server) < len(c.nodes) && c.nodes[f.server].alive
			}
			got := id < len(view) && view[id]
			if got != want {
				what := "lists a session that is not live"
				if want {
					what = "misses a live session"
				}
				s.fail(DirectoryMatches, r.At, fsm.MachineSession, uint32(id), idx,
					"settled, and node %d's directory %s (session %d)", o, what, id)
				break
			}
		}
	}
}
