package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// call makes an HTTP request with the token and decodes the JSON answer.
func call(t *testing.T, method, url, token, body string, into any) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if into != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, b)
		}
	}
	return resp.StatusCode
}

// TestServeCluster runs two `lifeline serve --node` processes' worth of
// serve in this process, clustered by routes, and drives the cluster
// endpoints: /sessions lists a session of the other node, /send reaches
// it by id and by key, a missing session is 404, /stats has the cluster,
// and every endpoint wants the token.
func TestServeCluster(t *testing.T) {
	ra, rb := freeAddr(t), freeAddr(t)
	lease := []string{"--lease-ttl", "3s", "--lease-heartbeat", "1s", "--token", "T"}
	a, _ := startServe(t, append([]string{"--node", "a", "--cluster-listen", ra, "--cluster-peers", rb}, lease...)...)
	b, _ := startServe(t, append([]string{"--node", "b", "--cluster-listen", rb, "--cluster-peers", ra}, lease...)...)
	got := make(chan string, 4)
	h := conn.BearerHeader("T")
	h.Set("X-Key", "alice")
	c, err := conn.NewClient(conn.ClientConfig{URL: "ws://" + a + "/", Header: h, Logger: slog.New(slog.DiscardHandler),
		Backoff:   fsm.Backoff{Initial: 100 * time.Millisecond, Max: 500 * time.Millisecond},
		OnMessage: func(_ conn.MessageType, d []byte) { got <- string(d) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	var list []struct{ ID, Node, Key, State string }
	if !waitUntil(t, 60*time.Second, func() bool {
		list = nil
		return call(t, "GET", "http://"+b+"/sessions", "T", "", &list) == 200 && len(list) == 1
	}) {
		t.Fatalf("b never listed a's session: %+v", list)
	}
	id := list[0].ID
	if l := list[0]; !strings.HasPrefix(l.ID, "a.") || !strings.HasSuffix(l.ID, "/1") || l.Node != "a" || l.Key != "alice" || l.State != "Alive" {
		t.Errorf("GET /sessions on b = %+v", list)
	}
	for _, q := range []string{"id=" + id, "key=alice"} {
		var r struct{ Delivered int }
		if code := call(t, "POST", "http://"+b+"/send?"+q, "T", "hello "+q, &r); code != 200 || r.Delivered != 1 {
			t.Errorf("POST /send?%s on b = %d %+v, want 200 delivered 1", q, code, r)
		}
		select {
		case m := <-got:
			if m != "hello "+q {
				t.Errorf("client got %q", m)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("client got nothing for /send?%s", q)
		}
	}
	for _, tc := range []struct {
		method, path, token string
		want                int
	}{
		{"POST", "/send?id=" + strings.TrimSuffix(id, "/1") + "/99", "T", 404},
		{"POST", "/send?id=a.1/1", "T", 404}, // an incarnation before this one
		{"POST", "/send?key=nobody", "T", 404},
		{"POST", "/send?id=nonsense", "T", 400},
		{"POST", "/send", "T", 400},
		{"POST", "/send?id=" + id, "", 401},
		{"GET", "/sessions", "", 401},
		{"GET", "/sessions", "wrong", 403},
	} {
		if code := call(t, tc.method, "http://"+b+tc.path, tc.token, "x", nil); code != tc.want {
			t.Errorf("%s %s (token %q) = %d, want %d", tc.method, tc.path, tc.token, code, tc.want)
		}
	}
	var st struct {
		Open    int64 `json:"open"`
		Cluster struct {
			Node  string
			Total int
			Nodes []struct {
				Node     string
				State    string
				Sessions int
			}
		} `json:"cluster"`
	}
	if code := call(t, "GET", "http://"+a+"/stats", "T", "", &st); code != 200 || st.Cluster.Node != "a" ||
		st.Cluster.Total != 1 || len(st.Cluster.Nodes) != 2 || st.Open != 1 {
		t.Errorf("GET /stats on a = %d %+v", code, st)
	}
}

func TestServeClusterFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--cluster-listen", "127.0.0.1:1"}, "--node is required"},
		{[]string{"serve", "--node", "a b"}, "--node"},
		{[]string{"serve", "--node", "a", "--lease-ttl", "10s", "--lease-heartbeat", "5s"}, "--lease-heartbeat must be at most TTL/3"},
		{[]string{"serve", "--node", "a", "--lease-ttl", "2500ms", "--lease-heartbeat", "500ms"}, "--lease-ttl must be whole seconds"},
		{[]string{"serve", "--node", "a", "--cluster-listen", "nohost"}, "--cluster-listen must be HOST:PORT"},
		{[]string{"serve", "--node", "a", "--cluster-peers", "127.0.0.1:1"}, "--cluster-peers need"},
		{[]string{"serve", "--node", "a", "--nats", "nats://x:4222", "--cluster-listen", "127.0.0.1:1"}, "exclude each other"},
		{[]string{"serve", "--node", "a", "--nats", "http://x"}, "--nats URL 1 must be"},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), tc.args, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// TestDemoCluster runs `lifeline demo --cluster` and checks that its own
// checks passed: three node processes, one SIGKILLed, its sessions gone
// from the survivors within the bound, the fleet back on them.
func TestDemoCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: three node processes and a lease expiry")
	}
	var out, stderr bytes.Buffer
	code := run(context.Background(), []string{"demo", "--cluster", "--clients", "6"}, &out, &stderr)
	if code != 0 {
		t.Fatalf("demo --cluster exited %d:\n%s\n%s", code, out.String(), stderr.String())
	}
	for _, want := range []string{"delivered 1", "gone from every survivor within 5s", "clients back on the survivors: 6 = fleet 6: ok"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}
