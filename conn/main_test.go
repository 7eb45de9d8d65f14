package conn

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/lifeline-go/lifeline/internal/leakcheck"
)

// TestMain runs a helper process when the test binary is re-executed by a
// process test (see process_test.go), and otherwise the tests, failing the
// package if any goroutine outlives them.
func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		os.Exit(runHelper(role))
	}
	if _, err := testEngine(); err != nil {
		panic(err)
	}
	if testSkip != "" {
		flag.Parse()
		if err := flag.Set("test.skip", testSkip); err != nil {
			panic(err)
		}
	}
	os.Exit(leakcheck.Main(m))
}

// testSkip, when set (mutation_test.go, -tags mutation), is the -test.skip
// pattern the run uses.
var testSkip string

// engineEnv names the engine conn's real-socket tests run their servers
// on: goroutine or poll; unset, the default (EngineAuto). It is read only
// here, by the tests: `LIFELINE_ENGINE=goroutine go test ./conn/` runs
// the same tests on the goroutine engine (docs/benchmarks.md, "conn:
// engine").
const engineEnv = "LIFELINE_ENGINE"

// testEngine is the engine engineEnv asks for.
func testEngine() (Engine, error) {
	switch v := os.Getenv(engineEnv); v {
	case "":
		return EngineAuto, nil
	case "goroutine":
		return EngineGoroutine, nil
	case "poll":
		return EnginePoll, nil
	default:
		return 0, fmt.Errorf("%s=%q: want goroutine, poll or nothing", engineEnv, v)
	}
}

// withTestEngine sets cfg.Engine from engineEnv unless the test chose one.
func withTestEngine(cfg ServerConfig) ServerConfig {
	if cfg.Engine == EngineAuto {
		cfg.Engine, _ = testEngine()
	}
	return cfg
}

// liveWindow is how many ping intervals the keep-alive tests
// (TestClientKeepsLiveLink, TestServerKeepsLivePeer) watch a live link
// for: ten by default, fewer in the mutation run (mutation_test.go).
var liveWindow = 10
