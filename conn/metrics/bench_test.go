package metrics_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/conn/metrics"
)

// BenchmarkObserve is the metrics' cost per observation on the hot path:
// a data frame sent, the fact every message produces.
func BenchmarkObserve(b *testing.B) {
	rd := newReader(b)
	sm, err := metrics.NewServer(metrics.Config{MeterProvider: rd})
	if err != nil {
		b.Fatal(err)
	}
	cm, err := metrics.NewClient(metrics.Config{MeterProvider: rd})
	if err != nil {
		b.Fatal(err)
	}
	o := conn.Observation{Kind: conn.ObsSend, ID: "1234", At: time.Now(), Frame: conn.FrameText, Size: 64}
	b.Run("server", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sm.Observe(o)
		}
	})
	b.Run("client", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			cm.Observe(o)
		}
	})
}

// BenchmarkEchoRoundTrip is one message to a real server on 127.0.0.1
// and its echo back, without an Observer and with the metrics attached:
// the hot path's cost as a user would measure it.
func BenchmarkEchoRoundTrip(b *testing.B) {
	for _, withMetrics := range []bool{false, true} {
		name := "none"
		if withMetrics {
			name = "metrics"
		}
		b.Run(name, func(b *testing.B) {
			cfg := conn.ServerConfig{Logger: quiet, OnMessage: func(s *conn.Session, t conn.MessageType, data []byte) error {
				return s.Send(t, data)
			}}
			if withMetrics {
				sm, err := metrics.NewServer(metrics.Config{MeterProvider: newReader(b)})
				if err != nil {
					b.Fatal(err)
				}
				cfg.Observer = sm.Observe
				defer func() { _ = sm.Close() }()
			}
			srv, err := conn.NewServer(cfg)
			if err != nil {
				b.Fatal(err)
			}
			hs := httptest.NewServer(srv)
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(ctx)
				hs.Close()
			}()
			url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/"
			// Sessions 1 to 120 come and go first: the measured one has a
			// three-digit id, as in a real server (conn formats the id into
			// each Observation; strconv only caches ids below 100).
			for range 120 {
				ws, _, err := websocket.DefaultDialer.Dial(url, nil)
				if err != nil {
					b.Fatal(err)
				}
				_ = ws.Close()
			}
			ws, _, err := websocket.DefaultDialer.Dial(url, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer ws.Close()
			msg := []byte(`{"post_type":"message","message":"hello"}`)
			b.ReportAllocs()
			for b.Loop() {
				if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
					b.Fatal(err)
				}
				if _, _, err := ws.ReadMessage(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
