// Package fsm is the specification of lifeline's lifecycles, a
// reconnecting client connection and a server session, and for a cluster a
// node's own lease (Node) and its view of each peer node (Peer), and the
// sans-I/O machines that execute them.
//
// Each lifecycle is a Table of rows (From, Trigger, To, Guard). The same
// table builds the qmuntal/stateless machine the runtime fires, the
// Mermaid and DOT diagrams (Mermaid, DOT), and the oracles the property
// tests and the simulator check against (Backoff.Earliest, Backoff.Latest,
// Liveness.ReapDeadline, Lease.FenceAt, Lease.EarliestDead,
// Lease.LatestDead). Tables lists them all.
//
// A client's bounded outbox is data too: the Outbox policy and the pure
// OutboxQueue, which decides, given the time, what is held, written and
// dropped (DropReason), for conn and the simulator alike.
//
// The package does no I/O: no sockets, no goroutines, no sleeps, no wall
// clock, no global randomness. A driver (the simulator in package sim, the
// WebSocket adapter in package conn) owns a Client or Session, hands it
// Events stamped with the time it observed them, carries out the Actions it
// answers with, and hands in EvTick when Deadline passes. An expired
// deadline thus comes back through the same Step as network input, and an
// early or repeated tick is harmless, so timers need no generations.
//
// # Usage
//
// A client driver loop, in outline:
//
//	c, err := fsm.NewClient(fsm.ClientConfig{Backoff: fsm.DefaultBackoff(), Rand: rng})
//	if err != nil { ... }
//	out, _ := c.Step(clk.Now(), fsm.EvStart)
//	for {
//		for _, a := range out.Actions { // in order: tear-down first, then new work
//			switch a.Kind {
//			case fsm.ActDial:      go dial(ctx, a.At, a.Attempt) // reports EvDialOK / EvDialFailed
//			case fsm.ActAbortDial: cancelDial()
//			case fsm.ActSendPing:  ws.WritePing()
//			case fsm.ActClose:     ws.WriteClose(a.Code)
//			case fsm.ActDrop:      ws.Close()
//			}
//		}
//		if out.Transition != nil {
//			log.Info("transition", "from", out.Transition.From, "to", out.Transition.To)
//		}
//		if d, ok := c.Deadline(); ok {
//			timer.Reset(d.Sub(clk.Now()))
//		}
//		select {
//		case <-timer.C:    out, err = c.Step(clk.Now(), fsm.EvTick)
//		case ev := <-io:   out, err = c.Step(clk.Now(), ev)
//		case <-ctx.Done(): out, err = c.Step(clk.Now(), fsm.EvStop)
//		}
//	}
//
// A session is driven the same way, from NewSession(now, liveness) to the
// ActReap that ends it.
//
// A cluster node drives a Node for its own lease and a Peer per other
// node the same way: ActCreateLease and ActRenewLease become writes to the
// engine whose answers come back as Node.Proved(now, action.At) or
// EvLeaseFailed; ActFence closes every session with EvFence; ActRecheck
// becomes a read of the peer's lease, answered with Peer.Seen or
// EvLeaseGone; ActDeclareDead drops the peer's sessions from the
// directory. Lease states the bounds the cluster keeps.
//
// # Concurrency
//
// All Clients share one built client machine and all Sessions one session
// machine; each instance keeps its own state and is fired with itself as
// the context. A Client or Session is not safe for
// concurrent use; the built machines are.
package fsm
