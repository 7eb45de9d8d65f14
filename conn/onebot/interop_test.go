package onebot

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/oracle"
	"github.com/lifeline-go/lifeline/internal/proc"
	"github.com/lifeline-go/lifeline/internal/report"
)

// Interop with independent WebSocket implementations: Python's websockets
// (Debian's python3-websockets, for Debian's /usr/bin/python3) and Node's
// ws (npm, in testdata/interop). .ci/run installs both; a machine without
// them skips these tests with the reason, except under CI, where a
// missing peer is a failure.

// peer is one independent implementation: how to run its client and its
// server script (testdata/interop/{client,server}.{py,js}).
type peer struct {
	name string
	argv func(script string) []string
}

func interopPeers(t *testing.T) []peer {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "interop"))
	if err != nil {
		t.Fatal(err)
	}
	missing := func(what string) {
		if os.Getenv("CI") != "" {
			t.Fatalf("interop peer missing under CI: %s (.ci/run installs it)", what)
		}
		t.Logf("skipping the %s peer: not installed here (`apt-get install python3-websockets`; `npm ci` in %s)", what, dir)
	}
	var out []peer
	// Debian's python3, not one earlier on PATH: the package installs
	// websockets for it alone.
	const py = "/usr/bin/python3"
	if exec.Command(py, "-c", "import websockets").Run() == nil {
		out = append(out, peer{"python-websockets", func(s string) []string { return []string{py, filepath.Join(dir, s+".py")} }})
	} else {
		missing("Python websockets")
	}
	if node, err := exec.LookPath("node"); err == nil && fileExists(filepath.Join(dir, "node_modules", "ws", "package.json")) {
		out = append(out, peer{"node-ws", func(s string) []string { return []string{node, filepath.Join(dir, s+".js")} }})
	} else {
		missing("Node ws")
	}
	if len(out) == 0 {
		t.Skip("no interop peer installed")
	}
	return out
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func startPeer(t *testing.T, p peer, script string, args ...string) *proc.Child {
	t.Helper()
	c, err := proc.Self{Argv: p.argv(script)}.Start(os.Stderr, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Kill)
	return c
}

// nextJSON returns the helper's next JSON line, decoded.
func nextJSON(t *testing.T, c *proc.Child, timeout time.Duration) map[string]any {
	t.Helper()
	line, err := c.Line("{", timeout)
	if err != nil {
		t.Fatalf("waiting for a JSON line: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte("{"+line), &m); err != nil {
		t.Fatalf("bad line %q: %v", line, err)
	}
	return m
}

// Their client against our forward server: auth refused with 401 and 403
// before the upgrade, accepted with the token; then lifecycle, heartbeat
// and an API answer; killed with SIGKILL or stopped with SIGSTOP, its
// session is reaped within the liveness bound.
func TestInteropTheirClientOurServer(t *testing.T) {
	for _, p := range interopPeers(t) {
		t.Run(p.name, func(t *testing.T) {
			var mu sync.Mutex
			lastHeard := map[string]time.Time{} // per session, from the server's own observations
			reapedAt := map[string]time.Time{}
			observe := func(o conn.Observation) {
				mu.Lock()
				defer mu.Unlock()
				switch {
				case o.Kind == conn.ObsReceive || (o.Kind == conn.ObsTransition && o.Transition.To == fsm.Alive):
					lastHeard[o.ID] = o.At
				case o.Kind == conn.ObsTransition && o.Transition.To == fsm.Reaped:
					reapedAt[o.ID] = o.At
				}
			}
			// silence is how long the session reaped last had heard nothing.
			silence := func() time.Duration {
				mu.Lock()
				defer mu.Unlock()
				var id string
				for k, at := range reapedAt {
					if id == "" || at.After(reapedAt[id]) {
						id = k
					}
				}
				return reapedAt[id].Sub(lastHeard[id])
			}
			f := startForward(t, ServerConfig{AccessToken: "T0k", HeartbeatInterval: 100 * time.Millisecond,
				Conn: conn.ServerConfig{Liveness: fastLive, Observer: observe}})
			for _, c := range []struct{ token, want string }{{"-", "401"}, {"wrong", "403"}} {
				cl := startPeer(t, p, "client", f.url+"/", c.token)
				if got, err := cl.Line("STATUS ", 10*time.Second); err != nil || got != c.want {
					t.Fatalf("token %s: status %q (%v), want %s", c.token, got, err, c.want)
				}
			}
			cl := startPeer(t, p, "client", f.url+"/", "T0k", `{"action":"get_version_info","echo":"v"}`)
			if m := nextJSON(t, cl, 10*time.Second); !isLifecycle(m) {
				t.Fatalf("first message %v", m)
			}
			sawHeartbeat, sawAnswer := false, false
			for !sawHeartbeat || !sawAnswer {
				m := nextJSON(t, cl, 10*time.Second)
				switch {
				case m["meta_event_type"] == "heartbeat":
					st, _ := m["status"].(map[string]any)
					if st["online"] != true || m["interval"] != float64(100) {
						t.Fatalf("heartbeat %v", m)
					}
					sawHeartbeat = true
				case m["echo"] == "v":
					data, _ := m["data"].(map[string]any)
					if m["status"] != "ok" || data["protocol_version"] != "v11" {
						t.Fatalf("answer %v", m)
					}
					sawAnswer = true
				}
			}
			killed, err := cl.Signal(syscall.SIGKILL)
			if err != nil {
				t.Fatal(err)
			}
			bound := fastLive.PingInterval + fastLive.PongTimeout + 50*time.Millisecond
			waitFor(t, "the killed client's session reaped", func() bool { return f.Stats().Open == 0 })
			took := time.Since(killed)
			killTook := took
			if took > bound {
				t.Fatalf("reaped %s after SIGKILL; bound ping+pong+50ms = %s", took, bound)
			}
			t.Logf("%s client killed with SIGKILL: session reaped %s later (bound %s), reasons %v",
				p.name, took.Round(time.Millisecond), bound, f.Stats().Reaped)
			// Stopped, not killed: the socket stays open and silent, and
			// only the pong deadline can find it.
			st := startPeer(t, p, "client", f.url+"/event", "T0k")
			if m := nextJSON(t, st, 10*time.Second); !isLifecycle(m) {
				t.Fatalf("first message %v", m)
			}
			stopped, err := st.Signal(syscall.SIGSTOP)
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the stopped client's session reaped", func() bool { return f.Stats().Open == 0 })
			took = time.Since(stopped)
			// The bound runs from the last frame the server heard, which
			// may precede the signal.
			if quiet := silence(); quiet > bound {
				t.Fatalf("reaped %s after the last frame heard (%s after SIGSTOP); bound ping+pong+50ms = %s", quiet, took, bound)
			}
			if n := f.Conn().Stats().Reaped[fsm.ReasonPongTimeout.String()]; n != 1 {
				t.Fatalf("stopped client reaped, but pong_timeout reaps = %d", n)
			}
			t.Logf("%s client stopped with SIGSTOP: session reaped %s after the signal, %s after its last frame (pong_timeout; bound %s)",
				p.name, took.Round(time.Millisecond), silence().Round(time.Millisecond), bound)
			report.Add(t, report.Row{Section: "OneBot interop (independent clients against onebot.Server)",
				Case:     p.name + " client: no token / wrong token; SIGKILL; SIGSTOP",
				Path:     "401 / 403 before the upgrade; session Reaped (read_error); session Reaped (pong_timeout)",
				Bound:    "reap ≤ ping+pong+50ms = " + bound.String() + " after the last frame",
				Observed: fmt.Sprintf("SIGKILL %s; SIGSTOP %s after the last frame", killTook.Round(time.Millisecond), silence().Round(time.Millisecond)),
				Evidence: "lifecycle, heartbeat and an API answer received first; open sessions 0 after"})
		})
	}
}

// Our reverse client against their server: the headers arrive, API calls
// are answered, a dropped link comes back greeting again, and a server
// that is down gets attempts at the policy's pace (no tight loop) until it
// is back.
func TestInteropOurClientTheirServer(t *testing.T) {
	for _, p := range interopPeers(t) {
		t.Run(p.name, func(t *testing.T) {
			srv := startPeer(t, p, "server", "--drop-first")
			port, err := srv.Line("LISTEN ", 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			b := fsm.Backoff{Initial: 100 * time.Millisecond, Multiplier: 2, Max: 400 * time.Millisecond,
				Jitter: fsm.JitterSymmetric, JitterFraction: 0.2, FirstImmediate: true}
			cl, _ := runReverse(t, ClientConfig{URL: "ws://127.0.0.1:" + port + "/onebot", AccessToken: "T0k",
				HeartbeatInterval: -1, Conn: conn.ClientConfig{Backoff: b}})
			c := cl.Links()[Universal]
			// First link: headers, lifecycle; the server drops it.
			for link := 1; link <= 2; link++ {
				hdr, err := srv.Line("CONN ", 10*time.Second)
				if err != nil {
					t.Fatalf("link %d: %v", link, err)
				}
				var h map[string]string
				if err := json.Unmarshal([]byte(hdr), &h); err != nil {
					t.Fatal(err)
				}
				want := map[string]string{"x-self-id": "10001", "x-client-role": "Universal",
					"authorization": "Bearer T0k", "user-agent": userAgent}
				for k, v := range want {
					if got := lower(h)[k]; got != v {
						t.Errorf("link %d: header %s = %q, want %q", link, k, got, v)
					}
				}
				if m := nextJSON(t, srv, 10*time.Second); !isLifecycle(m) {
					t.Fatalf("link %d began with %v", link, m)
				}
			}
			// The second link stays: the server's get_login_info is answered.
			m := nextJSON(t, srv, 10*time.Second)
			data, _ := m["data"].(map[string]any)
			if !strings.HasSuffix(fmt.Sprint(m["echo"]), "-2") || data["user_id"] != float64(testSelf) {
				t.Fatalf("answer %v", m)
			}
			// The server goes away: attempts follow the policy over a window.
			srv.Kill()
			waitFor(t, "link down", func() bool { return c.State() != fsm.Connected })
			before, start := c.Stats().Attempts, time.Now()
			const window = 1500 * time.Millisecond
			time.Sleep(window) // the measurement window itself: attempts are counted over it
			attempts := c.Stats().Attempts - before
			_, most := oracle.AttemptsWithin(b, window)
			if attempts > most+1 || attempts < 2 {
				t.Fatalf("%d attempts in %s against a dead server; the policy allows at most %d", attempts, time.Since(start).Round(time.Millisecond), most)
			}
			t.Logf("%s server down: %d attempts in %s; the policy allows %d at most", p.name, attempts, window, most)
			report.Add(t, report.Row{Section: "OneBot interop (onebot.Client against independent servers)",
				Case:     p.name + " server: drops the first link; killed; restarted on the same port",
				Path:     "Connected→BackingOff→Connected (lifecycle again); refused attempts at the policy's pace; Connected",
				Bound:    fmt.Sprintf("≤ %d attempts in %s (100 ms ×2 ≤ 400 ms ±20 %%)", most, window),
				Observed: fmt.Sprintf("%d attempts", attempts),
				Evidence: "X-Self-ID, X-Client-Role, Authorization, User-Agent seen on every link; get_login_info answered"})
			// Back on the same port: the client reconnects by itself.
			srv2 := startPeer(t, p, "server", port)
			if _, err := srv2.Line("LISTEN ", 10*time.Second); err != nil {
				t.Fatal(err)
			}
			if _, err := srv2.Line("CONN ", 10*time.Second); err != nil {
				t.Fatalf("no reconnect after the server came back: %v", err)
			}
			if m := nextJSON(t, srv2, 10*time.Second); !isLifecycle(m) {
				t.Fatalf("reconnect began with %v", m)
			}
		})
	}
}

func lower(h map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[strings.ToLower(k)] = v
	}
	return out
}
