package cluster

import (
	"os"
	"testing"

	"github.com/lifeline-go/lifeline/internal/leakcheck"
)

// TestMain runs a node process when the test binary is re-executed by
// TestClusterNodeKilled, and otherwise the tests, failing the package if
// any goroutine or descriptor outlives them.
func TestMain(m *testing.M) {
	if os.Getenv(nodeEnv) != "" {
		os.Exit(runNodeProcess())
	}
	if os.Getenv(natsEnv) != "" {
		os.Exit(runNATSProcess())
	}
	os.Exit(leakcheck.Main(m))
}
