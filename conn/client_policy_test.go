package conn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/proptest"
	"github.com/lifeline-go/lifeline/internal/syncio"
	"pgregory.net/rapid"
)

// What a fleet and its operator see of the reconnect policy: every client
// built with the default config draws its own jitter; a policy changed at
// run time reaches the retry already waiting, as documented; and the
// client stays responsive while it waits. Each is shown to fail on the
// broken driver it exists for (testHooks).

// refuse is a NetDialContext that refuses every dial at once.
func refuse(context.Context, string, string) (net.Conn, error) {
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
}

// fleetDelays builds n clients with the default ClientConfig (no Backoff,
// no Rand: fsm.DefaultBackoff's ±20 % jitter from the default source),
// runs them in a synctest bubble against a refusing network until each
// logged k jittered backoff delays, and returns each client's delays in
// milliseconds as its log states them (the clients are watched only
// through their logs).
func fleetDelays(t *testing.T, n, k int, hooks *testHooks) [][]int64 {
	logs := make([]*syncio.Buffer, n)
	inBubbleDo(t, func() {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for i := range n {
			logs[i] = &syncio.Buffer{}
			c, err := newClient(ClientConfig{URL: "ws://fleet/", NetDialContext: refuse,
				Logger: slog.New(slog.NewJSONHandler(logs[i], nil))}, hooks)
			if err != nil {
				panic(err)
			}
			wg.Add(1)
			go func() { defer wg.Done(); _ = c.Run(ctx) }()
		}
		// The default policy's delays after failures 2..k+1 sum to less
		// than its Latest bounds: 1.2 s × (1 + 1.6 + … + 1.6^(k-1)).
		var total time.Duration
		b := fsm.DefaultBackoff()
		for f := 2; f <= k+1; f++ {
			total += b.Latest(f)
		}
		time.Sleep(total + time.Second)
		cancel()
		wg.Wait()
	})
	out := make([][]int64, n)
	for i, b := range logs {
		for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
			o, ok := parseTransitionLine([]byte(line))
			// Failure 1 retries at once (FirstImmediate): no jitter to compare.
			if ok && o.Transition.To == fsm.BackingOff && o.Transition.Attempt > 2 && len(out[i]) < k {
				out[i] = append(out[i], o.Transition.Delay.Milliseconds())
			}
		}
	}
	return out
}

// inBubbleDo runs f in a bubble (inBubble without a result).
func inBubbleDo(t *testing.T, f func()) {
	inBubble(t, func() struct{} { f(); return struct{}{} })
}

// checkIndependentJitter reports the first two clients whose jittered
// delays are all equal. With ±20 % of 1 s, 1.6 s, 2.56 s … at millisecond
// resolution, two independent clients agree on k = 4 delays with
// probability about 1/(400·640·1024·1638) ≈ 2·10⁻¹².
func checkIndependentJitter(delays [][]int64, k int) error {
	for i := range delays {
		if len(delays[i]) != k {
			return fmt.Errorf("client %d logged %d jittered delays, want %d: %v", i, len(delays[i]), k, delays[i])
		}
		for j := range i {
			if slices.Equal(delays[i], delays[j]) {
				return fmt.Errorf("clients %d and %d drew the same jitter sequence %v: the fleet moves in lock-step", j, i, delays[i])
			}
		}
	}
	return nil
}

func fleetJitterProperty(t *testing.T, hooks *testHooks) func(*rapid.T) {
	return func(rt *rapid.T) {
		n := rapid.IntRange(2, 24).Draw(rt, "clients")
		const k = 4
		if err := checkIndependentJitter(fleetDelays(t, n, k, hooks), k); err != nil {
			rt.Fatal(err)
		}
	}
}

// TestPropertyFleetDrawsIndependentJitter: clients built with the default
// config, no Rand injected, never share a jitter sequence.
func TestPropertyFleetDrawsIndependentJitter(t *testing.T) {
	rapid.Check(t, fleetJitterProperty(t, nil))
}

// Lock-step jitter: every default source seeded alike.
func TestPropertyFleetCatchesLockstepJitter(t *testing.T) {
	report := proptest.ExpectFailure(t, fleetJitterProperty(t, &testHooks{lockstep: true}))
	if !strings.Contains(report, "drew the same jitter sequence") {
		t.Fatalf("the property failed for another reason:\n%s", report)
	}
}

// constRand is an fsm.Rand that always draws f.
type constRand float64

func (r constRand) Float64() float64 { return float64(r) }

// setPolicyRun runs a client against a refusing network in a bubble.
// Its first attempt fails at t0; at t0+100ms the policy changes to next.
// It returns when the second attempt was dialled, measured from t0.
func setPolicyRun(t *testing.T, old, next fsm.Backoff, rng fsm.Rand, hooks *testHooks) (retry time.Duration, err error) {
	inBubbleDo(t, func() {
		dials := make(chan time.Time, 4)
		dial := func(ctx context.Context, n, a string) (net.Conn, error) {
			dials <- time.Now()
			return refuse(ctx, n, a)
		}
		c, e := newClient(ClientConfig{URL: "ws://policy/", NetDialContext: dial, Backoff: old, Rand: rng,
			Logger: quietLogger()}, hooks)
		if e != nil {
			err = e
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = c.Run(ctx) }()
		t0 := <-dials
		time.Sleep(100 * time.Millisecond) // the operator's change comes while the retry waits
		if err = c.SetPolicy(next); err == nil {
			retry = (<-dials).Sub(t0)
		}
		cancel()
		<-done
	})
	return retry, err
}

// checkSetPolicy checks the documented rule on a real client: a retry
// already waiting is re-drawn under the new policy but never earlier than
// the old policy's Earliest for that failure, and Run's timer follows the
// move at once.
func checkSetPolicy(t *testing.T, hooks *testHooks) error {
	for _, tc := range []struct {
		name      string
		old, next fsm.Backoff
		want      time.Duration
	}{
		// Old: equal jitter on 2 s draws 1.8 s (Earliest 1 s). New: 100 ms,
		// no jitter. The retry moves earlier, to the old floor: 1 s.
		{"shorter policy: moved to the old floor",
			fsm.Backoff{Initial: 2 * time.Second, Jitter: fsm.JitterEqual},
			fsm.Backoff{Initial: 100 * time.Millisecond, Jitter: fsm.JitterNone}, time.Second},
		// Old: 1 s, no jitter. New: 3 s, no jitter. The retry moves later.
		{"longer policy: moved later",
			fsm.Backoff{Initial: time.Second, Jitter: fsm.JitterNone},
			fsm.Backoff{Initial: 3 * time.Second, Jitter: fsm.JitterNone}, 3 * time.Second},
		// Old: 1 s, no jitter (Earliest 1 s). New: 10 ms. Nothing moves.
		{"shorter policy under a fixed floor: kept",
			fsm.Backoff{Initial: time.Second, Jitter: fsm.JitterNone},
			fsm.Backoff{Initial: 10 * time.Millisecond, Jitter: fsm.JitterNone}, time.Second},
	} {
		got, err := setPolicyRun(t, tc.old, tc.next, constRand(0.8), hooks)
		if err != nil {
			return fmt.Errorf("%s: %w", tc.name, err)
		}
		if got != tc.want {
			return fmt.Errorf("%s: the waiting retry came %s after the failure, want %s (the retry did not follow SetPolicy)", tc.name, got, tc.want)
		}
	}
	return nil
}

func TestClientSetPolicyMovesWaitingRetry(t *testing.T) {
	if err := checkSetPolicy(t, nil); err != nil {
		t.Fatal(err)
	}
}

// A SetPolicy that does not wake Run: the retry keeps the old timer.
func TestClientSetPolicyCatchesUnwokenRun(t *testing.T) {
	err := checkSetPolicy(t, &testHooks{noPoke: true})
	if err == nil || !strings.Contains(err.Error(), "did not follow SetPolicy") {
		t.Fatalf("check = %v, want it to catch a Run that was not woken", err)
	}
}

// checkResponsiveWhileWaiting measures Send, Stats and SetPolicy while the
// client waits out a 1 s backoff against a refused port (real sockets, real
// time): each must return at once, not at the end of the wait.
func checkResponsiveWhileWaiting(t *testing.T, hooks *testHooks) error {
	b := fsm.Backoff{Initial: time.Second, Jitter: fsm.JitterNone, ConnectTimeout: time.Second}
	c, err := newClient(ClientConfig{URL: refusedURL(t), Backoff: b, Logger: quietLogger()}, hooks)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	trs := c.Subscribe(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for tr := range trs {
		if tr.To == fsm.BackingOff {
			break
		}
	}
	// The bound: a lock taken and released, with room for a loaded
	// machine; the wait itself is 1 s. The calls are repeated over the
	// first half of the wait, not made once: the transition reaches the
	// subscriber before Run is back in its loop, so a single early call
	// could slip in before a broken Run takes its lock for the wait.
	const bound = 100 * time.Millisecond
	ops := []struct {
		name string
		call func() error
	}{
		{"Send", func() error {
			if err := c.Send(ctx, TextMessage, []byte("x")); !errors.Is(err, ErrNotConnected) {
				return fmt.Errorf("Send while backing off = %v, want ErrNotConnected", err)
			}
			return nil
		}},
		{"Stats", func() error { _ = c.Stats(); return nil }},
		{"SetPolicy", func() error { return c.SetPolicy(b) }},
	}
	for end := time.Now().Add(b.Initial / 2); time.Now().Before(end); time.Sleep(25 * time.Millisecond) { // sampling the wait, not synchronising
		for _, op := range ops {
			start := time.Now()
			if err := op.call(); err != nil {
				return err
			}
			if took := time.Since(start); took > bound {
				return fmt.Errorf("%s blocked %s while the client waited out its backoff (bound %s)", op.name, took, bound)
			}
		}
	}
	return nil
}

func TestClientResponsiveWhileBackingOff(t *testing.T) {
	if err := checkResponsiveWhileWaiting(t, nil); err != nil {
		t.Fatal(err)
	}
}

// The peer that held its lock across the sleep and the dial.
func TestClientResponsiveCatchesLockHeldAcrossWait(t *testing.T) {
	err := checkResponsiveWhileWaiting(t, &testHooks{lockedWait: true})
	if err == nil || !strings.Contains(err.Error(), "blocked") {
		t.Fatalf("check = %v, want it to catch the lock held across the backoff wait", err)
	}
}
