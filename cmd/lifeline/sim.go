package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/invariant"
	"github.com/lifeline-go/lifeline/sim"
	"github.com/lifeline-go/lifeline/trace"
)

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sim", stderr)
	seed := fs.Uint64("seed", 1, "seed of the world's random source; the same seed and flags reproduce a run exactly")
	clients := fs.Int("clients", 100, "number of client processes")
	servers := fs.Int("servers", 1, "number of servers (client i dials server i mod servers)")
	duration := fs.Duration("duration", 10*time.Minute, "virtual time to run faults and retries for (settling comes after)")
	faults := fs.String("faults", sim.DefaultMix, `fault mix: comma-separated kind[:value] ("none" for none); value is a client fraction for kill, crash, blackhole, rst, a rate for loss, a count for the others`)
	policy := fs.String("policy", "", "policy overrides, comma-separated key=value: initial, multiplier, max, jitter, fraction, attempts, first_immediate, connect_timeout, stable_after, reconnect_floor, give_up_after, retry_after_max (backoff); permanent_initial, permanent_multiplier, permanent_max (the slow schedule after a 401/403/close 1008); ping, pong, idle, close (liveness, both ends); outbox_count, outbox_bytes, outbox_age (the clients' bounded outbox, invariant (o)), client_events (how often each client's application sends; 1s when an outbox key is set)")
	events := fs.Duration("events", 0, "interval of server application messages per session (0: heartbeats only)")
	bugs := fs.String("bugs", "", "comma-separated deliberately broken driver behaviours to switch on: "+bugNames())
	scenarioFile := fs.String("scenario", "", "run the scenario in this JSON file instead of building one from the flags above")
	traceFile := fs.String("trace", "", "write the full trace, one record per line, to this file")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	var rate rateFlag
	fs.Var(&rate, "handshake-rate", "servers admit handshakes at `R[/s][,BURST]`, answering the rest 503 with a Retry-After (default: off)")
	herd := fs.Float64("herd-bound", 0.10, "invariant (g): the largest share of a restart's dropped clients one 100ms window may hold (0: measure only); judged when at least 100 were dropped")
	var co clusterOpts
	fs.IntVar(&co.nodes, "nodes", 0, fmt.Sprintf("run a cluster of this many nodes (1-%d; they replace --servers) with a lease store, a directory and cross-node sends; 0: no cluster. Its default fault mix adds node_crash, node_cutoff, engine_failover, watch_loss, watch_delay", sim.MaxNodes))
	fs.DurationVar(&co.lease.TTL, "lease-ttl", 0, "cluster: lease TTL, whole seconds (0: 10s)")
	fs.DurationVar(&co.lease.Heartbeat, "lease-heartbeat", 0, "cluster: lease renewal and re-check period, at most TTL/3 (0: min(3s, TTL/3))")
	fs.DurationVar(&co.sendInterval, "send-interval", time.Second, "cluster: how often some node sends to a session through the bus (0: never)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "servers":
			co.serversSet = true
		case "faults":
			co.faultsSet = true
		}
	})
	var sc sim.Scenario
	var err error
	if *scenarioFile != "" {
		var clash []string
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "scenario", "trace", "json", "herd-bound", "send-interval":
			default:
				clash = append(clash, "--"+f.Name)
			}
		})
		if len(clash) > 0 {
			return usageError{fmt.Errorf("--scenario sets the whole world; drop %s", strings.Join(clash, ", "))}
		}
		if sc, err = sim.LoadScenario(*scenarioFile); err != nil {
			return err
		}
	} else {
		if co.nodes != 0 {
			if co.serversSet && *servers != co.nodes {
				return usageError{fmt.Errorf("--nodes %d makes the servers the nodes; drop --servers", co.nodes)}
			}
			*servers = co.nodes
			if !co.faultsSet {
				*faults = sim.DefaultClusterMix
			}
		}
		if sc, err = scenarioFromFlags(*seed, *clients, *servers, *duration, *faults, *policy, *events, *bugs, co); err != nil {
			return usageError{err}
		}
		sc.HandshakeRate = fsm.HandshakeRate(rate)
	}
	if *herd < 0 || *herd > 1 {
		return usageError{fmt.Errorf("--herd-bound must be within [0, 1] (got %v)", *herd)}
	}
	opt := sim.Options{KeepTrace: *traceFile != "", Check: invariant.Config{HerdMaxFraction: *herd}}
	res, err := sim.Run(ctx, sc, opt)
	if err != nil {
		return err
	}
	if *traceFile != "" {
		if err := writeTrace(*traceFile, res.Trace); err != nil {
			return err
		}
	}
	rep := newSimReport(res)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.writeText(stdout)
	}
	if rep.violationCount > 0 {
		return exitError{1, fmt.Errorf("%d invariant violation(s); rerun with --trace FILE to see them in context", rep.violationCount)}
	}
	return nil
}

func bugNames() string {
	var names []string
	for _, b := range sim.Bugs() {
		names = append(names, b.String())
	}
	return strings.Join(names, ", ")
}

// clusterOpts are the cluster flags of `lifeline sim`.
type clusterOpts struct {
	nodes                 int
	lease                 fsm.Lease
	sendInterval          time.Duration
	serversSet, faultsSet bool
}

// scenarioFromFlags builds the scenario the flags describe.
func scenarioFromFlags(seed uint64, clients, servers int, d time.Duration, mix, policy string, events time.Duration, bugs string, co clusterOpts) (sim.Scenario, error) {
	sc := sim.Scenario{Seed: seed, Clients: clients, Servers: servers, Duration: d, Backoff: fsm.DefaultBackoff(), EventInterval: events}
	if co.nodes < 0 || co.nodes > sim.MaxNodes {
		return sim.Scenario{}, fmt.Errorf("--nodes must be within [0, %d] (got %d)", sim.MaxNodes, co.nodes)
	}
	if co.nodes > 0 {
		sc.Cluster = &sim.Cluster{Lease: co.lease, SendInterval: co.sendInterval}
	} else if co.lease != (fsm.Lease{}) {
		return sim.Scenario{}, errors.New("--lease-ttl and --lease-heartbeat need --nodes")
	}
	if err := applyPolicy(&sc, policy); err != nil {
		return sim.Scenario{}, err
	}
	for _, name := range splitList(bugs) {
		b, err := sim.ParseBug(name)
		if err != nil {
			return sim.Scenario{}, fmt.Errorf("--bugs: %w", err)
		}
		sc.Bugs = append(sc.Bugs, b)
	}
	if err := sc.Validate(); err != nil { // before Mix, which needs a sane fleet
		return sim.Scenario{}, err
	}
	faults, err := sim.Mix(mix, seed, clients, servers, d)
	if err != nil {
		return sim.Scenario{}, fmt.Errorf("--faults: %w", err)
	}
	sc.Faults = faults
	return sc, sc.Validate()
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// applyPolicy sets the policy fields named in spec ("key=value,...").
func applyPolicy(sc *sim.Scenario, spec string) error {
	b, cl, sl, slow := &sc.Backoff, &sc.ClientLiveness, &sc.ServerLiveness, &sc.Failures.Schedule
	for _, kv := range splitList(spec) {
		key, val, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("--policy: %q is not key=value", kv)
		}
		var err error
		dur := func(dst ...*time.Duration) {
			var d time.Duration
			if d, err = time.ParseDuration(val); err == nil {
				for _, p := range dst {
					*p = d
				}
			}
		}
		switch key {
		case "initial":
			dur(&b.Initial)
		case "max":
			dur(&b.Max)
		case "connect_timeout":
			dur(&b.ConnectTimeout)
		case "stable_after":
			dur(&b.StableAfter)
		case "reconnect_floor":
			dur(&b.ReconnectFloor)
		case "give_up_after":
			dur(&b.GiveUpAfter)
		case "retry_after_max":
			dur(&b.RetryAfterMax)
		case "permanent_initial":
			dur(&slow.Initial)
		case "permanent_max":
			dur(&slow.Max)
		case "permanent_multiplier":
			slow.Multiplier, err = strconv.ParseFloat(val, 64)
		case "multiplier":
			b.Multiplier, err = strconv.ParseFloat(val, 64)
		case "fraction":
			b.JitterFraction, err = strconv.ParseFloat(val, 64)
		case "attempts":
			b.MaxAttempts, err = strconv.Atoi(val)
		case "first_immediate":
			b.FirstImmediate, err = strconv.ParseBool(val)
		case "jitter":
			b.Jitter, err = fsm.ParseJitter(val)
			if err == nil && b.Jitter != fsm.JitterSymmetric && b.Jitter != fsm.JitterFull {
				b.JitterFraction = 0 // the default policy's fraction applies to symmetric only
			}
		case "ping":
			dur(&cl.PingInterval, &sl.PingInterval)
		case "pong":
			dur(&cl.PongTimeout, &sl.PongTimeout)
		case "idle":
			dur(&sl.IdleTimeout)
		case "close":
			dur(&cl.CloseTimeout, &sl.CloseTimeout)
		case "outbox_count":
			sc.Outbox.Count, err = strconv.Atoi(val)
		case "outbox_bytes":
			sc.Outbox.Bytes, err = parseBytes(val)
		case "outbox_age":
			dur(&sc.Outbox.Age)
		case "client_events":
			dur(&sc.ClientEventInterval)
		default:
			return fmt.Errorf("--policy: unknown key %q (want initial, multiplier, max, jitter, fraction, attempts, first_immediate, connect_timeout, stable_after, reconnect_floor, give_up_after, retry_after_max, permanent_initial, permanent_multiplier, permanent_max, ping, pong, idle, close, outbox_count, outbox_bytes, outbox_age, client_events)", key)
		}
		if err != nil {
			return fmt.Errorf("--policy: %s: %w", key, err)
		}
	}
	if sc.Outbox.On() && sc.ClientEventInterval == 0 {
		sc.ClientEventInterval = time.Second // an outbox needs an application that sends
	}
	return nil
}

func writeTrace(path string, recs []trace.Record) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--trace: %w", err)
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	return trace.Write(f, recs)
}

// simReport is the report, in the shape --json prints. Everything but
// Timing is a pure function of the scenario.
type simReport struct {
	Scenario       sim.Scenario           `json:"scenario"`
	Virtual        string                 `json:"virtual"`
	Stats          sim.Stats              `json:"stats"`
	Herds          []invariant.HerdResult `json:"herds"`
	Invariants     []invariant.Verdict    `json:"invariants"`
	Violations     []string               `json:"violations"`
	Timing         simTiming              `json:"timing"`
	violationCount int
}

// simTiming holds the only figures that differ between two runs of the
// same scenario.
type simTiming struct {
	RealSeconds  float64 `json:"real_seconds"`
	Speedup      float64 `json:"speedup"`
	NsPerEvent   float64 `json:"ns_per_event"`
	EventsPerSec float64 `json:"events_per_second"`
}

func newSimReport(res *sim.Result) simReport {
	r := simReport{Scenario: res.Scenario, Virtual: res.Virtual.String(), Stats: res.Stats,
		Herds: res.Suite.Herds(), Invariants: res.Suite.Verdicts(), Violations: []string{}}
	if r.Herds == nil {
		r.Herds = []invariant.HerdResult{}
	}
	for _, v := range res.Suite.Violations() {
		r.Violations = append(r.Violations, v.String())
	}
	for _, v := range r.Invariants {
		r.violationCount += v.Violations
	}
	real := res.Real.Seconds()
	r.Timing = simTiming{RealSeconds: real, Speedup: res.Speedup()}
	if res.Events > 0 && real > 0 {
		r.Timing.NsPerEvent = float64(res.Real.Nanoseconds()) / float64(res.Events)
		r.Timing.EventsPerSec = float64(res.Events) / real
	}
	return r
}

func (r *simReport) writeText(w io.Writer) {
	sc, st := r.Scenario, r.Stats
	b := sc.Backoff.WithDefaults()
	l := sc.ServerLiveness.WithDefaults()
	fmt.Fprintf(w, "lifeline sim: seed %d, %d clients, %d server(s), %s of faults and retries (%s virtual with settling), %d faults\n",
		sc.Seed, sc.Clients, sc.Servers, sc.Duration, r.Virtual, len(sc.Faults))
	attempts := "unlimited"
	if b.MaxAttempts > 0 {
		attempts = strconv.Itoa(b.MaxAttempts)
	}
	idle := "off"
	if l.IdleTimeout > 0 {
		idle = l.IdleTimeout.String()
	}
	fmt.Fprintf(w, "policy: backoff initial %s ×%g max %s, jitter %s %g, first immediate %v, attempts %s, connect timeout %s, stable after %s\n",
		b.Initial, b.Multiplier, b.Max, b.Jitter, b.JitterFraction, b.FirstImmediate, attempts, b.ConnectTimeout, b.StableAfter)
	fmt.Fprintf(w, "        server liveness ping %s pong %s idle %s\n", l.PingInterval, l.PongTimeout, idle)
	if c := sc.Cluster; c != nil {
		ls := c.Lease.WithDefaults()
		fmt.Fprintf(w, "        cluster of %d nodes: lease TTL %s heartbeat %s fence %s (failover allowance %s, slack %s), a cross-node send every %s\n",
			sc.Servers, ls.TTL, ls.Heartbeat, ls.Fence, ls.Failover, ls.Slack, c.SendInterval)
	}
	if h := sc.HandshakeRate.WithDefaults(); h.On() {
		fmt.Fprintf(w, "        servers admit %g handshakes/s (burst %d); clients honour Retry-After up to %s\n", h.PerSecond, h.Burst, b.RetryAfterMax)
	}
	if len(sc.Bugs) > 0 {
		fmt.Fprintf(w, "BROKEN DRIVER: %v\n", sc.Bugs)
	}
	fmt.Fprintf(w, "\nattempts      %d (%d came up, %d failures, %d clients gave up)\n", st.Attempts, st.Connects, st.Failures, st.GaveUp)
	if st.RateLimited > 0 {
		fmt.Fprintf(w, "rate limited  %d handshakes answered 503 with a Retry-After\n", st.RateLimited)
	}
	fmt.Fprintf(w, "sessions      peak %d, registered at the end %d, messages sent %d\n", st.PeakSessions, st.FinalSessions, st.Sends)
	if ob := st.Outbox; ob != nil {
		o := sc.Outbox.WithDefaults()
		fmt.Fprintf(w, "outbox        %d, %d bytes, %s each: %d queued while down, %d application messages written, dropped", o.Count, o.Bytes, o.Age, ob.Queued, ob.Written)
		for _, r := range fsm.DropReasons() {
			if n := ob.Dropped[r.String()]; n > 0 {
				fmt.Fprintf(w, " %s %d", r, n)
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "reaps        ")
	for _, reason := range fsm.Reasons() {
		if n := st.Reaps[reason.String()]; n > 0 {
			fmt.Fprintf(w, " %s %d", reason, n)
		}
	}
	p := st.ReapLatency
	fmt.Fprintf(w, "\nreap latency  dead peers, from their last frame heard: n=%d p50 %s p90 %s p99 %s max %s (bound ping+pong %s)\n",
		p.N, p.P50, p.P90, p.P99, p.Max, l.PingInterval+l.PongTimeout)
	if d := st.NodeDeath; d != nil && sc.Cluster != nil {
		ls := sc.Cluster.Lease.WithDefaults()
		fmt.Fprintf(w, "node death    counted dead by the others, from the crash or cut-off: n=%d p50 %s p90 %s p99 %s max %s (bound from the last lease write TTL+heartbeat+slack %s, +%s across a failover)\n",
			d.N, d.P50, d.P90, d.P99, d.Max, ls.TTL+ls.Heartbeat+ls.Slack, ls.Failover)
	}
	fmt.Fprintf(w, "\nbackoff delays chosen\n")
	most := 1
	for _, bk := range st.Delays {
		most = max(most, bk.Count)
	}
	for _, bk := range st.Delays {
		fmt.Fprintf(w, "  ≤ %-6s %7d %s\n", bk.UpTo, bk.Count, strings.Repeat("█", (bk.Count*40+most-1)/most))
	}
	if len(r.Herds) > 0 {
		fmt.Fprintf(w, "\nreconnect herds after restarts\n")
		for _, h := range r.Herds {
			share := 0.0
			if h.Dropped > 0 {
				share = 100 * float64(h.MaxInWindow) / float64(h.Dropped)
			}
			fmt.Fprintf(w, "  server %d down %s up %s: %d dropped, %d reconnected, at most %d (%.1f%%) in %s, p10–p90 spread %s\n",
				h.Server, h.DownAt.Round(time.Millisecond), h.UpAt.Round(time.Millisecond), h.Dropped, h.Reconnects, h.MaxInWindow, share, h.Window, h.Spread.Round(time.Millisecond))
		}
	}
	fmt.Fprintf(w, "\ninvariants\n")
	for _, v := range r.Invariants {
		verdict := "held"
		if v.Violations > 0 {
			verdict = fmt.Sprintf("VIOLATED %d times", v.Violations)
		}
		fmt.Fprintf(w, "  (%s) %-20s %-18s %d checks\n", v.Letter, v.Name, verdict, v.Checked)
	}
	for _, v := range r.Violations {
		fmt.Fprintf(w, "  %s\n", v)
	}
	t := r.Timing
	fmt.Fprintf(w, "\nspeed         %s virtual in %.3fs real: %.0f× real time (%d events, %.0f ns/event)\n",
		r.Virtual, t.RealSeconds, t.Speedup, st.Events, t.NsPerEvent)
}
