package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/oracle"
	"github.com/lifeline-go/lifeline/internal/proc"
)

// refusedPolicies are run side by side against the same refused port.
func refusedPolicies() []struct {
	name string
	b    fsm.Backoff
} {
	return []struct {
		name string
		b    fsm.Backoff
	}{
		{"default", fsm.DefaultBackoff()},
		{"fast", fsm.Backoff{Initial: 100 * time.Millisecond, Multiplier: 2, Max: time.Second, FirstImmediate: true}},
	}
}

// runRefused runs one client per policy against a refused loopback port
// for cfg.RefusedWindow and compares the attempts each made with what its
// policy allows in that window.
func runRefused(_ proc.Self, cfg Config, w io.Writer) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	url := "ws://" + ln.Addr().String() + "/"
	_ = ln.Close() // now refused
	win := cfg.RefusedWindow
	fmt.Fprintf(w, "attempts against a refused port (%s), %s window, one client per policy, side by side\n", url, win)
	type result struct {
		trans []conn.Observation
	}
	pols := refusedPolicies()
	results := make([]result, len(pols))
	ctx, cancel := context.WithTimeout(context.Background(), win)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, p := range pols {
		c, err := conn.NewClient(conn.ClientConfig{URL: url, Backoff: p.b, Logger: discardLogger(),
			Observer: func(o conn.Observation) {
				if o.Kind == conn.ObsTransition {
					mu.Lock()
					results[i].trans = append(results[i].trans, o)
					mu.Unlock()
				}
			}})
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Run(ctx) }()
	}
	wg.Wait()
	for i, p := range pols {
		b := p.b.WithDefaults()
		var starts []time.Time
		var early int
		var maxLate, minSlack time.Duration
		minSlack = time.Hour
		var failedAt time.Time
		n := 0
		for _, o := range results[i].trans {
			switch o.Transition.To {
			case fsm.Connecting:
				if o.Transition.From == fsm.BackingOff {
					gap := o.At.Sub(failedAt)
					if gap < b.Earliest(n) {
						early++
					}
					minSlack = min(minSlack, gap-b.Earliest(n))
					maxLate = max(maxLate, gap-b.Latest(n))
				}
				starts = append(starts, o.At)
			case fsm.BackingOff:
				failedAt, n = o.At, o.Transition.Attempt-1
			}
		}
		lo, hi := oracle.AttemptsWithin(b, win)
		perMin := float64(len(starts)) / win.Minutes()
		fmt.Fprintf(w, "refused policy=%s initial=%s multiplier=%.1f max=%s jitter=%s first_immediate=%v attempts=%d attempts_per_min=%.1f policy_allows=%d..%d early=%d min_margin_over_earliest=%s max_past_latest=%s\n",
			p.name, b.Initial, b.Multiplier, b.Max, b.Jitter, b.FirstImmediate, len(starts), perMin, lo, hi, early,
			minSlack.Round(time.Microsecond), maxLate.Round(time.Microsecond))
		verdict := "equal to the schedule"
		if len(starts) < lo || len(starts) > hi || early > 0 {
			verdict = "NOT within the schedule"
		}
		fmt.Fprintf(w, "summary: policy %s made %d attempts in %s (%.1f/min); its schedule allows %d..%d: %s; early retries %d\n",
			p.name, len(starts), win, perMin, lo, hi, verdict, early)
	}
	return nil
}
