package sim_test

import (
	"context"
	"fmt"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/sim"
)

// Ten clients through a kill -9 of three of them and a server restart:
// every invariant holds, and the run is the same every time.
func ExampleRun() {
	sc := sim.Scenario{
		Seed: 1, Clients: 10, Duration: 10 * time.Minute, Backoff: fsm.DefaultBackoff(),
		Faults: []sim.Fault{
			{Kind: sim.Kill, Start: 2 * time.Minute, End: 3 * time.Minute, Clients: sim.Range{From: 0, To: 3}},
			{Kind: sim.Restart, Start: 5 * time.Minute, End: 5*time.Minute + 10*time.Second},
		},
	}
	res, err := sim.Run(context.Background(), sc, sim.Options{})
	if err != nil {
		panic(err)
	}
	fmt.Println("reaps:", res.Stats.Reaps)
	fmt.Println("sessions at the end:", res.Stats.FinalSessions)
	for _, v := range res.Suite.Verdicts() {
		fmt.Printf("(%s) %s held=%v\n", v.Letter, v.Name, v.Held())
	}
	// Output:
	// reaps: map[read_error:3 shutdown:10]
	// sessions at the end: 10
	// (a) no_early_retry held=true
	// (b) bounded_retries held=true
	// (c) dead_reaped held=true
	// (d) live_kept held=true
	// (e) no_send_after_close held=true
	// (f) registry_matches held=true
	// (g) herd_spread held=true
	// (l) permanent_slow held=true
	// (m) reconnect_floor held=true
	// (n) retry_after_floor held=true
}

// A deliberately broken driver, the server that never pings, leaves the
// sessions of crashed clients behind.
func ExampleRun_brokenDriver() {
	sc := sim.Scenario{
		Seed: 1, Clients: 4, Duration: 5 * time.Minute,
		Faults: []sim.Fault{{Kind: sim.Crash, Start: time.Minute, Clients: sim.Range{From: 0, To: 1}}},
		Bugs:   []sim.Bug{sim.BugNoPing},
	}
	res, _ := sim.Run(context.Background(), sc, sim.Options{})
	for _, v := range res.Suite.Verdicts() {
		if !v.Held() {
			fmt.Printf("(%s) %s violated\n", v.Letter, v.Name)
		}
	}
	// Output:
	// (c) dead_reaped violated
	// (f) registry_matches violated
}

// A scenario kept as a file (sim/testdata, or `lifeline sim --scenario`):
// five of ten clients crash without a close frame while the server's
// driver has the historical no-ping bug; the dead-peer invariant catches
// each leaked session, and the registry check the count left over.
func ExampleLoadScenario() {
	sc, err := sim.LoadScenario("testdata/kill9-no-ping.json")
	if err != nil {
		panic(err)
	}
	fmt.Println("clients:", sc.Clients, "bugs:", sc.Bugs)
	res, err := sim.Run(context.Background(), sc, sim.Options{})
	if err != nil {
		panic(err)
	}
	for _, v := range res.Suite.Verdicts() {
		if !v.Held() {
			fmt.Printf("(%s) %s violated %d times\n", v.Letter, v.Name, v.Violations)
		}
	}
	// Output:
	// clients: 10 bugs: [no_ping]
	// (c) dead_reaped violated 5 times
	// (f) registry_matches violated 1 times
}
