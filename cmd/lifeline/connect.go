package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
)

func runConnect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return connect(ctx, args, os.Stdin, stdout, stderr)
}

// connect is runConnect with stdin as a parameter, for tests. It prints
// every message received on stdout, one per line, and sends every line
// read from stdin; a line that cannot be sent (not connected) is reported
// on stderr, not queued, unless --outbox holds it for the next link (then
// the outbox's figures are printed on stderr when connect ends).
func connect(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("connect", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: lifeline connect ws://host:port/path [ws://another-node/path ...] [flags]")
		fmt.Fprintln(stderr, "  several URLs: each attempt after a failure goes to the next (cluster failover)")
		fs.PrintDefaults()
	}
	backoff := backoffFlags(fs, fsm.DefaultBackoff())
	failures := failureFlags(fs)
	outbox := outboxFlag(fs)
	var live fsm.Liveness
	livenessFlags(fs, &live)
	token := fs.String("token", "", "send `Authorization: Bearer <token>`")
	id := fs.String("id", "", "name in the logs (default: the URL)")
	logFormat := fs.String("log-format", "text", "log format: json or text")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageError{errors.New("want at least one ws:// or wss:// URL")}
	}
	b, err := backoff()
	if err != nil {
		return err
	}
	fp, err := failures()
	if err != nil {
		return err
	}
	ob, err := outbox()
	if err != nil {
		return err
	}
	logger, err := newLogger(*logFormat, stderr)
	if err != nil {
		return usageError{err}
	}
	var outMu sync.Mutex
	cfg := conn.ClientConfig{URL: pos[0], URLs: pos[1:], Backoff: b, Failures: fp, Liveness: live, ID: *id, Logger: logger, Outbox: ob,
		OnMessage: func(_ conn.MessageType, data []byte) {
			outMu.Lock()
			defer outMu.Unlock()
			fmt.Fprintf(stdout, "%s\n", data)
		}}
	if *token != "" {
		cfg.Header = conn.BearerHeader(*token)
	}
	c, err := conn.NewClient(cfg)
	if err != nil {
		return usageError{err}
	}
	go sendLines(ctx, c, stdin, stderr)
	err = c.Run(ctx)
	if ob.On() {
		printOutbox(stderr, c.Stats().Outbox)
	}
	return gaveUp(err, b.MaxAttempts)
}

// backoffFlags registers the reconnect policy flags connect and onebot
// connect share, with d's values as defaults; the returned function reads
// them into a Backoff after parsing.
func backoffFlags(fs *flag.FlagSet, d fsm.Backoff) func() (fsm.Backoff, error) {
	var b fsm.Backoff
	fs.DurationVar(&b.Initial, "initial", d.Initial, "first backoff delay after the immediate retry")
	fs.Float64Var(&b.Multiplier, "multiplier", d.Multiplier, "backoff growth per failure")
	fs.DurationVar(&b.Max, "max", d.Max, "backoff cap, jitter included")
	jitter := fs.String("jitter", d.Jitter.String(), "jitter: none, symmetric, full, equal or decorrelated")
	fs.IntVar(&b.MaxAttempts, "max-attempts", 0, "give up after this many consecutive failed attempts (0: never)")
	fs.DurationVar(&b.GiveUpAfter, "give-up-after", 0, "give up after this long without a proven link, e.g. 10m (0: never)")
	fs.DurationVar(&b.ReconnectFloor, "reconnect-floor", 0, "least time between two attempts when the owner asks to reconnect now (0: --initial)")
	fs.DurationVar(&b.RetryAfterMax, "retry-after-max", 0, "cap on the Retry-After a refusing server (503, 429) may impose before the next attempt (0: --max)")
	fs.BoolVar(&b.FirstImmediate, "first-immediate", true, "retry at once after the first failure of a run")
	fs.DurationVar(&b.ConnectTimeout, "connect-timeout", d.ConnectTimeout, "bound on one attempt, dial and handshake")
	return func() (fsm.Backoff, error) {
		j, err := fsm.ParseJitter(*jitter)
		if err != nil {
			return fsm.Backoff{}, usageError{err}
		}
		b.Jitter = j
		return b, nil
	}
}

// gaveUp turns a *conn.GaveUpError into the exit error connect commands
// end with; other errors pass through.
func gaveUp(err error, maxAttempts int) error {
	var gu *conn.GaveUpError
	if errors.As(err, &gu) && gu.Cause == fsm.GiveUpFatal {
		return exitError{1, fmt.Errorf("gave up: the server's answer is fatal by --failure-class; last error: %v", gu.Last)}
	}
	if errors.As(err, &gu) && gu.Cause == fsm.GiveUpOffline {
		return exitError{1, fmt.Errorf("gave up after %s without a proven link (give-up-after), %d attempts; last error: %v",
			gu.Offline.Round(time.Millisecond), gu.Attempts, gu.Last)}
	}
	if errors.As(err, &gu) {
		return exitError{1, fmt.Errorf("gave up after %d consecutive failed attempts (max-attempts %d); last error: %v",
			gu.Attempts, maxAttempts, gu.Last)}
	}
	return err
}

// sendLines sends each line of r as a text message until r ends.
func sendLines(ctx context.Context, c *conn.Client, r io.Reader, stderr io.Writer) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if err := c.Send(ctx, conn.TextMessage, []byte(sc.Text())); err != nil {
			fmt.Fprintf(stderr, "lifeline connect: not sent: %v\n", err)
		}
	}
}

// parseInterspersed parses flags before and after positional arguments
// (`connect ws://... --max 30s` as well as `connect --max 30s ws://...`),
// which the flag package alone stops at.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}
