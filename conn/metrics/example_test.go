package metrics_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/conn/metrics"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// A server with its metrics on an SDK MeterProvider (here read on demand;
// lifeline serve --metrics hands it to the Prometheus exporter). A peer
// connects and closes; the collected instruments say so.
func ExampleNewServer() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()

	sm, _ := metrics.NewServer(metrics.Config{MeterProvider: mp})
	srv, _ := conn.NewServer(conn.ServerConfig{Observer: sm.Observe, Logger: quiet})
	_ = sm.Watch(srv)
	defer func() { _ = sm.Close() }()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer func() { _ = srv.Close() }()

	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
	for end := time.Now().Add(5 * time.Second); srv.Stats().ReapedTotal == 0 && time.Now().Before(end); {
		time.Sleep(5 * time.Millisecond)
	}
	_ = ws.Close()

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(context.Background(), &rm)
	for _, m := range rm.ScopeMetrics[0].Metrics {
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			for _, p := range d.DataPoints {
				if r, ok := p.Attributes.Value("lifeline.session.reason"); ok && p.Value > 0 {
					fmt.Printf("%s{%s} %d\n", m.Name, r.AsString(), p.Value)
				}
			}
		case metricdata.Histogram[float64]:
			for _, p := range d.DataPoints {
				r, _ := p.Attributes.Value("lifeline.session.reason")
				fmt.Printf("%s{%s} count %d\n", m.Name, r.AsString(), p.Count)
			}
		}
	}
	// Output:
	// lifeline.server.session.duration{peer_close} count 1
	// lifeline.server.reaps{peer_close} 1
}
