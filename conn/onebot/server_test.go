package onebot

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/syncio"
)

const testSelf = 10001

// fastLive reaps a silent peer within 1.55 s, so tests take seconds.
var fastLive = fsm.Liveness{PingInterval: time.Second, PongTimeout: 500 * time.Millisecond}

type testForward struct {
	*Server
	url  string // ws://127.0.0.1:port
	logs *syncio.Buffer
}

func startForward(t *testing.T, cfg ServerConfig) *testForward {
	t.Helper()
	if cfg.SelfID == 0 {
		cfg.SelfID = testSelf
	}
	if cfg.Conn.Liveness == (fsm.Liveness{}) {
		cfg.Conn.Liveness = fastLive
	}
	logs := &syncio.Buffer{}
	if cfg.Conn.Logger == nil {
		cfg.Conn.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
	})
	return &testForward{Server: srv, url: "ws" + strings.TrimPrefix(hs.URL, "http"), logs: logs}
}

// dialWS dials path with header h and returns the link, or the HTTP
// status of a refused handshake.
func dialWS(t *testing.T, url string, h http.Header) (*websocket.Conn, int) {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url, h)
	if err != nil {
		if resp != nil {
			return nil, resp.StatusCode
		}
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return ws, http.StatusSwitchingProtocols
}

// readJSON reads the next message into a map, failing after timeout.
func readJSON(t *testing.T, ws *websocket.Conn, timeout time.Duration) map[string]any {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(timeout))
	_, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("not JSON: %q", data)
	}
	return m
}

func TestServerAuthBeforeUpgrade(t *testing.T) {
	f := startForward(t, ServerConfig{AccessToken: "s3cret", HeartbeatInterval: -1})
	cases := []struct {
		name   string
		path   string
		header http.Header
		want   int
	}{
		{"no token", "/", nil, http.StatusUnauthorized},
		{"wrong bearer", "/", http.Header{"Authorization": {"Bearer nope"}}, http.StatusForbidden},
		{"wrong query", "/api?access_token=nope", nil, http.StatusForbidden},
		{"other scheme", "/", http.Header{"Authorization": {"Basic czNjcmV0"}}, http.StatusForbidden},
		{"bearer", "/", http.Header{"Authorization": {"Bearer s3cret"}}, http.StatusSwitchingProtocols},
		{"query", "/event?access_token=s3cret", nil, http.StatusSwitchingProtocols},
		{"unknown path", "/other", http.Header{"Authorization": {"Bearer s3cret"}}, http.StatusNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, got := dialWS(t, f.url+c.path, c.header)
			if got != c.want {
				t.Fatalf("status %d, want %d", got, c.want)
			}
		})
	}
	if st := f.Stats(); st.Refused != 4 {
		t.Errorf("Refused = %d, want the 4 refused before the upgrade", st.Refused)
	}
}

func TestServerLifecycleOnEventLinksOnly(t *testing.T) {
	f := startForward(t, ServerConfig{HeartbeatInterval: -1})
	for _, path := range []string{"/", "/event", "/event/"} {
		ws, _ := dialWS(t, f.url+path, nil)
		m := readJSON(t, ws, 5*time.Second)
		if m["post_type"] != "meta_event" || m["meta_event_type"] != "lifecycle" || m["sub_type"] != "connect" ||
			m["self_id"] != float64(testSelf) || m["time"] == nil {
			t.Errorf("%s: first message %v, want the lifecycle connect meta event", path, m)
		}
	}
	// An API link gets no events: the first thing on it is the answer.
	ws, _ := dialWS(t, f.url+"/api", nil)
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"action":"get_status","echo":1}`)); err != nil {
		t.Fatal(err)
	}
	if m := readJSON(t, ws, 5*time.Second); m["echo"] != float64(1) {
		t.Errorf("/api: first message %v, want the response", m)
	}
}

func TestServerHeartbeatCarriesStatusAndInterval(t *testing.T) {
	f := startForward(t, ServerConfig{HeartbeatInterval: 50 * time.Millisecond})
	ws, _ := dialWS(t, f.url+"/event", nil)
	readJSON(t, ws, 5*time.Second) // lifecycle
	for range 3 {
		m := readJSON(t, ws, 5*time.Second)
		st, _ := m["status"].(map[string]any)
		if m["meta_event_type"] != "heartbeat" || m["interval"] != float64(50) || st["online"] != true || st["good"] != true {
			t.Fatalf("heartbeat %v", m)
		}
	}
}

// The default status is the transport's: a link reaped for a backed-up
// queue makes the next status not good; the one after is good again.
func TestServerStatusIsReal(t *testing.T) {
	f := startForward(t, ServerConfig{HeartbeatInterval: -1, Conn: conn.ServerConfig{QueueSize: 1}})
	if st := f.status(); !st.Online || !st.Good {
		t.Fatalf("fresh server status %+v", st)
	}
	ws, _ := dialWS(t, f.url+"/event", nil)
	_ = ws // never reads: its queue fills
	waitFor(t, "session open", func() bool { return f.Stats().Open == 1 })
	big := []byte(`"` + strings.Repeat("x", 1<<20) + `"`)
	for f.Conn().Stats().Reaped[fsm.ReasonSlowConsumer.String()] == 0 {
		if _, err := f.Publish(big); err != nil {
			break
		}
	}
	waitFor(t, "slow consumer reaped", func() bool { return f.Conn().Stats().Reaped[fsm.ReasonSlowConsumer.String()] == 1 })
	if st := f.status(); !st.Online || st.Good {
		t.Fatalf("status after a slow-consumer reap %+v, want online, not good", st)
	}
	if st := f.status(); !st.Good {
		t.Fatalf("status a round later %+v, want good again", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = f.Shutdown(ctx)
	if st := f.status(); st.Online {
		t.Fatalf("status after shutdown %+v, want offline", st)
	}
}

func TestServerAnswersActions(t *testing.T) {
	f := startForward(t, ServerConfig{HeartbeatInterval: -1, Nickname: "bot",
		Actions: Actions{"send_private_msg": func(_ context.Context, p json.RawMessage) (any, error) {
			var args struct {
				UserID int64 `json:"user_id"`
			}
			if err := json.Unmarshal(p, &args); err != nil || args.UserID == 0 {
				return nil, &ActionError{Retcode: RetBadRequest, Message: "user_id required"}
			}
			return map[string]int{"message_id": 7}, nil
		}}})
	ws, _ := dialWS(t, f.url+"/api", nil)
	cases := []struct {
		req     string
		status  string
		retcode float64
		data    string // JSON of data
	}{
		{`{"action":"get_login_info","echo":"a"}`, "ok", 0, `{"nickname":"bot","user_id":10001}`},
		{`{"action":"get_version_info","echo":"b"}`, "ok", 0, `{"app_name":"lifeline","app_version":"` + version + `","protocol_version":"v11"}`},
		{`{"action":"get_status","echo":"c"}`, "ok", 0, `{"good":true,"online":true}`},
		{`{"action":"send_private_msg","params":{"user_id":5,"message":"hi"},"echo":"d"}`, "ok", 0, `{"message_id":7}`},
		{`{"action":"send_private_msg","params":{},"echo":"e"}`, "failed", RetBadRequest, `null`},
		{`{"action":"send_private_msg_async","params":{"user_id":5},"echo":"f"}`, "async", 1, `null`},
		{`{"action":"no_such_action","echo":{"n":1}}`, "failed", RetNotFound, `null`},
	}
	for _, c := range cases {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(c.req)); err != nil {
			t.Fatal(err)
		}
		m := readJSON(t, ws, 5*time.Second)
		var req map[string]any
		_ = json.Unmarshal([]byte(c.req), &req)
		data, _ := json.Marshal(m["data"])
		echo, _ := json.Marshal(m["echo"])
		wantEcho, _ := json.Marshal(req["echo"])
		if m["status"] != c.status || m["retcode"] != c.retcode || string(data) != c.data || string(echo) != string(wantEcho) {
			t.Errorf("%s\n  got  %v\n  want status %s retcode %v data %s echo %s", c.req, m, c.status, c.retcode, c.data, wantEcho)
		}
	}
}

// Malformed JSON is answered 1400 and logged once per message; it does
// not close the link unless it repeats MaxErrors times in a row.
func TestServerMalformedJSON(t *testing.T) {
	f := startForward(t, ServerConfig{HeartbeatInterval: -1,
		Conn: conn.ServerConfig{Liveness: fsm.Liveness{PingInterval: time.Second, PongTimeout: 500 * time.Millisecond, MaxErrors: 3}}})
	ws, _ := dialWS(t, f.url+"/", nil)
	readJSON(t, ws, 5*time.Second) // lifecycle
	send := func(s string) map[string]any {
		t.Helper()
		if err := ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			t.Fatal(err)
		}
		return readJSON(t, ws, 5*time.Second)
	}
	for _, bad := range []string{`{not json`, `{"params":{},"echo":"x"}`} {
		if m := send(bad); m["retcode"] != float64(RetBadRequest) || m["status"] != "failed" {
			t.Fatalf("%s answered %v, want failed 1400", bad, m)
		}
	}
	if m := send(`{"action":"get_status","echo":2}`); m["status"] != "ok" {
		t.Fatalf("a good request after two bad ones: %v", m)
	}
	if got := strings.Count(f.logs.String(), `"msg":"malformed request"`); got != 2 {
		t.Fatalf("%d malformed-request log lines for 2 malformed requests:\n%s", got, f.logs.String())
	}
	for range 3 {
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`[1,2,3]`))
	}
	waitFor(t, "link closed for protocol errors", func() bool {
		return f.Conn().Stats().Reaped[fsm.ReasonProtocolErrors.String()] == 1
	})
}

func TestServerPublishGoesToEventLinks(t *testing.T) {
	f := startForward(t, ServerConfig{HeartbeatInterval: -1})
	uni, _ := dialWS(t, f.url+"/", nil)
	ev, _ := dialWS(t, f.url+"/event", nil)
	api, _ := dialWS(t, f.url+"/api", nil)
	readJSON(t, uni, 5*time.Second)
	readJSON(t, ev, 5*time.Second)
	waitFor(t, "three links", func() bool { return f.Stats().Open == 3 })
	n, err := f.Publish(map[string]any{"post_type": "message", "message": "hi"})
	if err != nil || n != 2 {
		t.Fatalf("Publish = %d, %v; want 2 event links", n, err)
	}
	for _, ws := range []*websocket.Conn{uni, ev} {
		if m := readJSON(t, ws, 5*time.Second); m["message"] != "hi" {
			t.Fatalf("event link got %v", m)
		}
	}
	// The API link got nothing: its next message is the answer to this.
	_ = api.WriteMessage(websocket.TextMessage, []byte(`{"action":"get_status","echo":9}`))
	if m := readJSON(t, api, 5*time.Second); m["echo"] != float64(9) {
		t.Fatalf("API link got %v", m)
	}
	if st := f.Stats(); st.Links["Universal"] != 1 || st.Links["Event"] != 1 || st.Links["API"] != 1 {
		t.Fatalf("Links = %v", st.Links)
	}
}

// A peer whose connection vanishes (no close frame) is reaped by the
// transport, and its role entry goes with it.
func TestServerReapsVanishedPeer(t *testing.T) {
	f := startForward(t, ServerConfig{HeartbeatInterval: -1})
	ws, _ := dialWS(t, f.url+"/", nil)
	waitFor(t, "session open", func() bool { return f.Stats().Open == 1 })
	_ = ws.NetConn().Close()
	waitFor(t, "session reaped", func() bool { st := f.Stats(); return st.Open == 0 && st.Links["Universal"] == 0 })
}

func TestServerConfigValidate(t *testing.T) {
	cases := []struct {
		cfg  ServerConfig
		want string
	}{
		{ServerConfig{}, "SelfID 0: must be positive"},
		{ServerConfig{SelfID: 1, Conn: conn.ServerConfig{OnOpen: func(*conn.Session, *http.Request) {}}}, "must be nil"},
		{ServerConfig{SelfID: 1, Conn: conn.ServerConfig{QueueSize: -1}}, "QueueSize"},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want it to say %q", c.cfg, err, c.want)
		}
	}
	if _, err := NewServer(ServerConfig{SelfID: -5}); err == nil {
		t.Error("NewServer accepted SelfID -5")
	}
}

func TestParseRole(t *testing.T) {
	for _, r := range []Role{Universal, API, Event} {
		got, err := ParseRole(strings.ToLower(r.String()))
		if err != nil || got != r {
			t.Errorf("ParseRole(%q) = %v, %v", r.String(), got, err)
		}
	}
	if _, err := ParseRole("Both"); err == nil || !strings.Contains(err.Error(), `"Both"`) {
		t.Errorf("ParseRole(Both) = %v", err)
	}
}

// waitFor polls cond until it holds, failing after 10 s. The conditions
// are counters the server updates as sessions change; polling them is
// the only way to observe them from outside.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// Two OneBot ends facing each other (our reverse client dialling our
// forward server) must not answer each other's events and responses: the
// link stays up with no protocol errors.
func TestEndsDoNotAnswerAnswers(t *testing.T) {
	f := startForward(t, ServerConfig{HeartbeatInterval: 20 * time.Millisecond})
	cl, logs := runReverse(t, ClientConfig{URL: f.url + "/", HeartbeatInterval: 20 * time.Millisecond})
	c := cl.Links()[Universal]
	waitFor(t, "connected", func() bool { return c.State() == fsm.Connected })
	waitFor(t, "session open", func() bool { return f.Stats().Open == 1 })
	time.Sleep(200 * time.Millisecond) // the observation window: ten heartbeat periods each way
	if st := f.Stats(); st.ReapedTotal != 0 || strings.Contains(f.logs.String(), "malformed") || strings.Contains(logs.String(), "malformed") {
		t.Fatalf("reaped %v; server log:\n%s\nclient log:\n%s", st.Reaped, f.logs.String(), logs.String())
	}
	if c.Stats().Connects != 1 {
		t.Fatalf("the link was dropped: %+v", c.Stats())
	}
}
