package faults

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/internal/report"
)

// Faults that need the network itself to misbehave: server and client in
// a namespace of the test's own, on its loopback, with nftables rules
// there. The namespace (and its rules) goes when the test ends.

const nsPort = "18080"

// table is an nftables ruleset filtering the server's port both ways.
func table(rule string) string {
	return fmt.Sprintf(`table inet lifeline {
	chain out {
		type filter hook output priority 0; policy accept;
		%s
	}
}
`, rule)
}

// A blackhole: every packet of the link silently dropped, both ways. Both
// ends must notice by their own liveness deadline; when the path heals,
// the client is back.
func TestBlackhole(t *testing.T) {
	ns := newNetns(t)
	s, c, _ := linked(t, ns.name, "127.0.0.1:"+nsPort)
	fromS, fromC := s.mark(), c.mark()
	at := time.Now()
	ns.nft(t, table("tcp dport "+nsPort+" drop\n\t\ttcp sport "+nsPort+" drop"))
	tookS := peerGone(t, "blackhole", s, "session", "Reaped", "pong_timeout", "pong_timeout", fromS, at, silence)
	tookC := peerGone(t, "blackhole", c, "client", "BackingOff", "pong_timeout", "", fromC, at, silence)
	healFrom := c.mark()
	ns.run(t, "nft", "delete", "table", "inet", "lifeline")
	healed := time.Now()
	l, _ := c.wait(t, healFrom, 15*time.Second, "reconnect after heal", func(l logLine) bool { return l.isTransition("client", "Connected") })
	report.Add(t, report.Row{Section: section, Case: "blackhole (nftables drop, both ways, in a namespace)",
		Path:     "session Alive→Reaped (pong_timeout); client Connected→BackingOff (pong_timeout) → … → Connected after heal",
		Bound:    "each " + silence.String() + " after the rule (≤ ping+pong+50ms after the last frame)",
		Observed: fmt.Sprintf("server %s, client %s after the rule; back %s after heal", tookS.Round(time.Millisecond), tookC.Round(time.Millisecond), l.At.Sub(healed).Round(time.Millisecond)),
		Evidence: "no session left for the dead link; one live again"})
}

// RST: the client's packets to the server answered with a TCP reset. The
// client fails at its next write (its pong to the server's next ping):
// the reset ends its link (dropped). The server hears nothing more: the
// client's kernel answers the server's next ping with a reset of its own,
// but that reset goes to the server's port too and the rule swallows it
// (a reset is never answered with one), so the session is reaped for
// silence at the liveness bound.
func TestReset(t *testing.T) {
	ns := newNetns(t)
	s, c, _ := linked(t, ns.name, "127.0.0.1:"+nsPort)
	fromS, fromC := s.mark(), c.mark()
	at := time.Now()
	ns.nft(t, table("tcp dport "+nsPort+" reject with tcp reset"))
	tookC := peerGone(t, "RST", c, "client", "BackingOff", "dropped", "", fromC, at, nextWrite)
	tookS := peerGone(t, "RST", s, "session", "Reaped", "pong_timeout", "pong_timeout", fromS, at, silence)
	report.Add(t, report.Row{Section: section, Case: "RST (nftables reject with tcp reset, in a namespace)",
		Path:     "client Connected→BackingOff (dropped: reset at its next write); session Alive→Reaped (pong_timeout: the client's reset is swallowed too)",
		Bound:    "client " + nextWrite.String() + "; server " + silence.String() + " after the rule",
		Observed: fmt.Sprintf("client %s, server %s after the rule", tookC.Round(time.Millisecond), tookS.Round(time.Millisecond)),
		Evidence: "the client keeps retrying (reset) by the policy"})
}

// Loss: 10 % of the link's packets dropped at random both ways. TCP
// retransmits; with a pong timeout well above the retransmission timeout
// the link stays up and every message arrives.
func TestLoss(t *testing.T) {
	ns := newNetns(t)
	// A pong timeout of 2 s leaves room for TCP's 200 ms minimum
	// retransmission timeout, doubled a few times.
	s := startLifeline(t, ns.name, "serve", "serve", "--addr", "127.0.0.1:"+nsPort, "--log-format", "json",
		"--ping-interval", "3s", "--pong-timeout", "2s")
	s.listening(t)
	args := connectArgs("ws://127.0.0.1:" + nsPort + "/")
	args = replaceFlag(replaceFlag(args, "--ping-interval", "3s"), "--pong-timeout", "2s")
	c := startLifeline(t, ns.name, "connect", args...)
	c.wait(t, 0, 10*time.Second, "Connected", func(l logLine) bool { return l.isTransition("client", "Connected") })
	ns.nft(t, table("tcp dport "+nsPort+" numgen random mod 100 < 10 drop\n\t\ttcp sport "+nsPort+" numgen random mod 100 < 10 drop"))
	const n = 50
	for i := range n {
		if _, err := fmt.Fprintf(c.in, "m%d\n", i); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(10 * time.Second) // the observation window: ten seconds of 10 % loss
	out := c.waitOut(t, n, 30*time.Second)
	drops := 0
	for _, l := range c.since(0) {
		if l.isTransition("client", "BackingOff") {
			drops++
		}
	}
	got := map[string]bool{}
	for _, o := range out {
		got[strings.TrimSpace(o)] = true
	}
	if len(got) != n || drops != 0 {
		t.Errorf("under 10%% loss: %d distinct messages of %d echoed, %d drops", len(got), n, drops)
	}
	report.Add(t, report.Row{Section: section, Case: "loss 10 % both ways (nftables numgen, in a namespace)",
		Path: "client stays Connected, session stays Alive", Bound: "no reap while TCP retransmits within the pong timeout (2 s)",
		Observed: fmt.Sprintf("%d drops in 10 s", drops), Evidence: fmt.Sprintf("messages echoed %d of %d sent", len(got), n)})
}

// replaceFlag sets flag's value in args.
func replaceFlag(args []string, flag, value string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if out[i] == flag && i+1 < len(out) {
			out[i+1] = value
		}
	}
	return out
}
