//go:build mutation

package conn

// Built with -tags mutation (scripts/mutation --conn), the package's tests
// are the set that runs against every mutant of the lifecycle files
// (session, session_io, server, client_run, client_link), cut to what
// checks that code and fails fast, so that a run of ~150 mutants takes
// minutes, not an hour (docs/decisions.md, "conn: mutation testing"):
//
//   - "Catches": tests that prove a check catches a deliberately broken
//     adapter. They test the checks, not the code a mutant changes, and
//     they are the slowest (each shrinks a counterexample).
//   - Examples: they wait without a bound (an example shows use, not
//     timeouts), so against a mutant that drops a message they hang until
//     gremlins' timeout; -failfast does not stop them. They were most of
//     the 35 "timed out" mutants of the first run.
//   - Wall-clock repeats of what a synctest property judges in virtual
//     time: the refused-port schedule and its failover rotation
//     (TestPropertyClientRetriesFollowPolicy), the silent peer's reap
//     bound (TestPropertyServerReapsDeadKeepsLive; its +50 ms bound fails
//     on its own on a loaded machine, and a failing baseline aborts the
//     run), the stopped client's and the stopped server's reap bounds
//     across processes (the same rules, both ends, in virtual time; their
//     bounds tight to the path fail on their own at a load of 10), the
//     fleet's jitter (client.go, not a lifecycle file).
//   - A test of a file that is not mutated: token comparison timing
//     (auth.go).
//
// The keep-alive tests watch a live link for liveWindow ping intervals
// instead of ten: a mutant that stops pings or misjudges a pong drops the
// link within two.
func init() {
	testSkip = "Catches|^Example|^TestClientRefusedPortFollowsPolicy$|^TestClientFailoverRotatesWithUnchangedWaits$" +
		"|^TestServerReapsSilentPeer$|^TestPropertyFleetDrawsIndependentJitter$" +
		"|^TestProcessStopped(Client|Server)Is(Reaped|Noticed)$|^TestTokenCompareLeaksNoTiming$"
	liveWindow = 4
}
