package onebot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
)

// DefaultReconnectInterval is the spec's ws_reverse.reconnect_interval
// default. lifeline makes it the first delay of a backoff, not a fixed
// period (DefaultBackoff).
const DefaultReconnectInterval = 3 * time.Second

// DefaultBackoff is the reverse links' reconnect policy: fsm's default
// (first retry immediate, ×1.6 per failure, ±50 % jitter, at most 120 s,
// no attempt limit, 20 s per attempt) with the spec's 3000 ms as the
// first delay.
func DefaultBackoff() fsm.Backoff {
	b := fsm.DefaultBackoff()
	b.Initial = DefaultReconnectInterval
	return b
}

// userAgent is sent by reverse links, in the form OneBot implementations
// use: the protocol, then the implementation and its version.
const userAgent = "OneBot/11 " + appName + "/" + version

// ClientConfig configures a reverse WebSocket Client. URL and SelfID are
// required.
type ClientConfig struct {
	// URL is the application's reverse WebSocket endpoint (ws:// or wss://).
	URL string
	// Roles are the links to keep. Empty means one Universal link (API and
	// events on one connection); {API, Event} keeps two links, each its own
	// reconnecting client, as use_universal_client=false does.
	Roles []Role
	// APIURL and EventURL, when set, replace URL for the API and the Event
	// link.
	APIURL, EventURL string
	// SelfID is the bot's account number, sent as X-Self-ID and in every
	// event. Must be positive.
	SelfID int64
	// Nickname is get_login_info's nickname. Empty means "lifeline".
	Nickname string
	// AccessToken, when set, is sent as `Authorization: Bearer <token>`.
	AccessToken string
	// HeartbeatInterval is how often a heartbeat meta event goes out on
	// each connected event link. Zero means 15 s; negative turns them off.
	HeartbeatInterval time.Duration
	// Actions answer the API calls that arrive on Universal and API links,
	// on top of (and overriding) get_status, get_version_info and
	// get_login_info.
	Actions Actions
	// Status reports the bot's state for get_status and heartbeats. Nil
	// means the links' own: online while any link is connected, good while
	// all are.
	Status func() Status
	// Conn is the template of every link's transport: Backoff (zero means
	// DefaultBackoff), Liveness, TLSConfig, Clock, Logger, Observer, Rand
	// as conn.ClientConfig documents them. URL, Header, ID, OnMessage and
	// OnConnect are set per link by the Client and must be empty.
	Conn conn.ClientConfig
}

// Validate reports every field that breaks a rule, naming it.
func (c ClientConfig) Validate() error {
	var errs []error
	if c.SelfID <= 0 {
		errs = append(errs, fmt.Errorf("onebot: ClientConfig.SelfID %d: must be positive", c.SelfID))
	}
	seen := map[Role]bool{}
	for _, r := range c.Roles {
		if r < Universal || r > Event {
			errs = append(errs, fmt.Errorf("onebot: ClientConfig.Roles: %v is not a role", r))
		}
		if seen[r] {
			errs = append(errs, fmt.Errorf("onebot: ClientConfig.Roles: %v twice", r))
		}
		seen[r] = true
	}
	if seen[Universal] && len(c.Roles) > 1 {
		errs = append(errs, errors.New("onebot: ClientConfig.Roles: Universal carries API and events; it cannot be combined with API or Event"))
	}
	if c.Conn.URL != "" || c.Conn.Header != nil || c.Conn.ID != "" || c.Conn.OnMessage != nil || c.Conn.OnConnect != nil {
		errs = append(errs, errors.New("onebot: ClientConfig.Conn: URL, Header, ID, OnMessage and OnConnect are set by the onebot Client and must be empty"))
	}
	for _, l := range c.links() {
		cc := c.Conn
		cc.URL = l.url
		if err := cc.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("onebot: %v link: %w", l.role, err))
		}
	}
	return errors.Join(errs...)
}

type linkSpec struct {
	role Role
	url  string
}

func (c ClientConfig) links() []linkSpec {
	roles := c.Roles
	if len(roles) == 0 {
		roles = []Role{Universal}
	}
	var out []linkSpec
	for _, r := range roles {
		u := c.URL
		switch {
		case r == API && c.APIURL != "":
			u = c.APIURL
		case r == Event && c.EventURL != "":
			u = c.EventURL
		}
		out = append(out, linkSpec{role: r, url: u})
	}
	return out
}

// Client is a OneBot v11 reverse WebSocket client: the bot dials the
// application and keeps each link (Universal, or API and Event) up with
// its own conn.Client, reconnecting by the Backoff policy after every
// failure, a drop after connecting included. On every (re)connect an event
// link first sends the lifecycle connect meta event, then heartbeats at
// HeartbeatInterval; API calls that arrive on a Universal or API link are
// answered.
type Client struct {
	cfg     ClientConfig
	links   []*clientLink
	actions Actions
	status  func() Status
	log     *slog.Logger
	clk     clock.Clock
	ran     sync.Once
}

type clientLink struct {
	role Role
	c    *conn.Client
}

// NewClient returns a Client for cfg, or the error Validate finds.
func NewClient(cfg ClientConfig) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	botDefaults(&cfg.Nickname, &cfg.HeartbeatInterval)
	if cfg.Conn.Backoff == (fsm.Backoff{}) {
		cfg.Conn.Backoff = DefaultBackoff()
	}
	cl := &Client{cfg: cfg, log: cfg.Conn.Logger, clk: cfg.Conn.Clock}
	if cl.log == nil {
		cl.log = slog.Default()
	}
	if cl.clk == nil {
		cl.clk = clock.New()
	}
	cl.status = cfg.Status
	if cl.status == nil {
		cl.status = cl.linkStatus
	}
	cl.actions = actionsFor(cfg.SelfID, cfg.Nickname, cl.status, cfg.Actions)
	for _, spec := range cfg.links() {
		l := &clientLink{role: spec.role}
		cc := cfg.Conn
		cc.URL = spec.url
		cc.ID = spec.role.String()
		cc.Header = http.Header{
			"X-Self-Id":     {strconv.FormatInt(cfg.SelfID, 10)},
			"X-Client-Role": {spec.role.String()},
			"User-Agent":    {userAgent},
		}
		if cfg.AccessToken != "" {
			cc.Header.Set("Authorization", "Bearer "+cfg.AccessToken)
		}
		if spec.role.carriesEvents() {
			cc.OnConnect = cl.greet
		}
		if spec.role.answersAPI() {
			cc.OnMessage = func(_ conn.MessageType, data []byte) { cl.onRequest(l, data) }
		}
		c, err := conn.NewClient(cc)
		if err != nil {
			return nil, err
		}
		l.c = c
		cl.links = append(cl.links, l)
	}
	return cl, nil
}

// greet sends the lifecycle connect event, first on every new link. It
// belongs to this link, so it is ephemeral: never queued, and ahead of
// what an outbox (Conn.Outbox) held while the link was down.
func (cl *Client) greet(c *conn.Client) {
	_ = c.SendEphemeral(context.Background(), conn.TextMessage, LifecycleConnect(cl.cfg.SelfID, cl.clk.Now()))
}

// onRequest answers one API call on the link's reader goroutine. A link
// that drops meanwhile loses the answer (the caller's timeout tells it).
func (cl *Client) onRequest(l *clientLink, data []byte) {
	_ = answer(context.Background(), cl.actions, cl.log, "client", l.role.String(), data,
		func(resp []byte) error { return l.c.Send(context.Background(), conn.TextMessage, resp) })
}

// Run keeps every link up and sends the heartbeats until ctx ends; then
// it closes the links and returns nil once everything it started has
// returned. If a link's Backoff gives up (MaxAttempts), Run stops the
// others and returns that link's *conn.GaveUpError. A Client runs once.
func (cl *Client) Run(ctx context.Context) error {
	err := conn.ErrClientUsed
	cl.ran.Do(func() { err = cl.run(ctx) })
	return err
}

func (cl *Client) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(cl.links))
	var wg sync.WaitGroup
	for _, l := range cl.links {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := l.c.Run(ctx)
			if err != nil {
				cancel()
			}
			errs <- err
		}()
	}
	if cl.cfg.HeartbeatInterval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl.heartbeatLoop(ctx)
		}()
	}
	wg.Wait()
	close(errs)
	var first error
	for err := range errs {
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (cl *Client) heartbeatLoop(ctx context.Context) {
	every := cl.cfg.HeartbeatInterval
	t := cl.clk.Ticker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Links that are down get none: a heartbeat is a sign of life
			// now, not one to deliver later (ephemeral: an outbox never
			// holds one, so none is flushed stale after a reconnect).
			_, _ = cl.publish(ctx, Heartbeat(cl.cfg.SelfID, cl.clk.Now(), cl.status(), every), true)
		}
	}
}

// Publish sends an event on every connected event link and returns how
// many took it. With none connected it returns a *conn.NotConnectedError
// (errors.Is conn.ErrNotConnected) at once: nothing is queued, unless
// Conn.Outbox is on, when each event link's outbox takes it.
func (cl *Client) Publish(ctx context.Context, event any) (int, error) {
	return cl.publish(ctx, event, false)
}

// publish is Publish; an ephemeral event (a heartbeat) is never queued.
func (cl *Client) publish(ctx context.Context, event any, ephemeral bool) (int, error) {
	send := func(c *conn.Client, data []byte) error { return c.Send(ctx, conn.TextMessage, data) }
	if ephemeral {
		send = func(c *conn.Client, data []byte) error { return c.SendEphemeral(ctx, conn.TextMessage, data) }
	}
	data, err := eventBytes(event)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, l := range cl.links {
		if !l.role.carriesEvents() {
			continue
		}
		if err := send(l.c, data); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	if n > 0 {
		return n, nil
	}
	return 0, errors.Join(errs...)
}

// linkStatus is the default Status: online while any link is connected,
// good while all are.
func (cl *Client) linkStatus() Status {
	up := 0
	for _, l := range cl.links {
		if l.c.State() == fsm.Connected {
			up++
		}
	}
	return Status{Online: up > 0, Good: up == len(cl.links)}
}

// Links returns each link's role and its conn.Client (State, Stats,
// Subscribe, SetPolicy), in the order of ClientConfig.Roles.
func (cl *Client) Links() map[Role]*conn.Client {
	out := make(map[Role]*conn.Client, len(cl.links))
	for _, l := range cl.links {
		out[l.role] = l.c
	}
	return out
}

// SetPolicy replaces every link's Backoff policy (conn.Client.SetPolicy).
func (cl *Client) SetPolicy(b fsm.Backoff) error {
	for _, l := range cl.links {
		if err := l.c.SetPolicy(b); err != nil {
			return err
		}
	}
	return nil
}
