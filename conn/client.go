package conn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/fsm"
)

// ClientConfig configures a Client. Only URL (or URLs) is required.
type ClientConfig struct {
	// URL is the server's endpoint, ws:// or wss://.
	URL string

	// URLs are further endpoints of the same service (the nodes of a
	// cluster), tried after URL in order. Every attempt after the first
	// goes to the next endpoint, wrapping around, so a client whose node
	// died or dropped it lands on another one; the Backoff policy's waits
	// between attempts are the same as with one URL. Either URL or URLs
	// may be empty, not both.
	URLs []string

	// Header is sent with every handshake (Authorization, X-Self-ID, ...).
	// BearerHeader builds the usual one.
	Header http.Header

	// Backoff is the reconnect policy. The zero value means
	// fsm.DefaultBackoff(): first retry immediate, then 1 s × 1.6 per
	// failure up to 120 s, ±50 % jitter, 20 s per attempt, no attempt
	// limit. (Any non-zero value is taken as given, fsm's zero-field
	// defaults applied, so FirstImmediate is then what you set.)
	Backoff fsm.Backoff

	// Failures is the failure table: which handshake answers (401, 403,
	// 404, ...) and close codes (1008, ...) mean "go away", so the client
	// waits by its slow schedule in state Rejected instead of backing off,
	// and which (none by default) end it. The zero value means fsm's
	// defaults (fsm.DefaultFailureRules, 30 s ×2 up to 10 min).
	Failures fsm.FailurePolicy

	// Liveness decides when a connected server has gone silent: a server
	// that pings every PingInterval keeps the link proven and the client
	// only answers; if nothing is heard for PingInterval + PongTimeout/4
	// the client pings itself, and if still nothing came by PingInterval +
	// PongTimeout after the last frame it drops the link and reconnects by
	// the policy (fsm.Client.Deadline, fsm.Liveness.ReapDeadline). WriteTimeout
	// bounds each Send. The zero value means fsm's defaults (30 s, 10 s,
	// 10 s); IdleTimeout, MaxErrors and the handshake/close timeouts are not
	// used by clients.
	Liveness fsm.Liveness

	// OnMessage is called for each message from the server, in order, on
	// the link's reader goroutine. While it runs nothing is read, and
	// pongs wait too: a handler that blocks past PongTimeout gets the link
	// dropped. Nil discards messages.
	OnMessage func(t MessageType, data []byte)

	// OnConnect is called after every connect, the first and each
	// reconnect, on Run's goroutine once the link is up and reading: what
	// it sends (a hello, a OneBot lifecycle event) goes out before
	// anything sent after it returns. Run waits for it, so it should only
	// send; a Send that fails there (the link dropped at once) is the
	// caller's to ignore, as the reconnect will call OnConnect again.
	OnConnect func(c *Client)

	// Outbox, when on, holds what Send is given while the client has no
	// link (graceful degradation): at most Count messages and Bytes bytes,
	// each for at most Age, written in order once a link is up again,
	// after OnConnect returns. Over a bound the oldest is dropped; a
	// message that waited past Age when its turn came is dropped, never
	// sent late; SendEphemeral is never queued. Drops are counted in
	// Stats().Outbox and handed to OnDrop. The zero value means off: Send
	// fails at once without a link (docs/decisions.md, "the bounded
	// outbox").
	Outbox fsm.Outbox

	// OnDrop, if set, is called for each message the outbox accepted and
	// then dropped, with its reason and payload, on the goroutine that
	// dropped it (a Send's caller, the drainer or Run's) with no lock held.
	// It must not block for long.
	OnDrop func(OutboxDrop)

	// TLSConfig is used for wss:// URLs. Nil means the system roots.
	TLSConfig *tls.Config

	// NetDialContext dials the TCP (or other stream) connection. Nil means a
	// net.Dialer. Tests use it to run a client over net.Pipe.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// ReadLimit is the largest message accepted from the server, in bytes;
	// a bigger one drops the link. Zero means 16 MiB.
	ReadLimit int64

	// ID names the client in logs and observations. Empty means the URL.
	ID string

	// Rand draws the backoff jitter. Nil means a generator seeded at random
	// per client, so a fleet does not move in lock-step; set a seeded one to
	// make the delays reproducible.
	Rand fsm.Rand

	// Clock times every decision. Nil means clock.New().
	Clock clock.Clock

	// Logger gets one line per transition (docs/decisions.md, "logging
	// contract"), the failed attempt's error included. Nil means
	// slog.Default().
	Logger *slog.Logger

	// Observer, if set, receives every transition and frame (see Observer).
	Observer Observer
}

const defaultClientReadLimit = 16 << 20

// Validate reports every field that breaks a rule, naming it.
func (c ClientConfig) Validate() error {
	var errs []error
	bad := func(field, rule string, v any) {
		errs = append(errs, &fsm.FieldError{Policy: "ClientConfig", Field: field, Rule: rule, Value: v})
	}
	if c.URL == "" && len(c.URLs) == 0 {
		bad("URL", "is required (ws://host:port/path or wss://...)", c.URL)
	} else if c.URL != "" {
		if rule := badURL(c.URL); rule != "" {
			bad("URL", rule, c.URL)
		}
	}
	for i, u := range c.URLs {
		if rule := badURL(u); rule != "" {
			bad("URLs["+strconv.Itoa(i)+"]", rule, u)
		}
	}
	if c.ReadLimit < 0 {
		bad("ReadLimit", "must not be negative (0 means 16 MiB)", c.ReadLimit)
	}
	errs = append(errs, c.Backoff.Validate(), c.Liveness.Validate(), c.Failures.Validate(), c.Outbox.Validate())
	return errors.Join(errs...)
}

// badURL returns the rule u breaks as a WebSocket endpoint, or "".
func badURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return "must not be empty"
	case err != nil:
		return "must parse: " + err.Error()
	case u.Scheme != "ws" && u.Scheme != "wss":
		return "must use the ws or wss scheme"
	case u.Host == "":
		return "must name a host"
	}
	return ""
}

// endpoints returns URL then URLs, the order attempts rotate through.
func (c ClientConfig) endpoints() []string {
	var out []string
	if c.URL != "" {
		out = append(out, c.URL)
	}
	return append(out, c.URLs...)
}

// Client is a reconnecting WebSocket client. Run dials, watches the link
// (pinging a server gone quiet), and on every failure path (refused, DNS, TLS, connect
// or handshake timeout, a non-101 answer, a drop, a silent server) waits
// exactly as long as its Backoff policy says before the next attempt, and
// never less than a refusing server's Retry-After (up to
// Backoff.RetryAfterMax).
//
// Its lifecycle is an fsm.Client owned by Run's goroutine; the other
// methods are safe for concurrent use with Run and with each other.
type Client struct {
	cfg    ClientConfig
	id     string
	clk    clock.Clock
	log    *slog.Logger
	dialer *websocket.Dialer
	epoch  time.Time
	hooks  *testHooks
	urls   []string // endpoints, rotated through per attempt

	url atomic.Pointer[string] // the endpoint of the latest attempt

	state atomic.Uint32 // fsm.State, for State() without the lock
	ran   atomic.Bool

	events chan clientEvent // from dial and link goroutines to Run
	poke   chan struct{}    // cap 1: SetPolicy moved the deadline
	reqs   chan fsm.Event   // the owner's ReconnectNow and ResetBackoff, for Run

	mu    sync.Mutex
	ob    *outbox // nil unless ClientConfig.Outbox is on
	fc    *fsm.Client
	link  *link // the open link, nil unless Connected
	stats ClientStats
	subs  map[*subscriber]struct{}
}

// NewClient returns a Client for cfg, or cfg's validation error.
func NewClient(cfg ClientConfig) (*Client, error) { return newClient(cfg, nil) }

// newClient is NewClient with the test hooks that break it on purpose
// (nil in production); they are set before the jitter source is chosen.
func newClient(cfg ClientConfig, hooks *testHooks) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Backoff == (fsm.Backoff{}) {
		cfg.Backoff = fsm.DefaultBackoff()
	}
	if cfg.ReadLimit == 0 {
		cfg.ReadLimit = defaultClientReadLimit
	}
	rng := cfg.Rand
	if rng == nil { // seeded at random per client: a fleet must not move in lock-step
		rng = hooks.defaultRand()
	}
	fc, err := fsm.NewClient(fsm.ClientConfig{Backoff: cfg.Backoff, Liveness: cfg.Liveness, Rand: rng, Failures: cfg.Failures})
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:    cfg,
		id:     cfg.ID,
		clk:    cfg.Clock,
		log:    orDefault(cfg.Logger),
		events: make(chan clientEvent, 4),
		poke:   make(chan struct{}, 1),
		reqs:   make(chan fsm.Event, 2),
		fc:     fc,
		subs:   make(map[*subscriber]struct{}),
		hooks:  hooks,
	}
	if c.ob, err = newOutbox(cfg.Outbox); err != nil {
		return nil, err
	}
	c.urls = cfg.endpoints()
	c.url.Store(&c.urls[0])
	if c.id == "" {
		c.id = c.urls[0]
	}
	if c.clk == nil {
		c.clk = clock.New()
	}
	c.epoch = c.clk.Now()
	c.dialer = &websocket.Dialer{
		NetDialContext:  cfg.NetDialContext,
		TLSClientConfig: cfg.TLSConfig,
		// No HandshakeTimeout: fsm's ConnectTimeout bounds dial and
		// handshake together, through the attempt's context.
	}
	c.state.Store(uint32(fsm.Idle))
	c.stats.State = fsm.Idle
	return c, nil
}

// URL returns the endpoint of the latest attempt: while Connected, the
// one the link is open to.
func (c *Client) URL() string { return *c.url.Load() }

// ID returns the name the client logs under.
func (c *Client) ID() string { return c.id }

// State returns the client's lifecycle state.
func (c *Client) State() fsm.State { return fsm.State(c.state.Load()) }

// ClientStats is a snapshot of a Client.
type ClientStats struct {
	// State is the lifecycle state when the snapshot was taken.
	State fsm.State
	// Attempts counts connection attempts started since Run began.
	Attempts int
	// Failures is the current run of consecutive failures (what the
	// backoff delay grows with); a link that stayed up StableAfter resets it.
	Failures int
	// Connects counts links that came up.
	Connects int
	// LastError is the error of the latest failed attempt or dropped link,
	// and LastErrorAt when it happened.
	LastError   error
	LastErrorAt time.Time // when LastError happened, by the configured clock
	// ConnectedSince is when the current link came up; zero unless
	// Connected.
	ConnectedSince time.Time
	// NextAttemptAt is when the next attempt is due; zero unless
	// BackingOff.
	NextAttemptAt time.Time
	// Backoff is the policy in force, defaults applied.
	Backoff fsm.Backoff
	// LastFailure is what the latest failed attempt or dropped link said
	// (its HTTP status or close code; "network" when neither), and
	// LastClass how the failure table classed it.
	LastFailure fsm.Failure
	LastClass   fsm.FailureClass // how the failure table classed LastFailure
	// Rejections is the current run of permanent failures (what the slow
	// schedule grows with); a link that comes up ends it.
	Rejections int
	// GaveUp says why the client gave up; empty unless it did.
	GaveUp fsm.GiveUpCause
	// Outbox counts what the outbox (ClientConfig.Outbox) holds, wrote
	// and dropped, by reason; zero when it is off.
	Outbox fsm.OutboxCounts
}

// Stats returns a snapshot of the client's counters.
func (c *Client) Stats() ClientStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stats
	st.Failures = c.fc.Failures()
	st.Backoff = c.fc.Backoff()
	st.Rejections = c.fc.Rejections()
	st.GaveUp = c.fc.GaveUpCause()
	if t, ok := c.fc.ConnectedSince(); ok {
		st.ConnectedSince = t
	}
	if t, ok := c.fc.RetryAt(); ok {
		st.NextAttemptAt = t
	}
	if c.ob != nil {
		st.Outbox = c.ob.q.Counts()
	}
	return st
}

// SetPolicy replaces the reconnect policy while the client runs (or before
// it does). The next failure uses the new policy. A retry already waiting
// is re-drawn under it, but never earlier than the old policy promised
// (fsm.Client.SetBackoff). A zero b means fsm.DefaultBackoff(), as in
// ClientConfig.
func (c *Client) SetPolicy(b fsm.Backoff) error {
	if b == (fsm.Backoff{}) {
		b = fsm.DefaultBackoff()
	}
	c.mu.Lock()
	_, err := c.fc.SetBackoff(c.clk.Now(), b)
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("conn: SetPolicy: %w", err)
	}
	if c.hooks.skipPoke() {
		return nil
	}
	select { // Run re-arms its timer for the (possibly moved) retry
	case c.poke <- struct{}{}:
	default:
	}
	return nil
}

// Send writes one message to the server and returns when it is written,
// when the write fails, or when ctx ends. A failed write also drops the
// link, which Run then reconnects by the policy.
//
// Without an outbox (ClientConfig.Outbox) it never queues: if the client
// is not Connected it returns a *NotConnectedError (errors.Is
// ErrNotConnected) at once, so nothing is dropped silently. With one, a
// Send made while the client has no link, or while the outbox still holds
// or drains messages, is queued behind them and returns nil at once (the
// outbox then owns it: it is written, or dropped and counted); it fails
// only if the client gave up or stopped (*NotConnectedError) or the
// message is larger than the outbox's Bytes (fsm.ErrOutboxTooLarge).
func (c *Client) Send(ctx context.Context, t MessageType, data []byte) error {
	return c.send(ctx, t, data, false)
}

func (c *Client) send(ctx context.Context, t MessageType, data []byte, ephemeral bool) error {
	if t != TextMessage && t != BinaryMessage {
		return fmt.Errorf("conn: client %s: Send takes TextMessage or BinaryMessage, not %d", c.id, t)
	}
	c.mu.Lock()
	l := c.link
	st := c.fc.State()
	if c.ob != nil && !ephemeral {
		if done, err := c.sendQueuedLocked(t, data, l, st); done {
			return err
		}
	} else {
		c.mu.Unlock()
	}
	if l == nil {
		err := &NotConnectedError{State: st}
		c.observe(Observation{Kind: ObsRefused, At: c.clk.Now(), Frame: Frame(t), Size: len(data), Err: err})
		return err
	}
	return l.send(ctx, t, data)
}

// subscriber is one Subscribe channel.
type subscriber struct {
	ch chan fsm.Transition
}

// Subscribe returns a channel that receives the client's transitions
// until ctx ends or Run returns, when it is closed. It never blocks the
// client: the channel holds one transition and a newer one replaces an
// unread older one (it coalesces), so a slow reader always sees the latest
// state but may miss intermediate ones. For every transition, use the
// log or ClientConfig.Observer.
func (c *Client) Subscribe(ctx context.Context) <-chan fsm.Transition {
	sub := &subscriber{ch: make(chan fsm.Transition, 1)}
	c.mu.Lock()
	if c.subs == nil { // Run has returned
		c.mu.Unlock()
		close(sub.ch)
		return sub.ch
	}
	c.subs[sub] = struct{}{}
	c.mu.Unlock()
	context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if _, ok := c.subs[sub]; ok {
			delete(c.subs, sub)
			close(sub.ch)
		}
	})
	return sub.ch
}

// publishLocked hands tr to every subscriber without blocking: an unread
// older transition is replaced.
func (c *Client) publishLocked(tr fsm.Transition) {
	for sub := range c.subs {
		for {
			select {
			case sub.ch <- tr:
			default:
				select {
				case <-sub.ch: // drop the stale one; only this goroutine sends
				default:
				}
				continue
			}
			break
		}
	}
}

// closeSubsLocked closes every subscription: Run has returned.
func (c *Client) closeSubsLocked() {
	for sub := range c.subs {
		close(sub.ch)
	}
	c.subs = nil
}

func (c *Client) observe(o Observation) {
	if c.cfg.Observer == nil {
		return
	}
	o.Machine, o.ID = fsm.MachineClient, c.id
	c.cfg.Observer(o)
}
