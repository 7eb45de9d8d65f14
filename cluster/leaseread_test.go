package cluster

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/nats-io/nats.go/jetstream"
)

// TestRecheckSilentReplica: a re-check whose direct gets land on a replica
// that never answers (a stopped replica's server keeps its route open)
// still reads every lease within the heartbeat it has, losing one direct
// get's wait: the rest goes through the stream leader. The leases read
// are the same either way: present, missing, deleted.
func TestRecheckSilentReplica(t *testing.T) {
	n := startNode(t, Config{Node: "n1"})
	waitFor(t, 30*time.Second, "n1 Member", func() bool { return n.State() == fsm.Member })
	e := n.eng.Load()
	ctx := t.Context()
	if _, err := e.leases.Put(ctx, "p", n.encodeLease(7, time.Now())); err != nil {
		t.Fatal(err)
	}
	if _, err := e.leases.Put(ctx, "gone", n.encodeLease(3, time.Now())); err != nil {
		t.Fatal(err)
	}
	if err := e.leases.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	keys := []string{"n1", "p", "gone", "never"}
	read := func(rd *leaseReader) (map[string]uint64, time.Duration, error) {
		rctx, cancel := context.WithTimeout(ctx, n.lease.Heartbeat) // as recheck does
		defer cancel()
		start := time.Now()
		got, err := rd.readLeases(rctx, keys)
		incs := map[string]uint64{}
		for k, ls := range got {
			incs[k] = ls.inc
		}
		return incs, time.Since(start), err
	}
	want, _, err := read(newLeaseReader(e, n.lease))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(want) != fmt.Sprintf("map[n1:%d p:7]", n.inc.Load()) {
		t.Fatalf("direct gets read %v, want n1's own lease and p's (incarnation 7), not gone or never", want)
	}
	lead, _, err := read(&leaseReader{e: e, viaLeader: true})
	if err != nil || !maps.Equal(lead, want) {
		t.Fatalf("reads through the leader = %v, %v; want %v as the direct gets", lead, err, want)
	}

	// Every direct get goes unanswered, as one landing on a stopped
	// replica's server does (its route stays open: no error, no answer).
	se := *e
	se.leases = silentKV{e.leases}
	// A re-check loses at most one direct get's wait, plus the reads'
	// own round trips (loopback, in-process: well under 100 ms each).
	bound := newLeaseReader(e, n.lease).try + 200*time.Millisecond
	timeouts := 0
	for i := range 10 {
		rd := newLeaseReader(&se, n.lease)
		got, took, err := read(rd)
		if err != nil {
			t.Fatalf("re-check %d with silent members: %v (after %s)", i, err, took)
		}
		if !maps.Equal(got, want) {
			t.Fatalf("re-check %d with silent members read %v, want %v", i, got, want)
		}
		if took > bound {
			t.Errorf("re-check %d with silent members took %s, bound %s", i, took, bound)
		}
		timeouts += rd.timeouts
	}
	if timeouts != 10 {
		t.Errorf("%d direct gets timed out in 10 re-checks, want one each: after one, the rest reads through the leader", timeouts)
	}
	t.Logf("10 re-checks with a silent replica, each within %s", bound)
}

// TestAutomaticReplicasKeepBucket: a node with automatic Replicas that
// joins an engine whose buckets are R3 (an external-NATS node: its own
// guess would be 1) leaves them at R3.
func TestAutomaticReplicasKeepBucket(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a three-node engine")
	}
	addrs := routes(t, 3)
	n1 := startNode(t, Config{Node: "n1", Listen: addrs[0], Peers: others(addrs, 0), ClientListen: "127.0.0.1:0"})
	startNode(t, Config{Node: "n2", Listen: addrs[1], Peers: others(addrs, 1)})
	startNode(t, Config{Node: "n3", Listen: addrs[2], Peers: others(addrs, 2)})
	waitFor(t, 30*time.Second, "n1 Member, seeing n2 and n3", func() bool {
		return n1.State() == fsm.Member && len(n1.alivePeers()) == 2 && n1.ClientURL() != ""
	})
	n4 := startNode(t, Config{Node: "n4", NATS: n1.ClientURL()})
	waitFor(t, 30*time.Second, "n4 Member", func() bool { return n4.State() == fsm.Member })
	js := n1.eng.Load().js
	for _, b := range []string{"lifeline_nodes", "lifeline_sessions"} {
		st, err := js.Stream(t.Context(), "KV_"+b)
		if err != nil {
			t.Fatal(err)
		}
		if r := st.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("bucket %s has %d replicas after n4 (automatic Replicas) joined, want 3", b, r)
		}
	}
}

// silentKV is a lease bucket whose gets are never answered: each waits
// until its context ends.
type silentKV struct{ jetstream.KeyValue }

func (silentKV) Get(ctx context.Context, _ string) (jetstream.KeyValueEntry, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
