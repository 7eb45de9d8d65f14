package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/conn/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// metricsOpts are the flags serve and onebot serve share for the
// Prometheus endpoint.
type metricsOpts struct {
	addr     string
	expected int
	interval time.Duration
}

func metricsFlags(fs *flag.FlagSet) *metricsOpts {
	m := &metricsOpts{}
	fs.StringVar(&m.addr, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics (empty: off)")
	fs.IntVar(&m.expected, "expected-peers", 0, "peers this server should hold at most; more sessions is an anomaly (0: no expectation)")
	fs.DurationVar(&m.interval, "anomaly-interval", 10*time.Second, "how often the session count is judged for an anomaly (with --metrics)")
	return m
}

// exporter is a running Prometheus endpoint: the OpenTelemetry SDK with
// the Prometheus exporter on a registry of its own (never the global one:
// two servers in one process, or a test, must not share counters).
type exporter struct {
	opts *metricsOpts
	mp   *sdkmetric.MeterProvider
	reg  *prometheus.Registry
	sm   *metrics.Server
}

// attach prepares the metrics for a server about to be built from cfg:
// it chains the metrics' Observer into cfg. It returns nil, and leaves cfg
// alone, when --metrics is off.
func (m *metricsOpts) attach(cfg *conn.ServerConfig) (*exporter, error) {
	if m.expected < 0 {
		return nil, usageError{fmt.Errorf("-expected-peers must not be negative, got %d", m.expected)}
	}
	if m.interval <= 0 {
		return nil, usageError{fmt.Errorf("-anomaly-interval must be positive, got %s", m.interval)}
	}
	if m.addr == "" {
		return nil, nil
	}
	reg := prometheus.NewRegistry()
	pe, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(pe))
	sm, err := metrics.NewServer(metrics.Config{MeterProvider: mp, ExpectedPeers: m.expected})
	if err != nil {
		return nil, usageError{err}
	}
	if prev := cfg.Observer; prev != nil {
		cfg.Observer = func(o conn.Observation) { prev(o); sm.Observe(o) }
	} else {
		cfg.Observer = sm.Observe
	}
	return &exporter{opts: m, mp: mp, reg: reg, sm: sm}, nil
}

// serve watches srv, serves GET /metrics on the flag's address and judges
// the session count, until ctx ends; then it stops all three. A nil
// exporter does nothing.
func (e *exporter) serve(ctx context.Context, srv *conn.Server, logger *slog.Logger) (stop func(), err error) {
	if e == nil {
		return func() {}, nil
	}
	if err := e.sm.Watch(srv); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", e.opts.addr)
	if err != nil {
		return nil, fmt.Errorf("-metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	logger.Info("metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	actx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { e.sm.Anomaly().Run(actx, srv, logger, e.opts.interval); close(done) }()
	return func() {
		cancel()
		<-done
		sctx, c2 := context.WithTimeout(context.Background(), time.Second)
		defer c2()
		_ = errors.Join(hs.Shutdown(sctx), e.sm.Close(), e.mp.Shutdown(sctx))
	}, nil
}
