// Command lifeline runs lifeline's tools: lifecycle diagrams from the
// transition tables, and (as their packages land) the simulator, a
// reconnecting client, a session-reaping server and a demo of both.
//
// Usage:
//
//	lifeline <command> [flags]
//
// Run `lifeline help` for the list of commands, `lifeline <command> -h`
// for a command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand. run gets the arguments after the command name
// and returns when its work is done or ctx ends (SIGINT, SIGTERM).
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"diagram", "write the lifecycle diagrams (Mermaid, DOT) to docs/, or check they are current", runDiagram},
		{"demo", "watch a fleet survive kill -9, SIGSTOP and a server restart on 127.0.0.1 (under a minute)", runDemo},
		{"serve", "run a session-reaping WebSocket echo server with JSON stats at /stats", runServe},
		{"connect", "stay connected to a WebSocket server, reconnecting by a backoff policy", runConnect},
		{"bench", "measure conn on real sockets: memory, CPU, reap latency, retries, restart herd, RSS per session, echo latency", runBench},
		{"sim", "simulate a fleet through faults in virtual time and check the invariants", runSim},
		{"audit", "judge JSON transition logs of real runs by the invariants (early retries, late or unjust reaps)", runAudit},
		{"onebot", "OneBot v11: `onebot serve` (forward server) or `onebot connect` (reverse client)", runOneBot},
	}
}

// usageError is a mistake in the command line; it exits with status 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// exitError carries a specific exit status with its message.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// mainEnv, set in a helper process's environment, tells a re-executed test
// binary to behave as this command (see main_test.go); the real binary
// ignores it.
const mainEnv = "LIFELINE_MAIN"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		var ue usageError
		var ee exitError
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "lifeline %s: %v\n", c.name, err)
			return 2
		case errors.As(err, &ee):
			fmt.Fprintf(stderr, "lifeline %s: %v\n", c.name, err)
			return ee.code
		default:
			fmt.Fprintf(stderr, "lifeline %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "lifeline: unknown command %q\n", args[0])
	printUsage(stderr)
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: lifeline <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
}

// newFlagSet returns a flag set that reports errors instead of exiting and
// writes its usage to w.
func newFlagSet(name string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("lifeline "+name, flag.ContinueOnError)
	fs.SetOutput(w)
	return fs
}

// parseFlags parses args, turning a bad flag into a usageError and
// rejecting stray positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}
