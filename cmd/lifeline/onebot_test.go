package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/internal/syncio"
)

// `onebot serve`: event links get the lifecycle event then heartbeats,
// the token is required, /stats counts links per role, and every session
// transition is one JSON log line.
func TestOneBotServe(t *testing.T) {
	addr, logs := startListening(t, []string{"onebot", "serve"}, "--self-id", "10001", "--access-token", "T",
		"--heartbeat-interval", "50ms", "--ping-interval", "1s", "--pong-timeout", "500ms")
	if _, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/event", nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %v, want 401", err)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/event?access_token=T", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for _, want := range []string{"lifecycle", "heartbeat"} {
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		var m map[string]any
		if err := ws.ReadJSON(&m); err != nil || m["meta_event_type"] != want || m["self_id"] != float64(10001) {
			t.Fatalf("got %v (%v), want a %s meta event", m, err, want)
		}
	}
	if st := getStats(t, addr, "T"); st["links"].(map[string]any)["Event"] != float64(1) {
		t.Errorf("stats %v", st)
	}
	_ = ws.Close()
	if !waitUntil(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), `"to":"Reaped"`) }) {
		t.Fatalf("no reap logged:\n%s", logs.String())
	}
	checkTransitionLines(t, logs.String(), "session")
}

// `onebot connect`: the application sees the headers and the lifecycle
// event, its API call is answered, and the client logs one JSON line per
// transition.
func TestOneBotConnect(t *testing.T) {
	headers := make(chan http.Header, 1)
	answers := make(chan map[string]any, 1)
	up := websocket.Upgrader{}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		headers <- r.Header.Clone()
		var first map[string]any
		if ws.ReadJSON(&first) != nil || first["sub_type"] != "connect" {
			return
		}
		_ = ws.WriteJSON(map[string]any{"action": "get_version_info", "echo": "cli"})
		var m map[string]any
		if ws.ReadJSON(&m) == nil {
			answers <- m
		}
		_, _, _ = ws.ReadMessage() // until the client closes
	}))
	defer app.Close()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncio.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"onebot", "connect", "--url", "ws" + strings.TrimPrefix(app.URL, "http") + "/ws",
			"--self-id", "10002", "--access-token", "T", "--log-format", "json"}, io.Discard, stderr)
	}()
	select {
	case h := <-headers:
		if h.Get("X-Self-ID") != "10002" || h.Get("X-Client-Role") != "Universal" || h.Get("Authorization") != "Bearer T" ||
			!strings.HasPrefix(h.Get("User-Agent"), "OneBot/11 ") {
			t.Errorf("headers %v", h)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no connection")
	}
	select {
	case m := <-answers:
		if m["echo"] != "cli" || m["status"] != "ok" {
			t.Errorf("answer %v", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d after cancel, want 0:\n%s", code, stderr.String())
	}
	checkTransitionLines(t, stderr.String(), "client")
}

// checkTransitionLines checks the logging contract on a JSON log: every
// "transition" line has machine, id, from, to and trigger.
func checkTransitionLines(t *testing.T, log, machine string) {
	t.Helper()
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || m["msg"] != "transition" {
			continue
		}
		n++
		for _, k := range []string{"machine", "id", "from", "to", "trigger"} {
			if m[k] == nil || m[k] == "" {
				t.Errorf("transition line without %s: %s", k, line)
			}
		}
		if m["machine"] != machine {
			t.Errorf("machine %v, want %s: %s", m["machine"], machine, line)
		}
	}
	if n == 0 {
		t.Errorf("no transition lines in:\n%s", log)
	}
}

func TestOneBotUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"onebot"}, "onebot serve|connect"},
		{[]string{"onebot", "listen"}, "onebot serve|connect"},
		{[]string{"onebot", "serve"}, "-self-id is required"},
		{[]string{"onebot", "connect", "--self-id", "1"}, "-url is required"},
		{[]string{"onebot", "connect", "--url", "ws://127.0.0.1:1/", "--self-id", "1", "--role", "Both"}, `role "Both"`},
		{[]string{"onebot", "connect", "--url", "ws://127.0.0.1:1/", "--self-id", "1", "--role", "Universal,API"}, "cannot be combined"},
		{[]string{"onebot", "connect", "--url", "ws://127.0.0.1:1/", "--self-id", "1", "--jitter", "wild"}, "unknown jitter kind"},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), tc.args, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
