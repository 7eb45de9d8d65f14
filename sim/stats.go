package sim

import (
	"slices"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/trace"
)

// Stats are a run's figures, gathered from its records as they are made.
type Stats struct {
	// Events is the number of events the world processed; Transitions the
	// state changes of all clients and sessions.
	Events      uint64 `json:"events"`
	Transitions int    `json:"transitions"`
	// Attempts counts connection attempts started; Connects those that came
	// up; Failures attempts and links that failed; GaveUp clients that
	// exhausted MaxAttempts.
	Attempts int `json:"attempts"`
	Connects int `json:"connects"`
	Failures int `json:"failures"`
	GaveUp   int `json:"gave_up"`
	// Sends counts application messages written.
	Sends int `json:"sends"`
	// RateLimited counts handshakes a server's HandshakeRate answered 503.
	RateLimited int `json:"rate_limited,omitempty"`
	// PeakSessions is the most sessions registered at once; FinalSessions
	// the number registered when the run ended.
	PeakSessions  int `json:"peak_sessions"`
	FinalSessions int `json:"final_sessions"`
	// Delays is the histogram of backoff delays chosen.
	Delays []Bucket `json:"backoff_delays"`
	// Reaps counts reaped sessions by reason.
	Reaps map[string]int `json:"reaps"`
	// ReapLatency is, over sessions whose peer died or whose path went
	// dead, the time from the last frame the server heard from the peer
	// to the reap: the quantity Liveness.ReapDeadline bounds by
	// PingInterval+PongTimeout. (Measured from the moment of death it
	// would charge the server for sessions it could not yet know about,
	// such as a handshake still in flight when the client died.)
	ReapLatency Percentiles `json:"reap_latency"`
	// NodeDeath is, in a cluster, the time from a node's crash or cut-off
	// to each other node counting it dead: what fsm.Lease.LatestDead
	// bounds (from the lease's last write, which came before).
	NodeDeath *Percentiles `json:"node_death,omitempty"`
	// Outbox sums up the clients' outboxes, when Scenario.Outbox is on.
	Outbox *OutboxStats `json:"outbox,omitempty"`

	delayCounts [len(delayEdges) + 1]int
	reasons     [16]int
	reapLat     []time.Duration
	sessions    int
	downAt      []time.Duration // by node: when it crashed or was cut off, -1 if up
	deathLat    []time.Duration
	ob          OutboxStats
	obDropped   [8]int // by fsm.DropReason
}

// OutboxStats are the clients' outbox figures.
type OutboxStats struct {
	// Queued counts messages held because no link was up (or older ones
	// were still held); Written the application messages written, at once
	// or from the outbox.
	Queued  int `json:"queued"`
	Written int `json:"written"`
	// Dropped counts the queued messages never written, by fsm.DropReason.
	Dropped map[string]int `json:"dropped"`
}

// Bucket is one histogram bar: Count values in (previous UpTo, UpTo]; the
// last bucket has UpTo zero and holds everything above.
type Bucket struct {
	UpTo  string `json:"up_to"`
	Count int    `json:"count"`
}

// Percentiles summarise a set of durations.
type Percentiles struct {
	N   int           `json:"n"`   // how many durations
	P50 time.Duration `json:"p50"` // the median
	P90 time.Duration `json:"p90"` // the 90th percentile
	P99 time.Duration `json:"p99"` // the 99th percentile
	Max time.Duration `json:"max"` // the largest
}

var delayEdges = [...]time.Duration{0, 10 * time.Millisecond, 100 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute}

func (s *Stats) observe(r *trace.Record) {
	switch r.Kind {
	case trace.Transition:
		s.Transitions++
		switch r.To {
		case fsm.BackingOff:
			i := 0
			for i < len(delayEdges) && r.Delay > delayEdges[i] {
				i++
			}
			s.delayCounts[i]++
		case fsm.GaveUp:
			s.GaveUp++
		}
	case trace.Dial:
		s.Attempts++
	case trace.Up:
		s.Connects++
	case trace.Down:
		s.Failures++
	case trace.Send:
		s.Sends++
	case trace.OutboxQueued:
		s.ob.Queued++
	case trace.OutboxWritten:
		s.ob.Written++
	case trace.OutboxDropped:
		if int(r.Code) < len(s.obDropped) {
			s.obDropped[r.Code]++
		}
	case trace.Register:
		s.sessions++
		s.PeakSessions = max(s.PeakSessions, s.sessions)
	case trace.Unregister:
		s.sessions--
	case trace.NodeStart, trace.Reconnected:
		s.down(r.Server, -1)
	case trace.NodeCrash, trace.CutOff:
		s.down(r.Server, r.At)
	case trace.Declared:
		if int(r.Peer) < len(s.downAt) && s.downAt[r.Peer] >= 0 {
			s.deathLat = append(s.deathLat, r.At-s.downAt[r.Peer])
		}
	}
}

func (s *Stats) down(node uint32, at time.Duration) {
	for int(node) >= len(s.downAt) {
		s.downAt = append(s.downAt, -1)
	}
	s.downAt[node] = at
}

// reaped counts a reap by reason and, if the peer had died, the time
// since its last sign of life.
func (s *Stats) reaped(w *world, l *link, r fsm.Reason) {
	if int(r) < len(s.reasons) {
		s.reasons[r]++
	}
	if l.lastSign >= 0 {
		s.reapLat = append(s.reapLat, time.Duration(w.now-l.lastSign))
	}
}

func (s *Stats) finish(w *world) {
	s.FinalSessions = 0
	for i := uint32(0); int(i) < w.links.len(); i++ {
		if w.links.at(i).registered {
			s.FinalSessions++
		}
	}
	s.Delays = s.Delays[:0]
	for i, n := range s.delayCounts {
		b := Bucket{Count: n, UpTo: "+Inf"}
		if i < len(delayEdges) {
			b.UpTo = delayEdges[i].String()
		}
		s.Delays = append(s.Delays, b)
	}
	s.Reaps = map[string]int{}
	for _, r := range fsm.Reasons() {
		if n := s.reasons[r]; n > 0 {
			s.Reaps[r.String()] = n
		}
	}
	s.ReapLatency = percentiles(s.reapLat)
	if w.outboxOn() {
		ob := s.ob
		ob.Dropped = map[string]int{}
		for _, r := range fsm.DropReasons() {
			if n := s.obDropped[r]; n > 0 {
				ob.Dropped[r.String()] = n
			}
		}
		s.Outbox = &ob
	}
	if w.cl != nil {
		p := percentiles(s.deathLat)
		s.NodeDeath = &p
	}
}

func percentiles(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	at := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return Percentiles{N: len(ds), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ds[len(ds)-1]}
}
