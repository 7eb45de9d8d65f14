package faults

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/internal/leakcheck"
)

// bin is the lifeline binary under test, built once by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lifeline-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "lifeline")
	build := exec.Command("go", "build", "-o", bin, "github.com/lifeline-go/lifeline/cmd/lifeline")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build lifeline:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := leakcheck.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// logLine is one JSON log line of a lifeline process, with its time.
type logLine struct {
	At time.Time
	M  map[string]any
}

func (l logLine) str(k string) string { s, _ := l.M[k].(string); return s }

// isTransition reports whether l is a transition of machine to state to
// (any state when to is empty).
func (l logLine) isTransition(machine, to string) bool {
	return l.str("msg") == "transition" && l.str("machine") == machine && (to == "" || l.str("to") == to)
}

// lproc is a running `lifeline` process whose JSON log (stderr) is read
// as it comes.
type lproc struct {
	name string
	cmd  *exec.Cmd
	in   io.WriteCloser
	// viaSudo: cmd is sudo, which relays SIGTERM to lifeline but cannot
	// relay SIGKILL; kill asks first.
	viaSudo bool

	mu      sync.Mutex
	lines   []logLine
	out     []string // stdout lines (connect prints what it receives)
	changed chan struct{}
	done    chan struct{}
}

// startLifeline runs `lifeline args...`, inside namespace ns when it is
// not empty, and stops it (SIGCONT, SIGKILL) when the test ends.
func startLifeline(t *testing.T, ns, name string, args ...string) *lproc {
	t.Helper()
	argv := append([]string{bin}, args...)
	if ns != "" {
		argv = append(append(privilege(), "ip", "netns", "exec", ns), argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &lproc{name: name, cmd: cmd, in: in, changed: make(chan struct{}), done: make(chan struct{}),
		viaSudo: ns != "" && len(privilege()) > 0}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			at, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(m["time"]))
			p.add(func() { p.lines = append(p.lines, logLine{At: at, M: m}) })
		}
	}()
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			p.add(func() { p.out = append(p.out, line) })
		}
	}()
	go func() {
		readers.Wait()
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	return p
}

func (p *lproc) add(f func()) {
	p.mu.Lock()
	f()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// kill ends the process (continuing it first, should it be stopped) and
// waits for its output to be read.
func (p *lproc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	if p.viaSudo {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.in.Close()
	<-p.done
}

func (p *lproc) signal(t *testing.T, sig syscall.Signal) time.Time {
	t.Helper()
	at := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: signal %v: %v", p.name, sig, err)
	}
	return at
}

// mark returns the number of log lines so far, to wait for what comes
// after it.
func (p *lproc) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

// wait returns the first log line from index from on that satisfies
// pred, and its index; it fails the test after timeout.
func (p *lproc) wait(t *testing.T, from int, timeout time.Duration, what string, pred func(logLine) bool) (logLine, int) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		for i := from; i < len(p.lines); i++ {
			if pred(p.lines[i]) {
				l := p.lines[i]
				p.mu.Unlock()
				return l, i
			}
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-p.done:
			t.Fatalf("%s exited before %s", p.name, what)
		case <-deadline.C:
			t.Fatalf("%s: no %s within %s; log:\n%s", p.name, what, timeout, p.dump())
		}
	}
}

// waitOut waits until n stdout lines were printed.
func (p *lproc) waitOut(t *testing.T, n int, timeout time.Duration) []string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		if len(p.out) >= n {
			out := append([]string(nil), p.out...)
			p.mu.Unlock()
			return out
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("%s: %d of %d lines on stdout within %s", p.name, len(p.out), n, timeout)
		}
	}
}

// since returns the log lines from index from on.
func (p *lproc) since(from int) []logLine {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]logLine(nil), p.lines[from:]...)
}

func (p *lproc) dump() string {
	var b strings.Builder
	for _, l := range p.lines {
		j, _ := json.Marshal(l.M)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// listening waits for serve's "listening" line and returns its address.
func (p *lproc) listening(t *testing.T) string {
	t.Helper()
	l, _ := p.wait(t, 0, 10*time.Second, "listening line", func(l logLine) bool { return l.str("msg") == "listening" })
	return l.str("addr")
}

// freeAddr returns a loopback address nothing listens on (it was free a
// moment ago).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// rawListener serves every connection with handle until the test ends:
// the non-WebSocket peers of the matrix (an occupied port, a stalled
// handshake, accept-then-close).
func rawListener(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); handle(c) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// netns is a network namespace made for one test, removed with
// everything in it when the test ends.
type netns struct{ name string }

// privilege returns the command prefix that runs a command as root: none
// when this is root, "sudo -n" when sudo works without a password, nil
// otherwise (see hasPrivilege).
func privilege() []string {
	privOnce.Do(func() {
		switch {
		case os.Geteuid() == 0:
			privPrefix, privOK = []string{}, true
		case exec.Command("sudo", "-n", "true").Run() == nil:
			privPrefix, privOK = []string{"sudo", "-n"}, true
		}
	})
	return privPrefix
}

var (
	privOnce   sync.Once
	privPrefix []string
	privOK     bool
)

func hasPrivilege() bool { privilege(); return privOK }

// command returns argv run with the privilege namespaces need.
func command(ctx context.Context, argv ...string) *exec.Cmd {
	argv = append(append([]string{}, privilege()...), argv...)
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}

// installed reports whether tool is on PATH or in the sbin directories,
// which a user's PATH may lack and sudo's has.
func installed(tool string) bool {
	if _, err := exec.LookPath(tool); err == nil {
		return true
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if _, err := os.Stat(filepath.Join(dir, tool)); err == nil {
			return true
		}
	}
	return false
}

// newNetns makes a namespace with its loopback up. Where there is root or
// a password-less sudo the namespace cases must run: under CI (CI set,
// as .ci/run installs iproute2 and nftables) anything missing is a
// failure, elsewhere a skip that says what is missing. Without root and
// without sudo they skip and say so, even under CI.
func newNetns(t *testing.T) *netns {
	t.Helper()
	skip := func(why string) { noNetns(t, why) }
	if !hasPrivilege() {
		t.Skip("no network namespace here: not root and no password-less sudo (the namespace cases need one)")
	}
	for _, tool := range []string{"ip", "nft"} {
		if !installed(tool) {
			skip(tool + " not installed")
		}
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	n := &netns{name: "lifeline-" + hex.EncodeToString(b[:])}
	if out, err := command(context.Background(), "ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		skip(fmt.Sprintf("ip netns add: %v: %s", err, out))
	}
	t.Cleanup(func() {
		if out, err := command(context.Background(), "ip", "netns", "del", n.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", n.name, err, out)
		}
	})
	n.run(t, "ip", "link", "set", "lo", "up")
	return n
}

// noNetns skips a test whose namespaces cannot be made here although
// root or sudo is (a tool or a kernel feature missing), except under CI
// (.ci/run installs the tools), where that is a failure.
func noNetns(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("network namespace needed under CI (root or sudo is here): %s", why)
	}
	t.Skipf("no network namespace here: %s (needs iproute2 and nftables)", why)
}

// try runs a command inside the namespace and returns its error with
// its output: for steps whose failure means "not possible here".
func (n *netns) try(argv ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := command(ctx, append([]string{"ip", "netns", "exec", n.name}, argv...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
	return nil
}

// output runs a command inside the namespace and returns its stdout.
func (n *netns) output(argv ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return command(ctx, append([]string{"ip", "netns", "exec", n.name}, argv...)...).Output()
}

// run runs a command inside the namespace.
func (n *netns) run(t *testing.T, argv ...string) {
	t.Helper()
	if err := n.try(argv...); err != nil {
		t.Fatalf("in %s: %v", n.name, err)
	}
}

// nft loads an nftables ruleset into the namespace; the namespace's
// removal removes it.
func (n *netns) nft(t *testing.T, rules string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := command(ctx, "ip", "netns", "exec", n.name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v: %s\n%s", n.name, err, out, rules)
	}
}
