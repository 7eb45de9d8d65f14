package onebot

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/syncio"
)

// appLink is one reverse link as the test application saw it.
type appLink struct {
	header http.Header
	ws     *websocket.Conn
	msgs   chan map[string]any
}

// testApp is a minimal OneBot application: it accepts reverse links and
// hands each to the test.
type testApp struct {
	url    string
	links  chan *appLink
	wg     sync.WaitGroup // readers
	mu     sync.Mutex     // guards closed, and orders wg.Add before wg.Wait
	closed bool
}

func startApp(t *testing.T) *testApp {
	t.Helper()
	app := &testApp{links: make(chan *appLink, 16)}
	up := websocket.Upgrader{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		l := &appLink{header: r.Header.Clone(), ws: ws, msgs: make(chan map[string]any, 64)}
		app.mu.Lock()
		if app.closed { // the test is over: a handler still running after hs.Close (hijacked)
			app.mu.Unlock()
			_ = ws.Close()
			return
		}
		app.wg.Add(1)
		app.mu.Unlock()
		go func() { // answers the client's pings (gorilla's default) and collects messages
			defer app.wg.Done()
			defer close(l.msgs)
			for {
				_, data, err := ws.ReadMessage()
				if err != nil {
					return
				}
				var m map[string]any
				if json.Unmarshal(data, &m) == nil {
					l.msgs <- m
				}
			}
		}()
		app.links <- l
	}))
	app.url = "ws" + strings.TrimPrefix(hs.URL, "http") + "/onebot/v11/ws"
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		app.mu.Lock()
		app.closed = true // no reader starts after this
		app.mu.Unlock()
		for {
			select {
			case l := <-app.links:
				_ = l.ws.Close()
				continue
			default:
			}
			break
		}
		app.wg.Wait()
	})
	return app
}

func (app *testApp) next(t *testing.T) *appLink {
	t.Helper()
	select {
	case l := <-app.links:
		t.Cleanup(func() { _ = l.ws.Close() })
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no reverse link came")
		return nil
	}
}

func (l *appLink) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case m, ok := <-l.msgs:
		if !ok {
			t.Fatal("link closed")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
		return nil
	}
}

// runReverse starts a Client and stops it at the end of the test.
func runReverse(t *testing.T, cfg ClientConfig) (*Client, *syncio.Buffer) {
	t.Helper()
	if cfg.SelfID == 0 {
		cfg.SelfID = testSelf
	}
	if cfg.Conn.Liveness == (fsm.Liveness{}) {
		cfg.Conn.Liveness = fastLive
	}
	logs := &syncio.Buffer{}
	cfg.Conn.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	cl, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return cl, logs
}

func isLifecycle(m map[string]any) bool {
	return m["meta_event_type"] == "lifecycle" && m["sub_type"] == "connect" && m["self_id"] == float64(testSelf)
}

func TestClientUniversalHeadersLifecycleAndAPI(t *testing.T) {
	app := startApp(t)
	runReverse(t, ClientConfig{URL: app.url, AccessToken: "tok", HeartbeatInterval: -1})
	l := app.next(t)
	want := map[string]string{"X-Self-Id": "10001", "X-Client-Role": "Universal",
		"Authorization": "Bearer tok", "User-Agent": userAgent}
	for k, v := range want {
		if got := l.header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if m := l.next(t); !isLifecycle(m) {
		t.Fatalf("first message %v, want lifecycle connect", m)
	}
	_ = l.ws.WriteMessage(websocket.TextMessage, []byte(`{"action":"get_login_info","echo":"q1"}`))
	m := l.next(t)
	data, _ := m["data"].(map[string]any)
	if m["echo"] != "q1" || m["status"] != "ok" || data["user_id"] != float64(testSelf) {
		t.Fatalf("answer %v", m)
	}
}

// A link the application drops is redialled by the policy, and greets
// again with the lifecycle event (the popular peer's Universal link never
// came back).
func TestClientReconnectsAfterDrop(t *testing.T) {
	app := startApp(t)
	runReverse(t, ClientConfig{URL: app.url, HeartbeatInterval: -1,
		Conn: conn.ClientConfig{Backoff: fsm.Backoff{Initial: 20 * time.Millisecond, FirstImmediate: true}}})
	for i := range 3 {
		l := app.next(t)
		if m := l.next(t); !isLifecycle(m) {
			t.Fatalf("link %d began with %v", i, m)
		}
		_ = l.ws.Close() // no close frame: the client sees the link fail
	}
}

func TestClientSplitLinks(t *testing.T) {
	app := startApp(t)
	cl, _ := runReverse(t, ClientConfig{URL: app.url, Roles: []Role{API, Event}, HeartbeatInterval: 30 * time.Millisecond})
	byRole := map[string]*appLink{}
	for range 2 {
		l := app.next(t)
		byRole[l.header.Get("X-Client-Role")] = l
	}
	ev, api := byRole["Event"], byRole["API"]
	if ev == nil || api == nil {
		t.Fatalf("roles seen: %v", byRole)
	}
	if m := ev.next(t); !isLifecycle(m) {
		t.Fatalf("event link began with %v", m)
	}
	if m := ev.next(t); m["meta_event_type"] != "heartbeat" || m["interval"] != float64(30) {
		t.Fatalf("event link then sent %v, want a heartbeat", m)
	}
	_ = api.ws.WriteMessage(websocket.TextMessage, []byte(`{"action":"get_status","echo":5}`))
	m := api.next(t) // no lifecycle, no heartbeat on the API link: the answer comes first
	data, _ := m["data"].(map[string]any)
	if m["echo"] != float64(5) || data["online"] != true || data["good"] != true {
		t.Fatalf("API link answered %v", m)
	}
	if n, err := cl.Publish(context.Background(), json.RawMessage(`{"post_type":"notice"}`)); n != 1 || err != nil {
		t.Fatalf("Publish = %d, %v", n, err)
	}
	for {
		if m := ev.next(t); m["post_type"] == "notice" {
			break
		}
	}
}

// Nothing listening: the attempts follow the policy (no tight loop), and
// Publish fails at once with a typed error.
func TestClientServerDown(t *testing.T) {
	ln := httptest.NewServer(http.NotFoundHandler())
	url := "ws" + strings.TrimPrefix(ln.URL, "http")
	ln.Close() // refused from now on
	b := fsm.Backoff{Initial: 50 * time.Millisecond, Multiplier: 2, Max: 200 * time.Millisecond, FirstImmediate: true}
	cl, logs := runReverse(t, ClientConfig{URL: url, HeartbeatInterval: -1, Conn: conn.ClientConfig{Backoff: b}})
	_, err := cl.Publish(context.Background(), "{}")
	var nc *conn.NotConnectedError
	if !errors.As(err, &nc) {
		t.Fatalf("Publish while down = %v, want *conn.NotConnectedError", err)
	}
	c := cl.Links()[Universal]
	start := time.Now()
	waitFor(t, "five attempts", func() bool { return c.Stats().Attempts >= 5 })
	// Attempts 1..5 need at least the policy's earliest delays between
	// them: 0 (immediate), then 50·0.8, 100·0.8, 200·0.8 ms.
	if took, floor := time.Since(start), b.WithDefaults().Earliest(1)+b.WithDefaults().Earliest(2)+b.WithDefaults().Earliest(3); took < floor {
		t.Fatalf("5 attempts in %s, faster than the policy allows (%s)", took, floor)
	}
	if n := strings.Count(logs.String(), `"to":"BackingOff"`); n < 4 {
		t.Fatalf("%d BackingOff lines for %d attempts", n, c.Stats().Attempts)
	}
}

func TestClientConfigValidate(t *testing.T) {
	cases := []struct {
		cfg  ClientConfig
		want string
	}{
		{ClientConfig{URL: "ws://x/"}, "SelfID 0"},
		{ClientConfig{URL: "ws://x/", SelfID: 1, Roles: []Role{Universal, API}}, "cannot be combined"},
		{ClientConfig{URL: "ws://x/", SelfID: 1, Roles: []Role{API, API}}, "API twice"},
		{ClientConfig{URL: "ws://x/", SelfID: 1, Conn: conn.ClientConfig{URL: "ws://y/"}}, "must be empty"},
		{ClientConfig{URL: "ftp://x/", SelfID: 1}, "Universal link"},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want it to say %q", c.cfg, err, c.want)
		}
	}
}

func TestDefaultBackoffStartsAtSpecInterval(t *testing.T) {
	b := DefaultBackoff()
	if b.Initial != 3*time.Second || !b.FirstImmediate || b.Jitter == fsm.JitterNone {
		t.Fatalf("DefaultBackoff = %+v", b)
	}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
}
