package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"
)

// benchEnv switches on TestClusterFigures, the measurements of
// docs/benchmarks.md (a 3-node loopback cluster, about a minute).
const benchEnv = "LIFELINE_CLUSTER_BENCH"

func pct(ds []time.Duration, p float64) time.Duration {
	slices.Sort(ds)
	i := int(float64(len(ds)-1) * p)
	return ds[i]
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestClusterFigures measures, on one 3-node loopback cluster: SendTo
// across nodes against a local one (p50/p99), the no-such-session answer,
// the directory's churn capacity with the process's CPU (the three
// engines run in this process), and the memory a directory entry costs.
// Opt-in: LIFELINE_CLUSTER_BENCH=1.
func TestClusterFigures(t *testing.T) {
	if os.Getenv(benchEnv) == "" {
		t.Skip("set " + benchEnv + "=1 to measure the cluster figures")
	}
	nodes := startCluster(t, 3)
	n1, n2 := nodes[0], nodes[1]
	c := dial(t, "bench", n1.url)
	waitFor(t, 5*time.Second, "n1's session listed on n2", func() bool { return listed(n2.Node, n1.sid(1)) })
	drained := make(chan struct{})
	go func() { // drain what the sends deliver
		defer close(drained)
		for {
			select {
			case <-c.got:
			case <-t.Context().Done():
				return
			}
		}
	}()
	t.Cleanup(func() { <-drained })
	ctx := context.Background()
	measure := func(from *node, id string, want error, k int) []time.Duration {
		out := make([]time.Duration, 0, k)
		for range k {
			start := time.Now()
			err := from.SendTo(ctx, id, []byte("x"))
			out = append(out, time.Since(start))
			if (want == nil && err != nil) || (want != nil && !errors.Is(err, want)) {
				t.Fatalf("SendTo %s: %v", id, err)
			}
		}
		return out
	}
	const k = 2000
	measure(n2, n1.sid(1), nil, 200) // warm up
	cross := measure(n2, n1.sid(1), nil, k)
	local := measure(n1, n1.sid(1), nil, k)
	noSess := measure(n2, n1.sid(999), ErrNoSuchSession, k/4)
	noNode := measure(n2, "n9.1/1", ErrNoSuchSession, k/4)
	fmt.Printf("| SendTo, cross-node (n2 → session on n1), %d sends | %s | %s |\n", k, pct(cross, .5), pct(cross, .99))
	fmt.Printf("| SendTo, local (n1 → its own session), %d sends | %s | %s |\n", k, pct(local, .5), pct(local, .99))
	fmt.Printf("| no such session on a live node, %d | %s | %s |\n", k/4, pct(noSess, .5), pct(noSess, .99))
	fmt.Printf("| no such node (no responders), %d | %s | %s |\n", k/4, pct(noNode, .5), pct(noNode, .99))

	// Churn: opens and closes through n2's directory writer, until every
	// node's replica has seen them all go; the process's CPU meanwhile.
	e := n2.eng.Load()
	const churn = 20000
	cpu0, t0 := cpuTime(), time.Now()
	for i := range uint64(churn) {
		id := 1_000_000 + i
		n2.write.open(id, Entry{ID: sessionID("n2", n2.inc.Load(), id), Node: "n2", State: "Alive", Since: t0, Incarnation: n2.inc.Load()}, nil)
		if i%2 == 1 { // half closed in the same breath: those never reach the bucket
			n2.write.close(id, dirKey("n2", n2.inc.Load(), id))
		}
	}
	waitFor(t, 60*time.Second, "the opens on n1", func() bool { return n1.dir.counts()["n2"] >= churn/2 })
	for i := range uint64(churn) {
		if i%2 == 0 {
			id := 1_000_000 + i
			n2.write.close(id, dirKey("n2", n2.inc.Load(), id))
		}
	}
	waitFor(t, 60*time.Second, "the closes on n1", func() bool { return n1.dir.counts()["n2"] == 0 })
	took, cpu := time.Since(t0), cpuTime()-cpu0
	written := churn // churn/2 opens + churn/2 closes reached the bucket
	fmt.Printf("| directory churn through one node: %d opens + closes written, replicated to all 3 | %.0f /s | process CPU %.2f cores (3 engines + 3 nodes) |\n",
		written, float64(written)/took.Seconds(), cpu.Seconds()/took.Seconds())
	_ = e

	// Memory per directory entry, on a replica.
	d := newDirectory("x")
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m0)
	const entries = 100000
	for i := range entries {
		d.m[dirKey("n7", 1795985888163111122, uint64(i+1))] = Entry{ID: sessionID("n7", 1795985888163111122, uint64(i+1)), Node: "n7", Key: "10001",
			State: "Alive", Since: time.Now(), Incarnation: 1795985888163111122}
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	fmt.Printf("| memory per session in each node's directory replica | %d B |\n", (int64(m1.HeapAlloc)-int64(m0.HeapAlloc))/entries)
	runtime.KeepAlive(d)
}
