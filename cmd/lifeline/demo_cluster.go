package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lifeline-go/lifeline/cluster"
	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/proc"
)

// clusterDemo is `lifeline demo --cluster`: three `lifeline serve --node`
// processes clustered by routes, a fleet spread over them, one node
// SIGKILLed; its sessions must leave every other node's /sessions within
// the lease bound, its clients come back on the other two, and sends
// cross nodes. It exits 1 if a check fails.
type clusterDemo struct {
	out     io.Writer
	self    proc.Self
	clients int
	lease   fsm.Lease
	start   time.Time

	nodes []demoNode
	fleet []*demoClient
}

type demoNode struct {
	name, http, route string
	child             *proc.Child
}

type demoClient struct {
	c   *conn.Client
	key string
	got chan string
}

func (d *clusterDemo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "%6.1fs  %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// getJSON fetches a node's endpoint into v.
func getJSON(ctx context.Context, url string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func (d *clusterDemo) sessions(ctx context.Context, n demoNode) ([]cluster.Entry, error) {
	var l []cluster.Entry
	err := getJSON(ctx, "http://"+n.http+"/sessions", &l)
	return l, err
}

func (d *clusterDemo) stats(ctx context.Context, n demoNode) (cluster.Stats, error) {
	var st struct {
		Cluster cluster.Stats `json:"cluster"`
	}
	err := getJSON(ctx, "http://"+n.http+"/stats", &st)
	return st.Cluster, err
}

// poll runs cond every 50 ms until it holds, or fails after timeout.
func poll(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s", what, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

func (d *clusterDemo) run(ctx context.Context) error {
	l := d.lease.WithDefaults()
	for i := range 3 {
		h, err := freePort()
		if err != nil {
			return err
		}
		r, err := freePort()
		if err != nil {
			return err
		}
		d.nodes = append(d.nodes, demoNode{name: fmt.Sprintf("n%d", i+1), http: h, route: r})
	}
	fmt.Fprintf(d.out, "lifeline demo --cluster: 3 node processes (embedded NATS, routed), lease TTL %s, heartbeat %s: a killed node's sessions must be gone everywhere within %s\n",
		l.TTL, l.Heartbeat, l.TTL+l.Heartbeat+l.Slack)
	for i, n := range d.nodes {
		var peers []string
		for j, o := range d.nodes {
			if j != i {
				peers = append(peers, o.route)
			}
		}
		c, err := d.self.Start(nil, "serve", "--addr", n.http, "--node", n.name, "--cluster-listen", n.route,
			"--cluster-peers", strings.Join(peers, ","), "--lease-ttl", l.TTL.String(), "--lease-heartbeat", l.Heartbeat.String(),
			"--ping-interval", "1s", "--pong-timeout", "500ms")
		if err != nil {
			return err
		}
		d.nodes[i].child = c
		defer c.Kill()
	}
	if err := poll(ctx, 60*time.Second, "every node a Member seeing the other two", func() bool {
		for _, n := range d.nodes {
			st, err := d.stats(ctx, n)
			if err != nil || st.State != fsm.Member.String() || len(st.Nodes) != 3 || st.LeaseLeader == "" {
				return false // (the lease stream's leader is learnt at the first re-check)
			}
			for _, ns := range st.Nodes {
				if ns.State != fsm.Member.String() && ns.State != fsm.Alive.String() {
					return false
				}
			}
		}
		return true
	}); err != nil {
		return err
	}
	d.say("cluster up: n1, n2, n3 Member, each seeing the other two")

	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for i := range d.clients {
		var urls []string
		for j := range d.nodes {
			urls = append(urls, "ws://"+d.nodes[(i+j)%3].http+"/")
		}
		dc := &demoClient{key: fmt.Sprintf("user-%d", i), got: make(chan string, 8)}
		h := http.Header{"X-Key": {dc.key}}
		c, err := conn.NewClient(conn.ClientConfig{URLs: urls, Header: h, Backoff: demoBackoff(),
			Liveness: fsm.Liveness{PingInterval: time.Second, PongTimeout: 500 * time.Millisecond},
			Logger:   slog.New(slog.DiscardHandler),
			OnMessage: func(_ conn.MessageType, b []byte) {
				select {
				case dc.got <- string(b):
				default:
				}
			}})
		if err != nil {
			return err
		}
		dc.c = c
		d.fleet = append(d.fleet, dc)
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Run(runCtx) }()
	}
	listedEverywhere := func(want int) func() bool {
		return func() bool {
			for _, n := range d.nodes {
				if n.child == nil {
					continue
				}
				l, err := d.sessions(ctx, n)
				if err != nil || len(l) != want {
					return false
				}
			}
			return true
		}
	}
	if err := poll(ctx, 20*time.Second, "the fleet listed on every node", listedEverywhere(d.clients)); err != nil {
		return err
	}
	all, _ := d.sessions(ctx, d.nodes[0])
	perNode := map[string]int{}
	for _, e := range all {
		perNode[e.Node]++
	}
	d.say("fleet of %d clients spread over the nodes: n1 %d, n2 %d, n3 %d; every /sessions lists all %d",
		d.clients, perNode["n1"], perNode["n2"], perNode["n3"], d.clients)

	// A cross-node send: to a session on n1, through n2's /send.
	var target cluster.Entry
	for _, e := range all {
		if e.Node == "n1" {
			target = e
			break
		}
	}
	crossOK, crossTook := d.crossSend(ctx, d.nodes[1], target)

	// The victim: a node that does not lead the lease stream (killing the
	// leader adds an election, Lease.Failover, to the bound).
	st, err := d.stats(ctx, d.nodes[0])
	if err != nil || st.LeaseLeader == "" {
		return fmt.Errorf("the lease stream's leader is unknown (%v)", err)
	}
	vi := 2
	if st.LeaseLeader == "n3" {
		vi = 1
	}
	victim := d.nodes[vi]
	var victimIDs []string
	for _, e := range all {
		if e.Node == victim.name {
			victimIDs = append(victimIDs, e.ID)
		}
	}
	killed, err := victim.child.Signal(syscall.SIGKILL)
	if err != nil {
		return err
	}
	d.say("SIGKILL %s (%d sessions; the lease stream is led by %s)", victim.name, len(victimIDs), st.LeaseLeader)
	d.nodes[vi].child.Kill()
	d.nodes[vi].child = nil
	bound := l.TTL + l.Heartbeat + l.Slack
	gone := map[string]time.Duration{}
	if err := poll(ctx, bound+10*time.Second, victim.name+"'s sessions gone from the survivors' /sessions", func() bool {
		for _, n := range d.nodes {
			if n.child == nil || gone[n.name] != 0 {
				continue
			}
			l, err := d.sessions(ctx, n)
			if err != nil {
				continue
			}
			if !slices.ContainsFunc(l, func(e cluster.Entry) bool { return e.Node == victim.name }) {
				gone[n.name] = time.Since(killed)
			}
		}
		return len(gone) == 2
	}); err != nil {
		return err
	}
	var worst time.Duration
	for name, took := range gone {
		d.say("%s counts %s's sessions dead after %s", name, victim.name, took.Round(time.Millisecond))
		worst = max(worst, took)
	}
	// A send to a dead node's session: an answer, fast.
	noSuch, noSuchTook := false, time.Duration(0)
	if len(victimIDs) > 0 {
		start := time.Now()
		code := postSend(ctx, d.nodes[(vi+1)%3].http, "id="+victimIDs[0], "x")
		noSuchTook = time.Since(start)
		noSuch = code == http.StatusNotFound
		d.say("POST /send?id=%s (a dead node's session) → %d in %s", victimIDs[0], code, noSuchTook.Round(time.Microsecond))
	}
	if err := poll(ctx, 20*time.Second, "the fleet back on the two survivors", listedEverywhere(d.clients)); err != nil {
		return err
	}
	back := 0
	for _, c := range d.fleet {
		if c.c.State() == fsm.Connected && !strings.Contains(c.c.URL(), victim.http) {
			back++
		}
	}
	d.say("%d of %d clients connected to the two survivors; both list all %d sessions", back, d.clients, d.clients)

	fmt.Fprintln(d.out, "\nsummary")
	fails := 0
	check := func(ok bool, format string, args ...any) {
		verdict := "ok"
		if !ok {
			verdict, fails = "FAILED", fails+1
		}
		fmt.Fprintf(d.out, "  %s: %s\n", fmt.Sprintf(format, args...), verdict)
	}
	check(crossOK, "cross-node send (n2 → a session on n1) delivered 1 in %s", crossTook.Round(time.Microsecond))
	check(worst <= bound, "killed node's sessions gone from every survivor within %s (TTL+heartbeat+1s): worst %s", bound, worst.Round(time.Millisecond))
	check(noSuch && noSuchTook < 200*time.Millisecond, "send to a dead node's session: 404 in %s (< 200ms)", noSuchTook.Round(time.Microsecond))
	check(back == d.clients, "clients back on the survivors: %d = fleet %d", back, d.clients)
	if fails > 0 {
		return exitError{code: 1, err: fmt.Errorf("%d checks failed", fails)}
	}
	return nil
}

// crossSend posts a message for e through node n and waits for its client
// to receive it.
func (d *clusterDemo) crossSend(ctx context.Context, n demoNode, e cluster.Entry) (bool, time.Duration) {
	var dc *demoClient
	for _, c := range d.fleet {
		if c.key == e.Key {
			dc = c
		}
	}
	if dc == nil {
		return false, 0
	}
	start := time.Now()
	code := postSend(ctx, n.http, "id="+e.ID, "hello across nodes")
	took := time.Since(start)
	ok := code == http.StatusOK
	select {
	case m := <-dc.got:
		ok = ok && m == "hello across nodes"
	case <-time.After(5 * time.Second):
		ok = false
	}
	d.say("POST %s/send?id=%s → %d in %s; %s received it", n.name, e.ID, code, took.Round(time.Microsecond), e.Key)
	return ok, took
}

func postSend(ctx context.Context, addr, query, body string) int {
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/send?"+query, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}
