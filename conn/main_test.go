package conn

import (
	"flag"
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

// liveWindow is how many ping intervals the keep-alive tests
// (TestClientKeepsLiveLink, TestServerKeepsLivePeer) watch a live link
// for: ten by default, fewer in the mutation run (mutation_test.go).
var liveWindow = 10
