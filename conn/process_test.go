package conn

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"go.uber.org/goleak"
)

// The process tests re-execute this test binary as a helper process (a
// client or a server) so that it can be killed with SIGKILL or frozen with
// SIGSTOP, as the field reports' peers were. TestMain dispatches on
// helperEnv.
const helperEnv = "LIFELINE_CONN_HELPER"

// helperLiveness is the policy helpers and the tests that judge them share.
func helperLiveness() fsm.Liveness { return fastLiveness() }

// runHelper is the main of a helper process. It prints one line per
// transition ("transition <To>") and "listening <addr>" for a server, and
// runs until killed or sent SIGTERM.
func runHelper(role string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	print := func(o Observation) {
		if o.Kind == ObsTransition {
			fmt.Printf("transition %s\n", o.Transition.To)
		}
	}
	switch role {
	case "client":
		c, err := NewClient(ClientConfig{URL: os.Getenv("LIFELINE_URL"), Backoff: fastBackoff(),
			Liveness: helperLiveness(), Logger: quietLogger(), Observer: print})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := c.Run(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	case "server":
		srv, err := NewServer(withTestEngine(ServerConfig{Liveness: helperLiveness(), OnMessage: echo, Logger: quietLogger()}))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("listening %s\n", ln.Addr())
		hs := &http.Server{Handler: srv}
		go func() { _ = hs.Serve(ln) }()
		<-ctx.Done()
		_ = srv.Close()
		_ = hs.Close()
		return 0
	}
	fmt.Fprintf(os.Stderr, "unknown helper role %q\n", role)
	return 2
}

// helper is a running helper process.
type helper struct {
	cmd   *exec.Cmd
	lines chan string
}

func startHelper(t *testing.T, role string, env ...string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), helperEnv+"="+role), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, lines: make(chan string, 64)}
	go func() {
		defer close(h.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
	}()
	t.Cleanup(h.kill)
	return h
}

// waitLine returns the first line starting with prefix, failing the test
// after timeout.
func (h *helper) waitLine(t *testing.T, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-h.lines:
			if !ok {
				t.Fatalf("helper exited before printing %q", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-deadline:
			t.Fatalf("helper printed no %q within %s", prefix, timeout)
		}
	}
}

func (h *helper) signal(t *testing.T, sig syscall.Signal) time.Time {
	t.Helper()
	if err := h.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
	return time.Now()
}

// kill ends the helper for good (a stopped process is continued so that
// SIGKILL is delivered at once) and reaps it.
func (h *helper) kill() {
	_ = h.cmd.Process.Signal(syscall.SIGKILL)
	_ = h.cmd.Process.Signal(syscall.SIGCONT)
	_ = h.cmd.Wait()
	for range h.lines { // let the scanner goroutine finish
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents)
}

// reapAfterSignal runs a client helper against ts, sends it sig once its
// session is Alive, and returns the reap and the time the signal went.
func reapAfterSignal(t *testing.T, ts *testServer, sig syscall.Signal) (*helper, Observation, time.Time) {
	t.Helper()
	h := startHelper(t, "client", "LIFELINE_URL="+ts.url)
	h.waitLine(t, "transition Connected", 10*time.Second)
	ts.rec.wait(t, 5*time.Second, "the session", countTo(fsm.Alive, 1))
	sent := h.signal(t, sig)
	obs := ts.rec.wait(t, 5*time.Second, "the reap", countTo(fsm.Reaped, 1))
	reaped := transitions(obs, fsm.Reaped)[0]
	bound := ts.Liveness().PingInterval + ts.Liveness().PongTimeout + 50*time.Millisecond
	if d := reaped.At.Sub(sent); d > bound {
		t.Errorf("reaped %s after %v, bound %s", d, sig, bound)
	}
	t.Logf("reaped %s after %v, reason %s", reaped.At.Sub(sent), sig, reaped.Transition.Reason)
	return h, reaped, sent
}

// TestProcessKilledClientIsReaped: kill -9 of a client process, no close
// frame. The server reaps the session (the kernel's FIN/RST makes it a read
// error at once; were it lost, pong timeout would do it within the bound),
// and no goroutine or descriptor of the session survives.
func TestProcessKilledClientIsReaped(t *testing.T) {
	ts := startServer(t, ServerConfig{Liveness: helperLiveness()})
	ignore := goleak.IgnoreCurrent()
	fds := openFDs(t)
	h, reaped, _ := reapAfterSignal(t, ts, syscall.SIGKILL)
	if reaped.Transition.Reason != fsm.ReasonReadError {
		t.Errorf("reason %s, want read_error (the kernel closed the dead process's socket)", reaped.Transition.Reason)
	}
	h.kill()
	goleak.VerifyNone(t, ignore)
	if got := openFDs(t); got != fds {
		t.Errorf("%d descriptors open after the reap, %d before the client came", got, fds)
	}
	if st := ts.Stats(); st.Open != 0 || st.ReapedTotal != 1 {
		t.Errorf("registry after the reap: %+v", st)
	}
}

// TestProcessStoppedClientIsReaped: SIGSTOP of a client process. Its
// kernel keeps the TCP connection up, but nothing answers pings: the
// server reaps by pong timeout within PingInterval + PongTimeout of the
// stop.
func TestProcessStoppedClientIsReaped(t *testing.T) {
	ts := startServer(t, ServerConfig{Liveness: helperLiveness()})
	_, reaped, _ := reapAfterSignal(t, ts, syscall.SIGSTOP)
	if reaped.Transition.Reason != fsm.ReasonPongTimeout {
		t.Fatalf("reason %s, want pong_timeout", reaped.Transition.Reason)
	}
}

// TestProcessStoppedReaderIsSlowConsumer: a client that stops reading
// while the server keeps sending fills the socket buffers, then the
// session's queue: the session is reaped for slow_consumer, not allowed to
// buffer without bound.
func TestProcessStoppedReaderIsSlowConsumer(t *testing.T) {
	live := helperLiveness()
	live.PingInterval, live.PongTimeout = time.Minute, 30*time.Second // leave it to the queue
	ts := startServer(t, ServerConfig{Liveness: live, QueueSize: 16})
	h := startHelper(t, "client", "LIFELINE_URL="+ts.url)
	h.waitLine(t, "transition Connected", 10*time.Second)
	ts.rec.wait(t, 5*time.Second, "the session", countTo(fsm.Alive, 1))
	h.signal(t, syscall.SIGSTOP)
	payload := []byte(strings.Repeat("event ", 10<<10))
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for err == nil && time.Now().Before(deadline) {
		_, err = ts.Broadcast(TextMessage, payload)
	}
	var sc *SessionClosedError
	if !errors.As(err, &sc) || sc.Reason != fsm.ReasonSlowConsumer {
		t.Fatalf("Broadcast error = %v, want a slow_consumer reap", err)
	}
	if st := ts.Stats(); st.Open != 0 || st.Reaped["slow_consumer"] != 1 {
		t.Errorf("registry: %+v", st)
	}
}

// TestProcessStoppedServerIsNoticed: SIGSTOP of the server process. The
// client notices the silence within PingInterval + PongTimeout, retries by
// the policy (its handshakes now time out: the stopped server's kernel
// still accepts TCP), and reconnects once the server is continued.
func TestProcessStoppedServerIsNoticed(t *testing.T) {
	h := startHelper(t, "server")
	addr := strings.TrimPrefix(h.waitLine(t, "listening ", 10*time.Second), "listening ")
	live := helperLiveness()
	b := fastBackoff()
	b.ConnectTimeout = 300 * time.Millisecond
	c, rec, _ := newTestClient(t, ClientConfig{URL: "ws://" + addr + "/", Backoff: b, Liveness: live})
	runClient(t, c)
	rec.wait(t, 10*time.Second, "Connected", countTo(fsm.Connected, 1))
	stopped := h.signal(t, syscall.SIGSTOP)
	obs := rec.wait(t, 5*time.Second, "a handshake timeout", func(obs []Observation) bool {
		for _, o := range transitions(obs, fsm.BackingOff) {
			if o.Transition.Trigger == fsm.DialTimeout {
				return true
			}
		}
		return false
	})
	drop := transitions(obs, fsm.BackingOff)[0]
	if drop.Transition.Trigger != fsm.PongTimeout {
		t.Fatalf("dropped by %s, want pong_timeout", drop.Transition.Trigger)
	}
	bound := live.PingInterval + live.PongTimeout + 50*time.Millisecond
	if d := drop.At.Sub(stopped); d > bound {
		t.Errorf("noticed %s after SIGSTOP, bound %s", d, bound)
	}
	t.Logf("noticed %s after SIGSTOP", drop.At.Sub(stopped))
	h.signal(t, syscall.SIGCONT)
	obs = rec.wait(t, 10*time.Second, "the reconnect", countTo(fsm.Connected, 2))
	checkNoEarlyRetry(t, b, obs)
}
