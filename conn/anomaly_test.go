package conn_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/conn/metrics"
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/poll"
	"github.com/lifeline-go/lifeline/internal/syncio"
)

// TestSessionCountAnomaly runs the same churn — peers that connect and
// vanish without a close frame, reaped for silence — on a healthy server
// and on the leaky broken variant (reaped sessions never leave the
// registry). The anomaly judge must stay silent on the first and fire,
// once, with its log line, on the second; Unproven counts exactly the
// leaked sessions.
func TestSessionCountAnomaly(t *testing.T) {
	live := fsm.Liveness{PingInterval: 60 * time.Millisecond, PongTimeout: 40 * time.Millisecond, CloseTimeout: 40 * time.Millisecond}
	for _, leaky := range []bool{false, true} {
		name := "healthy"
		newServer := conn.NewServer
		if leaky {
			name, newServer = "leaky", conn.NewLeakyServer
		}
		t.Run(name, func(t *testing.T) {
			logs := &syncio.Buffer{}
			srv, err := newServer(conn.ServerConfig{Liveness: live, Logger: slog.New(slog.NewJSONHandler(&syncio.Buffer{}, nil))})
			if err != nil {
				t.Fatal(err)
			}
			hs := httptest.NewServer(srv)
			defer hs.Close()
			defer srv.Close()
			a := &metrics.Anomaly{Expected: 10}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { a.Run(ctx, srv, slog.New(slog.NewJSONHandler(logs, nil)), 20*time.Millisecond); close(done) }()
			defer func() { cancel(); <-done }()
			// Three peers go silent (they stop answering pings and reading):
			// the server reaps each for silence.
			const peers = 3
			for range peers {
				ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/", nil)
				if err != nil {
					t.Fatal(err)
				}
				defer ws.Close()
			}
			if !poll.Until(5*time.Second, func() bool { return srv.Stats().Reaped["pong_timeout"] == peers }) {
				t.Fatalf("silent peers not reaped: %+v", srv.Stats())
			}
			// Past every bound (the liveness window, a close, a late tick)
			// and a few judge intervals.
			bound := live.PingInterval + 2*live.PongTimeout + live.CloseTimeout
			time.Sleep(bound + 100*time.Millisecond) // the wait the bound itself defines, not synchronisation
			want := 0
			if leaky {
				want = peers
			}
			if !poll.Until(5*time.Second, func() bool { return srv.Unproven() == want }) {
				t.Fatalf("Unproven = %d, want %d (stats %+v)", srv.Unproven(), want, srv.Stats())
			}
			v := a.Judge(srv.Stats().Registered, srv.Unproven())
			if v.Anomalous() != leaky {
				t.Fatalf("verdict %+v anomalous = %v, want %v", v, v.Anomalous(), leaky)
			}
			if st := srv.Stats(); st.Open != 0 {
				t.Errorf("state counts show %d open sessions; the leak hides from them", st.Open)
			}
			warn := func() int { return strings.Count(logs.String(), `"msg":"session count anomaly"`) }
			if leaky {
				if !poll.Until(5*time.Second, func() bool { return warn() == 1 }) {
					t.Fatalf("no anomaly line logged: %s", logs.String())
				}
				if !strings.Contains(logs.String(), `"registered":3,"unproven":`) || strings.Contains(logs.String(), `"unproven":0`) {
					t.Errorf("anomaly line without the counts: %s", logs.String())
				}
				time.Sleep(100 * time.Millisecond) // five more judgements: a lasting anomaly is still one line
				if warn() != 1 {
					t.Errorf("%d anomaly lines for one lasting anomaly, want 1", warn())
				}
			} else if warn() != 0 {
				t.Errorf("anomaly logged on a healthy server: %s", logs.String())
			}
		})
	}
}
