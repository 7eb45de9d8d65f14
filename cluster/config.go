package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// Config configures a Node. Only Node is required: the zero value of every
// other field is a one-node cluster on an embedded NATS server that listens
// on nothing (the node's own client talks to it in-process).
type Config struct {
	// Node names this node, unique in the cluster: letters, digits, '-'
	// and '_', at most 64. Session ids are <Node>/<n>.
	Node string

	// Name names the cluster: the prefix of its NATS subjects and
	// JetStream buckets, so several clusters can share one NATS. Same
	// alphabet as Node. Empty means "lifeline".
	Name string

	// Lease is the lease policy: TTL (whole seconds), Heartbeat (at most
	// TTL/3), the fence bound (shorter than TTL). The zero value means
	// fsm.DefaultLease(): 10 s, 3 s, fence at 7 s. Every node of a cluster
	// must use the same policy.
	Lease fsm.Lease

	// NATS, if set, is an external NATS cluster to use instead of an
	// embedded server: one URL or several separated by commas
	// (nats://host:4222,...). The servers must run JetStream.
	NATS string

	// NATSListedOnly makes the node's client use only the NATS URLs
	// given, not the servers the NATS cluster advertises to its clients:
	// for servers behind NAT, or when the path to the engine must be the
	// one configured (a proxy, the fault tests). Only with NATS.
	NATSListedOnly bool

	// Listen is the embedded server's route address, HOST:PORT, where the
	// other nodes' servers connect: the node's NATS server becomes one of a
	// NATS cluster. Empty with no Peers: a standalone server. Ignored with
	// NATS.
	Listen string

	// Peers are the route addresses (HOST:PORT) of the other nodes'
	// embedded servers. List every node: JetStream sizes its cluster from
	// the routes. Ignored with NATS.
	Peers []string

	// ClientListen, if set, is an address (HOST:PORT, port 0 for any) where
	// the embedded server also accepts NATS clients. Empty means none: the
	// node's own client connects in-process.
	ClientListen string

	// StoreDir is the embedded server's JetStream directory. The buckets
	// live in memory, but the server wants a directory of its own per
	// node. Empty means a fresh temporary directory, removed by Shutdown.
	StoreDir string

	// Replicas is how many copies JetStream keeps of the lease and
	// directory buckets, which every node of the cluster shares. Zero
	// (automatic) opens existing buckets as they are, and creates missing
	// ones with 1 + len(Peers), at most 3, with the embedded server, and 1
	// with NATS. A non-zero value is applied: existing buckets are
	// rescaled to it (logged as a warning), so give it on every node or on
	// none.
	Replicas int

	// KeyOf, if set, gives each session its key at the upgrade (a user id,
	// a OneBot self_id from X-Self-ID): SendKey reaches every session with
	// a key, and GET /sessions shows it. Nil means no keys. It runs on the
	// handler goroutine: keep it to reading the request.
	KeyOf func(r *http.Request) string

	// RequestTimeout bounds a send to another node: a node that does not
	// answer within it is reported unreachable (ErrUnreachable). Zero means
	// 2 s.
	RequestTimeout time.Duration

	// Logger gets one line per node and peer transition. Nil means
	// slog.Default().
	Logger *slog.Logger
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

const defaultRequestTimeout = 2 * time.Second

// Validate reports every field that breaks a rule, naming it. It does not
// change c.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, rule string, v any) {
		errs = append(errs, &fsm.FieldError{Policy: "cluster.Config", Field: field, Rule: rule, Value: v})
	}
	if !nameRE.MatchString(c.Node) {
		bad("Node", "is required: 1-64 letters, digits, '-' or '_'", c.Node)
	}
	if c.Name != "" && !nameRE.MatchString(c.Name) {
		bad("Name", "must be 1-64 letters, digits, '-' or '_' (empty: lifeline)", c.Name)
	}
	errs = append(errs, c.Lease.Validate())
	if c.NATS != "" {
		for i, u := range splitURLs(c.NATS) {
			p, err := url.Parse(u)
			if err != nil || p.Host == "" || (p.Scheme != "nats" && p.Scheme != "tls") {
				bad("NATS", fmt.Sprintf("URL %d must be nats://host:port or tls://host:port", i+1), u)
			}
		}
		if c.Listen != "" || len(c.Peers) > 0 {
			bad("Listen", "an external NATS (NATS) and an embedded cluster (Listen, Peers) exclude each other", c.Listen)
		}
	}
	if c.Listen != "" {
		if err := hostPort(c.Listen); err != nil {
			bad("Listen", err.Error(), c.Listen)
		}
	}
	if len(c.Peers) > 0 && c.Listen == "" {
		bad("Peers", "need Listen: the other nodes route to this node's address", c.Peers)
	}
	for i, p := range c.Peers {
		if err := hostPort(p); err != nil {
			bad("Peers["+strconv.Itoa(i)+"]", err.Error(), p)
		}
	}
	if c.ClientListen != "" {
		if err := hostPort(c.ClientListen); err != nil {
			bad("ClientListen", err.Error(), c.ClientListen)
		}
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		bad("Replicas", "must be 0 (automatic) to 5", c.Replicas)
	}
	if c.RequestTimeout < 0 {
		bad("RequestTimeout", "must not be negative (0 means 2s)", c.RequestTimeout)
	}
	return errors.Join(errs...)
}

// hostPort checks a HOST:PORT address with a numeric port.
func hostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("must be HOST:PORT: %v", err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port must be a number 0-65535")
	}
	return nil
}

func (c Config) name() string {
	if c.Name == "" {
		return "lifeline"
	}
	return c.Name
}

func (c Config) replicas() int {
	switch {
	case c.Replicas > 0:
		return c.Replicas
	case c.NATS != "":
		return 1
	}
	return min(3, 1+len(c.Peers))
}

func (c Config) requestTimeout() time.Duration {
	if c.RequestTimeout == 0 {
		return defaultRequestTimeout
	}
	return c.RequestTimeout
}
