// Package metrics exports a conn.Server's and a conn.Client's lifecycle as
// OpenTelemetry metrics. It depends on the OpenTelemetry metric API only,
// like grpc-go: the caller passes a MeterProvider (the global one when
// nil) and chooses the SDK and exporter (`lifeline serve --metrics` uses
// the Prometheus exporter with a registry of its own).
//
// # Usage
//
//	sm, err := metrics.NewServer(metrics.Config{MeterProvider: mp})
//	cfg.Observer = sm.Observe          // transitions, pings and pongs
//	srv, err := conn.NewServer(cfg)
//	err = sm.Watch(srv)                // counts read from srv.Stats() at collection
//
// Counts the server keeps anyway (sessions by state, reaps, refused and
// overloaded handshakes, dropped messages) are read from Stats when the
// exporter collects, so they cost the server nothing; durations and
// round trips are recorded from the Observer, which returns at once for
// the data frames that make the hot path (BenchmarkObserve gives the
// figure, docs/decisions.md the comparison).
//
// # Instruments
//
// Names follow the OpenTelemetry conventions' shape (lifeline.server.*,
// lifeline.client.*), units are UCUM. docs/metrics.md holds the one table
// of them, with their Prometheus names and what each counts.
package metrics
