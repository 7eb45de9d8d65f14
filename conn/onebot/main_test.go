package onebot

import (
	"os"
	"testing"

	"github.com/lifeline-go/lifeline/internal/leakcheck"
)

// TestMain fails the package if any goroutine outlives its tests.
func TestMain(m *testing.M) {
	os.Exit(leakcheck.Main(m))
}
