package metrics_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/conn/metrics"
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/poll"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fastLive reaps a silent peer within 300ms.
var fastLive = fsm.Liveness{PingInterval: 150 * time.Millisecond, PongTimeout: 100 * time.Millisecond, CloseTimeout: 100 * time.Millisecond}

// startServer runs a conn.Server with the metrics attached on 127.0.0.1.
func startServer(t *testing.T, rd *reader, cfg conn.ServerConfig) (*conn.Server, *metrics.Server, string) {
	t.Helper()
	sm, err := metrics.NewServer(metrics.Config{MeterProvider: rd})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Observer, cfg.Logger = sm.Observe, quiet
	srv, err := conn.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := sm.Watch(srv); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
		_ = sm.Close()
	})
	return srv, sm, "ws" + strings.TrimPrefix(hs.URL, "http") + "/"
}

// TestServerMetricsMatchStats runs real peers through a live session, a
// silent one (reaped for silence), one that resets its TCP connection
// (read error) and a refused handshake, and checks every server
// instrument against Stats, exactly.
func TestServerMetricsMatchStats(t *testing.T) {
	rd := newReader(t)
	srv, _, url := startServer(t, rd, conn.ServerConfig{Liveness: fastLive, Authorize: conn.BearerToken("tok")})
	hdr := http.Header(conn.BearerHeader("tok"))
	dial := func() *websocket.Conn {
		ws, _, err := websocket.DefaultDialer.Dial(url, hdr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ws.Close() })
		return ws
	}
	live := dial() // answers pings (gorilla's default ping handler) while it reads
	go func() {
		for {
			if _, _, err := live.ReadMessage(); err != nil {
				return
			}
		}
	}()
	silent := dial()
	silent.SetPingHandler(func(string) error { return nil })
	go func() {
		for {
			if _, _, err := silent.ReadMessage(); err != nil {
				return
			}
		}
	}()
	reset := dial()
	if _, _, err := websocket.DefaultDialer.Dial(url, nil); err == nil {
		t.Fatal("dial without the token succeeded")
	}
	_ = reset.NetConn().(interface{ SetLinger(int) error }).SetLinger(0)
	_ = reset.Close()
	if !poll.Until(5*time.Second, func() bool {
		st := srv.Stats()
		return st.Reaped["pong_timeout"] == 1 && st.Reaped["read_error"] == 1
	}) {
		t.Fatalf("silent and reset peers not reaped: %+v", srv.Stats())
	}
	got := rd.collect(t)
	if !poll.Until(5*time.Second, func() bool { got = rd.collect(t); return got[pt("lifeline.server.ping.rtt", "")] >= 1 }) {
		t.Fatalf("no ping round trip measured from the live peer: %v", got)
	}
	st := srv.Stats()
	want := map[point]float64{
		pt("lifeline.server.handshakes.refused", ""):           1,
		pt("lifeline.server.handshakes.overloaded", ""):        0,
		pt("lifeline.server.handshakes.rate_limited", ""):      0,
		pt("lifeline.server.send_queue.dropped", ""):           0,
		pt("lifeline.server.sessions", "Alive"):                float64(st.Sessions["Alive"]),
		pt("lifeline.server.sessions", "Handshaking"):          0,
		pt("lifeline.server.reaps", "pong_timeout"):            1,
		pt("lifeline.server.reaps", "read_error"):              1,
		pt("lifeline.server.reaps", "shutdown"):                0,
		pt("lifeline.server.session.duration", "pong_timeout"): 1,
		pt("lifeline.server.session.duration", "read_error"):   1,
		pt("lifeline.server.sessions.unproven", ""):            0,
		pt("lifeline.server.sessions.anomaly", ""):             0,
	}
	if st.Sessions["Alive"]+st.Sessions["Suspect"] != 1 {
		t.Fatalf("want the one live peer open, stats %+v", st)
	}
	want[pt("lifeline.server.sessions", "Suspect")] = float64(st.Sessions["Suspect"])
	for p, v := range want {
		if got[p] != v {
			t.Errorf("%s{%s} = %v, want %v (Stats %+v)", p.name, p.attr, got[p], v, st)
		}
	}
}

func pt(name, attr string) point { return point{name, attr} }

// TestServerGlobalProviderByDefault: a nil MeterProvider means the global
// one, a no-op until the program installs an SDK; nothing fails.
func TestServerGlobalProviderByDefault(t *testing.T) {
	sm, err := metrics.NewServer(metrics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := conn.NewServer(conn.ServerConfig{Observer: sm.Observe, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := sm.Watch(srv); err != nil {
		t.Fatal(err)
	}
	if err := sm.Watch(srv); err == nil {
		t.Error("a second Watch succeeded")
	}
	if err := sm.Close(); err != nil {
		t.Error(err)
	}
	if _, err := metrics.NewServer(metrics.Config{ExpectedPeers: -1}); err == nil || !strings.Contains(err.Error(), "ExpectedPeers") {
		t.Errorf("negative ExpectedPeers: %v", err)
	}
}
