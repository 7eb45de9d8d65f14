// Package proc starts helper processes — this very program again, with
// other arguments — so that the demo and the benchmarks can kill them
// with SIGKILL or freeze them with SIGSTOP, as the field reports' peers
// were. A helper reports by printing lines; the parent waits for them.
package proc

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Self says how to start this program again: the command line before the
// helper's own arguments, and extra environment (a test binary needs an
// env var to act as the CLI).
type Self struct {
	Argv []string // the command line before the helper's arguments
	Env  []string // extra environment, "KEY=value"
}

// Child is a running helper process whose stdout lines are read as they
// come.
type Child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

// Start runs the program with args appended to s.Argv. Its stderr is
// passed through to stderr (nil: discarded).
func (s Self) Start(stderr io.Writer, args ...string) (*Child, error) {
	argv := append(append([]string{}, s.Argv[1:]...), args...)
	cmd := exec.Command(s.Argv[0], argv...)
	cmd.Env = append(os.Environ(), s.Env...)
	dieWithParent(cmd)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start helper %s: %w", strings.Join(args, " "), err)
	}
	c := &Child{cmd: cmd, stdin: in, lines: make(chan string, 64)}
	go c.read(out)
	return c, nil
}

func (c *Child) read(r io.Reader) {
	defer close(c.lines)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		c.lines <- sc.Text()
	}
}

// Line returns the next line that starts with prefix, prefix cut off;
// lines before it are skipped.
func (c *Child) Line(prefix string, timeout time.Duration) (string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				return "", fmt.Errorf("helper exited before printing %q", prefix)
			}
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return rest, nil
			}
		case <-deadline.C:
			return "", fmt.Errorf("helper printed no %q within %s", prefix, timeout)
		}
	}
}

// Stdin returns the helper's standard input.
func (c *Child) Stdin() io.Writer { return c.stdin }

// Pid returns the helper's process id.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Signal sends sig to the helper and returns the time just before it was
// sent. Stamped before, not after: a SIGKILL closes the helper's sockets
// inside the call, and a server may read the reset and reap the session
// before the call returns, which a later stamp would place before the
// death (the demo's live_kept check then failed under load).
func (c *Child) Signal(sig syscall.Signal) (time.Time, error) {
	at := time.Now()
	err := c.cmd.Process.Signal(sig)
	return at, err
}

// Kill ends the helper (continuing it first, in case it is stopped, so
// the kill is delivered at once) and waits for it. Safe to call twice.
func (c *Child) Kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Process.Signal(syscall.SIGCONT)
	_ = c.stdin.Close()
	_ = c.cmd.Wait()
	for range c.lines {
	}
}
