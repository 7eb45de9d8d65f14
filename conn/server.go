package conn

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/fsm"
)

// ServerConfig configures a Server. The zero value is valid: fsm's default
// liveness policy, no authentication, 64-message send queues, a 64 KiB
// read limit, the real clock and slog's default logger.
type ServerConfig struct {
	// Liveness decides when a session is dead or idle: a ping after
	// PingInterval of silence, reaped PongTimeout later if nothing answers;
	// closed after IdleTimeout without application messages (0: off);
	// every write bounded by WriteTimeout; MaxErrors consecutive
	// OnMessage errors close the session. The zero value means fsm's
	// defaults (30 s, 10 s, off, 10 s, 3).
	Liveness fsm.Liveness

	// Authorize runs before the upgrade. A nil error lets the request
	// through; ErrUnauthorized (or an error wrapping it) answers 401, any
	// other error 403, and no session is created. Nil means no
	// authentication. BearerToken builds the usual one.
	Authorize func(r *http.Request) error

	// OnOpen is called once per session right after its upgrade, on the
	// handler goroutine and before any OnMessage. r is the upgrade request:
	// read what you need (an X-Self-ID header, say) and do not keep it.
	OnOpen func(s *Session, r *http.Request)

	// OnMessage is called for each application message, in order, on a
	// goroutine of the session's own (its reader on EngineGoroutine; on
	// EnginePoll one started for each burst of messages, never the
	// poller's); data is the caller's to keep. While it runs the session
	// reads nothing, so a slow handler delays only its own session. A non-nil error counts as a recoverable protocol error:
	// the session turns Suspect, and Liveness.MaxErrors in a row close it.
	OnMessage func(s *Session, t MessageType, data []byte) error

	// Hook, if set, is asked to admit each request and told of each
	// session's open and close (package cluster's directory). Nil: none.
	Hook SessionHook

	// OnClose is called once per session after it was reaped and its
	// connection closed, on a goroutine of its own.
	OnClose func(s *Session, reason fsm.Reason)

	// QueueSize bounds each session's send queue, in messages. A Send that
	// finds the queue full reaps the session for slow_consumer instead of
	// buffering without bound. Zero means 64.
	QueueSize int

	// ReadLimit is the largest message a peer may send, in bytes; a bigger
	// one closes the session with 1009 (read_error). Zero means 64 KiB.
	ReadLimit int64

	// MaxHandshakes caps the requests being authorized and upgraded at
	// once. A request over the cap is answered 503 before Authorize runs
	// and counted in ServerStats.Overloaded, so a flood of handshakes
	// cannot queue work without bound. Zero means no cap. (A peer that
	// opens TCP and sends nothing never reaches the handler: bound that
	// with http.Server.ReadHeaderTimeout, as `lifeline serve` does.)
	MaxHandshakes int

	// HandshakeRate admits handshakes through a token bucket (PerSecond
	// on average, Burst at once) checked before anything else, Authorize
	// included. A request over it is answered 503 with a Retry-After the
	// bucket computes from its backlog (fsm.Admission.Admit), so that
	// refused clients come back spread at the rate instead of all at +1 s,
	// and counted in ServerStats.RateLimited. The zero value is off.
	HandshakeRate fsm.HandshakeRate

	// CheckOrigin vets the Origin header of browser clients. Nil means
	// gorilla/websocket's default: no Origin header, or one matching Host.
	CheckOrigin func(r *http.Request) bool

	// Clock times the liveness decisions. Nil means clock.New(). Socket
	// deadlines are always set on the wall clock, since the kernel's are.
	Clock clock.Clock

	// Logger gets one line per session transition (docs/decisions.md,
	// "logging contract"). Nil means slog.Default().
	Logger *slog.Logger

	// Observer, if set, receives every transition and every frame sent and
	// received (see Observer for the rules it must follow).
	Observer Observer

	// Engine chooses how sessions' connections are read and written after
	// the upgrade. The zero value, EngineAuto, polls plain TCP connections
	// on Linux (no goroutine and no buffer per idle session) and gives
	// every other connection a reader goroutine; see Engine.
	Engine Engine

	// TimerGranularity is the resolution of the one timer all sessions
	// share: deadlines are rounded up to it, so that sessions due close
	// together are served by one wakeup. Pings and reaps may come up to
	// this much late. Zero means 20 ms, which keeps a reap within the
	// liveness bound + 50 ms with room for scheduling.
	TimerGranularity time.Duration
}

const (
	defaultQueueSize = 64
	defaultReadLimit = 64 << 10
	// defaultTimerGranularity: see ServerConfig.TimerGranularity.
	defaultTimerGranularity = 20 * time.Millisecond
	// serverReadBuffer is small on purpose: an idle session's read buffer
	// lives as long as the session. gorilla/websocket needs 125 bytes (a
	// control frame); frame headers are parsed from the buffer, and a
	// payload larger than it is read straight into the message, so a
	// small buffer costs few extra reads (docs/decisions.md).
	serverReadBuffer = 128
	// serverWriteBuffer is borrowed from a pool shared by all sessions for
	// the duration of one write.
	serverWriteBuffer = 4096
	// closeFrameWait bounds the close frame written as a session is reaped,
	// so a peer that stopped reading cannot hold the descriptor for a full
	// WriteTimeout after the reap.
	closeFrameWait = time.Second
)

// Validate reports every field that breaks a rule, naming it.
func (c ServerConfig) Validate() error {
	var errs []error
	errs = append(errs, c.Liveness.Validate(), c.Engine.validate())
	if c.QueueSize < 0 {
		errs = append(errs, &fsm.FieldError{Policy: "ServerConfig", Field: "QueueSize",
			Rule: "must not be negative (0 means 64)", Value: c.QueueSize})
	}
	if c.ReadLimit < 0 {
		errs = append(errs, &fsm.FieldError{Policy: "ServerConfig", Field: "ReadLimit",
			Rule: "must not be negative (0 means 64 KiB)", Value: c.ReadLimit})
	}
	if c.MaxHandshakes < 0 {
		errs = append(errs, &fsm.FieldError{Policy: "ServerConfig", Field: "MaxHandshakes",
			Rule: "must not be negative (0 means no cap)", Value: c.MaxHandshakes})
	}
	if err := c.HandshakeRate.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.TimerGranularity < 0 {
		errs = append(errs, &fsm.FieldError{Policy: "ServerConfig", Field: "TimerGranularity",
			Rule: "must not be negative (0 means 20ms)", Value: c.TimerGranularity})
	}
	return errors.Join(errs...)
}

// Server is a session-reaping WebSocket endpoint: an http.Handler that
// authenticates before the upgrade and runs each session's fsm lifecycle
// until the session is reaped, whatever way its peer leaves (close frame,
// RST, kill -9, a stopped process, a full send queue, idleness).
//
// An idle session holds no goroutine on EnginePoll (the default for plain
// TCP on Linux: one poller goroutine per Server reads every session) and
// one reader goroutine on EngineGoroutine; a writer goroutine exists only
// while the session has something to write, a handler goroutine only
// while OnMessage runs; all sessions share one timer goroutine. The
// poller and the timer exit when no session is left. Nothing of a session
// survives its reap: its connection is closed and its goroutines return.
//
// Mount it on an http.Server; on the way down call Shutdown before the
// http.Server's own Shutdown, which does not touch hijacked connections.
type Server struct {
	live      fsm.Liveness
	cfg       ServerConfig
	clk       clock.Clock
	log       *slog.Logger
	up        websocket.Upgrader
	epoch     time.Time
	queueSize int
	readLimit int64
	tq        *timerq
	polls     *pollSet // EnginePoll's pollers; nil on the goroutine engine
	hooks     *testHooks
	stateHook SessionStateHook // cfg.Hook, if it implements it

	nextID atomic.Uint64
	wg     sync.WaitGroup // session goroutines and the timer loop

	mu       sync.Mutex
	sessions map[uint64]*Session
	closing  bool
	drained  chan struct{} // closed once closing and no session is left

	states  [32]atomic.Int64  // sessions per fsm.State (Reaped is not kept)
	reaped  [16]atomic.Uint64 // reaps per fsm.Reason
	refused atomic.Uint64     // requests refused before the upgrade
	inHand  atomic.Int64      // requests inside ServeHTTP's handshake part
	over    atomic.Uint64     // requests refused by MaxHandshakes
	limited atomic.Uint64     // requests refused by HandshakeRate
	dropped atomic.Uint64     // queued messages discarded when a session closed

	admitMu sync.Mutex
	admit   *fsm.Admission // HandshakeRate's bucket
}

// NewServer returns a Server for cfg, or cfg's validation error.
func NewServer(cfg ServerConfig) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	srv := &Server{
		live:      cfg.Liveness.WithDefaults(),
		cfg:       cfg,
		clk:       cfg.Clock,
		log:       orDefault(cfg.Logger),
		queueSize: cfg.QueueSize,
		readLimit: cfg.ReadLimit,
		sessions:  make(map[uint64]*Session),
		drained:   make(chan struct{}),
	}
	srv.stateHook, _ = cfg.Hook.(SessionStateHook)
	if srv.clk == nil {
		srv.clk = clock.New()
	}
	if srv.queueSize == 0 {
		srv.queueSize = defaultQueueSize
	}
	if srv.readLimit == 0 {
		srv.readLimit = defaultReadLimit
	}
	srv.epoch = srv.clk.Now()
	srv.admit, _ = fsm.NewAdmission(cfg.HandshakeRate, srv.epoch) // validated above
	srv.up = websocket.Upgrader{
		HandshakeTimeout: srv.live.HandshakeTimeout,
		ReadBufferSize:   serverReadBuffer,
		WriteBufferSize:  serverWriteBuffer,
		WriteBufferPool:  &sync.Pool{},
		CheckOrigin:      cfg.CheckOrigin,
	}
	gran := cfg.TimerGranularity
	if gran == 0 {
		gran = defaultTimerGranularity
	}
	srv.polls = newPollSet(srv)
	srv.tq = newTimerq(srv.clk, srv.epoch, gran, &srv.wg, func(s *Session, now time.Time) { s.tick(now) })
	return srv, nil
}

// Liveness returns the session policy in force, defaults applied.
func (srv *Server) Liveness() fsm.Liveness { return srv.live }

// ServeHTTP authenticates the request, upgrades it and starts the session.
// A refused request gets 401 or 403 and creates no session; during
// Shutdown, over HandshakeRate (with its Retry-After) and over
// MaxHandshakes, every request gets 503.
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if srv.isClosing() {
		http.Error(w, "lifeline: server shutting down", http.StatusServiceUnavailable)
		return
	}
	if ok, ra := srv.admitted(); !ok {
		srv.limited.Add(1)
		w.Header().Set("Retry-After", strconv.FormatInt(int64(ra/time.Second), 10))
		http.Error(w, "lifeline: handshake rate exceeded", http.StatusServiceUnavailable)
		return
	}
	if err := srv.hookAdmit(r); err != nil {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "lifeline: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	n := srv.inHand.Add(1)
	defer srv.inHand.Add(-1)
	if max := srv.cfg.MaxHandshakes; max > 0 && n > int64(max) {
		srv.over.Add(1)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "lifeline: too many handshakes in progress", http.StatusServiceUnavailable)
		return
	}
	if srv.cfg.Authorize != nil {
		if err := srv.cfg.Authorize(r); err != nil {
			srv.refused.Add(1)
			status := http.StatusForbidden
			if errors.Is(err, ErrUnauthorized) {
				status = http.StatusUnauthorized
				w.Header().Set("WWW-Authenticate", `Bearer realm="lifeline"`)
			}
			http.Error(w, http.StatusText(status), status)
			return
		}
	}
	s, err := srv.newSession()
	if err != nil {
		http.Error(w, "lifeline: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	ws, err := srv.up.Upgrade(w, r, nil) // gorilla answers a failure itself
	now := srv.clk.Now()
	s.mu.Lock()
	if err != nil {
		s.stepLocked(now, fsm.EvHandshakeFailed, err)
		s.mu.Unlock()
		return
	}
	if s.fs.State() != fsm.Handshaking { // reaped meanwhile (Shutdown, handshake timeout)
		s.mu.Unlock()
		_ = ws.Close()
		return
	}
	start := srv.attach(s, ws)
	s.heardAt(now)
	s.stepLocked(now, fsm.EvUpgraded, nil)
	s.setReadDeadlineLocked(now)
	s.mu.Unlock()
	if srv.cfg.Hook != nil {
		srv.cfg.Hook.Opened(s, r)
	}
	if srv.cfg.OnOpen != nil {
		srv.cfg.OnOpen(s, r)
	}
	start()
}

// attach gives the upgraded connection to the session, under s.mu, on
// the engine the config chooses, and returns what starts reading it: the
// caller runs that after OnOpen, so no message reaches OnMessage first.
func (srv *Server) attach(s *Session, ws *websocket.Conn) (start func()) {
	if srv.cfg.Engine != EngineGoroutine {
		if w, start := srv.detach(s, ws); w != nil {
			s.w = w
			return start
		}
	}
	s.w = &gorillaWire{Conn: ws}
	ws.SetReadLimit(srv.readLimit)
	ws.SetPingHandler(s.onPing)
	ws.SetPongHandler(s.onPong)
	ws.SetCloseHandler(ignoreClose)
	return func() {
		srv.wg.Add(1)
		// A fresh goroutine, not the handler's: net/http's serving
		// goroutine has a grown stack and buffers that would live as long
		// as the session (docs/decisions.md: 4 KB instead of 16 KB per
		// idle session).
		go s.readLoop(ws)
	}
}

// admitted asks HandshakeRate's bucket about a request arriving now, and
// returns the Retry-After (whole seconds) for a refusal.
func (srv *Server) admitted() (bool, time.Duration) {
	if !srv.cfg.HandshakeRate.On() {
		return true, 0
	}
	srv.admitMu.Lock()
	defer srv.admitMu.Unlock()
	return srv.admit.Admit(srv.clk.Now())
}

// newSession registers a Handshaking session, or reports why it cannot.
func (srv *Server) newSession() (*Session, error) {
	now := srv.clk.Now()
	fs, err := fsm.NewSession(now, srv.live)
	if err != nil { // cannot happen: NewServer validated the policy
		return nil, err
	}
	s := &Session{srv: srv, fs: fs, id: srv.nextID.Add(1)}
	srv.mu.Lock()
	if srv.closing {
		srv.mu.Unlock()
		return nil, ErrServerClosed
	}
	srv.sessions[s.id] = s
	srv.mu.Unlock()
	srv.states[fsm.Handshaking].Add(1)
	if d, ok := fs.Deadline(); ok {
		srv.tq.schedule(s, d, false)
	}
	return s, nil
}

// unregister removes a reaped session from the registry.
func (srv *Server) unregister(s *Session) {
	srv.mu.Lock()
	delete(srv.sessions, s.id)
	if srv.closing && len(srv.sessions) == 0 {
		select {
		case <-srv.drained:
		default:
			close(srv.drained)
		}
	}
	srv.mu.Unlock()
}

func (srv *Server) isClosing() bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.closing
}

// snapshot returns the registered sessions.
func (srv *Server) snapshot() []*Session {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	out := make([]*Session, 0, len(srv.sessions))
	for _, s := range srv.sessions {
		out = append(out, s)
	}
	return out
}

// Session returns the registered (not yet reaped) session with the given
// id.
func (srv *Server) Session(id uint64) (*Session, bool) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	s, ok := srv.sessions[id]
	return s, ok
}

// Broadcast queues a message for every open session and returns how many
// took it. data is shared by all of them and must not be modified
// afterwards. The error joins a *SessionClosedError for each session that
// could not take it (its queue was full: it is reaped for slow_consumer, the
// others are not held back).
func (srv *Server) Broadcast(t MessageType, data []byte) (int, error) {
	return srv.BroadcastTo(nil, t, data)
}

// BroadcastTo is Broadcast to the sessions keep accepts (nil: all), as a
// protocol with several kinds of session sends events to some of them.
// keep is called without any lock held.
func (srv *Server) BroadcastTo(keep func(*Session) bool, t MessageType, data []byte) (int, error) {
	var errs []error
	n := 0
	for _, s := range srv.snapshot() {
		if keep != nil && !keep(s) {
			continue
		}
		err := s.Send(t, data)
		switch {
		case err == nil:
			n++
		case errors.Is(err, ErrSessionClosed):
			// Closing or reaped since the snapshot: not a broadcast
			// failure unless this send is what reaped it.
			var sc *SessionClosedError
			if errors.As(err, &sc) && sc.Reason == fsm.ReasonSlowConsumer && sc.State == fsm.Reaped {
				errs = append(errs, err)
			}
		default:
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// ServerStats is a snapshot of a Server's registry, shaped for JSON.
type ServerStats struct {
	// Sessions counts the sessions in each live state (Handshaking, Alive,
	// Suspect, Closing), by state name; every state is present.
	Sessions map[string]int64 `json:"sessions"`
	// Open is the number of registered sessions, the sum of Sessions. A
	// count that grows while the number of peers does not is a leak.
	Open int64 `json:"open"`
	// Reaped counts reaped sessions by reason name; every reason is present.
	Reaped map[string]uint64 `json:"reaped"`
	// Registered is the size of the registry itself (what Broadcast and
	// Session reach). It equals Open but for the instant of a transition;
	// a difference that lasts means a reaped session was never released.
	Registered int `json:"registered"`
	// ReapedTotal is the sum of Reaped.
	ReapedTotal uint64 `json:"reaped_total"`
	// Refused counts requests turned away before the upgrade (401/403).
	Refused uint64 `json:"refused"`
	// Overloaded counts requests answered 503 because MaxHandshakes
	// handshakes were already in progress.
	Overloaded uint64 `json:"overloaded"`
	// RateLimited counts requests answered 503 with a Retry-After because
	// they came faster than HandshakeRate.
	RateLimited uint64 `json:"rate_limited"`
	// DroppedMessages counts queued messages discarded because their
	// session closed before they were written.
	DroppedMessages uint64 `json:"dropped_messages"`
}

// Stats returns the registry's counts. It takes no lock held by sessions,
// so the counts are each exact but not taken at one instant.
func (srv *Server) Stats() ServerStats {
	st := ServerStats{Sessions: map[string]int64{}, Reaped: map[string]uint64{}}
	for _, s := range fsm.SessionTable().States {
		if s == fsm.Reaped {
			continue
		}
		n := srv.states[s].Load()
		st.Sessions[s.String()] = n
		st.Open += n
	}
	for _, r := range fsm.Reasons() {
		n := srv.reaped[r].Load()
		st.Reaped[r.String()] = n
		st.ReapedTotal += n
	}
	st.Refused = srv.refused.Load()
	st.Overloaded = srv.over.Load()
	st.RateLimited = srv.limited.Load()
	st.DroppedMessages = srv.dropped.Load()
	srv.mu.Lock()
	st.Registered = len(srv.sessions)
	srv.mu.Unlock()
	return st
}

// Shutdown closes every session gracefully and waits for them, in this
// order:
//
//  1. new upgrade requests are refused with 503;
//  2. every open session is sent a close frame with code 1001 (going
//     away) and enters Closing; sessions still handshaking are reaped;
//  3. Shutdown waits until every session is reaped: its peer answered the
//     close, or Liveness.CloseTimeout passed, or its connection failed;
//  4. if ctx ends first, the remaining connections are closed at once
//     without waiting for the peer.
//
// It returns after the last session goroutine has returned (forcing
// closes every connection, so that is prompt): nil if all sessions closed
// gracefully, ctx's error if some had to be forced. A shut-down Server
// cannot be reused; Shutdown again returns ErrServerClosed.
//
// Shutdown does not close the listener or the http.Server the Server is
// mounted on: shut that down after this returns.
func (srv *Server) Shutdown(ctx context.Context) error {
	srv.mu.Lock()
	if srv.closing {
		srv.mu.Unlock()
		return ErrServerClosed
	}
	srv.closing = true
	if len(srv.sessions) == 0 {
		close(srv.drained)
	}
	srv.mu.Unlock()

	now := srv.clk.Now()
	for _, s := range srv.snapshot() {
		s.step(now, fsm.EvShutdown, nil)
	}
	var err error
	select {
	case <-srv.drained:
	case <-ctx.Done():
		err = ctx.Err()
		now := srv.clk.Now()
		for _, s := range srv.snapshot() {
			s.forceClose(now)
		}
	}
	srv.wg.Wait()
	return err
}

// Close closes every session at once, without waiting for close
// handshakes, and waits for their goroutines. See Shutdown.
func (srv *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := srv.Shutdown(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// count moves one session from state from to state to in the gauges, and
// counts a reap by its reason. It runs before the transition is logged or
// observed, so Stats already shows what an observer is told.
func (srv *Server) count(tr *fsm.Transition) {
	srv.states[tr.From].Add(-1)
	if tr.To == fsm.Reaped {
		srv.reaped[tr.Reason].Add(1)
	} else {
		srv.states[tr.To].Add(1)
	}
}

func (srv *Server) observe(o Observation) {
	if srv.cfg.Observer != nil {
		srv.cfg.Observer(o)
	}
}

func ignoreClose(int, string) error { return nil }

func sessionID(id uint64) string { return strconv.FormatUint(id, 10) }
