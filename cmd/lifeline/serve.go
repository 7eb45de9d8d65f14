package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/lifeline-go/lifeline/cluster"
	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
)

// shutdownGrace bounds the close handshakes of serve's sessions on the way
// down; what is left after it is closed at once.
const shutdownGrace = 5 * time.Second

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	var live fsm.Liveness
	livenessFlags(fs, &live)
	idleFlag(fs, &live)
	token := fs.String("token", "", "require `Authorization: Bearer <token>` (or ?access_token=) before the upgrade, and for /stats, /sessions and /send")
	logFormat := fs.String("log-format", "text", "log format: json or text")
	lim := limitFlags(fs)
	mo := metricsFlags(fs)
	cl := clusterFlags(fs)
	keyHeader := fs.String("key-header", "X-Key", "cluster: the request header whose value is a session's key (POST /send?key=); X-Self-ID for OneBot")
	engineName := fs.String("engine", "auto", "how sessions are read: auto (poll for plain TCP on Linux), goroutine (a reader goroutine per session) or poll")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	engine, err := parseEngine(*engineName)
	if err != nil {
		return usageError{err}
	}
	if err := lim.check(); err != nil {
		return usageError{err}
	}
	logger, err := newLogger(*logFormat, stderr)
	if err != nil {
		return usageError{err}
	}
	cfg := conn.ServerConfig{
		Liveness:  live,
		Logger:    logger,
		OnMessage: func(s *conn.Session, t conn.MessageType, data []byte) error { return s.Send(t, data) },
		Engine:    engine,
	}
	if *token != "" {
		cfg.Authorize = conn.BearerToken(*token)
	}
	lim.apply(&cfg)
	exp, err := mo.attach(&cfg)
	if err != nil {
		return err
	}
	ccfg, err := cl.config(logger, func(r *http.Request) string { return r.Header.Get(*keyHeader) })
	if err != nil {
		return usageError{err}
	}
	var node *cluster.Node
	if ccfg != nil {
		if node, err = cluster.New(*ccfg); err != nil {
			return usageError{err}
		}
		cfg.Hook = node
	}
	srv, err := conn.NewServer(cfg)
	if err != nil {
		return usageError{err}
	}
	stopMetrics, err := exp.serve(ctx, srv, logger)
	if err != nil {
		return err
	}
	defer stopMetrics()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if node == nil {
		return serve(ctx, srv, func() any { return srv.Stats() }, ln, cfg.Authorize, logger, lim.handshake)
	}
	cs := newClusterServer(srv, node, cfg.Authorize)
	stats := func() any { return clusterStats{ServerStats: srv.Stats(), Cluster: node.Stats()} }
	return serve(ctx, cs, stats, ln, cfg.Authorize, logger, lim.handshake)
}

// lifecycleServer is what serve runs: conn.Server, onebot.Server.
type lifecycleServer interface {
	http.Handler
	Shutdown(ctx context.Context) error
}

// serve runs srv on ln, with stats() as JSON at GET /stats, until ctx
// ends; then it shuts the sessions down (1001, bounded by shutdownGrace)
// and the HTTP server after them. headerTimeout bounds the request
// headers of every connection (a slowloris peer is cut off there).
func serve(ctx context.Context, srv lifecycleServer, stats func() any, ln net.Listener, auth func(*http.Request) error,
	logger *slog.Logger, headerTimeout time.Duration) error {
	mux := http.NewServeMux()
	mux.Handle("GET /stats", statsHandler(stats, auth))
	mux.Handle("/", srv)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: headerTimeout}
	logger.Info("listening", "addr", ln.Addr().String(), "websocket", "ws://"+ln.Addr().String()+"/",
		"stats", "http://"+ln.Addr().String()+"/stats")
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, conn.ErrServerClosed) {
		logger.Warn("sessions forced closed", "error", err)
	}
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	logger.Info("stopped", "stats", stats())
	return nil
}

// statsHandler answers GET /stats with stats() as JSON, behind the same
// authorization as the WebSocket endpoint.
func statsHandler(stats func() any, auth func(*http.Request) error) http.Handler {
	return authorized(auth, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, stats())
	}))
}

// livenessFlags registers the heartbeat flags serve and connect share.
func livenessFlags(fs *flag.FlagSet, l *fsm.Liveness) {
	d := fsm.DefaultLiveness()
	fs.DurationVar(&l.PingInterval, "ping-interval", d.PingInterval, "ping after this much silence")
	fs.DurationVar(&l.PongTimeout, "pong-timeout", d.PongTimeout, "drop the link if nothing answers a ping within this")
}

// idleFlag registers the idle tier's flag serve and audit share.
func idleFlag(fs *flag.FlagSet, l *fsm.Liveness) {
	fs.DurationVar(&l.IdleTimeout, "idle-timeout", 0, "close sessions with no application message for this long (0: off)")
}

// newLogger returns a slog logger writing format ("json" or "text") to w.
func newLogger(format string, w io.Writer) (*slog.Logger, error) {
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	}
	return nil, fmt.Errorf("-log-format must be json or text, not %q", format)
}

// parseEngine reads --engine.
func parseEngine(name string) (conn.Engine, error) {
	for _, e := range []conn.Engine{conn.EngineAuto, conn.EngineGoroutine, conn.EnginePoll} {
		if e.String() == name {
			return e, nil
		}
	}
	return 0, fmt.Errorf("--engine %q: want auto, goroutine or poll", name)
}
