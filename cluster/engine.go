package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// engine is the node's NATS: the embedded server (nil with an external
// one), the client connection and the two buckets.
type engine struct {
	srv      *server.Server
	tmpStore string // StoreDir we created, removed on close
	nc       *nats.Conn
	js       jetstream.JetStream
	leases   jetstream.KeyValue // <node> → lease, per-key TTL
	dir      jetstream.KeyValue // <node>.<inc>.<n> → session entry
	dirName  string
	subj     string // subject prefix: <name>.
	log      *slog.Logger
}

// reconnectWait is nats.go's wait between reconnect attempts. The lease,
// not the connection, decides whether the node may serve: a short wait
// only lets a renewal through sooner once the engine is back.
const reconnectWait = 250 * time.Millisecond

// startServer starts the embedded NATS server of cfg and waits until it
// takes clients.
func startServer(cfg Config, log *slog.Logger) (*server.Server, string, error) {
	opts := &server.Options{
		ServerName: cfg.Node,
		Host:       "127.0.0.1",
		Port:       -1,
		// A client listener on a random loopback port even when nobody
		// but the node connects: in nats-server 2.15 the route listener
		// starts only after the client listener did (StartRouting waits
		// for it), so DontListen would leave a clustered server unrouted.
		DontListen: cfg.ClientListen == "" && cfg.Listen == "",
		JetStream:  true,
		NoLog:      true,
		NoSigs:     true,
		// Memory storage only: the buckets are leases and sessions, both
		// worthless after a restart of the whole cluster.
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  0,
	}
	tmp := ""
	opts.StoreDir = cfg.StoreDir
	if opts.StoreDir == "" {
		d, err := os.MkdirTemp("", "lifeline-nats-"+cfg.Node+"-")
		if err != nil {
			return nil, "", fmt.Errorf("cluster: store directory: %w", err)
		}
		opts.StoreDir, tmp = d, d
	}
	if cfg.ClientListen != "" {
		h, p, _ := net.SplitHostPort(cfg.ClientListen)
		opts.Host = h
		opts.Port, _ = strconv.Atoi(p)
		if opts.Port == 0 {
			opts.Port = -1
		}
	}
	if cfg.Listen != "" {
		h, p, _ := net.SplitHostPort(cfg.Listen)
		port, _ := strconv.Atoi(p)
		opts.Cluster = server.ClusterOpts{Name: cfg.name(), Host: h, Port: port}
		var routes []string
		for _, peer := range cfg.Peers {
			routes = append(routes, "nats://"+peer)
		}
		opts.Routes = server.RoutesFromStr(strings.Join(routes, ","))
	}
	s, err := server.NewServer(opts)
	if err != nil {
		removeTmp(tmp)
		return nil, "", fmt.Errorf("cluster: embedded NATS: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		s.WaitForShutdown()
		removeTmp(tmp)
		return nil, "", errors.New("cluster: embedded NATS not ready within 10s (is the route address in use?)")
	}
	log.Info("embedded NATS started", "node", cfg.Node, "routes", cfg.Peers, "listen", cfg.Listen, "clients", cfg.ClientListen)
	return s, tmp, nil
}

func removeTmp(dir string) {
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
}

// splitURLs splits a comma-separated URL list.
func splitURLs(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// connect opens the node's client connection: in-process to the embedded
// server, or to the external servers with nats.go's reconnect handling
// (forever, every reconnectWait): an outage shows as failed lease
// renewals, which the node lifecycle turns into Degraded, then Fenced.
func connect(cfg Config, srv *server.Server, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("lifeline-" + cfg.Node),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("engine connection lost", "node", cfg.Node, "error", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("engine connection back", "node", cfg.Node, "server", nc.ConnectedUrlRedacted())
		}),
	}
	if cfg.NATSListedOnly {
		opts = append(opts, nats.IgnoreDiscoveredServers())
	}
	url := cfg.NATS
	if srv != nil {
		url = "nats://in-process"
		opts = append(opts, nats.InProcessServer(srv))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, &EngineError{Op: "connect to NATS", Err: err}
	}
	return nc, nil
}

// bucketConfigs returns the lease and directory buckets' configurations.
func bucketConfigs(cfg Config) (lease, dir jetstream.KeyValueConfig) {
	l := cfg.Lease.WithDefaults()
	name := cfg.name()
	lease = jetstream.KeyValueConfig{
		Bucket:   name + "_nodes",
		History:  1, // more would silently raise a per-key TTL to the marker TTL
		Storage:  jetstream.MemoryStorage,
		Replicas: cfg.replicas(),
		// Enables per-key TTLs; expiry markers live this long, so a
		// watcher sees a lease expire (and a re-check covers the rest).
		LimitMarkerTTL: max(l.TTL, time.Second),
	}
	dir = jetstream.KeyValueConfig{
		Bucket:   name + "_sessions",
		History:  1,
		Storage:  jetstream.MemoryStorage,
		Replicas: cfg.replicas(),
	}
	return lease, dir
}

// ensureBuckets creates the buckets if they are missing (the first node
// of a cluster, or an external NATS restarted: memory storage does not
// survive it) and binds to them. The handles stay valid across a
// re-creation: they address the streams by name.
func (e *engine) ensureBuckets(ctx context.Context, cfg Config) error {
	lc, dc := bucketConfigs(cfg)
	leases, err := e.ensureBucket(ctx, cfg, lc)
	if err != nil {
		return err
	}
	dir, err := e.ensureBucket(ctx, cfg, dc)
	if err != nil {
		return err
	}
	if e.leases == nil {
		e.leases, e.dir = leases, dir
	}
	return nil
}

// ensureBucket opens bucket kc. With automatic Replicas (0) an existing
// bucket is bound as it is: the buckets are shared by every node, and a
// node that only guessed a replica count (1 on an external NATS) must not
// rescale what others configured. A missing one is created with the
// guess. An explicit Replicas is applied: the bucket is updated to it,
// and a change of an existing bucket's count is logged.
func (e *engine) ensureBucket(ctx context.Context, cfg Config, kc jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	if cfg.Replicas == 0 {
		kv, err := e.js.KeyValue(ctx, kc.Bucket)
		if !errors.Is(err, jetstream.ErrBucketNotFound) {
			return kv, err
		}
		kv, err = e.js.CreateKeyValue(ctx, kc)
		if errors.Is(err, jetstream.ErrBucketExists) {
			// Another node created it meanwhile, perhaps with other
			// replicas: bind it as it is.
			return e.js.KeyValue(ctx, kc.Bucket)
		}
		return kv, err
	}
	if st, err := e.js.Stream(ctx, "KV_"+kc.Bucket); err == nil {
		if had := st.CachedInfo().Config.Replicas; had != kc.Replicas {
			e.log.Warn("rescaling a shared bucket to this node's Replicas", "node", cfg.Node,
				"bucket", kc.Bucket, "replicas", had, "to", kc.Replicas)
		}
	}
	return e.js.CreateOrUpdateKeyValue(ctx, kc)
}

// openBuckets is ensureBuckets retried while JetStream is not ready: a
// fresh cluster elects its meta leader some seconds after its routes are
// up.
func (e *engine) openBuckets(ctx context.Context, cfg Config) error {
	_, dc := bucketConfigs(cfg)
	e.dirName = dc.Bucket
	e.subj = cfg.name() + "."
	var lastErr error
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := e.ensureBuckets(cctx, cfg)
		cancel()
		if err == nil {
			return nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return &EngineError{Op: "open buckets", Err: fmt.Errorf("%w (last: %v)", ctx.Err(), lastErr)}
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// missingBucket reports whether err says the bucket's stream is gone.
func missingBucket(err error) bool {
	return errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)
}

// close drains the client and stops the embedded server.
func (e *engine) close() {
	if e.nc != nil {
		e.nc.Close()
	}
	if e.srv != nil {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
	}
	removeTmp(e.tmpStore)
}
