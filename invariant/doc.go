// Package invariant checks lifeline's promises over a trace: incremental
// checkers that consume trace.Records as a run produces them and compare
// what happened with the policy oracles of package fsm (Backoff.Earliest,
// Backoff.Latest, Backoff.GivesUpAfter, Liveness.ReapDeadline,
// Liveness.IdleReapDeadline).
//
// The invariants, by letter:
//
//	(a) NoEarlyRetry     no attempt before the policy's earliest bound for its number, on every
//	                     failure path; and every attempt is one the policy scheduled (its number
//	                     follows the failures seen), so a driver retrying behind its machine's
//	                     back is caught even where the earliest bound is zero (full jitter)
//	(b) BoundedRetries   attempts ≤ MaxAttempts, then GaveUp; each retry by the latest bound
//	(c) DeadReaped       a session whose peer is dead is reaped by the liveness bound after the
//	                     peer's last sign of life (at once after a failed send); an idle one by the idle bound
//	(d) LiveKept         no session is reaped for silence while its peer lives and its path
//	                     delivers every frame within half the pong timeout
//	(e) NoSendAfterClose nothing is sent on a session outside Alive and Suspect
//	(f) RegistryMatches  once the world settles, registered sessions = live peers
//	(g) HerdSpread       after a server restart, no Window holds more than MaxFraction
//	                     of the dropped clients' reconnects (judged on single-node runs)
//
// And the cluster's, judged when a run carries cluster records (nodes,
// leases, peer views, directory views, cross-node sends), against the
// oracles of fsm.Lease:
//
//	(h) NodeDeclaredDead every node that counted an incarnation of another alive counts it
//	                     dead once its lease ended, by Lease.LatestDead of the lease's last
//	                     write (+Failover across an engine failover), unless it was itself
//	                     crashed or cut off meanwhile
//	(i) FencedFirst      when any node counts an incarnation dead, that incarnation serves
//	                     nothing: not Member or Degraded, no open session opened under it
//	(j) DeliveredLive    a send answered "delivered" was written on its session between the
//	                     send and the answer: never to a session reaped before the send
//	(k) DirectoryMatches once the world settles, every live node's directory view is the set
//	                     of open sessions of the live nodes
//
// And the reconnect policy v2's (issue 13), from the client's Down (with
// the status or close code it carried), Nudge and Dial records:
//
//	(l) PermanentSlow    no attempt after a permanent failure (401, 403, 404, close 1008, ...
//	                     by Config.Failures) comes sooner than the slow schedule allows
//	(m) ReconnectFloor   no attempt a reconnect-now brought forward starts closer than
//	                     Backoff.ReconnectFloor to the attempt before it
//	(n) RetryAfterFloor  no attempt after a refusal that carried a server's Retry-After (the
//	                     Down record's Delay) comes sooner than it, capped at
//	                     Backoff.RetryAfterMax; such a retry may come up to
//	                     fsm.Backoff.RetryAfterLatest after the failure without breaking (b)
//
// And the bounded outbox's (issue 13), from the client's OutboxQueued,
// OutboxWritten and OutboxDropped records, against Config.Outbox:
//
//	(o) OutboxFaithful   no message is written from the outbox older than Age, none out of
//	                     the order sent (a send never overtakes queued ones), and none is lost
//	                     without a Dropped record (the bounds hold, drops take the oldest,
//	                     nothing is left held at the end)
//
// (g) holds a restart to the lower of HerdMaxFraction and the policy's own
// herd oracle (fsm.Backoff.HerdShare, fsm.HerdLimit).
//
// The records come from the simulator (package sim) or from a real adapter
// run under testing/synctest; the checkers do not know which. Each Observe
// is O(1) and allocates nothing in steady state (per-instance tables grow
// with the ids seen), so a Suite can watch a simulated hour of ten thousand
// sessions without slowing it.
//
// # Usage
//
//	s, err := invariant.New(invariant.Config{Backoff: b, Liveness: l})
//	for each record r, in time order: s.Observe(&r)
//	s.Finish(end)
//	for _, v := range s.Violations() { log.Print(v) }
package invariant
