package conn

import (
	"math/rand/v2"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// testHooks break the adapter on purpose, one bug at a time, so that the
// property tests can show they catch each bug (internal/proptest's
// ExpectFailure, or a check that returns its finding). They are nil
// outside those tests; every method is safe on a nil receiver. Each bug
// is one a peer of the field reports shipped (docs/BRIEF.md); the test
// that catches each, by name, is listed in docs/decisions.md ("conn: the
// real adapter is judged by the simulator's checkers").
type testHooks struct {
	// unguarded sends without consulting the session's state: the field
	// report's server that kept writing to dead sessions.
	unguarded bool
	// deaf ignores pongs, so live peers look silent.
	deaf bool
	// noTicks never ticks sessions: dead peers are left to the read
	// deadline backstop.
	noTicks bool
	// noPing never writes the pings fsm asks for: the peer that had no
	// WebSocket ping, whose live but quiet peers look silent.
	noPing bool
	// swallow ignores a failed write: the session is kept (a plain event
	// send failure swallowed, as the field report's server did) and only
	// the liveness deadline reaps it.
	swallow bool

	// hasty retries as soon as an attempt fails: the field report's client
	// whose exception path skipped the reconnect wait.
	hasty bool
	// lockedWait holds the client's lock across the backoff wait (a mutex
	// held across sleep and dial): Send, Stats and SetPolicy block for
	// the whole delay.
	lockedWait bool
	// noRedial never starts the retry after an established link dropped:
	// the peer that did not reconnect after its link went down.
	noRedial bool
	// resetAtConnect starts the failure count over as soon as a dial
	// succeeds instead of after StableAfter, so a link that flaps at once
	// retries at the first, shortest delay every time.
	resetAtConnect bool
	// lockstep seeds every default jitter source alike, so a fleet built
	// with the default config moves in lock-step.
	lockstep bool
	// noPoke does not wake Run when SetPolicy moved the pending retry, so
	// the retry keeps the old schedule's timer.
	noPoke bool
	// deafToRetryAfter hands the machine a refused handshake's status but
	// not its Retry-After: the client that retries a rate-limited server
	// on its own schedule, as if the server had said nothing. Caught by
	// invariant (n), retry_after_floor.
	deafToRetryAfter bool
	// leaky never releases a reaped session from the registry: the field
	// report's server whose sessions accumulated (Server.Unproven and the
	// metrics package's anomaly catch it).
	leaky bool

	// overtake lets a Send go straight to the link while the outbox still
	// holds or drains messages: the new message overtakes the queued ones
	// (the race between a Send and the drain).
	overtake bool
	// stale drains the outbox without judging Age: messages queued through
	// a long outage go out late, in a burst (go-cqhttp #275's stale
	// heartbeats).
	stale bool
	// dropEvent makes the poller lose input readiness (EnginePoll): the
	// bytes a peer sent, its pongs included, are never read.
	dropEvent bool
	// dropOut makes the poller lose output readiness: a writer that found
	// the socket full is never woken.
	dropOut bool
	// unmasked lets the poll engine's framer take client frames without a
	// mask key, which RFC 6455 §5.1 says must fail the connection (1002).
	unmasked bool
	// unfedPongs reads pongs on the poll engine but never records them,
	// so live peers look silent.
	unfedPongs bool
}

func (h *testHooks) unguardedSend() bool  { return h != nil && h.unguarded }
func (h *testHooks) ignorePongs() bool    { return h != nil && h.deaf }
func (h *testHooks) skipTicks() bool      { return h != nil && h.noTicks }
func (h *testHooks) skipPing() bool       { return h != nil && h.noPing }
func (h *testHooks) swallowed() bool      { return h != nil && h.swallow }
func (h *testHooks) skipWait() bool       { return h != nil && h.hasty }
func (h *testHooks) holdLockInWait() bool { return h != nil && h.lockedWait }
func (h *testHooks) skipRedial() bool     { return h != nil && h.noRedial }
func (h *testHooks) resetOnDial() bool    { return h != nil && h.resetAtConnect }
func (h *testHooks) skipPoke() bool       { return h != nil && h.noPoke }
func (h *testHooks) keepReaped() bool     { return h != nil && h.leaky }
func (h *testHooks) dropRetryAfter() bool { return h != nil && h.deafToRetryAfter }
func (h *testHooks) overtakeOutbox() bool { return h != nil && h.overtake }
func (h *testHooks) staleOutbox() bool    { return h != nil && h.stale }
func (h *testHooks) dropReadiness() bool  { return h != nil && h.dropEvent }
func (h *testHooks) dropWritable() bool   { return h != nil && h.dropOut }
func (h *testHooks) unmaskedOK() bool     { return h != nil && h.unmasked }
func (h *testHooks) pongsUnfed() bool     { return h != nil && h.unfedPongs }

// defaultRand returns the jitter source a client gets when its config
// names none: seeded at random per client, or, under the lockstep bug,
// with the same seed for every client.
func (h *testHooks) defaultRand() fsm.Rand {
	if h != nil && h.lockstep {
		return rand.New(rand.NewPCG(1, 1))
	}
	return rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
}

// waitLocked is the lockedWait bug: it sleeps until the pending retry is
// due (or ctx ends) with the client's lock held.
func (r *runner) waitLocked() {
	c := r.c
	c.mu.Lock()
	defer c.mu.Unlock()
	at, _ := c.fc.RetryAt()
	t := c.clk.Timer(max(0, at.Sub(c.clk.Now())))
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.ctx.Done():
	}
}

// resetFailures is the resetAtConnect bug: a fresh machine, started and
// connected at now, replaces the one that counted the failures.
func (r *runner) resetFailures(now time.Time) {
	c := r.c
	c.mu.Lock()
	defer c.mu.Unlock()
	fc, err := fsm.NewClient(fsm.ClientConfig{Backoff: c.fc.Backoff(), Liveness: c.cfg.Liveness, Rand: c.hooks.defaultRand()})
	if err != nil {
		return
	}
	if _, err := fc.Step(now, fsm.EvStart); err != nil {
		return
	}
	if _, err := fc.Step(now, fsm.EvDialOK); err != nil {
		return
	}
	c.fc = fc
}
