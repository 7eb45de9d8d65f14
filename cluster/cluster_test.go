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
		return listed(n3.Node, n1.sid(1)) && listed(n3.Node, n2.sid(1))
	})

	t.Run("send across nodes", func(t *testing.T) {
		ctx := context.Background()
		if err := n3.SendTo(ctx, n1.sid(1), []byte("to alice")); err != nil {
			t.Fatalf("SendTo %s from n3: %v", n1.sid(1), err)
		}
		a.expect(t, "to alice")
		if err := n2.SendTo(ctx, n2.sid(1), []byte("local")); err != nil {
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
		for _, id := range []string{n1.sid(999), "n9.1/1", n3.sid(1), sessionID("n1", n1.inc.Load()-1, 1)} {
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
		for _, id := range []string{"not-an-id", "n1/1", "n1.0/1", "n1.ZZ/1", "n1.zz/0", "n1.zz/x", "n 1.zz/1", ".zz/1", "n1.zz/"} {
			if err := n2.SendTo(context.Background(), id, nil); !errors.Is(err, ErrBadID) {
				t.Errorf("SendTo %q = %v, want ErrBadID", id, err)
			}
		}
	})

	t.Run("directory", func(t *testing.T) {
		for _, n := range nodes {
			l := n.List()
			if len(l) != 2 || l[0].ID != n1.sid(1) || l[0].Key != "alice" || l[1].ID != n2.sid(1) || l[1].Node != "n2" {
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
		waitFor(t, 5*time.Second, "carol listed on n1", func() bool { return listed(n1.Node, n2.sid(2)) })
		c.stop()
		<-c.done
		waitFor(t, 5*time.Second, "carol gone from n1", func() bool { return !listed(n1.Node, n2.sid(2)) })
		want := []ChangeKind{Opened, Closed}
		for _, k := range want {
			select {
			case ch := <-w:
				if ch.Kind != k || ch.Entry.ID != n2.sid(2) {
					t.Fatalf("watch got %+v, want %s of %s", ch, k, n2.sid(2))
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
			if ch.Kind != Closed || ch.Entry.ID != n2.sid(1) || ch.Reason != fsm.ReasonNodeDead.String() {
				t.Fatalf("watch got %+v, want %s closed node_dead", ch, n2.sid(1))
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
		if err := n3.SendTo(context.Background(), n2.sid(1), []byte("x")); !errors.Is(err, ErrNoSuchSession) {
			t.Errorf("send to a left node's session = %v, want ErrNoSuchSession", err)
		}
		_ = b
		_ = conn.TextMessage
	})
}

// TestSessionIDsAcrossRestart: a node restarted under the same name numbers
// its sessions from 1 again; a send addressed to a session of the old
// process must answer no such session, not reach the new process's session
// that happens to have the same number.
func TestSessionIDsAcrossRestart(t *testing.T) {
	n1 := startNode(t, Config{Node: "n1", ClientListen: "127.0.0.1:0"})
	waitFor(t, 30*time.Second, "n1 Member", func() bool { return n1.State() == fsm.Member && n1.ClientURL() != "" })
	cfg := Config{Node: "n2", NATS: n1.ClientURL(), NATSListedOnly: true}
	old := startNode(t, cfg)
	waitFor(t, 30*time.Second, "old n2 Member", func() bool { return old.State() == fsm.Member })
	a := dial(t, "", old.url)
	oldID := old.sid(1)
	waitFor(t, 5*time.Second, "old session listed on n1", func() bool { return listed(n1.Node, oldID) })
	a.stop()
	<-a.done
	old.halt(t)

	n2 := startNode(t, cfg)
	waitFor(t, 30*time.Second, "new n2 Member, seen by n1", func() bool {
		return n2.State() == fsm.Member && n1.peer("n2").state == fsm.Alive && n1.peer("n2").inc == n2.inc.Load()
	})
	b := dial(t, "", n2.url)
	newID := n2.sid(1)
	if newID == oldID {
		t.Fatalf("the restarted node's first session has the old one's id %s", newID)
	}
	waitFor(t, 5*time.Second, "new session listed on n1", func() bool { return listed(n1.Node, newID) })
	for _, from := range []*node{n1, n2} { // across the engine, and on the node itself
		if err := from.SendTo(context.Background(), oldID, []byte("for the old session")); !errors.Is(err, ErrNoSuchSession) {
			t.Errorf("%s: SendTo the old process's %s = %v, want ErrNoSuchSession", from.ID(), oldID, err)
		}
	}
	if err := n1.SendTo(context.Background(), newID, []byte("new")); err != nil {
		t.Fatalf("SendTo %s: %v", newID, err)
	}
	b.expect(t, "new") // and nothing before it: the old id reached nobody
}
