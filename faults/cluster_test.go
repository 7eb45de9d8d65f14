package faults

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/report"
)

// clusterSection groups the cluster rows of docs/reliability.md (the same
// section as package cluster's own fault rows).
const clusterSection = "Fault matrix: cluster (lease TTL 3s / heartbeat 1s; nodes on 127.0.0.1 unless the case says otherwise)"

// clusterLease is the lease the node processes run with.
var clusterLease = fsm.Lease{TTL: 3 * time.Second, Heartbeat: time.Second}.WithDefaults()

// clusterNode is one `lifeline serve --node` process in a namespace of its
// own, linked to the others through a bridge.
type clusterNode struct {
	name, addr string // node name; its address on the link
	ns         *netns
	p          *lproc
}

// get fetches path from the node's HTTP endpoint, from inside its
// namespace (the test itself is outside every namespace), into v.
func (n *clusterNode) get(t *testing.T, path string, v any) error {
	t.Helper()
	out, err := n.ns.output("curl", "-sf", "--max-time", "2", "http://"+n.addr+":"+nsPort+path)
	if err != nil {
		return fmt.Errorf("GET %s on %s: %w", path, n.name, err)
	}
	return json.Unmarshal(out, v)
}

// clusterStats is the part of GET /stats the test reads.
type clusterStats struct {
	Cluster struct {
		State       string `json:"state"`
		LeaseLeader string `json:"lease_leader"`
		Nodes       []struct {
			Node  string `json:"node"`
			State string `json:"state"`
		} `json:"nodes"`
	} `json:"cluster"`
}

// netnsCluster starts k node processes, node i in its own namespace with
// address 10.77.0.i on a veth link to a bridge in a hub namespace; each
// node's NATS routes listen on its link address, its NATS client
// listener on its namespace's loopback. It returns once every node is a
// Member that counts the others alive.
func netnsCluster(t *testing.T, k int) []*clusterNode {
	t.Helper()
	hub := newNetns(t) // skips first when not root
	if _, err := exec.LookPath("curl"); err != nil {
		noNetns(t, "curl not installed (reads each node's HTTP API inside its namespace)")
	}
	if err := hub.try("ip", "link", "add", "br0", "type", "bridge"); err != nil {
		noNetns(t, "no bridge: "+err.Error())
	}
	hub.run(t, "ip", "link", "set", "br0", "up")
	nodes := make([]*clusterNode, k)
	routes := make([]string, k)
	for i := range nodes {
		n := &clusterNode{name: fmt.Sprintf("n%d", i+1), addr: fmt.Sprintf("10.77.0.%d", i+1), ns: newNetns(t)}
		v := fmt.Sprintf("v%d", i+1)
		if err := hub.try("ip", "link", "add", v, "type", "veth", "peer", "name", "eth0", "netns", n.ns.name); err != nil {
			noNetns(t, "no veth: "+err.Error())
		}
		hub.run(t, "ip", "link", "set", v, "master", "br0")
		hub.run(t, "ip", "link", "set", v, "up")
		n.ns.run(t, "ip", "addr", "add", n.addr+"/24", "dev", "eth0")
		n.ns.run(t, "ip", "link", "set", "eth0", "up")
		nodes[i], routes[i] = n, n.addr+":6222"
	}
	for i, n := range nodes {
		var peers []string
		for j, r := range routes {
			if j != i {
				peers = append(peers, r)
			}
		}
		n.p = startLifeline(t, n.ns.name, n.name, serveArgs(n.addr+":"+nsPort, "--node", n.name,
			"--cluster-listen", routes[i], "--cluster-peers", strings.Join(peers, ","),
			"--lease-ttl", clusterLease.TTL.String(), "--lease-heartbeat", clusterLease.Heartbeat.String())...)
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, n := range nodes {
		for {
			var st clusterStats
			alive := 0
			if n.get(t, "/stats", &st) == nil && st.Cluster.State == "Member" {
				for _, o := range st.Cluster.Nodes {
					if o.Node != n.name && o.State == "Alive" {
						alive++
					}
				}
			}
			if alive == k-1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not a Member seeing %d others within 60s; its log:\n%s", n.name, k-1, n.p.dump())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nodes
}

// TestClusterNodeCutOff: three node processes, each in its own network
// namespace; one is cut off from the others with nftables (every packet on
// its link dropped, both ways). It must close its sessions (reason fenced)
// before either other node counts it dead, and both must count it dead
// within Lease.LatestDead of the cut.
func TestClusterNodeCutOff(t *testing.T) {
	nodes := netnsCluster(t, 3)
	// Cut a node that does not lead the lease stream: cutting the leader
	// stalls every node's renewals for an election (Lease.Failover), a
	// different case with a different bound.
	// The leader is known from a node's first re-check on: wait for it.
	var st clusterStats
	for deadline := time.Now().Add(10 * time.Second); st.Cluster.LeaseLeader == ""; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no lease stream leader in n1's /stats within 10s")
		}
		_ = nodes[0].get(t, "/stats", &st)
	}
	victim, others := nodes[2], []*clusterNode{nodes[0], nodes[1]}
	if st.Cluster.LeaseLeader == victim.name {
		victim, others = nodes[1], []*clusterNode{nodes[0], nodes[2]}
	}
	// Its client, in its namespace: the cut leaves that path alone.
	c := startLifeline(t, victim.ns.name, "client of "+victim.name, connectArgs("ws://"+victim.addr+":"+nsPort+"/")...)
	c.wait(t, 0, 10*time.Second, "Connected", func(l logLine) bool { return l.isTransition("client", "Connected") })
	var id string
	for _, o := range others {
		deadline := time.Now().Add(10 * time.Second)
		for id == "" || !listedOn(t, o, id) {
			var list []struct{ ID, Node string }
			if err := victim.get(t, "/sessions", &list); err == nil && len(list) > 0 {
				for _, e := range list {
					if e.Node == victim.name {
						id = e.ID
					}
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s's session (%q) not listed on %s within 10s", victim.name, id, o.name)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	fromV := victim.p.mark()
	fromO := []int{others[0].p.mark(), others[1].p.mark()}
	victim.ns.nft(t, `table inet lifeline {
	chain in {
		type filter hook input priority 0; policy accept;
		iifname "eth0" drop
	}
	chain out {
		type filter hook output priority 0; policy accept;
		oifname "eth0" drop
	}
}
`)
	cut := time.Now() // the lease's last write W came before this
	latest := clusterLease.LatestDead(cut, false)
	fenced, _ := victim.p.wait(t, fromV, 2*clusterLease.TTL, "its session closed (fenced)", func(l logLine) bool {
		return l.isTransition("session", "Closing") && l.str("reason") == "fenced"
	})
	victim.p.wait(t, fromV, 5*time.Second, "node Fenced", func(l logLine) bool {
		return l.isTransition("node", "Fenced") && l.str("trigger") == "fence_due"
	})
	var dead []time.Time
	for i, o := range others {
		l, _ := o.p.wait(t, fromO[i], latest.Sub(cut)+5*time.Second, victim.name+" counted dead", func(l logLine) bool {
			return l.isTransition("peer", "Expired") && l.str("id") == o.name+"→"+victim.name
		})
		dropped, _ := o.p.wait(t, fromO[i], 5*time.Second, victim.name+"'s sessions dropped", func(l logLine) bool {
			return l.str("msg") == "peer's sessions counted dead" && l.str("peer") == victim.name
		})
		if n, _ := dropped.M["sessions"].(float64); n < 1 {
			t.Errorf("%s dropped %v of %s's sessions, want its client's", o.name, dropped.M["sessions"], victim.name)
		}
		if !fenced.At.Before(l.At) {
			t.Errorf("%s counted %s dead %s after the cut, before %s closed its session (fenced, %s)",
				o.name, victim.name, l.At.Sub(cut), victim.name, fenced.At.Sub(cut))
		}
		if l.At.After(latest) {
			t.Errorf("%s counted %s dead %s after the cut, past LatestDead %s", o.name, victim.name, l.At.Sub(cut), latest.Sub(cut))
			for _, l := range o.p.since(fromO[i]) {
				t.Logf("%s +%s %v", o.name, l.At.Sub(cut), l.M)
			}
		}
		if listedOn(t, o, id) {
			t.Errorf("%s still lists %s after counting %s dead", o.name, id, victim.name)
		}
		dead = append(dead, l.At)
	}
	first, last := dead[0], dead[0]
	for _, d := range dead {
		if d.Before(first) {
			first = d
		}
		if d.After(last) {
			last = d
		}
	}
	report.Add(t, report.Row{Section: clusterSection,
		Case: "3 node processes, each in its own network namespace (veth to a bridge): one cut off from the others with nftables (drop on its link, both ways)",
		Path: "cut node: Member→Fenced (fence_due), its sessions Alive→Closing (fenced); others: peer Alive→Expired, its sessions dropped (node_dead)",
		Bound: fmt.Sprintf("fenced ≤ P+Fence (%s) < counted dead ≥ P+TTL (%s); counted dead ≤ cut + TTL+H+1s = %s",
			clusterLease.Fence, clusterLease.TTL, latest.Sub(cut)),
		Observed: fmt.Sprintf("fenced %s; counted dead %s (first) to %s (last) after the cut",
			fenced.At.Sub(cut).Round(time.Millisecond), first.Sub(cut).Round(time.Millisecond), last.Sub(cut).Round(time.Millisecond)),
		Evidence: "0 sessions served by a node counted dead; no ghost listed after"})
}

// listedOn reports whether node n's GET /sessions lists id.
func listedOn(t *testing.T, n *clusterNode, id string) bool {
	t.Helper()
	var list []struct{ ID string }
	if err := n.get(t, "/sessions", &list); err != nil {
		return false
	}
	for _, e := range list {
		if e.ID == id {
			return true
		}
	}
	return false
}
