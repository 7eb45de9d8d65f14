package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/audit"
)

// auditSlack is audit's default tolerance on upper bounds: conn's timer
// granularity (20ms) with room for a loaded host's scheduling.
const auditSlack = 250 * time.Millisecond

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return auditLogs(args, os.Stdin, stdout, stderr)
}

// auditLogs is runAudit with stdin as a parameter, for tests. The policy
// flags are connect's and serve's own definitions, so a deployment's
// command lines can be pasted here as they are.
func auditLogs(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: lifeline audit [flags] [FILE...]  (stdin when no file)")
		fmt.Fprintln(stderr, "Reads the JSON transition logs of serve and connect (--log-format json) and judges them;")
		fmt.Fprintln(stderr, "exit 0 when clean, 1 on a violation, 2 on bad input.")
		fs.PrintDefaults()
	}
	backoff := backoffFlags(fs, fsm.DefaultBackoff())
	failures := failureFlags(fs)
	var live fsm.Liveness
	livenessFlags(fs, &live)
	idleFlag(fs, &live)
	lim := limitFlags(fs)
	slack := fs.Duration("slack", auditSlack, "how late a retry's latest or a reap deadline may be met (timer and scheduling latency)")
	asJSON := fs.Bool("json", false, "write the report as JSON")
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := lim.check(); err != nil {
		return usageError{err}
	}
	b, err := backoff()
	if err != nil {
		return err
	}
	fp, err := failures()
	if err != nil {
		return err
	}
	live.HandshakeTimeout = lim.handshake
	cfg := audit.Config{Backoff: b, Failures: fp, Liveness: live, Slack: *slack}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	var inputs []audit.Input
	if len(files) == 0 {
		inputs = append(inputs, audit.Input{Name: "-", R: stdin})
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return usageError{err}
		}
		defer f.Close()
		inputs = append(inputs, audit.Input{Name: name, R: f})
	}
	rep, err := audit.Run(cfg, inputs)
	if err != nil {
		return usageError{err}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if !rep.Clean() {
		return exitError{1, fmt.Errorf("%d violations", rep.Violations)}
	}
	return nil
}
