// Package conn runs lifeline's lifecycles (package fsm) over real
// WebSocket connections: a reconnecting Client and a session-reaping
// Server, on gorilla/websocket.
//
// fsm decides; conn carries out. Neither side ever sleeps on its own
// account or keeps a session fsm has reaped: every wait is a deadline fsm
// returned, every failure an event handed back to fsm.
//
// # Client
//
// Client.Run dials, watches the link (pinging when the server has been
// quiet past its own ping interval), and on every failure path waits
// exactly what the Backoff policy says:
//
//	c, err := conn.NewClient(conn.ClientConfig{
//		URL:       "ws://127.0.0.1:8080/",
//		Header:    conn.BearerHeader(token),
//		Backoff:   fsm.DefaultBackoff(), // 0, then 1 s ×1.6 ±50 % up to 120 s
//		OnMessage: func(t conn.MessageType, data []byte) { ... },
//	})
//	if err != nil { ... }                 // names the bad field
//	go c.Run(ctx)                         // returns when ctx ends, or *GaveUpError
//	err = c.Send(ctx, conn.TextMessage, b) // *NotConnectedError at once if down (queued with ClientConfig.Outbox)
//
// Run is a raft-style driver loop: one goroutine owns the fsm.Client and
// selects over its one timer (armed at Client.Deadline), the results of
// dials and link reads (each tagged with its attempt, so a stale report is
// ignored), policy swaps, and ctx. State, Stats, Subscribe and SetPolicy
// are safe to call from anywhere.
//
// # Server
//
// Server is an http.Handler:
//
//	srv, err := conn.NewServer(conn.ServerConfig{
//		Authorize: conn.BearerToken(token), // 401/403 before the upgrade
//		OnMessage: func(s *conn.Session, t conn.MessageType, data []byte) error {
//			return s.Send(t, data)
//		},
//	})
//	if err != nil { ... }
//	hs := &http.Server{Addr: "127.0.0.1:8080", Handler: srv}
//	go hs.ListenAndServe()
//	...
//	srv.Shutdown(ctx) // close 1001, wait, force; then hs.Shutdown(ctx)
//
// An idle session holds no goroutine and no buffer: on Linux its plain TCP
// connection is read by one epoll loop per Server (EnginePoll; elsewhere,
// and for TLS, a reader goroutine per session, EngineGoroutine), a writer
// runs only while something is queued, and all sessions share one timer;
// an idle session costs 1.3 KiB in-process, 4.6 KiB on EngineGoroutine
// (docs/benchmarks.md, "conn: engine"). A session is reaped, with
// its reason counted in Stats, when its peer closes, its connection fails
// (kill -9 shows up here, as EOF or RST), it stays silent past PingInterval
// + PongTimeout (a stopped process, a blackhole), it does not read fast
// enough to keep its send queue below QueueSize, it is idle past
// IdleTimeout, or OnMessage fails Liveness.MaxErrors times in a row.
// Nothing of a reaped session survives: its connection is closed and its
// goroutines return; sends to it fail with ErrSessionClosed.
//
// # Logging and observation
//
// With slog's JSON handler every transition of a client or session is
// exactly one line:
//
//	{"level":"INFO","msg":"transition","machine":"client","id":"edge-1","from":"Connecting","to":"BackingOff","trigger":"dial_failed","attempt":3,"delay_ms":1310,"error":"attempt 2: dial tcp 127.0.0.1:8080: connect: connection refused"}
//	{"level":"INFO","msg":"transition","machine":"session","id":"17","from":"Alive","to":"Reaped","trigger":"pong_timeout","reason":"pong_timeout","error":"peer silent for 40s: no pong (killed, stopped or cut off)"}
//
// reason appears when a session closes or is reaped, attempt and delay_ms
// when a client schedules a retry, error when a failure caused the
// transition, so each failed attempt is logged once, with its cause.
// Nothing is logged per frame. For property suites and monitoring, an
// Observer receives every transition and every frame sent and received.
package conn
