// Package sim is lifeline's deterministic simulator: a world of client
// processes, servers and a network in virtual time, driving the real fsm
// machines through faults, and checking the invariants of package
// invariant over what happens.
//
// A run is a pure function of its Scenario: one goroutine, one seeded
// random source, a queue of events ordered by (virtual time, order of
// scheduling), no sleeps, no wall clock. The same Scenario gives the same
// trace, byte for byte, so a failure found by a property test is replayed
// by its seed.
//
// # The world
//
// Each client is one process with one reconnecting link, run by an
// fsm.Client; each accepted link is an fsm.Session on its server. Frames
// (pings, pongs, application messages, close frames, FIN, RST) travel with
// a latency drawn from the Scenario's distribution and arrive in order, as
// TCP delivers them; a WebSocket library's automatic pong is modelled. The
// driver code here is the reference driver: what the real adapter (package
// conn) must do, with the historical bugs available as Bug switches.
//
// Faults (Fault, FaultKind) are data: each has a time window and the
// clients and servers it affects. Refused ports, non-WebSocket listeners,
// DNS failures, stalled handshakes, 401/403, accept-then-close, kill -9,
// host crashes, half-open blackholes, RST, latency spikes, loss (as TCP
// retransmission delay), partitions that heal, server restarts, and
// undecodable client messages (Garbage, with Scenario.ClientEventInterval).
// Scenario.BackoffChanges change the clients' policy at run time.
//
// After Scenario.Duration the world quiesces (faults over, no new attempts)
// and runs until it has settled, so invariant (f), registered sessions =
// live peers, can be judged: until nothing has come up, gone down or
// changed a registry for a settling span (both ends' liveness bounds,
// the close and connect timeouts, and the longest latency, twice).
//
// # Usage
//
//	sc, err := sim.LoadScenario("sim/testdata/every-fault.json") // or build a Scenario value
//	res, err := sim.Run(ctx, sc, sim.Options{KeepTrace: true})
//	for _, v := range res.Suite.Violations() { fmt.Println(v) }
//	trace.Write(os.Stdout, res.Trace)
//
// `lifeline sim` is the command-line front end; the root property_test.go
// generates scenarios with rapid and checks every invariant.
//
// # Speed
//
// Nothing allocates per event once the world has grown: events are small
// pointer-free values in a radix-heap queue, trace records are fixed-size
// structs rendered to text only on output, and the checkers are
// incremental. BenchmarkWorld reports virtual seconds per real second;
// docs/benchmarks.md has the figures.
package sim
