package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/proc"
)

// reapLive is the reap measurement's liveness policy, both ends: short,
// so that many samples fit in seconds; the bound scales with it.
var reapLive = fsm.Liveness{PingInterval: time.Second, PongTimeout: 500 * time.Millisecond}

// reapWatch is a server that knows which session belongs to which victim
// process (each says hello with its pid) and when each was reaped.
type reapWatch struct {
	mu      sync.Mutex
	pidOf   map[uint64]int
	reaped  map[int]conn.Observation
	changed chan struct{}
}

func (r *reapWatch) onMessage(s *conn.Session, _ conn.MessageType, data []byte) error {
	if rest, ok := strings.CutPrefix(string(data), "hello "); ok {
		pid, err := strconv.Atoi(rest)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.pidOf[s.ID()] = pid
		r.notifyLocked()
		r.mu.Unlock()
	}
	return nil
}

func (r *reapWatch) observe(o conn.Observation) {
	if o.Kind != conn.ObsTransition || o.Transition.To != fsm.Reaped {
		return
	}
	id, _ := strconv.ParseUint(o.ID, 10, 64)
	r.mu.Lock()
	defer r.mu.Unlock()
	if pid, ok := r.pidOf[id]; ok {
		r.reaped[pid] = o
		r.notifyLocked()
	}
}

func (r *reapWatch) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// wait blocks until cond holds (re-checked on every hello and reap) or
// timeout passes.
func (r *reapWatch) wait(timeout time.Duration, what string, cond func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok, ch := cond(), r.changed
		r.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-deadline.C:
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

// runReap kills cfg.ReapVictims client processes with SIGKILL and stops as
// many with SIGSTOP, each at a random moment of its ping cycle, and
// measures the time from each signal to the reap of its session.
func runReap(self proc.Self, cfg Config, w io.Writer) error {
	bound := reapLive.PingInterval + reapLive.PongTimeout + 50*time.Millisecond
	fmt.Fprintf(w, "reap latency: %d client processes killed with SIGKILL, %d stopped with SIGSTOP, each at a random offset within one ping interval\n",
		cfg.ReapVictims, cfg.ReapVictims)
	fmt.Fprintf(w, "liveness (both ends): ping every %s, pong timeout %s; bound ping+pong+50ms = %s\n",
		reapLive.PingInterval, reapLive.PongTimeout, bound)
	rw := &reapWatch{pidOf: map[uint64]int{}, reaped: map[int]conn.Observation{}, changed: make(chan struct{})}
	srv, err := conn.NewServer(conn.ServerConfig{Liveness: reapLive, Logger: discardLogger(),
		OnMessage: rw.onMessage, Observer: rw.observe})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv}
	go func() { _ = hs.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = hs.Shutdown(ctx)
	}()

	groups := map[syscall.Signal][]*proc.Child{}
	defer func() {
		for _, g := range groups {
			for _, c := range g {
				c.Kill()
			}
		}
	}()
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGSTOP} {
		for range cfg.ReapVictims {
			c, err := self.Start(os.Stderr, "-role", "client", "-addr", ln.Addr().String(),
				"-ping", reapLive.PingInterval.String(), "-pong", reapLive.PongTimeout.String())
			if err != nil {
				return err
			}
			groups[sig] = append(groups[sig], c)
		}
	}
	err = rw.wait(time.Minute, "every victim's hello", func() bool { return len(rw.pidOf) == 2*cfg.ReapVictims })
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGSTOP} {
		lats, reasons, err := reapGroup(rw, groups[sig], sig, rng, bound)
		if err != nil {
			return err
		}
		ms := make([]string, len(lats))
		for i, l := range lats {
			ms[i] = strconv.FormatFloat(float64(l)/1e6, 'f', 1, 64)
		}
		verdict := "met"
		if lats[len(lats)-1] > bound {
			verdict = "NOT met"
		}
		fmt.Fprintf(w, "reap %s n=%d reasons=%v latencies_ms=[%s]\n", sigName(sig), len(lats), reasons, strings.Join(ms, " "))
		fmt.Fprintf(w, "summary: after %s p50 %s, p100 %s; bound %s: %s\n", sigName(sig),
			lats[len(lats)/2].Round(time.Millisecond), lats[len(lats)-1].Round(time.Millisecond), bound, verdict)
	}
	return nil
}

func sigName(s syscall.Signal) string {
	if s == syscall.SIGKILL {
		return "SIGKILL"
	}
	return "SIGSTOP"
}

// reapGroup signals each victim of a group at a random offset within one
// ping interval and returns the signal-to-reap latencies, sorted.
func reapGroup(rw *reapWatch, victims []*proc.Child, sig syscall.Signal, rng *rand.Rand, bound time.Duration) ([]time.Duration, map[string]int, error) {
	sentAt := make([]time.Time, len(victims))
	var wg sync.WaitGroup
	for i, v := range victims {
		offset := time.Duration(rng.Int64N(int64(reapLive.PingInterval)))
		wg.Add(1)
		time.AfterFunc(offset, func() {
			defer wg.Done()
			sentAt[i], _ = v.Signal(sig)
		})
	}
	wg.Wait()
	err := rw.wait(reapLive.PingInterval+bound+10*time.Second, "the reaps after "+sigName(sig), func() bool {
		for _, v := range victims {
			if _, ok := rw.reaped[v.Pid()]; !ok {
				return false
			}
		}
		return true
	})
	if err != nil {
		return nil, nil, err
	}
	rw.mu.Lock()
	defer rw.mu.Unlock()
	var lats []time.Duration
	reasons := map[string]int{}
	for i, v := range victims {
		o := rw.reaped[v.Pid()]
		lats = append(lats, o.At.Sub(sentAt[i]))
		reasons[o.Transition.Reason.String()]++
	}
	slices.Sort(lats)
	return lats, reasons, nil
}
