package cluster

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
)

// errNotServing is what Admit answers while the node may not serve.
var errNotServing = errors.New("cluster node not serving (joining, fenced or left): try another node")

// local is one session this node serves.
type local struct {
	s     *conn.Session
	key   string
	inc   uint64
	since time.Time
}

// locals are the sessions this node serves, by conn id and by key.
type locals struct {
	mu    sync.Mutex
	byID  map[uint64]*local
	byKey map[string]map[uint64]*local
	early map[uint64]struct{} // closed before Opened ran (a race conn allows)
	srvs  map[*conn.Server]struct{}
}

func (l *locals) init() {
	l.byID = map[uint64]*local{}
	l.byKey = map[string]map[uint64]*local{}
	l.early = map[uint64]struct{}{}
	l.srvs = map[*conn.Server]struct{}{}
}

func (l *locals) servers() []*conn.Server {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*conn.Server, 0, len(l.srvs))
	for s := range l.srvs {
		out = append(out, s)
	}
	return out
}

func (l *locals) get(id uint64) (*local, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.byID[id]
	return s, ok
}

func (l *locals) withKey(key string) []*local {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*local, 0, len(l.byKey[key]))
	for _, s := range l.byKey[key] {
		out = append(out, s)
	}
	return out
}

func (l *locals) all() []*local {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*local, 0, len(l.byID))
	for _, s := range l.byID {
		out = append(out, s)
	}
	return out
}

// Admit implements conn.SessionHook: a node takes sessions only while it
// can vouch for them (Member or Degraded).
func (n *Node) Admit(*http.Request) error {
	if !n.Serving() {
		return errNotServing
	}
	return nil
}

// Opened implements conn.SessionHook: the session joins this node's table
// and its directory entry is queued for the writer. Nothing here waits
// on the engine.
func (n *Node) Opened(s *conn.Session, r *http.Request) {
	key := ""
	if n.cfg.KeyOf != nil {
		key = n.cfg.KeyOf(r)
	}
	ls := &local{s: s, key: key, inc: n.inc.Load(), since: time.Now()}
	l := &n.loc
	l.mu.Lock()
	l.srvs[s.Server()] = struct{}{}
	if _, ok := l.early[s.ID()]; ok {
		delete(l.early, s.ID())
		l.mu.Unlock()
		return
	}
	l.byID[s.ID()] = ls
	if key != "" {
		m := l.byKey[key]
		if m == nil {
			m = map[uint64]*local{}
			l.byKey[key] = m
		}
		m[s.ID()] = ls
	}
	l.mu.Unlock()
	n.write.open(s.ID(), n.entry(s.ID(), ls), s.State)
}

// entry is local session id's directory entry; its State is filled in
// when written.
func (n *Node) entry(id uint64, ls *local) Entry {
	return Entry{ID: sessionID(n.cfg.Node, ls.inc, id), Node: n.cfg.Node, Key: ls.key,
		Since: ls.since, Incarnation: ls.inc}
}

// StateChanged implements conn.SessionStateHook: a session's state change
// (Alive ⇄ Suspect, Closing) is queued for the writer, which writes the
// state the session has then (repeated changes in one batch are one
// write). It runs under the session's lock: no engine, no session call.
func (n *Node) StateChanged(s *conn.Session, _ fsm.State) {
	ls, ok := n.loc.get(s.ID())
	if !ok {
		return // not opened yet: the open records the state when written
	}
	n.write.update(s.ID(), n.entry(s.ID(), ls), ls.s.State)
}

// Closed implements conn.SessionHook: the session leaves this node's
// table and its directory entry is queued for removal (or, if it was never
// written, never is).
func (n *Node) Closed(s *conn.Session, _ fsm.Reason) {
	l := &n.loc
	l.mu.Lock()
	ls, ok := l.byID[s.ID()]
	if !ok {
		l.early[s.ID()] = struct{}{}
		l.mu.Unlock()
		return
	}
	delete(l.byID, s.ID())
	if ls.key != "" {
		if m := l.byKey[ls.key]; m != nil {
			delete(m, s.ID())
			if len(m) == 0 {
				delete(l.byKey, ls.key)
			}
		}
	}
	l.mu.Unlock()
	n.write.close(s.ID(), dirKey(n.cfg.Node, ls.inc, s.ID()))
}

// sessionID is the cluster-wide id of local session id served by node's
// incarnation inc: <node>.<inc>/<n>, inc in base 36. The incarnation makes
// it unique across restarts: a restarted process numbers its sessions
// from 1 again, and without it a send addressed to a session of the old
// process would reach the new process's session of the same number. A
// fence (incarnation+1) changes it too.
func sessionID(node string, inc, id uint64) string {
	return node + "." + strconv.FormatUint(inc, 36) + "/" + strconv.FormatUint(id, 10)
}

// sessionRef is a parsed cluster-wide session id.
type sessionRef struct {
	node string
	inc  uint64 // the serving node's incarnation
	num  uint64 // the session's number on that node
}

// parseID parses a cluster-wide id <node>.<inc>/<n>.
func parseID(id string) (sessionRef, error) {
	head, num, ok := strings.Cut(id, "/")
	if !ok {
		return sessionRef{}, &badIDError{id}
	}
	node, inc, ok := strings.Cut(head, ".")
	if !ok || !nameRE.MatchString(node) {
		return sessionRef{}, &badIDError{id}
	}
	i, err := strconv.ParseUint(inc, 36, 64)
	if err != nil || i == 0 || strings.ToLower(inc) != inc {
		return sessionRef{}, &badIDError{id}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n == 0 {
		return sessionRef{}, &badIDError{id}
	}
	return sessionRef{node: node, inc: i, num: n}, nil
}

type badIDError struct{ id string }

func (e *badIDError) Error() string {
	return "cluster: session id " + strconv.Quote(e.id) + " is not <node>.<incarnation>/<n>"
}
func (e *badIDError) Is(target error) bool { return target == ErrBadID }

// dirKey is a session's key in the directory bucket.
func dirKey(node string, inc, id uint64) string {
	return node + "." + incString(inc) + "." + strconv.FormatUint(id, 10)
}

func incString(inc uint64) string { return strconv.FormatUint(inc, 10) }
