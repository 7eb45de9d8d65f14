package bench

import (
	"os"
	"testing"

	"github.com/lifeline-go/lifeline/internal/leakcheck"
)

func TestMain(m *testing.M) { os.Exit(leakcheck.Main(m)) }
