package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/proc"
	"github.com/lifeline-go/lifeline/internal/report"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// proxy forwards TCP connections to target until cut: then it closes
// every connection it carries and refuses new ones, as a partition would.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	cut    bool
	wg     sync.WaitGroup
}

func newProxy(t testing.TB, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { p.Cut(); _ = ln.Close(); p.wg.Wait() })
	return p
}

func (p *proxy) URL() string { return "nats://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns = append(p.conns, c, up)
		p.wg.Add(2)
		p.mu.Unlock()
		go func() { defer p.wg.Done(); _, _ = io.Copy(up, c); _ = up.Close() }()
		go func() { defer p.wg.Done(); _, _ = io.Copy(c, up); _ = c.Close() }()
	}
}

// Cut severs the node behind the proxy from the engine: its connections
// close and new ones are refused (the listener closes; a listener that
// accepted and closed at once left nats.go's reconnect sockets half-open).
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	_ = p.ln.Close()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// TestClusterFailures: two nodes in this process and a third in a
// process of its own form the engine; a fourth uses it as an external
// NATS through a proxy. Cut off, the fourth fences itself (closes its
// sessions) before any other node counts them dead. SIGKILLed, the third
// has its sessions counted dead on every other node within the bound
// fsm.Lease gives, and its client fails over to another node.
func TestClusterFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts processes and waits for lease expiries")
	}
	addrs := routes(t, 3)
	pc, _ := json.Marshal(processConfig{Node: "n3", Listen: addrs[2], Peers: others(addrs, 2),
		TTL: testLease.TTL.String(), HB: testLease.Heartbeat.String()})
	self := proc.Self{Argv: os.Args[:1], Env: []string{nodeEnv + "=" + string(pc)}}
	child, err := self.Start(os.Stderr, "-test.run=^$")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(child.Kill)
	n1 := startNode(t, Config{Node: "n1", Listen: addrs[0], Peers: others(addrs, 0), ClientListen: "127.0.0.1:0"})
	n2 := startNode(t, Config{Node: "n2", Listen: addrs[1], Peers: others(addrs, 1)})
	line, err := child.Line("ready ", 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	n3url := line
	waitFor(t, 30*time.Second, "n1 and n2 Member", func() bool {
		return n1.State() == fsm.Member && n2.State() == fsm.Member && n1.ClientURL() != ""
	})
	px := newProxy(t, n1.ClientURL()[len("nats://"):])
	// n4 shares the engine's buckets. It names their replica count, the
	// one the kills below need (a replica on every engine server, so the
	// lead can move off n3): its automatic one would bind the buckets as
	// they are (TestAutomaticReplicasKeepBucket), an explicit one is
	// applied.
	n4 := startNode(t, Config{Node: "n4", NATS: px.URL(), NATSListedOnly: true, Replicas: engineServers})
	waitFor(t, 30*time.Second, "n4 Member, everyone seeing everyone", func() bool {
		return n4.State() == fsm.Member && len(n1.alivePeers()) == 3 && len(n2.alivePeers()) == 3
	})

	t.Run("cut-off node fences before it is counted dead", func(t *testing.T) {
		dead := time.Hour
		c4 := dial(t, "dave", n4.url)
		id := n4.sid(1) // before the cut: the fence's rejoin moves n4 to a new incarnation
		waitFor(t, 5*time.Second, "n4's session listed on n1", func() bool { return listed(n1.Node, id) })
		w1, w2 := n1.Watch(t.Context()), n2.Watch(t.Context())
		cut := time.Now()
		px.Cut()
		// The client is dropped when n4 fences: its close frame says 1001.
		waitFor(t, 2*testLease.TTL, "n4 Fenced", func() bool { return n4.State() == fsm.Fenced })
		fenced := time.Now()
		waitFor(t, 5*time.Second, "n4's client dropped", func() bool { return c4.c.State() != fsm.Connected })
		dropped := time.Now()
		for _, w := range []<-chan Change{w1, w2} {
			ch := nextClose(t, w, id, 3*testLease.TTL)
			if !ch.at.After(dropped) {
				t.Errorf("n4's session counted dead at %s, before n4 fenced and dropped its client (%s)",
					ch.at.Sub(cut), dropped.Sub(cut))
			}
			t.Logf("cut at 0: n4 fenced at %s, client dropped at %s, counted dead at %s",
				fenced.Sub(cut), dropped.Sub(cut), ch.at.Sub(cut))
			dead = min(dead, ch.at.Sub(cut))
		}
		report.Add(t, report.Row{Section: reportSection, Case: "3 embedded nodes + 1 on them as external NATS: that node cut off from the engine (its NATS path severed)",
			Path:     "node Member→Fenced (fence_due), session closed 1001 (fenced); others: peer Alive→Expired",
			Bound:    "fenced ≤ P+Fence (2s) < counted dead ≥ P+TTL (3s)",
			Observed: fmt.Sprintf("fenced %s, first counted dead %s after the cut", fenced.Sub(cut).Round(time.Millisecond), dead.Round(time.Millisecond)),
			Evidence: "0 sessions served by a node counted dead"})
	})

	t.Run("stopped node counted dead, fences itself on resume", func(t *testing.T) {
		c3 := dial(t, "erin", n3url, n1.url)
		var id string
		waitFor(t, 5*time.Second, "erin's session on n3 listed on n1", func() bool {
			id = idOf(n1.Node, "erin")
			return strings.HasPrefix(id, "n3.")
		})
		// A stopped lease stream leader stalls renewals like a killed one
		// (see the SIGKILL case): move the lead away first.
		moveLeader(t, "n3", n1.Node, n2.Node)
		leader := leaseLeader(n1.Node) == "n3"
		w1, w2 := n1.Watch(t.Context()), n2.Watch(t.Context())
		stopped, err := child.Signal(syscall.SIGSTOP)
		if err != nil {
			t.Fatal(err)
		}
		bound := testLease.LatestDead(stopped, leader)
		var took time.Duration
		for i, w := range []<-chan Change{w1, w2} {
			ch := nextClose(t, w, id, bound.Sub(stopped)+5*time.Second)
			took = max(took, ch.at.Sub(stopped))
			if ch.at.After(bound) {
				t.Errorf("n%d counted the stopped n3 dead %s after SIGSTOP, past the bound %s", i+1, ch.at.Sub(stopped), bound.Sub(stopped))
			}
		}
		// Counted dead: a send answers no such session at once, although
		// the stopped process still holds its subscription.
		start := time.Now()
		if err := n2.SendTo(context.Background(), id, []byte("x")); !errors.Is(err, ErrNoSuchSession) {
			t.Errorf("send to a stopped node's session counted dead = %v, want ErrNoSuchSession", err)
		}
		noSuch := time.Since(start)
		if _, err := child.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		resumed := time.Now()
		// Resumed past its fence deadline, n3 serves nothing: its client is
		// closed (fenced) and comes back on n1.
		waitFor(t, 10*time.Second, "erin back on n1", func() bool {
			return c3.c.State() == fsm.Connected && c3.c.URL() == n1.url
		})
		back := time.Since(resumed)
		report.Add(t, report.Row{Section: reportSection, Case: "3 embedded nodes, one a process: that process stopped (SIGSTOP) past its TTL, then resumed",
			Path:  "others: peer Alive→Expired; resumed node Fenced at once (past its fence deadline), client back on another node",
			Bound: fmt.Sprintf("counted dead ≤ stop + TTL+H+1s = %s; send to its session: no such session", bound.Sub(stopped)),
			Observed: fmt.Sprintf("counted dead %s; send answered in %s; client back %s after SIGCONT",
				took.Round(time.Millisecond), noSuch.Round(time.Microsecond), back.Round(time.Millisecond)),
			Evidence: "sends to it answered no such session, not delivered"})
	})

	t.Run("SIGKILLed node counted dead within the bound", func(t *testing.T) {
		waitFor(t, 3*testLease.TTL, "n3 serving again", func() bool { return n1.peer("n3").state == fsm.Alive })
		// Resumed, n3 holds a replica of both buckets that missed every
		// write while it was stopped: its first session is listed only
		// once it has caught up.
		waitFor(t, 3*testLease.TTL, "every replica of both buckets current", func() bool {
			return replicasCurrent(n1.Node, "KV_"+n1.eng.Load().leases.Bucket()) &&
				replicasCurrent(n1.Node, "KV_"+n1.eng.Load().dirName)
		})
		c3 := dial(t, "frank", n3url, n1.url)
		var id string
		waitFor(t, 5*time.Second, "frank's session on n3 listed on n1 and n2", func() bool {
			id = idOf(n1.Node, "frank")
			return strings.HasPrefix(id, "n3.") && listed(n2.Node, id)
		})
		// A SIGKILL of the lease stream's leader stalls every renewal
		// until NATS elects another (measured 4-6 s), longer than this
		// test lease's fence (2 s): the survivors would fence too. The
		// bound for that case adds Lease.Failover; this test kills a
		// follower, moving the leadership away first if n3 holds it.
		moveLeader(t, "n3", n1.Node, n2.Node)
		leader := leaseLeader(n1.Node) == "n3"
		w1, w2 := n1.Watch(t.Context()), n2.Watch(t.Context())
		killed, err := child.Signal(syscall.SIGKILL)
		if err != nil {
			t.Fatal(err)
		}
		// The last lease write was no later than the kill.
		bound := testLease.LatestDead(killed, leader)
		var worst time.Duration
		for i, w := range []<-chan Change{w1, w2} {
			ch := nextClose(t, w, id, bound.Sub(killed)+5*time.Second)
			t.Logf("n%d counted %s dead %s after the SIGKILL (bound %s, n3 led the lease stream: %v)",
				i+1, id, ch.at.Sub(killed), bound.Sub(killed), leader)
			if ch.at.After(bound) {
				t.Errorf("n%d counted %s dead %s after the kill, past the bound %s", i+1, id, ch.at.Sub(killed), bound.Sub(killed))
			}
			worst = max(worst, ch.at.Sub(killed))
		}
		waitFor(t, 10*time.Second, "n3's client back on n1", func() bool {
			return c3.c.State() == fsm.Connected && c3.c.URL() == n1.url
		})
		if listed(n1.Node, id) || listed(n2.Node, id) {
			t.Errorf("%s still listed after it was counted dead", id)
		}
		report.Add(t, report.Row{Section: reportSection, Case: "3 embedded nodes, one a process: SIGKILL of that process",
			Path:  "peer Alive→Expired (lease_gone) on every other node; its sessions dropped (node_dead); client fails over",
			Bound: fmt.Sprintf("≤ kill + TTL+H+1s = %s", bound.Sub(killed)), Observed: fmt.Sprintf("%s (worst of 2 nodes)", worst.Round(time.Millisecond)),
			Evidence: "no ghost listed after; the client back on another node"})
	})
}

// reportSection groups the cluster rows of docs/reliability.md (faults'
// clusterSection is the same string: its namespace row joins this table).
const reportSection = "Fault matrix: cluster (lease TTL 3s / heartbeat 1s; nodes on 127.0.0.1 unless the case says otherwise)"

// idOf returns the id of the session with key in n's directory, or "".
func idOf(n *Node, key string) string {
	for _, e := range n.List() {
		if e.Key == key {
			return e.ID
		}
	}
	return ""
}

type seenClose struct {
	Change
	at time.Time
}

// nextClose waits for the close of id on w.
func nextClose(t testing.TB, w <-chan Change, id string, timeout time.Duration) seenClose {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ch, ok := <-w:
			if !ok {
				t.Fatal("watch closed")
			}
			if ch.Kind == Closed && ch.Entry.ID == id {
				if ch.Reason != fsm.ReasonNodeDead.String() {
					t.Errorf("%s closed for %q, want node_dead", id, ch.Reason)
				}
				return seenClose{ch, time.Now()}
			}
		case <-deadline:
			t.Fatalf("%s not counted dead within %s", id, timeout)
		}
	}
}

// moveLeader makes sure a server other than from leads the lease stream,
// as the leader and the in-process nodes' servers see it, before from is
// stopped or killed (killing the leader stalls every renewal for an
// election, longer than the fence).
//
// It first checks the stream still has a replica on every engine server:
// a node whose automatic Replicas differs (1 for an external NATS) used to
// rescale the shared bucket to one copy, and a stepdown of a one-replica
// stream answers success without moving anything. Then, while from leads,
// it waits until every replica is current (a follower whose log is behind
// cannot take a leader transfer nor win the vote, so the stepdown would
// only hand leadership back to from) and asks for a stepdown naming
// nodes[0] as the new leader, again at most once a second, for up to 60 s. It returns
// once every replica is current under the new leader.
func moveLeader(t testing.TB, from string, nodes ...*Node) {
	t.Helper()
	n := nodes[0]
	e := n.eng.Load()
	stream := "KV_" + e.leases.Bucket()
	start := time.Now()
	deadline := start.Add(60 * time.Second)
	var last string
	var asked time.Time
	for {
		info := leaseInfo(n)
		if info != nil && info.Config.Replicas != engineServers {
			t.Fatalf("lease stream has %d replicas, want one on each of the %d engine servers", info.Config.Replicas, engineServers)
		}
		leader, current := "", allCurrent(info)
		if info != nil && info.Cluster != nil {
			leader = info.Cluster.Leader
		}
		switch {
		case leader != "" && leader != from && current && settled(leader, stream, nodes):
			// Led elsewhere, every replica current under that leader, and
			// the leader done applying its predecessor's entries: before
			// that it proposes no expiry (a lease expiring then is marked
			// 2 s late), so the case below would not measure the steady
			// engine.
			if !asked.IsZero() {
				t.Logf("lease stream lead moved from %s to %s in %s", from, leader, time.Since(start).Round(time.Millisecond))
			}
			return
		case time.Now().After(deadline):
			t.Fatalf("lease stream not led away from %s within 60s (leader %q, all replicas current: %v, last stepdown answer: %s)",
				from, leader, current, last)
		case leader == from && current && time.Since(asked) >= time.Second &&
			n.eng.Load().srv.JetStreamIsStreamCurrent(server.DEFAULT_GLOBAL_ACCOUNT, stream):
			asked = time.Now()
			body := []byte(`{"placement":{"preferred":"` + n.ID() + `"}}`)
			msg, err := e.nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, body, 2*time.Second)
			if err != nil {
				last = err.Error()
			} else {
				last = string(msg.Data)
			}
		}
		time.Sleep(50 * time.Millisecond) // polling the leader, not synchronising on it
	}
}

// settled reports whether each of the in-process nodes' servers agrees
// that leader leads stream: the leader's own in complete leader state
// (caught up with its applies), the others current followers.
func settled(leader, stream string, nodes []*Node) bool {
	for _, n := range nodes {
		srv := n.eng.Load().srv
		if n.ID() == leader && !srv.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) ||
			!srv.JetStreamIsStreamCurrent(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return false
		}
	}
	return true
}

// replicasCurrent reports whether stream has a replica on every engine
// server and its leader counts each of them current.
func replicasCurrent(n *Node, stream string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := n.eng.Load().js.Stream(ctx, stream) // asks the leader
	return err == nil && allCurrent(st.CachedInfo())
}

// allCurrent reports whether the stream info (as its leader answers it)
// shows a replica on every engine server, each current.
func allCurrent(info *jetstream.StreamInfo) bool {
	if info == nil || info.Cluster == nil || len(info.Cluster.Replicas) != engineServers-1 {
		return false
	}
	for _, r := range info.Cluster.Replicas {
		if !r.Current {
			return false
		}
	}
	return true
}

// engineServers is how many servers form the engine in TestClusterFailures:
// the lease stream keeps a replica on each.
const engineServers = 3

// leaseLeader returns the name of the server leading the lease bucket's
// stream, or "" while it has none.
func leaseLeader(n *Node) string {
	if info := leaseInfo(n); info != nil && info.Cluster != nil {
		return info.Cluster.Leader
	}
	return ""
}

// leaseInfo returns the lease stream's info as its leader answers it, or
// nil while nobody answers (an election).
func leaseInfo(n *Node) *jetstream.StreamInfo {
	e := n.eng.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := e.js.Stream(ctx, "KV_"+e.leases.Bucket()) // asks the leader too
	if err != nil {
		return nil
	}
	return st.CachedInfo()
}
