package invariant

import (
	"fmt"
	"time"

	"github.com/lifeline-go/lifeline/fsm"

	"github.com/lifeline-go/lifeline/trace"
)

// HerdResult is the measured spread of reconnects after one server
// restart: the first attempt each client made toward the server once its
// listener was back.
type HerdResult struct {
	Server uint32        `json:"server"`  // the server that restarted
	DownAt time.Duration `json:"down_at"` // when its listener went away
	UpAt   time.Duration `json:"up_at"`   // when it was back
	// Dropped is how many sessions the restart dropped.
	Dropped int `json:"dropped"`
	// Reconnects is how many clients attempted again after UpAt.
	Reconnects int `json:"reconnects"`
	// Window is the width MaxInWindow was counted over.
	Window time.Duration `json:"window"`
	// MaxInWindow is the most reconnects any Window held, and MaxAt where
	// that window starts.
	MaxInWindow int           `json:"max_in_window"`
	MaxAt       time.Duration `json:"max_at"`
	// Spread is the time from the 10th to the 90th percentile reconnect.
	Spread time.Duration `json:"spread"`
	// OracleShare is fsm.Backoff.HerdShare for the restart's outage (zero
	// when the policy has no oracle), and Limit the most reconnects (g)
	// allowed in one window: the lower of the stated HerdMaxFraction and
	// the oracle's fsm.HerdLimit. Both zero when (g) was not judged.
	OracleShare float64 `json:"oracle_share,omitempty"`
	Limit       int     `json:"limit,omitempty"`
}

type herdRun struct {
	server  uint32
	downAt  time.Duration
	upAt    time.Duration
	dropped int
	open    bool
	times   []time.Duration
}

type herd struct {
	window      time.Duration
	maxFraction float64
	minClients  int
	runs        []herdRun
	results     []HerdResult
}

func (h *herd) down(s *Suite, r *trace.Record) {
	for i := range h.runs {
		if h.runs[i].server == r.Server {
			h.runs[i].open = false
		}
	}
	h.runs = append(h.runs, herdRun{server: r.Server, downAt: r.At, dropped: s.registry.count(r.Server)})
}

func (h *herd) up(_ *Suite, r *trace.Record) {
	for i := len(h.runs) - 1; i >= 0; i-- {
		if run := &h.runs[i]; run.server == r.Server && run.upAt == 0 && !run.open {
			run.upAt, run.open = r.At, true
			return
		}
	}
}

func (h *herd) dial(s *Suite, r *trace.Record) {
	for i := range h.runs {
		run := &h.runs[i]
		if !run.open || run.server != r.Server {
			continue
		}
		if c := s.client(r.ID); c.herdMark != int32(i+1) {
			c.herdMark = int32(i + 1)
			run.times = append(run.times, r.At)
		}
	}
}

func (h *herd) finish(s *Suite) {
	for i := range h.runs {
		run := &h.runs[i]
		if run.upAt == 0 {
			continue // the listener never came back within the run
		}
		res := HerdResult{Server: run.server, DownAt: run.downAt, UpAt: run.upAt, Dropped: run.dropped,
			Reconnects: len(run.times), Window: h.window}
		// times are in record order, hence sorted.
		res.MaxInWindow, res.MaxAt = Busiest(run.times, h.window)
		if n := len(run.times); n > 0 {
			res.Spread = run.times[n*9/10] - run.times[n/10]
		}
		h.results = append(h.results, res)
		if h.maxFraction == 0 || run.dropped < h.minClients || s.cluster.on {
			// In a cluster the dropped clients move on to the next node at
			// once: the restarted one's later dialers are not its herd.
			continue
		}
		s.check(HerdSpread)
		res.Limit = int(h.maxFraction * float64(run.dropped))
		why := fmt.Sprintf("limit %.0f%%", h.maxFraction*100)
		if p, ok := s.o.b.HerdShare(run.upAt-run.downAt, h.window); ok {
			res.OracleShare = p
			if l := fsm.HerdLimit(run.dropped, p); l < res.Limit {
				res.Limit = l
				why = fmt.Sprintf("limit %d, from the policy's herd oracle: share %.3f over a %s outage", l, p, run.upAt-run.downAt)
			}
		}
		h.results[len(h.results)-1] = res
		if res.MaxInWindow > res.Limit {
			s.fail(HerdSpread, run.upAt, 0, 0, s.n,
				"after server %d's restart, %d of %d dropped clients reconnected within %s of %s (%s)",
				run.server, res.MaxInWindow, run.dropped, h.window, res.MaxAt, why)
		}
	}
}

// Busiest returns the most of the sorted times that one window of width w
// holds (a window [t, t+w) starting at any time), and where the first such
// window starts. The simulator's (g) and `lifeline bench herd` both count
// a herd with it.
func Busiest(sorted []time.Duration, w time.Duration) (n int, at time.Duration) {
	lo := 0
	for hi, t := range sorted {
		for t-sorted[lo] >= w {
			lo++
		}
		if k := hi - lo + 1; k > n {
			n, at = k, sorted[lo]
		}
	}
	return n, at
}
