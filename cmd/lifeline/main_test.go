package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/lifeline-go/lifeline/internal/leakcheck"
)

// TestMain lets the demo and the benchmarks re-execute this test binary as
// the lifeline command (they set mainEnv in the child's environment), and
// otherwise runs the tests, failing if a goroutine outlives them.
func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(leakcheck.Main(m))
}
