package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lifeline-go/lifeline/cluster"
	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
)

// serveClusterOpts are serve's cluster flags.
type serveClusterOpts struct {
	node, listen, peers, nats string
	ttl, heartbeat            time.Duration
}

// clusterFlags registers the cluster flags of serve.
func clusterFlags(fs *flag.FlagSet) *serveClusterOpts {
	o := &serveClusterOpts{}
	d := fsm.DefaultLease()
	fs.StringVar(&o.node, "node", "", "join a cluster as this node (letters, digits, - and _); session ids are <node>.<incarnation>/<n>")
	fs.StringVar(&o.listen, "cluster-listen", "", "HOST:PORT for the embedded NATS routes (alone: a one-node cluster)")
	fs.StringVar(&o.peers, "cluster-peers", "", "the other nodes' --cluster-listen addresses, comma-separated (list them all)")
	fs.StringVar(&o.nats, "nats", "", "use an external NATS (JetStream) at this URL (comma-separated for several) instead of an embedded one")
	fs.DurationVar(&o.ttl, "lease-ttl", d.TTL, "a node's sessions are counted dead this long after its last lease renewal (whole seconds)")
	fs.DurationVar(&o.heartbeat, "lease-heartbeat", d.Heartbeat, "lease renewal and peer re-check period (at most --lease-ttl/3)")
	return o
}

// flagOf names the flag behind a cluster.Config or fsm.Lease field.
var flagOf = map[string]string{
	"Node": "--node", "Listen": "--cluster-listen", "Peers": "--cluster-peers", "NATS": "--nats",
	"TTL": "--lease-ttl", "Heartbeat": "--lease-heartbeat", "Fence": "--lease-ttl/--lease-heartbeat",
}

// config returns the node configuration, nil if no cluster flag was set,
// or a usage error naming the flag that is wrong.
func (o *serveClusterOpts) config(logger *slog.Logger, keyOf func(*http.Request) string) (*cluster.Config, error) {
	if o.node == "" && o.listen == "" && o.peers == "" && o.nats == "" {
		return nil, nil
	}
	if o.node == "" {
		return nil, errors.New("--node is required with --cluster-listen, --cluster-peers or --nats")
	}
	cfg := &cluster.Config{Node: o.node, Listen: o.listen, NATS: o.nats, KeyOf: keyOf, Logger: logger,
		Lease: fsm.Lease{TTL: o.ttl, Heartbeat: o.heartbeat}}
	if o.peers != "" {
		for _, p := range strings.Split(o.peers, ",") {
			cfg.Peers = append(cfg.Peers, strings.TrimSpace(p))
		}
	}
	if o.ttl <= 0 || o.heartbeat <= 0 {
		return nil, fmt.Errorf("--lease-ttl and --lease-heartbeat must be positive (got %s, %s)", o.ttl, o.heartbeat)
	}
	if err := cfg.Validate(); err != nil {
		return nil, flagErrors(err)
	}
	return cfg, nil
}

// flagErrors rewrites the field errors of a validation into flag names.
func flagErrors(err error) error {
	var fes []*fsm.FieldError
	collectFieldErrors(err, &fes)
	if len(fes) == 0 {
		return err
	}
	var msgs []string
	for _, fe := range fes {
		name := fe.Field
		if f, ok := flagOf[strings.SplitN(name, "[", 2)[0]]; ok {
			name = f
		}
		msgs = append(msgs, fmt.Sprintf("%s %s (got %v)", name, fe.Rule, fe.Value))
	}
	return errors.New(strings.Join(msgs, "; "))
}

func collectFieldErrors(err error, out *[]*fsm.FieldError) {
	var fe *fsm.FieldError
	if errors.As(err, &fe) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				collectFieldErrors(e, out)
			}
			return
		}
		*out = append(*out, fe)
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			collectFieldErrors(e, out)
		}
	}
}

// clusterServer is serve's lifecycleServer with a cluster node: the
// WebSocket endpoint plus GET /sessions and POST /send behind the same
// authorization, and a Shutdown that leaves the cluster first.
type clusterServer struct {
	http.Handler
	srv  *conn.Server
	node *cluster.Node
	wg   sync.WaitGroup
	errc chan error
	stop context.CancelFunc
}

// newClusterServer starts node (its Run on a goroutine of its own) and
// routes the cluster endpoints.
func newClusterServer(srv *conn.Server, node *cluster.Node, auth func(*http.Request) error) *clusterServer {
	ctx, stop := context.WithCancel(context.Background())
	cs := &clusterServer{srv: srv, node: node, errc: make(chan error, 1), stop: stop}
	cs.wg.Add(1)
	go func() {
		defer cs.wg.Done()
		cs.errc <- node.Run(ctx)
	}()
	mux := http.NewServeMux()
	mux.Handle("GET /sessions", authorized(auth, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, node.List())
	})))
	mux.Handle("POST /send", authorized(auth, http.HandlerFunc(cs.send)))
	mux.Handle("/", srv)
	cs.Handler = mux
	return cs
}

// send answers POST /send?id=ID or ?key=KEY: the body goes out as one text
// message; 200 {"delivered": n}, 404 when no such session (or it closed),
// 503 when the engine or the holding node did not answer, 400 for a bad
// request.
func (cs *clusterServer) send(w http.ResponseWriter, r *http.Request) {
	id, key := r.URL.Query().Get("id"), r.URL.Query().Get("key")
	if (id == "") == (key == "") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "give exactly one of ?id= and ?key="})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	var n int
	if id != "" {
		if err = cs.node.SendTo(r.Context(), id, body); err == nil {
			n = 1
		}
	} else {
		n, err = cs.node.SendKey(r.Context(), key, body)
	}
	switch {
	case err == nil || (n > 0 && !errors.Is(err, cluster.ErrUnreachable)):
		writeJSON(w, http.StatusOK, map[string]int{"delivered": n})
	case errors.Is(err, cluster.ErrBadID):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	case errors.Is(err, cluster.ErrNoSuchSession), errors.Is(err, cluster.ErrSessionClosed):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": err.Error(), "delivered": n})
	}
}

// Shutdown leaves the cluster (the node's sessions leave the directory at
// once), then closes the sessions.
func (cs *clusterServer) Shutdown(ctx context.Context) error {
	err := cs.node.Shutdown(ctx)
	cs.stop()
	cs.wg.Wait()
	if rerr := <-cs.errc; rerr != nil && err == nil {
		err = rerr
	}
	if serr := cs.srv.Shutdown(ctx); serr != nil {
		return serr
	}
	if errors.Is(err, cluster.ErrNotRunning) {
		return nil
	}
	return err
}

// clusterStats is serve's /stats with a cluster node.
type clusterStats struct {
	conn.ServerStats
	Cluster cluster.Stats `json:"cluster"`
}

// authorized runs h only for requests auth accepts (nil: all), answering
// 401 or 403 otherwise, as the WebSocket endpoint does.
func authorized(auth func(*http.Request) error, h http.Handler) http.Handler {
	if auth == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := auth(r); err != nil {
			status := http.StatusForbidden
			if errors.Is(err, conn.ErrUnauthorized) {
				status = http.StatusUnauthorized
			}
			http.Error(w, http.StatusText(status), status)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
