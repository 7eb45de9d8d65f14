// Package cluster joins lifeline servers on several nodes into one
// cluster on NATS: a cluster-wide directory of sessions, sends that reach a
// session wherever it lives and always get an answer, and a bound on how
// long a dead node's sessions are still counted alive anywhere.
//
// # Engine
//
// Each node embeds a nats-server (JetStream, memory storage) by default;
// several embedded servers form a NATS cluster through their routes
// (Config.Listen, Config.Peers: list every node). Config.NATS uses an
// external NATS cluster instead. Two JetStream key-value buckets hold the
// state: <name>_nodes, one lease per node with a per-key TTL, and
// <name>_sessions, one entry per session.
//
// # Lifecycle
//
// A Node's lifecycle is fsm.Node, driven by Run's goroutine exactly as
// conn drives fsm.Client: fsm decides, the driver carries out its actions
// (create or renew the lease, fence, leave) and logs one line per
// transition. A node serves sessions only while Member or Degraded; when it
// cannot prove its lease for Lease.Fence it closes every session it serves
// (fsm.ReasonFenced, close code 1001) before any other node may count
// them dead (Lease.EarliestDead). Each other node is an fsm.Peer, fed by a
// watch of the lease bucket and re-checked every heartbeat (a watch can
// miss an expiry marker); when its lease expires its sessions are dropped
// from the directory everywhere within Lease.LatestDead.
//
// # Usage
//
//	node, err := cluster.New(cluster.Config{Node: "n1", Listen: "10.0.0.1:6222",
//		Peers: []string{"10.0.0.2:6222", "10.0.0.3:6222"}})
//	srv, err := conn.NewServer(conn.ServerConfig{Hook: node})
//	go node.Run(ctx)
//	http.Handle("/", srv)
//	...
//	err = node.SendTo(ctx, id, msg) // id from List, e.g. "n2.dn80u9bgfku6/17": nil means written to its socket
//	...
//	node.Shutdown(ctx) // leave: the others drop its sessions at once
//	srv.Shutdown(ctx)
//
// Every send has an answer: nil (or a count), ErrNoSuchSession,
// a *SessionClosedError, or an *EngineError (ErrUnreachable).
package cluster
