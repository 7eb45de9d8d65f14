package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/conn/metrics"
	"github.com/lifeline-go/lifeline/fsm"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Client metrics: one metrics.Client serves every conn.Client of a process
// through ClientConfig.Observer. Here a client tries a refused port twice
// and gives up; the counters say how often it tried, how each failure was
// classed, and that it gave up.
func ExampleNewClient() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	cm, err := metrics.NewClient(metrics.Config{MeterProvider: mp})
	if err != nil {
		panic(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0") // a port nothing listens on
	if err != nil {
		panic(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := conn.NewClient(conn.ClientConfig{
		URL:      "ws://" + addr + "/",
		Backoff:  fsm.Backoff{Initial: time.Millisecond, Jitter: fsm.JitterNone, MaxAttempts: 2},
		Observer: cm.Observe,
		Logger:   quiet,
	})
	if err != nil {
		panic(err)
	}
	err = c.Run(context.Background())
	fmt.Println("gave up:", errors.Is(err, conn.ErrGaveUp))

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		panic(err)
	}
	var lines []string
	for _, m := range rm.ScopeMetrics[0].Metrics {
		sum, ok := m.Data.(metricdata.Sum[int64])
		if !ok || !sum.IsMonotonic {
			continue
		}
		for _, p := range sum.DataPoints {
			class, _ := p.Attributes.Value("lifeline.client.failure.class")
			if class.AsString() != "" {
				lines = append(lines, fmt.Sprintf("%s{%s} %d", m.Name, class.AsString(), p.Value))
			} else {
				lines = append(lines, fmt.Sprintf("%s %d", m.Name, p.Value))
			}
		}
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// gave up: true
	// lifeline.client.attempts 2
	// lifeline.client.failures{final} 1
	// lifeline.client.failures{transient} 1
	// lifeline.client.gave_up 1
}
