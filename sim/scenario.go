package sim

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// Scenario is everything that decides a run: with the same Scenario (Seed
// included) a run produces the same trace, byte for byte. The zero value
// of each field means what its comment says; LoadScenario reads one from
// JSON.
type Scenario struct {
	// Seed seeds the world's single random source (latencies, losses,
	// jitter, traffic phases).
	Seed uint64
	// Clients is the number of client processes, one link each. At least 1.
	Clients int
	// Servers is the number of servers; client i dials server i mod
	// Servers first (in a cluster it moves to the next server on each
	// failure). Zero means 1.
	Servers int
	// Duration is the virtual time faults and retries run for. Then the
	// world quiesces (no new attempts, every fault over) and runs on until
	// it has settled, so invariant (f) can be judged. Zero means 10m.
	Duration time.Duration
	// Backoff is the clients' reconnect policy; zero fields mean fsm's
	// defaults (FirstImmediate off).
	Backoff fsm.Backoff
	// Failures is the clients' failure table: an Auth fault's 401 or 403
	// and a close frame's code (1008 for protocol errors) are classed by
	// it. The zero value means fsm's defaults.
	Failures fsm.FailurePolicy `json:",omitzero"`
	// BackoffChanges change every client's reconnect policy at run time
	// (fsm.Client.SetBackoff, as conn.Client.SetPolicy does), in time
	// order: pending retries move, never before the old policy promised.
	BackoffChanges []BackoffChange
	// ClientLiveness decides when a client gives up on a silent server.
	ClientLiveness fsm.Liveness
	// ServerLiveness decides when a server reaps a session.
	ServerLiveness fsm.Liveness
	// Latency is the one-way delay of every frame when no Latency fault
	// applies. The zero value means 20ms plus up to 10ms uniform jitter,
	// so no delay at all cannot be asked for: Base 1ns is the fastest
	// path (a generator drawing both fields from 0 gets the default
	// whenever both come out 0).
	Latency Latency
	// EventInterval is how often a server writes an application message on
	// each open session (the events a OneBot server pushes). Zero means
	// no application traffic: heartbeats only.
	EventInterval time.Duration
	// ClientEventInterval is how often each connected client writes an
	// application message (a bot's API calls): activity the idle tier must
	// count, and the messages a Garbage fault spoils. Zero means none.
	ClientEventInterval time.Duration
	// Outbox, when on, gives every client a bounded outbox (fsm.Outbox):
	// its application sends every ClientEventInterval whether or not it has
	// a link, what it sends while down is queued and drained in order when
	// a link comes up, and invariant (o) judges every step. The zero value
	// means off: application messages go only on an open link, as before.
	Outbox fsm.Outbox `json:",omitzero"`
	// Faults are the faults injected, each over its own time window.
	Faults []Fault
	// Bugs switch on deliberately broken driver behaviour, to show that the
	// invariants catch the historical bugs. Empty for a correct driver.
	Bugs []Bug
	// HandshakeRate makes every server admit handshakes through a token
	// bucket, as conn.ServerConfig.HandshakeRate does: a handshake over it
	// is answered 503 with the bucket's Retry-After (fsm.Admission, the
	// same code) and creates no session. A restarted server starts with a
	// full bucket. The zero value is off.
	HandshakeRate fsm.HandshakeRate `json:",omitzero"`
	// Cluster, when set, makes the servers the nodes of one cluster: a
	// lease store and a bus join them (see Cluster). Nil: independent
	// servers, as before.
	Cluster *Cluster
}

// BackoffChange is a change of the clients' reconnect policy at At.
type BackoffChange struct {
	At      time.Duration // virtual time of the change
	Backoff fsm.Backoff   // the policy from then on
}

// Dist is the shape of the random part of a latency.
type Dist uint8

const (
	// Uniform draws the jitter evenly from [0, Jitter].
	Uniform Dist = iota
	// Exponential draws the jitter from an exponential distribution with
	// mean Jitter, cut at 10×Jitter: mostly fast, with a long tail.
	Exponential
)

var distNames = [...]string{Uniform: "uniform", Exponential: "exponential"}

// String returns the distribution's name as JSON spells it.
func (d Dist) String() string { return enumName(distNames[:], int(d), "Dist") }

// Latency is a one-way delay distribution: Base plus a random part.
type Latency struct {
	Base   time.Duration // the fixed part
	Jitter time.Duration // the scale of the random part
	Dist   Dist          // how the random part is drawn
}

// max returns the longest delay the distribution can draw.
func (l Latency) max() time.Duration {
	if l.Dist == Exponential {
		return l.Base + 10*l.Jitter
	}
	return l.Base + l.Jitter
}

func (l Latency) validate(field string) error {
	var errs []error
	if l.Base < 0 {
		errs = append(errs, fmt.Errorf("%s.Base must not be negative (got %s)", field, l.Base))
	}
	if l.Jitter < 0 {
		errs = append(errs, fmt.Errorf("%s.Jitter must not be negative (got %s)", field, l.Jitter))
	}
	if int(l.Dist) >= len(distNames) {
		errs = append(errs, fmt.Errorf("%s.Dist must be uniform or exponential (got %d)", field, l.Dist))
	}
	return errors.Join(errs...)
}

// FaultKind names a fault.
type FaultKind uint8

// Faults. "Affected clients" are Fault.Clients; "affected servers" are
// Fault.Servers. Faults on dials apply to attempts that reach an affected
// server while the window is open.
const (
	// Refused: the server's port refuses connections (RST): attempts fail
	// after one round trip.
	Refused FaultKind = iota + 1
	// Occupied: the port is held by a listener that is not a WebSocket
	// server (it answers 404): attempts fail after one round trip.
	Occupied
	// DNS: affected clients cannot resolve the server's name: attempts
	// fail after the resolver's delay (one Latency.Base).
	DNS
	// Stall: the server accepts the connection but never answers the
	// handshake: attempts time out at Backoff.ConnectTimeout.
	Stall
	// Auth: the server rejects the handshake with Code (401 or 403) before
	// the upgrade; the session is reaped as handshake_failed.
	Auth
	// AcceptClose: the upgrade succeeds and the link is closed at once, by
	// a proxy in front of the server: the client sees it up, then dropped.
	AcceptClose
	// Kill: affected client processes are killed (kill -9) at Start: no
	// close frame; the kernel closes the socket (FIN). They restart at
	// End if End is before Duration.
	Kill
	// Crash: affected client hosts die at Start: no close frame, no FIN,
	// nothing more at all. They restart at End if End is before Duration.
	Crash
	// Blackhole: affected clients' links go half-open: every frame either
	// way is dropped silently, for good, on the links open at Start and on
	// those opened during the window.
	Blackhole
	// RST: a middlebox forgets affected clients' open links at Start and
	// answers the next frame either end writes with RST: the writer's next
	// write fails.
	RST
	// LatencySpike: frames between affected clients and servers take
	// Fault.Latency during the window instead of the scenario's Latency.
	LatencySpike
	// Loss: each frame between affected clients and servers is lost with
	// probability Rate and retransmitted by TCP after 200ms, doubling per
	// loss: loss shows up as delay, as it does on a real TCP link.
	Loss
	// Partition: affected clients and servers cannot reach each other
	// during the window; frames are held and delivered after the heal at
	// End (TCP retransmission); attempts time out.
	Partition
	// Restart: affected servers shut down at Start (every session closed
	// with 1001 going away, all at once), refuse connections until End,
	// then listen again. End must be set and after Start.
	Restart
	// Garbage: affected clients' application messages (ClientEventInterval)
	// arrive undecodable, each with probability Rate (zero means every
	// one): protocol errors, MaxErrors of which in a row close a session.
	Garbage
	// Nudge: the owners of affected clients call ReconnectNow every 10ms
	// from Start to End: the caller in a loop the reconnect-now floor
	// exists for.
	Nudge
	// NodeCrash: affected nodes' processes are killed (kill -9) at Start:
	// their sessions vanish (the kernel sends FIN), their leases are no
	// longer renewed; they start again, with a new incarnation, at End if
	// End is before Duration. Cluster only.
	NodeCrash
	// NodeCutOff: affected nodes cannot reach the engine during the
	// window (their clients still reach them): lease writes, reads, watch
	// events and bus messages to and from them are lost. Cluster only.
	NodeCutOff
	// EngineFailover: the engine's leader fails over during the window:
	// lease and directory writes, reads and expiries pause (the bus keeps
	// working). The window must not be longer than Cluster.Lease.Failover.
	// Cluster only.
	EngineFailover
	// WatchLoss: watch events (lease puts and expiry markers, directory
	// entries) to affected nodes are lost during the window. Cluster only.
	WatchLoss
	// WatchDelay: watch events to affected nodes take Fault.Latency during
	// the window. Cluster only.
	WatchDelay
	// NodeLeave: affected nodes shut down cleanly at Start: every session
	// is closed with 1001, the node's directory entries and its lease are
	// deleted at once (no waiting for the TTL), and the listener refuses;
	// they start again, with a new incarnation, at End if End is before
	// Duration. Cluster only.
	NodeLeave
)

var faultNames = [...]string{
	Refused: "refused", Occupied: "occupied", DNS: "dns", Stall: "stall", Auth: "auth",
	AcceptClose: "accept_close", Kill: "kill", Crash: "crash", Blackhole: "blackhole", RST: "rst",
	LatencySpike: "latency", Loss: "loss", Partition: "partition", Restart: "restart", Garbage: "garbage",
	Nudge:     "nudge",
	NodeCrash: "node_crash", NodeCutOff: "node_cutoff", EngineFailover: "engine_failover",
	WatchLoss: "watch_loss", WatchDelay: "watch_delay", NodeLeave: "node_leave",
}

// String returns the fault's name as JSON and the CLI spell it.
func (k FaultKind) String() string { return enumName(faultNames[:], int(k), "FaultKind") }

// parseFaultKind returns the kind named s.
func parseFaultKind(s string) (FaultKind, error) {
	k, err := enumParse(faultNames[:], s, "fault kind")
	return FaultKind(k), err
}

// Range is a half-open range [From, To) of client numbers. The zero value
// means every client.
type Range struct{ From, To int }

func (r Range) all() bool { return r.From == 0 && r.To == 0 }

func (r Range) has(i int) bool { return r.all() || (i >= r.From && i < r.To) }

// Fault is one fault, active over the window [Start, End).
type Fault struct {
	Kind FaultKind // what goes wrong
	// Start and End bound the window. End zero means until Duration.
	Start, End time.Duration
	// Clients are the affected clients; the zero Range means all.
	Clients Range
	// Servers are the affected servers; empty means all.
	Servers []int
	// Rate is Loss's per-frame loss probability, or Garbage's per-message
	// one, in [0, 1).
	Rate float64
	// Code is Auth's HTTP status, 401 or 403; zero means 401.
	Code int
	// Latency is LatencySpike's delay distribution.
	Latency Latency
}

func (f *Fault) hasServer(s int) bool {
	if len(f.Servers) == 0 {
		return true
	}
	for _, x := range f.Servers {
		if x == s {
			return true
		}
	}
	return false
}

// Bug is a deliberately broken driver behaviour, one per historical bug,
// so a test can show that the invariants catch it.
type Bug uint8

const (
	// BugNoWaitOnError: on the exception path (refused, DNS failure, not a
	// WebSocket server) the driver dials again at once instead of handing
	// the failure to its machine: the tight reconnect loop of the field
	// report. Breaks (a).
	BugNoWaitOnError Bug = iota + 1
	// BugLockAcrossBackoff: clients 2k and 2k+1 are the two links of one
	// process sharing one lock, and the driver holds it across the backoff
	// sleep; the other link's frames (pongs included) and its own retry
	// wait for it. Breaks (b), and (d) when the blocked link is alive.
	BugLockAcrossBackoff
	// BugNoReconnectAfterDrop: once a connected link drops, the driver never
	// wakes its machine again. Breaks (b).
	BugNoReconnectAfterDrop
	// BugNoPing: the server never arms a session's timer: no ping, no
	// silence check; a peer that dies silently leaves a stale session.
	// Breaks (c) and (f).
	BugNoPing
	// BugSwallowSendError: the server ignores failed writes instead of
	// reaping. Breaks (c)'s fast tier.
	BugSwallowSendError
	// BugPongTimeoutOverPing: the server re-arms its pong deadline whenever
	// it pings, so with a pong deadline longer than the ping interval the
	// deadline never fires. Breaks (c) and (f).
	BugPongTimeoutOverPing
	// BugSendAfterClose: the server keeps its per-session event timer after
	// the session left Alive/Suspect and writes on, ignoring the error
	// Step returns. Breaks (e).
	BugSendAfterClose
	// BugLeakOnReap: the server reaps sessions but never removes them from
	// its registry. Breaks (f).
	BugLeakOnReap
	// BugMessageAsPong: the server's reader hands every application message
	// to its machine as a mere sign of life (EvPong): activity from the
	// peer is not counted for the idle tier, and a good message never ends
	// a streak of protocol errors. Breaks (d).
	BugMessageAsPong
	// BugClientDeaf: the client's reader answers pings but never tells its
	// machine that a frame arrived, so a live server looks silent and the
	// client drops it at the liveness bound. Breaks (d) on the client side.
	BugClientDeaf
	// BugResetOnConnect: the driver resets its backoff whenever a link
	// comes up (a fresh machine per connection) instead of after the link
	// was stable for StableAfter: a server that accepts and closes at once
	// pulls it into the immediate first retry every time. Breaks (a).
	BugResetOnConnect
	// BugLockStepJitter: every client draws its jitter from a source
	// seeded alike, so a fleet dropped at once retries in lock-step
	// however wide the jitter. Breaks (g).
	BugLockStepJitter
	// BugPolicyRestartsLoop: a policy change restarts the reconnect loop
	// of every client waiting to retry (a fresh machine with the new
	// policy) instead of handing the policy to its machine: the pending
	// retry goes at once, before the old policy promised. Breaks (a).
	BugPolicyRestartsLoop
	// BugIgnoreGoAway: the driver hands its machine a plain failure for a
	// 401, 403 or close 1008 (Step, not StepFailure): the server that said
	// "go away" is retried at the transient pace. Breaks (l).
	BugIgnoreGoAway
	// BugNudgeDials: the driver answers ReconnectNow by dialing at once,
	// behind its machine's back: a caller in a loop recreates the tight
	// loop. Breaks (m).
	BugNudgeDials
	// BugNoRecheck: peer views trust the KV watch alone and never re-check
	// a lease: a lost expiry marker leaves a dead node alive. Breaks (h).
	BugNoRecheck
	// BugNoFence: a node that cannot prove its lease keeps serving its
	// sessions. Breaks (i).
	BugNoFence
	// BugShortLeaseTTL: the lease is written with the heartbeat as its TTL
	// (a TTL not longer than the heartbeat): it lapses between renewals,
	// and nodes count a serving node dead. Breaks (i).
	BugShortLeaseTTL
	// BugStaleDirectory: a send is answered "delivered" from the sender's
	// directory view and published fire-and-forget, without the owner's
	// word. Breaks (j).
	BugStaleDirectory
	// BugKeepDeadEntries: a node that counts a peer dead drops the peer but
	// not its directory entries, and its re-checks refresh the entries of
	// live peers only: a dead node's sessions stay listed. Breaks (k).
	BugKeepDeadEntries
	// BugIgnoreRetryAfter: the driver hands its machine a refused
	// handshake's status but not its Retry-After: a rate-limited server
	// is retried on the client's own schedule, as if it had said nothing.
	// Breaks (n).
	BugIgnoreRetryAfter
	// BugOutboxNoAgeCheck: the outbox drains without judging Age, so
	// messages queued through a long outage go out late, in a burst: the
	// stale heartbeats flushed after a reconnect (go-cqhttp #275). Breaks (o).
	BugOutboxNoAgeCheck
	// BugOutboxReorder: the outbox drains newest first (a stack). Breaks (o).
	BugOutboxReorder
	// BugOutboxSilentDrop: over a bound, or past its Age, a queued message
	// is discarded without being counted. Breaks (o).
	BugOutboxSilentDrop
)

var bugNames = [...]string{
	BugNoWaitOnError: "no_wait_on_error", BugLockAcrossBackoff: "lock_across_backoff",
	BugNoReconnectAfterDrop: "no_reconnect_after_drop", BugNoPing: "no_ping",
	BugSwallowSendError: "swallow_send_error", BugPongTimeoutOverPing: "pong_timeout_over_ping",
	BugSendAfterClose: "send_after_close", BugLeakOnReap: "leak_on_reap",
	BugMessageAsPong: "message_as_pong", BugClientDeaf: "client_deaf", BugResetOnConnect: "reset_on_connect",
	BugLockStepJitter: "lock_step_jitter", BugPolicyRestartsLoop: "policy_restarts_loop",
	BugIgnoreGoAway: "ignore_go_away", BugNudgeDials: "nudge_dials",
	BugNoRecheck: "no_recheck", BugNoFence: "no_fence", BugShortLeaseTTL: "short_lease_ttl",
	BugStaleDirectory: "stale_directory", BugKeepDeadEntries: "keep_dead_entries",
	BugIgnoreRetryAfter: "ignore_retry_after",
	BugOutboxNoAgeCheck: "outbox_no_age_check", BugOutboxReorder: "outbox_reorder", BugOutboxSilentDrop: "outbox_silent_drop",
}

// Bugs lists every Bug.
func Bugs() []Bug {
	out := make([]Bug, 0, len(bugNames)-1)
	for b := BugNoWaitOnError; int(b) < len(bugNames); b++ {
		out = append(out, b)
	}
	return out
}

// String returns the bug's name as JSON spells it.
func (b Bug) String() string { return enumName(bugNames[:], int(b), "Bug") }

// ParseBug returns the bug named s.
func ParseBug(s string) (Bug, error) {
	b, err := enumParse(bugNames[:], s, "bug")
	return Bug(b), err
}

// enumName and enumParse are the String and Parse of the enums a scenario
// file spells by name; names is indexed by value, "" for none.
func enumName(names []string, i int, typ string) string {
	if i >= 0 && i < len(names) && names[i] != "" {
		return names[i]
	}
	return typ + "(" + strconv.Itoa(i) + ")"
}

func enumParse(all []string, s, what string) (int, error) {
	for i, n := range all {
		if n != "" && n == s {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown %s %q (want one of %s)", ErrScenario, what, s, names(all))
}

func names(all []string) string {
	var s string
	for _, n := range all {
		if n == "" {
			continue
		}
		if s != "" {
			s += ", "
		}
		s += n
	}
	return s
}

// ErrScenario is matched (errors.Is) by every error Validate and
// LoadScenario return for a bad scenario.
var ErrScenario = errors.New("sim: invalid scenario")

// MaxClients bounds Scenario.Clients: a run keeps per-client state in
// memory, and ten times the 10 000-session target is plenty.
const MaxClients = 100_000

// WithDefaults returns s with zero fields replaced by their defaults.
func (s Scenario) WithDefaults() Scenario {
	if s.Servers == 0 {
		s.Servers = 1
	}
	if s.Duration == 0 {
		s.Duration = 10 * time.Minute
	}
	if s.Latency == (Latency{}) {
		s.Latency = Latency{Base: 20 * time.Millisecond, Jitter: 10 * time.Millisecond}
	}
	return s
}

// Validate reports every problem with s, each naming its field. It does
// not change s; zero fields are checked as their defaults.
func (s Scenario) Validate() error {
	d := s.WithDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if d.Clients < 1 || d.Clients > MaxClients {
		bad("Clients must be within [1, %d] (got %d)", MaxClients, d.Clients)
	}
	if d.Servers < 1 || d.Servers > 1000 {
		bad("Servers must be within [1, 1000] (got %d)", d.Servers)
	}
	if d.Duration < 0 {
		bad("Duration must not be negative (got %s)", d.Duration)
	}
	if d.EventInterval < 0 {
		bad("EventInterval must not be negative (got %s)", d.EventInterval)
	}
	if d.ClientEventInterval < 0 {
		bad("ClientEventInterval must not be negative (got %s)", d.ClientEventInterval)
	}
	for _, e := range []struct {
		field string
		err   error
	}{
		{"Backoff", d.Backoff.Validate()}, {"Failures", d.Failures.Validate()}, {"ClientLiveness", d.ClientLiveness.Validate()},
		{"ServerLiveness", d.ServerLiveness.Validate()}, {"Latency", d.Latency.validate("Latency")},
		{"HandshakeRate", d.HandshakeRate.Validate()},
		{"Outbox", d.Outbox.Validate()},
	} {
		if e.err != nil {
			bad("%s: %w", e.field, e.err)
		}
	}
	for i, ch := range d.BackoffChanges {
		if err := ch.Backoff.Validate(); err != nil {
			bad("BackoffChanges[%d].Backoff: %w", i, err)
		}
		if ch.At < 0 || ch.At >= d.Duration || (i > 0 && ch.At < d.BackoffChanges[i-1].At) {
			bad("BackoffChanges[%d].At must be within [0, Duration) and not before the change before it (got %s)", i, ch.At)
		}
	}
	if d.Cluster != nil {
		if err := d.Cluster.validate(d); err != nil {
			bad("Cluster: %w", err)
		}
	}
	for i := range d.Faults {
		if err := d.Faults[i].validate(d); err != nil {
			bad("Faults[%d] (%s): %w", i, d.Faults[i].Kind, err)
		}
	}
	for i, b := range d.Bugs {
		if b < BugNoWaitOnError || int(b) >= len(bugNames) {
			bad("Bugs[%d]: unknown bug %d", i, b)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrScenario, err)
	}
	return nil
}

func (f *Fault) validate(s Scenario) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if f.Kind < Refused || int(f.Kind) >= len(faultNames) {
		bad("Kind: unknown fault kind %d", f.Kind)
	}
	if f.Start < 0 || f.Start >= s.Duration {
		bad("Start must be within [0, Duration=%s) (got %s)", s.Duration, f.Start)
	}
	if f.End != 0 && f.End <= f.Start {
		bad("End must be after Start (%s) or zero for until Duration (got %s)", f.Start, f.End)
	}
	if f.Kind == Restart && f.End == 0 {
		bad("End must be set: a restart needs the time the listener returns")
	}
	if !f.Clients.all() && (f.Clients.From < 0 || f.Clients.To > s.Clients || f.Clients.From >= f.Clients.To) {
		bad("Clients must be a non-empty range within [0, %d) (got [%d, %d))", s.Clients, f.Clients.From, f.Clients.To)
	}
	for _, x := range f.Servers {
		if x < 0 || x >= s.Servers {
			bad("Servers: server %d does not exist (there are %d)", x, s.Servers)
		}
	}
	if f.Rate < 0 || f.Rate >= 1 || f.Rate != f.Rate {
		bad("Rate must be within [0, 1) (got %v)", f.Rate)
	}
	if f.Rate != 0 && f.Kind != Loss && f.Kind != Garbage {
		bad("Rate only applies to loss and garbage")
	}
	if f.Code != 0 && (f.Kind != Auth || (f.Code != 401 && f.Code != 403)) {
		bad("Code must be 401 or 403, and only for auth (got %d)", f.Code)
	}
	if err := f.validateCluster(s); err != nil {
		errs = append(errs, err)
	}
	if f.Latency != (Latency{}) && f.Kind != LatencySpike && f.Kind != WatchDelay {
		bad("Latency only applies to latency faults")
	}
	if err := f.Latency.validate("Latency"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
