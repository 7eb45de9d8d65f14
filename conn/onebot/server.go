package onebot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
)

// Role is what a link carries: API calls, events, or both (Universal).
type Role uint8

// Roles, named as the X-Client-Role header names them.
const (
	Universal Role = iota + 1
	API
	Event
)

var roleNames = [...]string{Universal: "Universal", API: "API", Event: "Event"}

// String returns the role as X-Client-Role spells it.
func (r Role) String() string {
	if r >= Universal && int(r) < len(roleNames) {
		return roleNames[r]
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// ParseRole reads a role as X-Client-Role spells it (case-insensitive).
func ParseRole(s string) (Role, error) {
	for r := Universal; r <= Event; r++ {
		if strings.EqualFold(s, roleNames[r]) {
			return r, nil
		}
	}
	return 0, fmt.Errorf("onebot: role %q: want Universal, API or Event", s)
}

func (r Role) carriesEvents() bool { return r == Universal || r == Event }
func (r Role) answersAPI() bool    { return r == Universal || r == API }

// DefaultHeartbeatInterval is the spec's heartbeat.interval default.
const DefaultHeartbeatInterval = 15 * time.Second

// ServerConfig configures a forward WebSocket Server. Only SelfID is
// required.
type ServerConfig struct {
	// SelfID is the bot's account number: self_id of every event, user_id
	// of get_login_info. Must be positive.
	SelfID int64
	// Nickname is get_login_info's nickname. Empty means "lifeline".
	Nickname string
	// AccessToken, when set, is required of every connection as
	// `Authorization: Bearer <token>` or `?access_token=<token>`: none
	// answers 401, a wrong one 403, both before the upgrade, compared in
	// constant time.
	AccessToken string
	// HeartbeatInterval is how often a heartbeat meta event goes to every
	// event link. Zero means 15 s (the spec's default); negative turns
	// heartbeats off. Heartbeats are the application's sign of life;
	// dead links are found by the WebSocket pings of Conn.Liveness.
	HeartbeatInterval time.Duration
	// Actions answer API calls, on top of (and overriding) the standard
	// get_status, get_version_info and get_login_info. Unknown actions
	// answer failed with retcode 1404.
	Actions Actions
	// Status reports the bot's state for get_status and heartbeats. Nil
	// means the transport's own: online while the server serves; good
	// while, besides, no link was reaped for a failed or backed-up send
	// since the previous heartbeat.
	Status func() Status
	// Conn is the transport: Liveness, QueueSize, ReadLimit, Clock,
	// Logger, Observer and the rest as conn.ServerConfig documents them.
	// Its Authorize, OnOpen, OnMessage and OnClose belong to the Server
	// and must be nil.
	Conn conn.ServerConfig
}

// Validate reports every field that breaks a rule, naming it.
func (c ServerConfig) Validate() error {
	var errs []error
	if c.SelfID <= 0 {
		errs = append(errs, fmt.Errorf("onebot: ServerConfig.SelfID %d: must be positive", c.SelfID))
	}
	if c.Conn.Authorize != nil || c.Conn.OnOpen != nil || c.Conn.OnMessage != nil || c.Conn.OnClose != nil {
		errs = append(errs, errors.New("onebot: ServerConfig.Conn: Authorize, OnOpen, OnMessage and OnClose are set by the onebot Server and must be nil"))
	}
	cc := c.Conn
	cc.Authorize, cc.OnOpen, cc.OnMessage, cc.OnClose = nil, nil, nil, nil
	if err := cc.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("onebot: ServerConfig.Conn: %w", err))
	}
	return errors.Join(errs...)
}

// Server is a OneBot v11 forward WebSocket server: an http.Handler for
// the endpoints `/` (API and events), `/api` and `/event`, on a
// conn.Server, so each link is reaped by the conn liveness machinery
// (pings, pong deadline, failed or backed-up sends), not only when a
// heartbeat fails to go out.
type Server struct {
	cfg     ServerConfig
	cs      *conn.Server
	actions Actions
	log     *slog.Logger
	clk     clock.Clock
	status  func() Status

	mu    sync.Mutex
	roles map[uint64]Role

	healthMu   sync.Mutex
	lastBad    uint64 // failed or backed-up sends counted at the last heartbeat
	closing    chan struct{}
	closeOnce  sync.Once
	heartbeats sync.WaitGroup
}

// NewServer returns a Server for cfg, or the error Validate finds. Its
// heartbeat loop runs until Shutdown or Close.
func NewServer(cfg ServerConfig) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	botDefaults(&cfg.Nickname, &cfg.HeartbeatInterval)
	srv := &Server{cfg: cfg, roles: map[uint64]Role{}, closing: make(chan struct{})}
	srv.log = cfg.Conn.Logger
	if srv.log == nil {
		srv.log = slog.Default()
	}
	srv.clk = cfg.Conn.Clock
	if srv.clk == nil {
		srv.clk = clock.New()
	}
	srv.status = cfg.Status
	if srv.status == nil {
		srv.status = srv.transportStatus
	}
	srv.actions = actionsFor(cfg.SelfID, cfg.Nickname, srv.status, cfg.Actions)
	cc := cfg.Conn
	if cfg.AccessToken != "" {
		cc.Authorize = conn.BearerToken(cfg.AccessToken)
	}
	cc.OnOpen = srv.onOpen
	cc.OnMessage = srv.onMessage
	cc.OnClose = srv.onClose
	cs, err := conn.NewServer(cc)
	if err != nil {
		return nil, err
	}
	srv.cs = cs
	if cfg.HeartbeatInterval > 0 {
		srv.heartbeats.Add(1)
		go srv.heartbeatLoop()
	}
	return srv, nil
}

// pathRole maps the spec's endpoints (with or without a trailing slash)
// to the role of their links.
func pathRole(path string) (Role, bool) {
	switch path {
	case "/":
		return Universal, true
	case "/api", "/api/":
		return API, true
	case "/event", "/event/":
		return Event, true
	}
	return 0, false
}

// ServeHTTP answers 404 for paths other than the spec's three, and
// otherwise hands the request to the conn.Server (auth, then upgrade).
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, ok := pathRole(r.URL.Path); !ok {
		http.NotFound(w, r)
		return
	}
	srv.cs.ServeHTTP(w, r)
}

func (srv *Server) onOpen(s *conn.Session, r *http.Request) {
	role, _ := pathRole(r.URL.Path)
	srv.mu.Lock()
	srv.roles[s.ID()] = role
	srv.mu.Unlock()
	if role.carriesEvents() {
		// A full queue here reaps the session: nothing else to do.
		_ = s.Send(conn.TextMessage, LifecycleConnect(srv.cfg.SelfID, srv.clk.Now()))
	}
}

func (srv *Server) role(id uint64) Role {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.roles[id]
}

// onMessage answers API calls on API and Universal links. A message that
// is not a request is answered 1400, logged once, and returned as an
// error: conn counts it, and Liveness.MaxErrors in a row close the link.
// Event links take no input (the spec ignores what clients send there).
func (srv *Server) onMessage(s *conn.Session, _ conn.MessageType, data []byte) error {
	if !srv.role(s.ID()).answersAPI() {
		return nil
	}
	return answer(context.Background(), srv.actions, srv.log, "session", strconv.FormatUint(s.ID(), 10), data,
		func(resp []byte) error { return s.Send(conn.TextMessage, resp) })
}

// answer handles one request and sends the response; a malformed request
// is logged (one line, this message only) and returned as the error.
//
// Responses and events are not requests: answering them would start two
// OneBot ends answering each other's answers, so they are dropped.
func answer(ctx context.Context, a Actions, log *slog.Logger, machine, id string, data []byte, send func([]byte) error) error {
	if isResponse(data) || isEvent(data) {
		return nil
	}
	resp, herr := a.handle(ctx, data)
	if herr != nil {
		log.LogAttrs(ctx, slog.LevelWarn, "malformed request", slog.String("machine", machine),
			slog.String("id", id), slog.String("error", herr.Error()), slog.Int("bytes", len(data)))
	}
	if err := send(resp); err != nil {
		return errors.Join(herr, err)
	}
	return herr
}

func (srv *Server) onClose(s *conn.Session, _ fsm.Reason) {
	srv.mu.Lock()
	delete(srv.roles, s.ID())
	srv.mu.Unlock()
}

// Publish sends an event (a JSON object, or any value to marshal) to
// every event link (`/` and `/event`) and returns how many took it. The
// error names the links reaped because their queue was full.
func (srv *Server) Publish(event any) (int, error) {
	data, err := eventBytes(event)
	if err != nil {
		return 0, err
	}
	return srv.cs.BroadcastTo(func(s *conn.Session) bool { return srv.role(s.ID()).carriesEvents() },
		conn.TextMessage, data)
}

func eventBytes(event any) ([]byte, error) {
	switch e := event.(type) {
	case []byte:
		return e, nil
	case string:
		return []byte(e), nil
	}
	b, err := json.Marshal(event)
	if err != nil {
		return nil, fmt.Errorf("onebot: event: %w", err)
	}
	return b, nil
}

func (srv *Server) heartbeatLoop() {
	defer srv.heartbeats.Done()
	every := srv.cfg.HeartbeatInterval
	t := srv.clk.Ticker(every)
	defer t.Stop()
	for {
		select {
		case <-srv.closing:
			return
		case <-t.C:
			_, _ = srv.Publish(Heartbeat(srv.cfg.SelfID, srv.clk.Now(), srv.status(), every))
		}
	}
}

// transportStatus is the default Status: online while serving; good while
// no link has been reaped for a failed or backed-up send since the
// previous call.
func (srv *Server) transportStatus() Status {
	select {
	case <-srv.closing:
		return Status{}
	default:
	}
	reaped := srv.cs.Stats().Reaped
	bad := reaped[fsm.ReasonSendError.String()] + reaped[fsm.ReasonSlowConsumer.String()]
	srv.healthMu.Lock()
	good := bad == srv.lastBad
	srv.lastBad = bad
	srv.healthMu.Unlock()
	return Status{Online: true, Good: good}
}

// Stats returns the transport's counts (sessions per state, reaps per
// reason) and the open links per role.
func (srv *Server) Stats() ServerStats {
	st := ServerStats{ServerStats: srv.cs.Stats(), Links: map[string]int{}}
	srv.mu.Lock()
	for _, r := range srv.roles {
		st.Links[r.String()]++
	}
	srv.mu.Unlock()
	return st
}

// ServerStats is conn.ServerStats plus the open links per role.
type ServerStats struct {
	conn.ServerStats
	Links map[string]int `json:"links"` // open links by Role.String
}

// Conn returns the underlying conn.Server (Stats, Session, Shutdown).
func (srv *Server) Conn() *conn.Server { return srv.cs }

// Shutdown stops the heartbeats and shuts the transport down: close 1001
// to every link, wait for them until ctx ends, then force (see
// conn.Server.Shutdown).
func (srv *Server) Shutdown(ctx context.Context) error {
	srv.stopHeartbeats()
	return srv.cs.Shutdown(ctx)
}

// Close stops the heartbeats and closes every link at once.
func (srv *Server) Close() error {
	srv.stopHeartbeats()
	return srv.cs.Close()
}

func (srv *Server) stopHeartbeats() {
	srv.closeOnce.Do(func() { close(srv.closing) })
	srv.heartbeats.Wait()
}
