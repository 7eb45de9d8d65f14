package sim

import (
	"errors"
	"fmt"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// Cluster makes a scenario's servers the nodes of one cluster, joined by
// an engine (NATS in production) that holds a lease per node and a
// directory of sessions, and carries sends between nodes. Each node runs
// an fsm.Node for its own lease and an fsm.Peer per other node; the
// zero value of each field means what its comment says.
//
// What the engine model keeps of NATS: a lease is a key with a TTL in
// whole seconds, expired by a check every ExpiryCheck; a renewal of a
// lease that has expired fails (an update with the expected revision);
// a create replaces the node's own older incarnation; watchers get puts
// and expiry markers in order, per watcher, and may lose them (WatchLoss,
// a cut-off, a failover); a read answers the state at the engine; a
// leader failover pauses writes, reads and expiries; request-reply on the
// bus answers "no responders" at once when nobody holds the subject. What
// it leaves out: replication (one engine, failing over as a whole), the
// client library's reconnect buffer (writes from a cut-off node are lost,
// not replayed), and CPU: nodes never run late.
type Cluster struct {
	// Lease is the nodes' lease policy; zero fields mean fsm's defaults.
	Lease fsm.Lease
	// EngineLatency is the one-way delay between a node and the engine.
	// Zero means 1ms plus up to 1ms.
	EngineLatency Latency
	// WatchLatency is the delay of a watch event from the engine to a
	// node. Zero means 2ms plus up to 5ms.
	WatchLatency Latency
	// ExpiryCheck is how often the engine expires leases. Zero means
	// 250ms, as NATS does.
	ExpiryCheck time.Duration
	// DirBatch is how long a node gathers directory changes (opens and
	// closes) before writing them, off the sessions' own path. Zero means
	// 50ms.
	DirBatch time.Duration
	// SendInterval is how often some node sends a message to a session
	// picked from its directory view, through the bus. Zero means no
	// cross-node sends.
	SendInterval time.Duration
}

// MaxNodes bounds the servers of a cluster scenario: the checkers keep a
// directory view per node.
const MaxNodes = 16

// withDefaults returns c with zero fields replaced by their defaults.
func (c Cluster) withDefaults() Cluster {
	c.Lease = c.Lease.WithDefaults()
	if c.EngineLatency == (Latency{}) {
		c.EngineLatency = Latency{Base: time.Millisecond, Jitter: time.Millisecond}
	}
	if c.WatchLatency == (Latency{}) {
		c.WatchLatency = Latency{Base: 2 * time.Millisecond, Jitter: 5 * time.Millisecond}
	}
	if c.ExpiryCheck == 0 {
		c.ExpiryCheck = 250 * time.Millisecond
	}
	if c.DirBatch == 0 {
		c.DirBatch = 50 * time.Millisecond
	}
	return c
}

func (c *Cluster) validate(s Scenario) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := c.Lease.Validate(); err != nil {
		bad("Lease: %w", err)
	}
	if s.Servers > MaxNodes {
		bad("a cluster has at most %d nodes (Servers is %d)", MaxNodes, s.Servers)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ExpiryCheck", c.ExpiryCheck}, {"DirBatch", c.DirBatch}, {"SendInterval", c.SendInterval}} {
		if d.v < 0 {
			bad("%s must not be negative (got %s)", d.name, d.v)
		}
	}
	if err := c.EngineLatency.validate("EngineLatency"); err != nil {
		errs = append(errs, err)
	}
	if err := c.WatchLatency.validate("WatchLatency"); err != nil {
		errs = append(errs, err)
	}
	if d := c.withDefaults(); d.ExpiryCheck > d.Lease.Slack/2 {
		bad("ExpiryCheck (%s) must be at most half of Lease.Slack (%s), which absorbs it", d.ExpiryCheck, d.Lease.Slack)
	}
	return errors.Join(errs...)
}

// settleSpan is what a cluster adds to the settling span: a node cut off
// until the end fences, rejoins and is seen again, a lease expires across
// a failover and every view re-checks it, and the directory catches up.
func (c *Cluster) settleSpan() time.Duration {
	d := c.withDefaults()
	l := d.Lease
	return l.TTL + 3*l.Heartbeat + l.Failover + l.Slack + d.DirBatch + 8*(d.EngineLatency.max()+d.WatchLatency.max())
}

func isClusterFault(k FaultKind) bool { return k >= NodeCrash && k <= NodeLeave }

// validateCluster checks what only cluster faults need.
func (f *Fault) validateCluster(s Scenario) error {
	if !isClusterFault(f.Kind) {
		return nil
	}
	if s.Cluster == nil {
		return fmt.Errorf("%s needs a cluster (Scenario.Cluster)", f.Kind)
	}
	if f.Kind == EngineFailover {
		end := f.End
		if end == 0 {
			end = s.Duration
		}
		if fo := s.Cluster.Lease.WithDefaults().Failover; end-f.Start > fo {
			return fmt.Errorf("an engine failover must not outlast Cluster.Lease.Failover (%s), the allowance the bound makes for it (got %s)", fo, end-f.Start)
		}
	}
	return nil
}

type leaseJSON struct {
	TTL       duration `json:"ttl,omitempty"`
	Heartbeat duration `json:"heartbeat,omitempty"`
	Fence     duration `json:"fence,omitempty"`
	Failover  duration `json:"failover,omitempty"`
	Slack     duration `json:"slack,omitempty"`
}

type clusterJSON struct {
	Lease         *leaseJSON   `json:"lease,omitempty"`
	EngineLatency *latencyJSON `json:"engine_latency,omitempty"`
	WatchLatency  *latencyJSON `json:"watch_latency,omitempty"`
	ExpiryCheck   duration     `json:"expiry_check,omitempty"`
	DirBatch      duration     `json:"dir_batch,omitempty"`
	SendInterval  duration     `json:"send_interval,omitempty"`
}

func clusterToJSON(c *Cluster) *clusterJSON {
	if c == nil {
		return nil
	}
	j := &clusterJSON{EngineLatency: latencyToJSON(c.EngineLatency), WatchLatency: latencyToJSON(c.WatchLatency),
		ExpiryCheck: duration(c.ExpiryCheck), DirBatch: duration(c.DirBatch), SendInterval: duration(c.SendInterval)}
	if l := c.Lease; l != (fsm.Lease{}) {
		j.Lease = &leaseJSON{duration(l.TTL), duration(l.Heartbeat), duration(l.Fence), duration(l.Failover), duration(l.Slack)}
	}
	return j
}

func clusterFromJSON(j *clusterJSON) (*Cluster, error) {
	if j == nil {
		return nil, nil
	}
	c := &Cluster{ExpiryCheck: time.Duration(j.ExpiryCheck), DirBatch: time.Duration(j.DirBatch), SendInterval: time.Duration(j.SendInterval)}
	if l := j.Lease; l != nil {
		c.Lease = fsm.Lease{TTL: time.Duration(l.TTL), Heartbeat: time.Duration(l.Heartbeat), Fence: time.Duration(l.Fence),
			Failover: time.Duration(l.Failover), Slack: time.Duration(l.Slack)}
	}
	var err error
	if c.EngineLatency, err = latencyFromJSON(j.EngineLatency, "cluster.engine_latency"); err != nil {
		return nil, err
	}
	if c.WatchLatency, err = latencyFromJSON(j.WatchLatency, "cluster.watch_latency"); err != nil {
		return nil, err
	}
	return c, nil
}
