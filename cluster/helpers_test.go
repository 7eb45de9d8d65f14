package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/poll"
)

// testLease is the short lease the tests run with: TTL 3s, heartbeat 1s,
// fence at 2s.
var testLease = fsm.Lease{TTL: 3 * time.Second, Heartbeat: time.Second}

// node is one running test node: a cluster Node hooked into a conn.Server
// served on loopback.
type node struct {
	*Node
	srv  *conn.Server
	hs   *httptest.Server
	url  string // ws:// URL of its WebSocket endpoint
	stop context.CancelFunc
	done chan error
}

// sid returns the cluster-wide id of the node's k-th session, opened in
// its current incarnation.
func (n *node) sid(k uint64) string { return sessionID(n.ID(), n.inc.Load(), k) }

// freeAddr returns a loopback HOST:PORT nothing listens on now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// quiet discards logs, unless LIFELINE_TEST_LOG is set (debugging).
func quiet() *slog.Logger {
	if os.Getenv("LIFELINE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func keyHeader(r *http.Request) string { return r.Header.Get("X-Key") }

// startNode starts a node for cfg with a WebSocket endpoint, and stops
// both when the test ends.
func startNode(t testing.TB, cfg Config) *node {
	t.Helper()
	return startNodeWith(t, cfg, conn.ServerConfig{})
}

// startNodeWith is startNode with the conn.Server configured by scfg (its
// Hook, Logger and Liveness are set here).
func startNodeWith(t testing.TB, cfg Config, scfg conn.ServerConfig) *node {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	if cfg.KeyOf == nil {
		cfg.KeyOf = keyHeader
	}
	if cfg.Lease == (fsm.Lease{}) {
		cfg.Lease = testLease
	}
	nd, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	scfg.Hook, scfg.Logger = nd, quiet()
	scfg.Liveness = fsm.Liveness{CloseTimeout: 500 * time.Millisecond}
	srv, err := conn.NewServer(scfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{Node: nd, srv: srv, hs: hs, url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/",
		stop: cancel, done: make(chan error, 1)}
	go func() { n.done <- nd.Run(ctx) }()
	t.Cleanup(func() { n.halt(t) })
	return n
}

// halt shuts the node down (once).
func (n *node) halt(t testing.TB) {
	n.stop()
	select {
	case err := <-n.done:
		if err != nil {
			t.Errorf("node %s: Run = %v", n.ID(), err)
		}
		n.done <- err // for a second halt
	case <-time.After(10 * time.Second):
		t.Errorf("node %s: Run did not return within 10s", n.ID())
	}
	_ = n.srv.Close()
	n.hs.Close()
}

// routes returns the route addresses for k nodes.
func routes(t testing.TB, k int) []string {
	out := make([]string, k)
	for i := range out {
		out[i] = freeAddr(t)
	}
	return out
}

// others returns every address but the i-th.
func others(addrs []string, i int) []string {
	var out []string
	for j, a := range addrs {
		if j != i {
			out = append(out, a)
		}
	}
	return out
}

// startCluster starts k embedded nodes n1..nk routed to each other and
// waits until every one is a Member and sees all the others alive.
func startCluster(t testing.TB, k int) []*node {
	t.Helper()
	addrs := routes(t, k)
	nodes := make([]*node, k)
	for i := range nodes {
		nodes[i] = startNode(t, Config{Node: fmt.Sprintf("n%d", i+1), Listen: addrs[i], Peers: others(addrs, i)})
	}
	waitFor(t, 30*time.Second, "every node Member and seeing the others", func() bool {
		for _, n := range nodes {
			if n.State() != fsm.Member || len(n.alivePeers()) != k-1 {
				return false
			}
		}
		return true
	})
	return nodes
}

// waitFor polls cond until it holds or timeout passes, and fails t if it
// never does.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll.Until(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// listed reports whether n's directory holds id.
func listed(n *Node, id string) bool {
	for _, e := range n.List() {
		if e.ID == id {
			return true
		}
	}
	return false
}

// client is a WebSocket client of a test node that records its messages.
type client struct {
	c    *conn.Client
	got  chan string
	stop context.CancelFunc
	done chan struct{}
}

func dial(t testing.TB, key string, urls ...string) *client {
	t.Helper()
	cl := &client{got: make(chan string, 64), done: make(chan struct{})}
	h := http.Header{}
	if key != "" {
		h.Set("X-Key", key)
	}
	c, err := conn.NewClient(conn.ClientConfig{URLs: urls, Header: h, Logger: quiet(),
		Backoff:   fsm.Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond, FirstImmediate: true},
		OnMessage: func(_ conn.MessageType, d []byte) { cl.got <- string(d) }})
	if err != nil {
		t.Fatal(err)
	}
	cl.c = c
	ctx, cancel := context.WithCancel(context.Background())
	cl.stop = cancel
	go func() { defer close(cl.done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-cl.done })
	waitFor(t, 10*time.Second, "client connected", func() bool { return c.State() == fsm.Connected })
	return cl
}

func (cl *client) expect(t testing.TB, want string) {
	t.Helper()
	select {
	case m := <-cl.got:
		if m != want {
			t.Fatalf("client got %q, want %q", m, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("client got nothing, want %q", want)
	}
}

// The node process: TestClusterNodeKilled re-executes the test binary
// with nodeEnv set to a JSON Config; the process runs the node with a
// WebSocket endpoint, prints "ready <ws-url>" and runs until killed.
const nodeEnv = "LIFELINE_CLUSTER_NODE"

type processConfig struct {
	Node   string   `json:"node"`
	Listen string   `json:"listen"`
	Peers  []string `json:"peers"`
	TTL    string   `json:"ttl"`
	HB     string   `json:"heartbeat"`
}

func runNodeProcess() int {
	var pc processConfig
	if err := json.Unmarshal([]byte(os.Getenv(nodeEnv)), &pc); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ttl, _ := time.ParseDuration(pc.TTL)
	hb, _ := time.ParseDuration(pc.HB)
	nd, err := New(Config{Node: pc.Node, Listen: pc.Listen, Peers: pc.Peers, Logger: quiet(),
		KeyOf: keyHeader, Lease: fsm.Lease{TTL: ttl, Heartbeat: hb}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	srv, _ := conn.NewServer(conn.ServerConfig{Hook: nd, Logger: quiet()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	go func() { _ = http.Serve(ln, srv) }()
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer cancel()
	var once sync.Once
	go func() {
		for !nd.Serving() {
			time.Sleep(10 * time.Millisecond)
		}
		once.Do(func() { fmt.Printf("ready ws://%s/\n", ln.Addr()) })
	}()
	if err := nd.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
