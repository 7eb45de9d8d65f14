package fsm

import (
	"errors"
	"time"

	"github.com/qmuntal/stateless"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// Backoff is the reconnect policy; the zero value means its defaults.
	Backoff Backoff
	// Liveness decides when a connected server has gone silent; the zero
	// value means its defaults. IdleTimeout is not used by clients.
	Liveness Liveness
	// Rand supplies jitter. Required unless Backoff.Jitter is JitterNone;
	// seed it to make the delays reproducible.
	Rand Rand
	// Failures is the failure table: which failures StepFailure treats as
	// permanent (Rejected, on its slow schedule) or fatal. The zero value
	// means its defaults.
	Failures FailurePolicy
}

// Validate reports what is wrong with c, naming each field.
func (c ClientConfig) Validate() error {
	return errors.Join(c.Backoff.Validate(), c.Liveness.Validate(), needRand(c.Backoff, c.Rand), c.Failures.Validate(),
		needRand(c.Failures.WithDefaults(c.Backoff).Schedule, c.Rand))
}

// needRand reports a jittered policy without a source: fsm has no
// randomness of its own.
func needRand(b Backoff, r Rand) error {
	if r == nil && b.Jitter != JitterNone {
		return &FieldError{Policy: "ClientConfig", Field: "Rand",
			Rule: "must be set unless Backoff.Jitter is none (fsm has no randomness of its own)", Value: nil}
	}
	return nil
}

// Client is the sans-I/O lifecycle of one reconnecting client connection.
// A driver feeds it Events stamped with the time they were observed and
// carries out the Actions it answers with; it arms one timer for Deadline
// and hands in EvTick when it fires. Client does no I/O, starts no
// goroutines, never reads the clock and draws randomness only from its
// configured Rand. It is not safe for concurrent use: one driver owns it.
type Client struct {
	// The fields a heartbeat reads and writes come first (see Session).
	state       State
	failures    int // consecutive failures in the current run
	lastHeard   time.Time
	lastPing    time.Time
	connectedAt time.Time
	l           Liveness      // effective (defaults applied)
	pingLag     time.Duration // l.PongTimeout/4: the client follows the server's lead
	acts        []Action

	inst    clientInstance
	machine *stateless.StateMachine
	b       Backoff // effective
	rng     Rand

	attempt      int           // number of the latest attempt started
	delay        time.Duration // backoff delay chosen for the latest failure
	prevDelay    time.Duration // the one before it (decorrelated jitter)
	dialDeadline time.Time
	failedAt     time.Time // when the pending retry was scheduled
	floor        time.Time // the earliest the pending retry was ever promised for
	retryAt      time.Time

	fp            FailurePolicy // effective
	failure       Failure       // of the failure being stepped
	class         FailureClass  // its class
	rejections    int           // consecutive permanent failures; a link that comes up ends them
	slowDelay     time.Duration // the slow schedule's delay after the latest rejection
	lastAttemptAt time.Time     // when the latest attempt started: the reconnect-now floor counts from it
	raUntil       time.Time     // the failure's Retry-After floor (capped): nothing moves the retry before it

	now          time.Time   // of the Step in progress, for the guards
	offlineSince time.Time   // see OfflineSince
	proven       bool        // the current link stayed up StableAfter
	gaveUp       GiveUpCause // why the client is in GaveUp

	trans Transition
}

// clientInstance is the instance view of a Client, kept separate so the
// context methods stay off Client's API.
type clientInstance struct {
	instanceCtx
	c *Client
}

func (i *clientInstance) LifecycleState() State     { return i.c.state }
func (i *clientInstance) SetLifecycleState(s State) { i.c.state = s }
func (i *clientInstance) GuardHolds(g Guard) bool {
	c := i.c
	switch g {
	case RetriesLeft:
		return c.giveUp(c.now) == GiveUpNone
	case RetriesExhausted:
		return c.giveUp(c.now) != GiveUpNone
	case FloorPassed:
		return !c.now.Before(c.reconnectFloorAt())
	case FloorPending:
		return c.now.Before(c.reconnectFloorAt())
	}
	return false
}

// NewClient returns a Client in Idle, or the validation error of cfg.
func NewClient(cfg ClientConfig) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{
		machine: shared.client(),
		state:   Idle,
		b:       cfg.Backoff.WithDefaults(),
		l:       cfg.Liveness.WithDefaults(),
		rng:     cfg.Rand,
		fp:      cfg.Failures.WithDefaults(cfg.Backoff),
		acts:    make([]Action, 0, 4),
	}
	c.pingLag = c.l.PongTimeout / 4
	c.inst.c = c
	return c, nil
}

// State returns the current state.
func (c *Client) State() State { return c.state }

// Failures returns the consecutive failures in the current run, the n the
// Backoff bounds take.
func (c *Client) Failures() int { return c.failures }

// Attempt returns the number of the latest attempt started (1-based), or 0
// before the first.
func (c *Client) Attempt() int { return c.attempt }

// RetryAt returns when the pending attempt is due, and false unless the
// client is BackingOff or Rejected.
func (c *Client) RetryAt() (time.Time, bool) {
	return c.retryAt, c.state == BackingOff || c.state == Rejected
}

// ConnectedSince returns when the current link came up, and false unless
// the client is Connected.
func (c *Client) ConnectedSince() (time.Time, bool) { return c.connectedAt, c.state == Connected }

// Backoff returns the reconnect policy in force, defaults applied.
func (c *Client) Backoff() Backoff { return c.b }

// Liveness returns the liveness policy in force, defaults applied.
func (c *Client) Liveness() Liveness { return c.l }

// Deadline returns when the driver must next hand in EvTick, and false when
// no timer is needed (Idle or a terminal state).
func (c *Client) Deadline() (time.Time, bool) {
	switch c.state {
	case Connecting:
		return c.dialDeadline, true
	case BackingOff, Rejected:
		return c.retryAt, true
	case Connected:
		return earliest(c.l.reapAt(c.lastHeard), c.l.pingAt(c.lastHeard, c.lastPing, c.pingLag)), true
	}
	return time.Time{}, false
}

// Step applies one event observed at now and returns what to do. An event
// the current state does not accept returns an *UnhandledError and changes
// nothing. EvStop in a terminal state is a no-op.
func (c *Client) Step(now time.Time, ev Event) (Output, error) {
	return c.StepFailure(now, ev, Failure{})
}

// StepFailure is Step for a failure the driver can say more about: for
// EvDialFailed and EvDropped, f (the HTTP status or close code seen) is
// classed by the failure table, and a permanent or fatal failure fires
// GoAway instead of DialFailed or Dropped; f.RetryAfter, the server's
// Retry-After, is the floor of the wait that follows
// (Backoff.RetryAfterWait), which no reconnect-now, reset or policy change
// moves earlier. For other events f is ignored.
func (c *Client) StepFailure(now time.Time, ev Event, f Failure) (Output, error) {
	c.acts = c.acts[:0]
	c.now = now
	c.failure, c.class = Failure{}, Transient
	if ev == EvDialFailed || ev == EvDropped {
		c.failure, c.class = f, c.fp.Classify(f)
	}
	c.settle(now)
	var tr Trigger
	switch ev {
	case EvTick:
		tr = c.due(now)
	case EvPong, EvMessage:
		// Frames can still arrive from a link the driver is tearing down;
		// only the current link's count as signs of life.
		if c.state == Connected && now.After(c.lastHeard) {
			c.lastHeard = now
		}
	case EvSent:
	case EvStart:
		tr = Start
	case EvDialOK:
		tr = DialOK
	case EvDialFailed:
		tr = DialFailed
	case EvDropped:
		tr = Dropped
	case EvReconnectNow:
		if c.state == BackingOff {
			tr = ReconnectNow
		}
	case EvResetBackoff:
		if c.state == BackingOff || c.state == Connected {
			tr = ResetBackoff
		}
	case EvStop:
		if c.state == GaveUp || c.state == Stopped {
			break
		}
		tr = Stop
	default:
		return Output{}, &UnhandledError{Machine: MachineClient, State: c.state, Event: ev}
	}
	if c.class != Transient && (tr == DialFailed || tr == Dropped) {
		tr = GoAway
	}
	if tr == 0 {
		return Output{Actions: c.acts}, nil
	}
	from := c.state
	if err := fire(c.machine, &c.inst, tr, ev); err != nil {
		return Output{}, err
	}
	c.enter(now, from, tr)
	return Output{Transition: &c.trans, Actions: c.acts}, nil
}

// settle does the bookkeeping that time alone causes: a link that has been
// up for StableAfter ends the run of failures.
func (c *Client) settle(now time.Time) {
	if c.state != Connected || now.Before(c.connectedAt.Add(c.b.StableAfter)) {
		return
	}
	c.proven = true
	c.failures, c.delay, c.prevDelay = 0, 0, 0
}

// due returns the trigger an expired deadline fires, or queues a ping.
func (c *Client) due(now time.Time) Trigger {
	switch c.state {
	case Connecting:
		if !now.Before(c.dialDeadline) {
			return DialTimeout
		}
	case BackingOff, Rejected:
		if !now.Before(c.retryAt) {
			return RetryDue
		}
	case Connected:
		if !now.Before(c.l.reapAt(c.lastHeard)) {
			return PongTimeout
		}
		if !now.Before(c.l.pingAt(c.lastHeard, c.lastPing, c.pingLag)) {
			c.lastPing = now
			c.acts = append(c.acts, Action{Kind: ActSendPing})
		}
	}
	return 0
}

// enter is the one place a client state is entered: it releases what the
// old state held, then sets up the new one. The state itself was already
// set by the machine.
func (c *Client) enter(now time.Time, from State, tr Trigger) {
	to := c.state
	c.trans = Transition{Machine: MachineClient, At: now, From: from, To: to, Trigger: tr}
	switch from {
	case Connecting:
		if tr == DialTimeout || tr == Stop {
			c.acts = append(c.acts, Action{Kind: ActAbortDial})
		}
	case Connected:
		if tr == ResetBackoff { // a re-entry: the link stays
			c.failures, c.delay, c.prevDelay = 0, 0, 0
			return
		}
		if tr == Stop {
			c.acts = append(c.acts, Action{Kind: ActClose, Code: 1000})
		}
		c.acts = append(c.acts, Action{Kind: ActDrop})
	case BackingOff:
		if to == BackingOff { // reconnect-now before the floor, or a reset
			c.reschedule(now, tr)
			return
		}
	}
	if from == Idle {
		c.offlineSince = now
	}
	if from == Connected && c.proven && to != Stopped { // the proven link ended: offline from now
		c.offlineSince, c.proven = now, false
	}
	switch to {
	case Connecting:
		c.lastAttemptAt = now
		c.attempt = c.failures + 1
		c.dialDeadline = now.Add(c.b.ConnectTimeout)
		c.trans.Attempt = c.attempt
		c.acts = append(c.acts, Action{Kind: ActDial, At: c.dialDeadline, Attempt: c.attempt})
	case Connected:
		c.connectedAt, c.lastHeard, c.lastPing = now, now, time.Time{}
		c.rejections, c.slowDelay = 0, 0
	case BackingOff:
		c.failures++
		ra := c.failure.RetryAfter
		c.prevDelay, c.delay = c.delay, c.b.RetryAfterWait(c.b.Delay(c.failures, c.delay, c.rng), ra, c.rng)
		c.failedAt = now
		c.retryAt = now.Add(c.delay)
		c.raUntil = now.Add(c.b.RetryAfterFloor(ra))
		c.floor = later(now.Add(c.b.Earliest(c.failures)), c.raUntil)
		c.trans.Attempt, c.trans.Delay = c.failures+1, c.delay
		c.acts = append(c.acts, Action{Kind: ActScheduleRetry, At: c.retryAt, Attempt: c.failures + 1, Delay: c.delay})
	case Rejected:
		c.failures++
		c.rejections++
		// The slow schedule keeps its own last delay: the transient
		// backoff's (decorrelated jitter grows from it) is untouched.
		// A server's Retry-After is a floor here too (a 503 configured as
		// permanent, say), under the client's own cap.
		ra := c.failure.RetryAfter
		c.slowDelay = c.b.RetryAfterWait(c.fp.Schedule.Delay(c.rejections, c.slowDelay, c.rng), ra, c.rng)
		c.failedAt = now
		c.raUntil = now.Add(c.b.RetryAfterFloor(ra))
		c.retryAt = now.Add(c.slowDelay)
		c.trans.Attempt, c.trans.Delay = c.failures+1, c.slowDelay
		c.acts = append(c.acts, Action{Kind: ActScheduleRetry, At: c.retryAt, Attempt: c.failures + 1, Delay: c.slowDelay})
	case GaveUp:
		c.gaveUp = c.giveUp(now)
		c.failures++
		c.trans.Attempt = c.attempt
	}
}

// SetBackoff replaces the reconnect policy at now. The next failure uses
// the new policy. A retry already pending is drawn again under the new
// policy for the same failure count, but never earlier than any policy in
// force since the failure promised (its Earliest bound, measured from the
// failure): the promise made to the server when the retry was scheduled
// holds, through any number of changes. A new MaxAttempts
// takes effect at the next failure; the pending retry still happens. An
// attempt in flight keeps its deadline. If the pending retry moved, the
// output holds an ActScheduleRetry with its new time.
func (c *Client) SetBackoff(now time.Time, b Backoff) (Output, error) {
	if err := errors.Join(b.Validate(), needRand(b, c.rng)); err != nil {
		return Output{}, err
	}
	c.acts = c.acts[:0]
	old := c.b
	c.b = b.WithDefaults()
	if c.state != BackingOff {
		return Output{Actions: c.acts}, nil
	}
	n := c.failures
	at := c.failedAt.Add(c.b.Delay(n, c.prevDelay, c.rng))
	floor := later(c.floor, c.failedAt.Add(old.Earliest(n)))
	if at.Before(floor) {
		at = floor
	}
	c.floor = later(floor, c.failedAt.Add(c.b.Earliest(n)))
	if !at.Equal(c.retryAt) {
		c.retryAt, c.delay = at, at.Sub(c.failedAt)
		c.acts = append(c.acts, Action{Kind: ActScheduleRetry, At: at, Attempt: n + 1, Delay: c.delay})
	}
	return Output{Actions: c.acts}, nil
}

// fire runs tr through the shared machine for inst and fills in the event
// on an unhandled-trigger error.
func fire(sm *stateless.StateMachine, inst instance, tr Trigger, ev Event) error {
	err := sm.FireCtx(inst, tr)
	if err != nil {
		var ue *UnhandledError
		if errors.As(err, &ue) {
			ue.Event = ev
		}
	}
	return err
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// reconnectFloorAt is the earliest a reconnect-now (or a reset) may start
// an attempt: Backoff.ReconnectFloor after the latest attempt started, and
// never before the failure's Retry-After floor: the owner's request does
// not overrule the server's.
func (c *Client) reconnectFloorAt() time.Time {
	return later(c.lastAttemptAt.Add(c.b.ReconnectFloor), c.raUntil)
}

// reschedule moves the pending retry of a BackingOff client: to the floor
// for a reconnect-now that came before it (only ever earlier), or, for a
// backoff reset, to the delay of a first failure drawn again from the
// failure, never before the floor.
func (c *Client) reschedule(now time.Time, tr Trigger) {
	at := c.retryAt
	switch tr {
	case ReconnectNow:
		// Only the retry moves: the delay drawn stays the basis of the
		// next one (decorrelated jitter grows from it).
		if f := c.reconnectFloorAt(); f.Before(at) {
			at = f
		}
	case ResetBackoff:
		c.failures, c.prevDelay, c.delay = 1, 0, c.b.Delay(1, 0, c.rng)
		at = c.failedAt.Add(c.delay)
		if f := c.reconnectFloorAt(); at.Before(f) {
			at = f
		}
	}
	c.trans.Attempt = c.failures + 1
	if at.Equal(c.retryAt) {
		return
	}
	c.retryAt = at
	if at.Before(c.floor) { // the owner's request: the retry's promised floor moves with it
		c.floor = at
	}
	c.trans.Delay = at.Sub(c.failedAt)
	c.acts = append(c.acts, Action{Kind: ActScheduleRetry, At: at, Attempt: c.failures + 1, Delay: c.trans.Delay})
}
