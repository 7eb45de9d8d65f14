package cluster

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/nats-io/nats.go/jetstream"
)

// Entry is one live session in the cluster directory.
type Entry struct {
	ID          string    `json:"id"`    // <node>.<inc>/<n> (see SendTo)
	Node        string    `json:"node"`  // the node serving it
	Key         string    `json:"key"`   // set at authorization (Config.KeyOf), "" if none
	State       string    `json:"state"` // fsm session state (Alive, Suspect, Closing) as last written by its node
	Since       time.Time `json:"since"` // when it opened
	Incarnation uint64    `json:"inc"`   // the serving node's lease incarnation
}

// ChangeKind says what a Change reports.
type ChangeKind uint8

const (
	// Opened: a session was recorded.
	Opened ChangeKind = iota + 1
	// Closed: a session was removed, one by one or with all of its node's
	// when the node was counted dead or left (Reason node_dead).
	Closed
)

// String returns "opened" or "closed".
func (k ChangeKind) String() string {
	if k == Opened {
		return "opened"
	}
	return "closed"
}

// Change is one event of Watch.
type Change struct {
	Kind   ChangeKind // Opened or Closed
	Entry  Entry      // the session, as the directory holds (or last held) it
	Reason string     // Closed: "" for a session's own close, "node_dead" when its node died or left
}

// watchBuffer is how many changes a watcher may fall behind by before it
// is cut off (its channel closed).
const watchBuffer = 4096

// directory is a node's replica of the cluster directory, fed by the
// bucket's watch on the node's loop goroutine and read by any.
type directory struct {
	self string
	mu   sync.RWMutex
	m    map[string]Entry // directory key → entry
	subs map[chan Change]struct{}
}

func newDirectory(self string) *directory {
	return &directory{self: self, m: map[string]Entry{}, subs: map[chan Change]struct{}{}}
}

// apply takes one change from the bucket's watch. An entry of an
// incarnation already counted dead is ignored: a late write must not bring
// a ghost back.
func (d *directory) apply(en jetstream.KeyValueEntry, deadInc func(string) uint64) {
	key := en.Key()
	d.mu.Lock()
	defer d.mu.Unlock()
	if en.Operation() != jetstream.KeyValuePut {
		if e, ok := d.m[key]; ok {
			delete(d.m, key)
			d.notifyLocked(Change{Kind: Closed, Entry: e})
		}
		return
	}
	var e Entry
	if err := json.Unmarshal(en.Value(), &e); err != nil {
		return
	}
	if e.Incarnation <= deadInc(e.Node) {
		return
	}
	if _, ok := d.m[key]; ok {
		d.m[key] = e
		return
	}
	d.m[key] = e
	d.notifyLocked(Change{Kind: Opened, Entry: e})
}

// declareDead drops every entry of node's incarnations up to inc and
// reports each as closed; it returns how many it dropped.
func (d *directory) declareDead(node string, inc uint64, reason fsm.Reason) int {
	prefix := node + "."
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for k, e := range d.m {
		if strings.HasPrefix(k, prefix) && e.Incarnation <= inc {
			delete(d.m, k)
			d.notifyLocked(Change{Kind: Closed, Entry: e, Reason: reason.String()})
			n++
		}
	}
	return n
}

// notifyLocked hands c to every watcher; one that is watchBuffer behind
// is cut off rather than allowed to stall the replica.
func (d *directory) notifyLocked(c Change) {
	for ch := range d.subs {
		select {
		case ch <- c:
		default:
			delete(d.subs, ch)
			close(ch)
		}
	}
}

// list returns the entries, sorted by node, incarnation and local id.
func (d *directory) list() []Entry {
	d.mu.RLock()
	out := make([]Entry, 0, len(d.m))
	for _, e := range d.m {
		out = append(out, e)
	}
	d.mu.RUnlock()
	slices.SortFunc(out, func(a, b Entry) int {
		if c := cmp.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Incarnation, b.Incarnation); c != 0 {
			return c
		}
		return cmp.Compare(localNum(a.ID), localNum(b.ID))
	})
	return out
}

func localNum(id string) uint64 {
	ref, _ := parseID(id)
	return ref.num
}

// nodesWithKey returns the nodes holding a session with key.
func (d *directory) nodesWithKey(key string) []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	seen := map[string]bool{}
	var out []string
	for _, e := range d.m {
		if e.Key == key && !seen[e.Node] {
			seen[e.Node] = true
			out = append(out, e.Node)
		}
	}
	return out
}

// counts returns the number of entries per node.
func (d *directory) counts() map[string]int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := map[string]int{}
	for _, e := range d.m {
		out[e.Node]++
	}
	return out
}

// stateCounts returns the number of entries per node and state.
func (d *directory) stateCounts() map[string]map[string]int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := map[string]map[string]int{}
	for _, e := range d.m {
		m := out[e.Node]
		if m == nil {
			m = map[string]int{}
			out[e.Node] = m
		}
		m[e.State]++
	}
	return out
}

// watch registers a watcher; cancel removes it.
func (d *directory) watch() (ch chan Change, cancel func()) {
	ch = make(chan Change, watchBuffer)
	d.mu.Lock()
	d.subs[ch] = struct{}{}
	d.mu.Unlock()
	return ch, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if _, ok := d.subs[ch]; ok {
			delete(d.subs, ch)
			close(ch)
		}
	}
}

// closeAll ends every watch (Run returned).
func (d *directory) closeAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for ch := range d.subs {
		delete(d.subs, ch)
		close(ch)
	}
}
