package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"time"

	"github.com/lifeline-go/lifeline/cluster"
	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
)

// A one-node cluster (an embedded NATS that listens on nothing): a send to
// a session that lives nowhere is answered at once.
func Example() {
	node, err := cluster.New(cluster.Config{Node: "n1", Logger: slog.New(slog.DiscardHandler),
		Lease: fsm.Lease{TTL: 3 * time.Second, Heartbeat: time.Second}})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv, _ := conn.NewServer(conn.ServerConfig{Hook: node, Logger: slog.New(slog.DiscardHandler)})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	for !node.Serving() {
		time.Sleep(10 * time.Millisecond) // polling the example's one readiness condition
	}
	err = node.SendTo(ctx, "n1.1/42", []byte("hello")) // <node>.<incarnation>/<n>: no such session
	fmt.Println(errors.Is(err, cluster.ErrNoSuchSession), node.State())

	_ = node.Shutdown(ctx)
	cancel()
	<-done
	_ = srv.Close()
	fmt.Println(node.State())
	// Output:
	// true Member
	// Left
}
