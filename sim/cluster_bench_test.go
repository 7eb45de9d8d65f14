package sim

import (
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// BenchmarkClusterWorld reports the simulator's speed on a 3-node cluster
// of 1000 clients for one virtual hour through DefaultClusterMix, with a
// cross-node send every second: the cost of the cluster model next to
// BenchmarkWorld's single-node figure.
func BenchmarkClusterWorld(b *testing.B) {
	faults, err := Mix(DefaultClusterMix, 7, 1000, 3, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	sc := Scenario{Seed: 7, Clients: 1000, Servers: 3, Duration: time.Hour, Backoff: fsm.DefaultBackoff(), Faults: faults,
		Cluster: &Cluster{SendInterval: time.Second}}
	benchRun(b, sc)
}
