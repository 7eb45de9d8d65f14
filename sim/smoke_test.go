package sim

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/trace"
)

func TestSmoke(t *testing.T) {
	sc := Scenario{Seed: 1, Clients: 20, Servers: 2, Duration: 10 * time.Minute, Backoff: fsm.DefaultBackoff(),
		EventInterval: 5 * time.Second,
		Faults: []Fault{
			{Kind: Restart, Start: time.Minute, End: time.Minute + 5*time.Second, Servers: []int{0}},
			{Kind: Kill, Start: 2 * time.Minute, End: 3 * time.Minute, Clients: Range{0, 3}},
			{Kind: Crash, Start: 2 * time.Minute, End: 3 * time.Minute, Clients: Range{3, 6}},
			{Kind: Blackhole, Start: 4 * time.Minute, End: 5 * time.Minute, Clients: Range{6, 8}},
			{Kind: RST, Start: 4 * time.Minute, Clients: Range{8, 10}},
			{Kind: Partition, Start: 6 * time.Minute, End: 6*time.Minute + 20*time.Second, Servers: []int{1}},
			{Kind: Refused, Start: 7 * time.Minute, End: 8 * time.Minute},
			{Kind: Loss, Start: 8 * time.Minute, End: 9 * time.Minute, Rate: 0.1},
		}}
	res, err := Run(context.Background(), sc, Options{KeepTrace: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range res.Suite.Violations() {
		t.Error(v)
	}
	t.Logf("%+v", res.Stats)
	t.Logf("%+v", res.Suite.Verdicts())
	t.Logf("events %d virtual %s real %s", res.Events, res.Virtual, res.Real)
	if os.Getenv("DUMP") != "" {
		trace.Write(os.Stdout, res.Trace)
	}
}
