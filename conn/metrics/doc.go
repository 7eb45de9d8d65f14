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
// Names follow the OpenTelemetry conventions' shape, units are UCUM. The
// Prometheus exporter turns dots into underscores and adds the unit and
// _total suffixes (lifeline.server.reaps → lifeline_server_reaps_total).
//
//	name                                 instrument                unit       attributes
//	lifeline.server.sessions             async up-down counter     {session}  lifeline.session.state
//	lifeline.server.reaps                async counter             {session}  lifeline.session.reason
//	lifeline.server.session.duration     histogram                 s          lifeline.session.reason
//	lifeline.server.ping.rtt             histogram                 s
//	lifeline.server.send_queue.dropped   async counter             {message}
//	lifeline.server.handshakes.refused   async counter             {request}
//	lifeline.server.handshakes.overloaded async counter            {request}
//	lifeline.server.sessions.unproven    async gauge               {session}  (see Anomaly)
//	lifeline.server.sessions.anomaly     async gauge               1          (see Anomaly)
//	lifeline.client.state                up-down counter           {client}   lifeline.client.state
//	lifeline.client.attempts             counter                   {attempt}
//	lifeline.client.failures             counter                   {failure}  lifeline.client.trigger
//	lifeline.client.backoff.delay        histogram                 s
//	lifeline.client.reconnect.duration   histogram                 s
//	lifeline.client.gave_up              counter                   {client}
//
// lifeline.server.sessions counts registered sessions by state (Reaped
// excluded); lifeline.server.session.duration is from the upgrade to the
// reap of each upgraded session, by the reason it ended; ping.rtt is from
// a ping's write to the next pong read on that session. On the client,
// state counts clients by state from their first transition (a client
// that never ran is in none); failures count failed attempts and dropped
// links by the trigger that ended them (dial_failed, dial_timeout,
// dropped, pong_timeout); reconnect.duration is from a link's drop to
// the next link up.
package metrics
