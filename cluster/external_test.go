package cluster

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/proc"
	"github.com/lifeline-go/lifeline/internal/report"
	"github.com/nats-io/nats-server/v2/server"
)

// natsEnv makes the re-executed test binary a standalone NATS server
// (JetStream, memory) on the port it names: the "external NATS" the
// restart test kills and starts again.
const natsEnv = "LIFELINE_NATS_SERVER"

func runNATSProcess() int {
	port, _ := strconv.Atoi(os.Getenv(natsEnv))
	dir, _ := os.MkdirTemp("", "lifeline-ext-nats-")
	defer os.RemoveAll(dir)
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		return 1
	}
	fmt.Println("ready")
	s.WaitForShutdown()
	return 0
}

// TestExternalNATSRestart: a node on an external NATS that is SIGKILLed
// and started again after longer than the fence bound fences itself, then
// rejoins on the new server (its buckets, in memory, are gone and made
// again); its client comes back and is listed again.
func TestExternalNATSRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs a NATS server process and waits out a fence")
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	self := proc.Self{Argv: os.Args[:1], Env: []string{natsEnv + "=" + port}}
	start := func() *proc.Child {
		c, err := self.Start(os.Stderr, "-test.run=^$")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Line("ready", 20*time.Second); err != nil {
			t.Fatal(err)
		}
		return c
	}
	ns := start()
	t.Cleanup(func() { ns.Kill() })
	n1 := startNode(t, Config{Node: "n1", NATS: "nats://" + addr})
	waitFor(t, 20*time.Second, "n1 Member", func() bool { return n1.State() == fsm.Member })
	c := dial(t, "gina", n1.url)
	waitFor(t, 5*time.Second, "gina listed", func() bool { return idOf(n1.Node, "gina") != "" })

	killed, err := ns.Signal(syscall.SIGKILL)
	if err != nil {
		t.Fatal(err)
	}
	ns.Kill()
	waitFor(t, 2*testLease.TTL, "n1 Fenced", func() bool { return n1.State() == fsm.Fenced })
	fenced := time.Since(killed)
	waitFor(t, 5*time.Second, "gina dropped", func() bool { return c.c.State() != fsm.Connected })
	time.Sleep(testLease.TTL - fenced) // the outage lasts a TTL: the restart is what is tested, not a synchronisation
	ns = start()
	restarted := time.Now()
	waitFor(t, 20*time.Second, "n1 Member again", func() bool { return n1.State() == fsm.Member })
	member := time.Since(restarted)
	waitFor(t, 20*time.Second, "gina back and listed again", func() bool {
		return c.c.State() == fsm.Connected && idOf(n1.Node, "gina") != ""
	})
	back := time.Since(restarted)
	report.Add(t, report.Row{Section: reportSection, Case: "1 node on an external NATS process: the NATS SIGKILLed, restarted 3s later (memory storage: buckets lost)",
		Path:  "node Member→Degraded/Fenced (sessions closed 1001) → Joining → Member; buckets made again; client back",
		Bound: fmt.Sprintf("fenced ≤ P+Fence (%s); rejoins once the engine answers", testLease.WithDefaults().Fence),
		Observed: fmt.Sprintf("fenced %s after the kill; Member %s and client listed again %s after the restart",
			fenced.Round(time.Millisecond), member.Round(time.Millisecond), back.Round(time.Millisecond)),
		Evidence: "directory lists the client again after the restart"})
}
