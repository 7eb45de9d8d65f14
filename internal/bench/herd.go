package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/proc"
)

// herdOutage is how long the server stays down in the herd measurement.
const herdOutage = 2 * time.Second

// herdResult is when the fleet came back, relative to the server's
// return.
type herdResult struct {
	jitter string
	back   []time.Duration // sorted
	peak   int             // most reconnects in one 100 ms bucket
}

func (h herdResult) spread() time.Duration { return h.back[len(h.back)-1] - h.back[0] }

// runHerd restarts a server under cfg.HerdClients lifeline clients (in a
// separate process), once with the default jittered policy and once with
// jitter off, and measures how the reconnects spread.
func runHerd(self proc.Self, cfg Config, w io.Writer) error {
	b := fsm.DefaultBackoff()
	fmt.Fprintf(w, "restart herd: %d clients (default policy: first retry immediate, %s ×%.1f), server closes with 1001, port closed %s, then back\n",
		cfg.HerdClients, b.Initial, b.Multiplier, herdOutage)
	var res []herdResult
	for _, jitter := range []string{"symmetric", "none"} {
		r, err := herdOnce(self, cfg.HerdClients, jitter)
		if err != nil {
			return fmt.Errorf("jitter %s: %w", jitter, err)
		}
		res = append(res, r)
		q := func(p float64) time.Duration { return r.back[int(p*float64(len(r.back)-1))].Round(time.Millisecond) }
		fmt.Fprintf(w, "herd jitter=%s clients=%d back_after_restart first=%s p10=%s p50=%s p90=%s last=%s spread=%s peak_per_100ms=%d\n",
			jitter, len(r.back), q(0), q(0.1), q(0.5), q(0.9), q(1), r.spread().Round(time.Millisecond), r.peak)
	}
	j, n := res[0], res[1]
	fmt.Fprintf(w, "summary: with ±20%% jitter the %d reconnects spread over %s (peak %d per 100 ms); without jitter over %s (peak %d per 100 ms): %.1fx wider, %.1fx lower peak\n",
		cfg.HerdClients, j.spread().Round(time.Millisecond), j.peak, n.spread().Round(time.Millisecond), n.peak,
		float64(j.spread())/float64(max(n.spread(), time.Millisecond)), float64(n.peak)/float64(max(j.peak, 1)))
	return nil
}

// herdServer is one incarnation of the restarted server, recording when
// each session opened.
type herdServer struct {
	srv   *conn.Server
	hs    *http.Server
	mu    sync.Mutex
	opens []time.Time
}

func startHerdServer(ln net.Listener) (*herdServer, error) {
	h := &herdServer{}
	srv, err := conn.NewServer(conn.ServerConfig{Logger: discardLogger(), OnOpen: func(*conn.Session, *http.Request) {
		h.mu.Lock()
		h.opens = append(h.opens, time.Now())
		h.mu.Unlock()
	}})
	if err != nil {
		return nil, err
	}
	h.srv, h.hs = srv, &http.Server{Handler: srv}
	go func() { _ = h.hs.Serve(ln) }()
	return h, nil
}

func (h *herdServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = h.srv.Shutdown(ctx)
	_ = h.hs.Shutdown(ctx)
}

func herdOnce(self proc.Self, n int, jitter string) (herdResult, error) {
	r := herdResult{jitter: jitter}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return r, err
	}
	addr := ln.Addr().String()
	first, err := startHerdServer(ln)
	if err != nil {
		return r, err
	}
	fleet, err := self.Start(os.Stderr, "-role", "clients", "-addr", addr, "-n", fmt.Sprint(n), "-jitter", jitter)
	if err != nil {
		first.stop()
		return r, err
	}
	defer fleet.Kill()
	if _, err := fleet.Line("ready", 2*time.Minute); err != nil {
		first.stop()
		return r, err
	}
	first.stop()
	time.Sleep(herdOutage) // the outage is the fault being measured, not a synchronisation
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		return r, fmt.Errorf("re-listen on %s: %w", addr, err)
	}
	up := time.Now()
	second, err := startHerdServer(ln2)
	if err != nil {
		return r, err
	}
	defer second.stop()
	if err := waitCount(context.Background(), func() int64 { return second.srv.Count(fsm.Alive) }, int64(n), time.Minute); err != nil {
		return r, err
	}
	second.mu.Lock()
	defer second.mu.Unlock()
	buckets := map[int64]int{}
	for _, t := range second.opens {
		d := t.Sub(up)
		r.back = append(r.back, d)
		buckets[int64(d/(100*time.Millisecond))]++
	}
	for _, c := range buckets {
		r.peak = max(r.peak, c)
	}
	slices.Sort(r.back)
	return r, nil
}
