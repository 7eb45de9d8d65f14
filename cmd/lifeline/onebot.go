package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/conn/onebot"
	"github.com/lifeline-go/lifeline/fsm"
)

// runOneBot dispatches `lifeline onebot serve|connect`.
func runOneBot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usage := usageError{fmt.Errorf("usage: lifeline onebot serve|connect [flags] (-h for each)")}
	if len(args) == 0 {
		return usage
	}
	switch args[0] {
	case "serve":
		return oneBotServe(ctx, args[1:], stderr)
	case "connect":
		return oneBotConnect(ctx, args[1:], stderr)
	}
	return usage
}

// oneBotServe runs a forward WebSocket server that answers get_status,
// get_version_info and get_login_info (others: failed, 1404) and emits
// the lifecycle and heartbeat meta events.
func oneBotServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("onebot serve", stderr)
	addr := fs.String("addr", "127.0.0.1:6700", "address to listen on (endpoints /, /api, /event)")
	token := fs.String("access-token", "", "require this access token (Authorization: Bearer, or ?access_token=) before the upgrade")
	hb := fs.Duration("heartbeat-interval", onebot.DefaultHeartbeatInterval, "heartbeat meta event period (negative: off)")
	selfID := fs.Int64("self-id", 0, "the bot's account number (required)")
	nickname := fs.String("nickname", "", "get_login_info's nickname (default lifeline)")
	var live fsm.Liveness
	livenessFlags(fs, &live)
	logFormat := fs.String("log-format", "text", "log format: json or text")
	lim := limitFlags(fs)
	mo := metricsFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := lim.check(); err != nil {
		return usageError{err}
	}
	if *selfID <= 0 {
		return usageError{fmt.Errorf("-self-id is required (a positive account number), got %d", *selfID)}
	}
	logger, err := newLogger(*logFormat, stderr)
	if err != nil {
		return usageError{err}
	}
	cc := conn.ServerConfig{Liveness: live, Logger: logger}
	lim.apply(&cc)
	exp, err := mo.attach(&cc)
	if err != nil {
		return err
	}
	srv, err := onebot.NewServer(onebot.ServerConfig{SelfID: *selfID, Nickname: *nickname, AccessToken: *token,
		HeartbeatInterval: *hb, Conn: cc})
	if err != nil {
		return usageError{err}
	}
	stopMetrics, err := exp.serve(ctx, srv.Conn(), logger)
	if err != nil {
		_ = srv.Close()
		return err
	}
	defer stopMetrics()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		_ = srv.Close()
		return err
	}
	var auth func(*http.Request) error
	if *token != "" {
		auth = conn.BearerToken(*token)
	}
	return serve(ctx, srv, func() any { return srv.Stats() }, ln, auth, logger, lim.handshake)
}

// oneBotConnect runs a reverse WebSocket client: Universal, or API and/or
// Event links, reconnecting by the backoff flags (default: the spec's
// 3000 ms as the first delay, then ×1.6 with ±50 % jitter).
func oneBotConnect(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("onebot connect", stderr)
	url := fs.String("url", "", "the application's reverse WebSocket URL (required)")
	roles := fs.String("role", "Universal", "links to keep: Universal, API, Event, or API,Event")
	apiURL := fs.String("api-url", "", "URL of the API link (default --url)")
	eventURL := fs.String("event-url", "", "URL of the Event link (default --url)")
	selfID := fs.Int64("self-id", 0, "the bot's account number, sent as X-Self-ID (required)")
	nickname := fs.String("nickname", "", "get_login_info's nickname (default lifeline)")
	token := fs.String("access-token", "", "send `Authorization: Bearer <token>`")
	hb := fs.Duration("heartbeat-interval", onebot.DefaultHeartbeatInterval, "heartbeat meta event period (negative: off)")
	backoff := backoffFlags(fs, onebot.DefaultBackoff())
	var live fsm.Liveness
	livenessFlags(fs, &live)
	logFormat := fs.String("log-format", "text", "log format: json or text")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	b, err := backoff()
	if err != nil {
		return err
	}
	var rs []onebot.Role
	for _, name := range strings.Split(*roles, ",") {
		r, err := onebot.ParseRole(strings.TrimSpace(name))
		if err != nil {
			return usageError{fmt.Errorf("-role: %w", err)}
		}
		rs = append(rs, r)
	}
	logger, err := newLogger(*logFormat, stderr)
	if err != nil {
		return usageError{err}
	}
	if *url == "" && (*apiURL == "" || *eventURL == "") {
		return usageError{fmt.Errorf("-url is required")}
	}
	if *selfID <= 0 {
		return usageError{fmt.Errorf("-self-id is required (a positive account number), got %d", *selfID)}
	}
	cl, err := onebot.NewClient(onebot.ClientConfig{URL: *url, Roles: rs, APIURL: *apiURL, EventURL: *eventURL,
		SelfID: *selfID, Nickname: *nickname, AccessToken: *token, HeartbeatInterval: *hb,
		Conn: conn.ClientConfig{Backoff: b, Liveness: live, Logger: logger}})
	if err != nil {
		return usageError{err}
	}
	return gaveUp(cl.Run(ctx), b.MaxAttempts)
}
