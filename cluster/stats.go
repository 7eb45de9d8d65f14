package cluster

import (
	"context"
	"slices"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// NodeStats is one node as this node sees it.
type NodeStats struct {
	Node     string `json:"node"`     // the node's name (Config.Node)
	State    string `json:"state"`    // this node: Joining..Left; others: Alive, Expired, Left
	Sessions int    `json:"sessions"` // its sessions in the directory
	// States counts those sessions by state (Alive, Suspect, Closing),
	// as their node last wrote it (a batch round trip behind).
	States      map[string]int `json:"states,omitempty"`
	LastRenewal time.Time      `json:"last_renewal,omitzero"` // its latest lease write seen here
	Incarnation uint64         `json:"inc"`                   // its lease incarnation, as Entry.Incarnation
}

// Stats is the cluster as this node sees it, shaped for JSON (GET /stats).
type Stats struct {
	Node  string      `json:"node"`  // this node
	State string      `json:"state"` // its lifecycle state
	Nodes []NodeStats `json:"nodes"` // every node known, this one included, by name
	// Total is the number of sessions in the directory: the sum over the
	// nodes counted alive.
	Total int `json:"total"`
	// Local is the number of sessions this node serves now.
	Local int `json:"local"`
	// LeaseLeader is the engine server leading the lease bucket's stream
	// (an embedded node's name), as seen at the last re-check: killing
	// that node stalls renewals for an election (Lease.Failover).
	LeaseLeader string `json:"lease_leader,omitempty"`
}

func (n *Node) setLeader(l string) {
	n.smu.Lock()
	n.leader = l
	n.smu.Unlock()
}

func (n *Node) setState(s fsm.State) {
	n.smu.Lock()
	n.state = s
	n.smu.Unlock()
}

func (n *Node) setPeer(name string, p peerInfo) {
	n.smu.Lock()
	n.view[name] = p
	n.smu.Unlock()
}

func (n *Node) peer(name string) peerInfo {
	n.smu.Lock()
	defer n.smu.Unlock()
	return n.view[name]
}

// alivePeers returns the other nodes counted alive.
func (n *Node) alivePeers() []string {
	n.smu.Lock()
	defer n.smu.Unlock()
	var out []string
	for name, p := range n.view {
		if p.state == fsm.Alive {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// State returns the node's lifecycle state.
func (n *Node) State() fsm.State {
	n.smu.Lock()
	defer n.smu.Unlock()
	return n.state
}

// Stats returns the cluster as this node sees it now.
func (n *Node) Stats() Stats {
	counts := n.dir.stateCounts()
	total := func(node string) int {
		k := 0
		for _, c := range counts[node] {
			k += c
		}
		return k
	}
	n.smu.Lock()
	st := Stats{Node: n.cfg.Node, State: n.state.String(), LeaseLeader: n.leader}
	st.Nodes = append(st.Nodes, NodeStats{Node: n.cfg.Node, State: n.state.String(),
		Sessions: total(n.cfg.Node), States: counts[n.cfg.Node], Incarnation: n.inc.Load()})
	for name, p := range n.view {
		st.Nodes = append(st.Nodes, NodeStats{Node: name, State: p.state.String(), Sessions: total(name),
			States: counts[name], LastRenewal: p.renewed, Incarnation: p.inc})
	}
	n.smu.Unlock()
	slices.SortFunc(st.Nodes, func(a, b NodeStats) int {
		if a.Node < b.Node {
			return -1
		}
		return 1
	})
	for _, ns := range st.Nodes {
		st.Total += ns.Sessions
	}
	st.Local = len(n.loc.all())
	return st
}

// List returns every live session in the cluster directory as this node's
// replica holds it: opens and closes recorded by their nodes (a batch
// round trip behind, see Config), without the sessions of nodes counted
// dead or gone. Sorted by node, then local id.
func (n *Node) List() []Entry { return n.dir.list() }

// Watch returns the directory's changes from now on: every session opened
// and closed anywhere, and the mass close of a node counted dead or gone
// (Reason node_dead). The channel is closed when ctx ends, when the node
// stops, or when the receiver falls 4096 changes behind (then List and
// Watch again).
func (n *Node) Watch(ctx context.Context) <-chan Change {
	ch, cancel := n.dir.watch()
	context.AfterFunc(ctx, cancel)
	return ch
}
