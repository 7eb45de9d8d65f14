package invariant

import (
	"fmt"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/trace"
)

// Suite runs every checker over one run's records. Feed it the records in
// the order they happened with Observe, then call Finish once with the
// run's end. A Suite is not safe for concurrent use.
type Suite struct {
	o       oracle
	enabled [numInvariants]bool
	n       int // records observed

	checked    [numInvariants]int
	violations [numInvariants]int
	kept       []Violation

	clients  []clientFacts
	sessions []sessionFacts

	changes  []BackoffChange // policy changes not yet applied
	retries  retries
	registry registry
	herd     herd
	cluster  cluster
	outboxOn bool // the run carried outbox records: (o) has something to judge
	finished bool
}

// New returns a Suite for cfg, or cfg's validation error.
func New(cfg Config) (*Suite, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cl := cfg.ClientLiveness
	if cl == (fsm.Liveness{}) {
		cl = cfg.Liveness
	}
	s := &Suite{o: oracle{b: cfg.Backoff.WithDefaults(), fp: cfg.Failures.WithDefaults(cfg.Backoff),
		l: cfg.Liveness.WithDefaults(), cl: cl.WithDefaults(), lease: cfg.Lease.WithDefaults(), ob: outboxPolicy(cfg.Outbox), slack: cfg.Slack}}
	for _, i := range All {
		s.enabled[i] = len(cfg.Only) == 0
	}
	for _, i := range cfg.Only {
		s.enabled[i] = true
	}
	s.changes = cfg.BackoffChanges
	s.herd = herd{window: cfg.HerdWindow, maxFraction: cfg.HerdMaxFraction, minClients: cfg.HerdMinClients}
	if s.herd.window == 0 {
		s.herd.window = 100 * time.Millisecond
	}
	if s.herd.minClients == 0 {
		s.herd.minClients = 100
	}
	return s, nil
}

// clientFacts is what the checkers know of one client.
type clientFacts struct {
	n         int32 // consecutive failures, counted from Down records
	lastFail  time.Duration
	upAt      time.Duration
	prevDelay time.Duration // the backoff delay chosen after failure n−1 of this run
	lowRun    int32         // backoff delays in a row in the bottom quarter of their range
	link      uint32        // session the client is up on, or trace.NoID
	downLink  uint32        // the link its last failure ended, or trace.NoID
	herdMark  int32         // herd+1 whose first reconnect this client already gave
	up        bool
	pending   bool // a failure awaits its retry
	exhausted bool // the last failure used up MaxAttempts or passed GiveUpAfter
	moved     bool // a policy change moved the pending retry into [movedLo, movedHi] after lastFail
	movedLo   time.Duration
	movedHi   time.Duration
	// offlineSince is the client's start or the drop of its last link that
	// lived StableAfter: Backoff.GiveUpAfter counts from it.
	offlineSince time.Duration
	gaveUp       bool
	exited       bool
	// The reconnect policy v2 (policy.go): the last failure's class by
	// the failure table, the run of permanent ones, whether the owner
	// asked to reconnect now since, and when the last attempt started.
	permanent, fatal bool
	failCode         uint16
	rejections       int32
	nudged           bool
	lastDial         time.Duration
	// The last failure's Retry-After (n): the floor the policy honours
	// and the latest its spread allows, both from the failure; zero for
	// none.
	raFloor, raTop time.Duration
	// ob is (o)'s model of the client's outbox (outbox.go).
	ob outboxModel
}

// sessionFacts is what the checkers know of one session.
type sessionFacts struct {
	created, upgraded, closingAt  time.Duration
	lastActivity, lastSign        time.Duration
	sendFailedAt, degradedAt      time.Duration
	cDegradedAt                   time.Duration // last Degraded slow enough for the client's pong timeout
	errors                        int32         // BadRecv in a row since the last good message
	client, server                uint32
	state                         fsm.State
	known, registered, upgradedOK bool
	closing, dead, sendFailed     bool
	degraded, cDegraded, reaped   bool
	queueFull, badSeen            bool
	badAt                         time.Duration
}

// Observe checks one record. Records must come in time order.
func (s *Suite) Observe(r *trace.Record) {
	s.applyChanges(r.At)
	idx := s.n
	s.n++
	switch r.Kind {
	case trace.Transition:
		switch r.Machine {
		case fsm.MachineClient:
			s.retries.transition(s, r, idx)
		case fsm.MachineSession:
			s.sessionTransition(r, idx)
		default:
			s.cluster.observe(s, r, idx)
		}
	case trace.Dial:
		s.retries.dial(s, r, idx)
		s.herd.dial(s, r)
	case trace.Up:
		c := s.client(r.ID)
		c.up, c.upAt, c.link = true, r.At, r.Peer
		c.rejections = 0
	case trace.Nudge:
		s.client(r.ID).nudged = true
	case trace.Down:
		s.retries.down(s, r)
	case trace.ClientStart:
		*s.client(r.ID) = clientFacts{link: trace.NoID, downLink: trace.NoID, offlineSince: r.At}
	case trace.ClientExit:
		c := s.client(r.ID)
		c.exited, c.up, c.pending, c.link = true, false, false, trace.NoID
		c.ob = outboxModel{} // the outbox dies with the process
	case trace.Register:
		f := s.session(r.ID)
		f.known, f.registered, f.created, f.client, f.server, f.state = true, true, r.At, r.Peer, r.Server, fsm.Handshaking
		s.registry.add(r.Server, 1)
		s.cluster.registered(r)
	case trace.Unregister:
		if f := s.session(r.ID); f.registered {
			f.registered = false
			s.registry.add(f.server, -1)
		}
	case trace.Send:
		s.send(r, idx)
		s.cluster.sent(r)
	case trace.SendFailed:
		if f := s.session(r.ID); !f.sendFailed {
			f.sendFailed, f.sendFailedAt = true, r.At
		}
	case trace.PeerDead:
		if f := s.session(r.ID); !f.dead {
			f.dead, f.lastSign = true, r.LastSign
		}
	case trace.Degraded:
		s.degraded(r)
	case trace.Recv, trace.BadRecv, trace.QueueFull:
		s.sessionFact(r)
	case trace.ServerDown:
		s.herd.down(s, r)
	case trace.ServerUp:
		s.herd.up(s, r)
	case trace.OutboxQueued, trace.OutboxWritten, trace.OutboxDropped:
		s.outbox(r, idx)
	case trace.Quiesce:
		s.retries.quiesced, s.retries.quiesceAt = true, r.At
	case trace.Settled:
		s.registry.settled(s, r, idx)
		s.cluster.settled(s, r, idx)
	default:
		s.cluster.observe(s, r, idx)
	}
}

// Finish runs the end-of-run checks at end: retries still owed, dead or
// idle sessions never reaped, herd spreads. Call it once, after the last
// Observe.
func (s *Suite) Finish(end time.Duration) {
	if s.finished {
		return
	}
	s.finished = true
	s.applyChanges(end)
	s.retries.finish(s, end)
	for id := range s.sessions {
		f := &s.sessions[id]
		if f.known && !f.reaped {
			s.checkReapBy(f, uint32(id), end, end, s.n, true)
		}
	}
	s.herd.finish(s)
	s.outboxFinish(end)
	s.cluster.finish(s, end)
}

// Failed reports whether any enabled invariant was violated so far. It is
// cheap enough to poll after every record.
func (s *Suite) Failed() bool { return len(s.kept) > 0 }

// Violations returns the violations found, in the order found (at most 64
// per run are kept in full; Verdicts counts all).
func (s *Suite) Violations() []Violation { return s.kept }

// Verdicts returns, per invariant in letter order, how often it was
// checked and violated. Invariants left out by Config.Only are omitted, and
// so are the cluster's, (h) to (k), on a run without cluster records, and
// the outbox's (o) on a run without outbox records.
func (s *Suite) Verdicts() []Verdict {
	var out []Verdict
	for _, i := range All {
		if s.enabled[i] && (!isCluster(i) || s.cluster.on) && (i != OutboxFaithful || s.outboxOn) {
			out = append(out, Verdict{Invariant: i, Name: i.String(), Letter: string(i.Letter()),
				Checked: s.checked[i], Violations: s.violations[i]})
		}
	}
	return out
}

// Herds returns the measured spread of reconnects after each server
// restart, available after Finish.
func (s *Suite) Herds() []HerdResult { return s.herd.results }

func (s *Suite) check(i Invariant) { s.checked[i]++ }

func (s *Suite) fail(i Invariant, at time.Duration, m fsm.Machine, id uint32, idx int, format string, args ...any) {
	if !s.enabled[i] {
		return
	}
	s.violations[i]++
	if len(s.kept) < keepViolations {
		s.kept = append(s.kept, Violation{Invariant: i, At: at, Machine: m, ID: id, Index: idx, Detail: fmt.Sprintf(format, args...)})
	}
}

func (s *Suite) client(id uint32) *clientFacts {
	for int(id) >= len(s.clients) {
		s.clients = append(s.clients, clientFacts{link: trace.NoID, downLink: trace.NoID})
	}
	return &s.clients[id]
}

func (s *Suite) session(id uint32) *sessionFacts {
	if int(id) >= len(s.sessions) {
		s.sessions = append(s.sessions, make([]sessionFacts, int(id)+1-len(s.sessions))...)
	}
	return &s.sessions[id]
}

// isCluster reports whether i is one of the cluster's promises, judged
// only on runs with cluster records.
func isCluster(i Invariant) bool { return i >= NodeDeclaredDead && i <= DirectoryMatches }
