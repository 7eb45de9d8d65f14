package sim

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// DefaultMix is the fault mix `lifeline sim` and the benchmarks use: every
// kind of fault at a modest rate.
const DefaultMix = "restart,kill:0.02,crash:0.02,blackhole:0.01,rst:0.01,partition,latency,loss:0.001,refused,occupied,dns,stall,auth,accept_close"

// DefaultClusterMix is DefaultMix plus one window of each cluster fault.
const DefaultClusterMix = DefaultMix + ",node_crash,node_cutoff,engine_failover,watch_loss,watch_delay,node_leave"

// Mix returns a fault schedule for n clients and servers over d, drawn
// from spec with a source seeded by seed: the same arguments give the same
// faults. spec is a comma-separated list of kind or kind:value; the value
// is a fraction of the clients for kill, crash, blackhole and rst (default
// 0.02), the loss rate for loss (default 0.01), and a count of windows for
// the others (default 1). "none" or "" means no faults.
func Mix(spec string, seed uint64, clients, servers int, d time.Duration) ([]Fault, error) {
	if spec == "" || spec == "none" {
		return nil, nil
	}
	if clients < 1 || servers < 1 || d <= 0 {
		return nil, fmt.Errorf("%w: fault mix needs clients, servers and a duration", ErrScenario)
	}
	rng := rand.New(rand.NewPCG(seed, 0x6d6978))
	within := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo)+1)) }
	start := func(window time.Duration) time.Duration {
		return time.Duration(rng.Int64N(int64(max(d-window, 1))))
	}
	var out []Fault
	for _, item := range strings.Split(spec, ",") {
		name, val, hasVal := strings.Cut(strings.TrimSpace(item), ":")
		kind, err := parseFaultKind(name)
		if err != nil {
			return nil, fmt.Errorf("fault mix %q: %w", item, err)
		}
		var v float64
		if hasVal {
			if v, err = strconv.ParseFloat(val, 64); err != nil || v < 0 {
				return nil, fmt.Errorf("%w: fault mix %q: the value must be a non-negative number", ErrScenario, item)
			}
		}
		switch kind {
		case Kill, Crash, Blackhole, RST:
			frac := 0.02
			if hasVal {
				frac = v
			}
			if frac > 1 {
				return nil, fmt.Errorf("%w: fault mix %q: a fraction of clients must be at most 1", ErrScenario, item)
			}
			total := int(frac * float64(clients))
			if total == 0 && frac > 0 {
				total = 1
			}
			// In up to ten groups of neighbouring clients, each at its own time.
			groups := min(10, total)
			for g := 0; g < groups; g++ {
				size := total / groups
				if g < total%groups {
					size++
				}
				from := rng.IntN(clients - size + 1)
				window := within(30*time.Second, 5*time.Minute)
				s := start(window)
				out = append(out, Fault{Kind: kind, Start: s, End: min(s+window, d), Clients: Range{from, from + size}})
			}
		case Loss:
			rate := 0.01
			if hasVal {
				rate = v
			}
			if rate >= 1 {
				return nil, fmt.Errorf("%w: fault mix %q: a loss rate must be below 1", ErrScenario, item)
			}
			out = append(out, Fault{Kind: Loss, Rate: rate})
		default:
			count := 1
			if hasVal {
				count = int(v)
			}
			for i := 0; i < count; i++ {
				window := within(10*time.Second, 2*time.Minute)
				switch kind {
				case Restart:
					window = within(2*time.Second, 30*time.Second)
				case EngineFailover:
					window = within(time.Second, 8*time.Second) // within the default Lease.Failover
				}
				s := start(window)
				f := Fault{Kind: kind, Start: s, End: min(s+window, d), Servers: []int{rng.IntN(servers)}}
				switch kind {
				case DNS, LatencySpike:
					f.Servers = nil
					size := max(1, clients/10)
					from := rng.IntN(clients - size + 1)
					f.Clients = Range{from, from + size}
					if kind == LatencySpike {
						f.Latency = Latency{Base: 200 * time.Millisecond, Jitter: 300 * time.Millisecond, Dist: Exponential}
					}
				case Auth:
					f.Code = 401 + 2*rng.IntN(2)
				case EngineFailover:
					f.Servers = nil
				case WatchDelay:
					f.Latency = Latency{Base: 2 * time.Second, Jitter: 3 * time.Second}
				}
				out = append(out, f)
			}
		}
	}
	return out, nil
}
