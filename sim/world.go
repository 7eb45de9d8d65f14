package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/invariant"
	"github.com/lifeline-go/lifeline/trace"
)

// Options tune a run without changing what happens in it.
type Options struct {
	// KeepTrace keeps every record in Result.Trace. Off, records only feed
	// the invariant checkers and the statistics, and a run's memory does
	// not grow with its length.
	KeepTrace bool
	// StopOnViolation ends the run at the first violated invariant: what a
	// property test wants (the shortest trace), not a report.
	StopOnViolation bool
	// MaxEvents bounds the events a run may process, so a broken driver
	// looping at one instant ends with ErrEventBudget instead of hanging.
	// Zero means no bound.
	MaxEvents uint64
	// Check adds to the invariant configuration: Slack, the herd bound,
	// Only. Its Backoff and Liveness are ignored: the scenario's are used.
	Check invariant.Config
}

// ErrEventBudget is returned (wrapped) when a run exceeds Options.MaxEvents.
var ErrEventBudget = errors.New("sim: event budget exhausted")

// Result is what a run produced.
type Result struct {
	// Scenario is the scenario run, defaults applied.
	Scenario Scenario
	// Trace holds every record, when Options.KeepTrace was set.
	Trace []trace.Record
	// Suite holds the invariant verdicts and violations.
	Suite *invariant.Suite
	// Stats are the run's figures for reports.
	Stats Stats
	// Events is the number of events processed; Virtual the virtual time
	// the run covered (Duration plus settling); Real the wall-clock time it
	// took.
	Events  uint64
	Virtual time.Duration
	Real    time.Duration
}

// Speedup returns virtual time per real time.
func (r *Result) Speedup() float64 {
	if r.Real <= 0 {
		return 0
	}
	return float64(r.Virtual) / float64(r.Real)
}

// epoch is the wall-clock instant virtual time zero stands for. Any fixed
// instant would do; fsm only compares and adds times.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

const never = int64(1<<63 - 1)

// world is one run's state. Everything happens on the goroutine that calls
// Run; nothing sleeps.
type world struct {
	sc   Scenario
	opt  Options
	rng  *rand.Rand
	q    queue
	now  int64
	bugs [len(bugNames)]bool
	// backoff is the clients' policy in force (Scenario.BackoffChanges).
	backoff fsm.Backoff

	clients []client
	ctimers []timer // the clients' timers, apart so an early timer touches nothing else
	servers []server
	links   linkTable
	faults  []Fault
	active  []int   // faults whose window is open, in start order
	locks   []int32 // BugLockAcrossBackoff: the client holding each process's lock, or -1

	quiesced   bool
	settleAt   int64
	settleSpan int64 // how long the world must be quiet to count as settled
	lastChange int64 // last time a link came up or went down, or the registry changed
	halfPong   int64 // the server's PongTimeout/2 or the client's invariant.ClientSlowFrame, the shorter: frames this slow are Degraded

	suite *invariant.Suite
	trace []trace.Record
	stats Stats

	cl *cluster // nil unless the scenario is a cluster

	obDrops []fsm.OutboxDrop[struct{}] // reused by every outbox call
}

// Run runs sc to completion (Duration, then settling) and returns what
// happened. It returns early with ctx's error if ctx ends, and with
// ErrEventBudget if Options.MaxEvents is exceeded; the Result is valid up
// to that point either way.
func Run(ctx context.Context, sc Scenario, opt Options) (*Result, error) {
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	sc = sc.WithDefaults()
	w, err := newWorld(sc, opt)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	runErr := w.loop(ctx)
	res := &Result{
		Scenario: sc, Trace: w.trace, Suite: w.suite, Events: w.stats.Events,
		Virtual: time.Duration(w.now), Real: time.Since(start),
	}
	w.suite.Finish(time.Duration(w.now))
	w.stats.finish(w)
	res.Stats = w.stats
	return res, runErr
}

func newWorld(sc Scenario, opt Options) (*world, error) {
	cfg := opt.Check
	cfg.Backoff, cfg.Liveness, cfg.ClientLiveness = sc.Backoff, sc.ServerLiveness, sc.ClientLiveness.WithDefaults()
	cfg.Failures = sc.Failures
	cfg.Outbox = sc.Outbox
	for _, ch := range sc.BackoffChanges {
		cfg.BackoffChanges = append(cfg.BackoffChanges, invariant.BackoffChange{At: ch.At, Backoff: ch.Backoff})
	}
	if sc.Cluster != nil {
		cfg.Lease = sc.Cluster.Lease
	}
	suite, err := invariant.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("sim: invariant config: %w", err)
	}
	w := &world{
		sc: sc, opt: opt, suite: suite,
		rng:     rand.New(rand.NewPCG(sc.Seed, sc.Seed^0x9e3779b97f4a7c15)),
		clients: make([]client, sc.Clients),
		ctimers: make([]timer, sc.Clients),
		servers: make([]server, sc.Servers),
		faults:  sc.Faults,
	}
	for _, b := range sc.Bugs {
		w.bugs[b] = true
	}
	sl, cl := sc.ServerLiveness.WithDefaults(), sc.ClientLiveness.WithDefaults()
	w.halfPong = int64(min(sl.PongTimeout/2, invariant.ClientSlowFrame(cl)))
	b := sc.Backoff.WithDefaults()
	for _, ch := range sc.BackoffChanges { // the longest attempt any policy allows
		b.ConnectTimeout = max(b.ConnectTimeout, ch.Backoff.WithDefaults().ConnectTimeout)
	}
	lat := sc.Latency.max()
	for _, f := range sc.Faults {
		if f.Kind == LatencySpike {
			lat = max(lat, f.Latency.max())
		}
	}
	// Settling: long enough for a dial in flight to end, for both ends of
	// every dead link to notice, for close handshakes to finish and for
	// frames held by a partition to arrive.
	settle := b.ConnectTimeout + sl.HandshakeTimeout + sl.CloseTimeout +
		2*(cl.PingInterval+cl.PongTimeout) + 2*(sl.PingInterval+sl.PongTimeout) + 8*lat + time.Second
	if sc.Cluster != nil {
		settle += sc.Cluster.settleSpan()
	}
	w.settleSpan = int64(settle)
	w.settleAt = int64(sc.Duration + settle)

	w.backoff = sc.Backoff
	for i, ch := range sc.BackoffChanges {
		w.q.push(event{at: int64(ch.At), kind: evPolicy, id: uint32(i)})
	}
	w.q.push(event{at: int64(sc.Duration), kind: evQuiesce})
	w.q.push(event{at: w.settleAt, kind: evSettle})
	for i := range w.faults {
		f := &w.faults[i]
		w.q.push(event{at: int64(f.Start), kind: evFaultStart, id: uint32(i)})
		w.q.push(event{at: int64(w.faultEnd(f)), kind: evFaultEnd, id: uint32(i)})
	}
	for i := range w.clients {
		c := &w.clients[i]
		c.id, c.server, c.link = uint32(i), uint16(i%sc.Servers), noLink
		if w.bugs[BugLockAcrossBackoff] {
			c.proc = int32(i / 2)
		} else {
			c.proc = int32(i)
		}
	}
	if w.bugs[BugLockAcrossBackoff] {
		w.locks = make([]int32, (sc.Clients+1)/2)
		for i := range w.locks {
			w.locks[i] = -1
		}
	}
	for s := range w.servers {
		w.startAdmission(s)
	}
	if sc.Cluster != nil {
		w.cl = newCluster(w)
	}
	// Clients start at time zero, queued after the faults that start then,
	// so a port refused from the first instant refuses the first attempt.
	for i := range w.clients {
		w.q.push(event{kind: evClientStart, id: uint32(i)})
	}
	return w, nil
}

// faultEnd is when f's window closes: End, or Duration if End is zero or
// later (every fault is over when the world quiesces).
func (w *world) faultEnd(f *Fault) time.Duration {
	if f.End == 0 || f.End > w.sc.Duration {
		return w.sc.Duration
	}
	return f.End
}

func (w *world) loop(ctx context.Context) error {
	for w.q.len() > 0 {
		e := w.q.pop()
		w.now = e.at
		w.stats.Events++
		if w.stats.Events&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if w.opt.MaxEvents > 0 && w.stats.Events > w.opt.MaxEvents {
			return fmt.Errorf("%w: %d events by virtual time %s", ErrEventBudget, w.opt.MaxEvents, time.Duration(w.now))
		}
		switch e.kind {
		case evClientStart:
			if err := w.startClient(&w.clients[e.id]); err != nil {
				return err
			}
		case evClientTimer:
			w.clientTimer(e)
		case evSessionTimer:
			w.sessionTimer(e)
		case evToServer:
			w.atServer(e)
		case evToClient:
			w.atClient(e)
		case evAppEvent:
			w.appEvent(e)
		case evClientEvent:
			w.clientEvent(e)
		case evNudge:
			w.nudge(e)
		case evOutboxSend:
			w.outboxSend(e)
		case evPolicy:
			w.setPolicy(w.sc.BackoffChanges[e.id].Backoff)
		case evFaultStart:
			w.faultStart(int(e.id))
		case evFaultEnd:
			w.faultEndEvent(int(e.id))
		case evQuiesce:
			w.quiesced = true
			w.emit(trace.Record{Kind: trace.Quiesce})
		case evSettle:
			// Settled means quiet: nothing came up, went down or changed
			// the registry for a whole settling span, so no notice of a
			// teardown is still on its way. Without new attempts each link
			// changes at most twice more, so this ends.
			if quiet := w.lastChange + w.settleSpan; quiet > w.now {
				w.q.push(event{at: quiet, kind: evSettle})
				continue
			}
			w.settle()
			return nil
		default:
			w.clusterEvent(e)
		}
		if w.opt.StopOnViolation && w.suite.Failed() {
			return nil
		}
	}
	return nil
}

// at returns the fsm time of virtual time t.
func at(t int64) time.Time { return epoch.Add(time.Duration(t)) }

// emit stamps r with the current time and hands it to the checkers, the
// statistics and, if kept, the trace.
func (w *world) emit(r trace.Record) {
	r.At = time.Duration(w.now)
	switch r.Kind {
	case trace.Register, trace.Unregister, trace.Up, trace.Down, trace.ClientStart, trace.ClientExit,
		trace.NodeStart, trace.NodeCrash, trace.Declared, trace.DirAdd, trace.DirDel, trace.LeaseEnd:
		w.lastChange = w.now
	}
	w.suite.Observe(&r)
	w.stats.observe(&r)
	if w.opt.KeepTrace {
		w.trace = append(w.trace, r)
	}
}

func (w *world) emitTransition(id uint32, tr *fsm.Transition) {
	w.emit(trace.FromTransition(epoch, id, tr))
}

// settle ends the run: the registry is compared with the live peers.
func (w *world) settle() {
	live, registered := 0, 0
	for i := range w.clients {
		c := &w.clients[i]
		if c.alive && c.fsm.State() == fsm.Connected {
			live++
		}
		if c.alive {
			w.clearOutbox(c, fsm.DropStopped) // the run ends: the clients stop
		}
	}
	for i := uint32(0); int(i) < w.links.len(); i++ {
		if w.links.at(i).registered {
			registered++
		}
	}
	w.emit(trace.Record{Kind: trace.Settled, Peer: uint32(live), ID: uint32(registered)})
}

func durationOf(t int64) time.Duration { return time.Duration(t) }
