package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/report"
)

// TestCluster runs one three-node cluster (embedded NATS each, routed to
// each other) through the paths of a normal day, in order: sends across
// nodes, the directory, and a clean shutdown that removes a node's
// sessions at once.
func TestCluster(t *testing.T) {
	nodes := startCluster(t, 3)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]

	a := dial(t, "alice", n1.url)
	b := dial(t, "bob", n2.url)
	waitFor(t, 5*time.Second, "both sessions in n3's directory", func() bool {
		return listed(n3.Node, "n1/1") && listed(n3.Node, "n2/1")
	})

	t.Run("send across nodes", func(t *testing.T) {
		ctx := context.Background()
		if err := n3.SendTo(ctx, "n1/1", []byte("to alice")); err != nil {
			t.Fatalf("SendTo n1/1 from n3: %v", err)
		}
		a.expect(t, "to alice")
		if err := n2.SendTo(ctx, "n2/1", []byte("local")); err != nil {
			t.Fatalf("local SendTo: %v", err)
		}
		b.expect(t, "local")
		got, err := n3.SendKey(ctx, "bob", []byte("to bob"))
		if err != nil || got != 1 {
			t.Fatalf("SendKey bob = %d, %v; want 1, nil", got, err)
		}
		b.expect(t, "to bob")
		got, err = n1.Broadcast(ctx, []byte("all"))
		if err != nil || got != 2 {
			t.Fatalf("Broadcast = %d, %v; want 2, nil", got, err)
		}
		a.expect(t, "all")
		b.expect(t, "all")
	})

	t.Run("no such session is fast", func(t *testing.T) {
		for _, id := range []string{"n1/999", "n9/1", "n3/1"} {
			start := time.Now()
			err := n2.SendTo(context.Background(), id, []byte("x"))
			took := time.Since(start)
			if !errors.Is(err, ErrNoSuchSession) {
				t.Errorf("SendTo %s = %v, want ErrNoSuchSession", id, err)
			}
			if took > 200*time.Millisecond {
				t.Errorf("SendTo %s answered in %s, goal < 200ms", id, took)
			}
		}
		if _, err := n2.SendKey(context.Background(), "nobody", []byte("x")); !errors.Is(err, ErrNoSuchSession) {
			t.Errorf("SendKey nobody = %v, want ErrNoSuchSession", err)
		}
		if err := n2.SendTo(context.Background(), "not-an-id", nil); !errors.Is(err, ErrBadID) {
			t.Errorf("SendTo not-an-id = %v, want ErrBadID", err)
		}
	})

	t.Run("directory", func(t *testing.T) {
		for _, n := range nodes {
			l := n.List()
			if len(l) != 2 || l[0].ID != "n1/1" || l[0].Key != "alice" || l[1].ID != "n2/1" || l[1].Node != "n2" {
				t.Errorf("%s lists %+v", n.ID(), l)
			}
			st := n.Stats()
			if st.Total != 2 || len(st.Nodes) != 3 {
				t.Errorf("%s stats %+v", n.ID(), st)
			}
		}
		// The re-check learns who leads the lease stream (within a heartbeat).
		waitFor(t, 3*testLease.Heartbeat, "the lease stream's leader in n1's stats", func() bool {
			return n1.Stats().LeaseLeader != ""
		})
		// A close reaches every directory.
		w := n3.Watch(t.Context())
		c := dial(t, "carol", n2.url)
		waitFor(t, 5*time.Second, "carol listed on n1", func() bool { return listed(n1.Node, "n2/2") })
		c.stop()
		<-c.done
		waitFor(t, 5*time.Second, "carol gone from n1", func() bool { return !listed(n1.Node, "n2/2") })
		want := []ChangeKind{Opened, Closed}
		for _, k := range want {
			select {
			case ch := <-w:
				if ch.Kind != k || ch.Entry.ID != "n2/2" {
					t.Fatalf("watch got %+v, want %s of n2/2", ch, k)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("watch: no %s", k)
			}
		}
	})

	t.Run("clean shutdown removes sessions at once", func(t *testing.T) {
		w := n1.Watch(t.Context())
		start := time.Now()
		n2.halt(t)
		select {
		case ch := <-w:
			took := time.Since(start)
			if ch.Kind != Closed || ch.Entry.ID != "n2/1" || ch.Reason != fsm.ReasonNodeDead.String() {
				t.Fatalf("watch got %+v, want n2/1 closed node_dead", ch)
			}
			// At once: long before the TTL would have expired the lease.
			if took > testLease.TTL/2 {
				t.Errorf("n2's session dropped %s after its shutdown; a clean leave must not wait for the TTL (%s)", took, testLease.TTL)
			}
			report.Add(t, report.Row{Section: reportSection, Case: "3 embedded nodes: clean shutdown of one (Shutdown: leave)",
				Path:  "node Member→Left; others: peer Alive→Left (peer_left), its sessions dropped (node_dead)",
				Bound: fmt.Sprintf("at once: well before the TTL (%s)", testLease.TTL), Observed: took.Round(time.Millisecond).String(),
				Evidence: "a send to its session: no such session"})
		case <-time.After(2 * testLease.TTL):
			t.Fatal("n2's session never dropped")
		}
		if err := n3.SendTo(context.Background(), "n2/1", []byte("x")); !errors.Is(err, ErrNoSuchSession) {
			t.Errorf("send to a left node's session = %v, want ErrNoSuchSession", err)
		}
		_ = b
		_ = conn.TextMessage
	})
}
