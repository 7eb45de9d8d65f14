package audit

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/trace"
)

// The log holds only transitions; the records invariant judges are rebuilt
// from them as follows (each rule says which fact of the log proves the
// record):
//
//   - client into Connecting: Dial, numbered by the attempt the last
//     BackingOff line scheduled (1 at a start);
//   - client from Connecting or Connected into BackingOff, Rejected or
//     GaveUp: Down, before its Transition, with the HTTP status or close
//     code its error names (the failure table classes it by that);
//   - client into Connected: Up; a reconnect_now line: Nudge, before it;
//   - a client's first line, or a start from Idle: ClientStart; the end of
//     its source: ClientExit (nothing is known of it after its log ends);
//   - session from Handshaking: Register, a new session even if the id was
//     seen before (a restarted server counts from 1 again); into Reaped:
//     Unregister, after its Transition;
//   - session reaped for silence (pong_timeout) whose silent_ms reaches
//     PingInterval+PongTimeout: PeerDead with LastSign = time - silent_ms.
//     The log proves the peer silent for the whole window; a shorter
//     silence proves nothing, and (d) calls the reap unjust;
//   - session reaped for a read error the transport reported (a reset or
//     an EOF, not a read deadline's "i/o timeout"): PeerDead, LastSign as
//     above; a read deadline is held to the silence rule;
//   - session reaped for a failed send: SendFailed; for a full queue:
//     QueueFull; a protocol_error line: BadRecv (one bad message each); a
//     recovered line: Recv (a good one);
//   - a closing line's idle_ms: a Send at time - idle_ms, the session's
//     last application activity (what (c)'s idle bound counts from);
//     a session still open when its source ends gets one there, as its
//     activity since its last line is unknown.

// origin says where a record came from: its line, or nil for one the
// builder made at a source's end.
type origin struct {
	line *logLine
	// instance is the audit's name for the client or session.
	instance string
}

// stamped is a record with its absolute time, before the trace's epoch
// is known.
type stamped struct {
	at       time.Time
	lastSign time.Time // PeerDead's
	rec      trace.Record
	org      origin
}

// builder turns lines into records. Instances are numbered densely from 0
// in the order first seen, as trace.Record wants.
type builder struct {
	policy fsm.Backoff
	live   fsm.Liveness // defaults applied
	recs   []stamped

	clients  map[key]*clientLog
	sessions map[key]*sessionLog
	nClients uint32
	nSess    uint32
	servers  map[string]uint32
	names    map[fsm.Machine][]string // dense id → the instance's name
}

// key names an instance within its source: ids are only unique there.
type key struct{ source, id string }

type clientLog struct {
	id         uint32
	known      bool // the attempt numbers are known (a start or a BackingOff line seen)
	next       int32
	prev       time.Duration // the delay recorded for the failure before, in this run of failures
	state      fsm.State
	lastSource string
}

type sessionLog struct {
	id    uint32
	state fsm.State
}

func newBuilder(b fsm.Backoff, l fsm.Liveness) *builder {
	return &builder{policy: b.WithDefaults(), live: l.WithDefaults(), clients: map[key]*clientLog{}, sessions: map[key]*sessionLog{},
		servers: map[string]uint32{}, names: map[fsm.Machine][]string{}}
}

func (b *builder) emit(at time.Time, r trace.Record, o origin) {
	b.recs = append(b.recs, stamped{at: at, rec: r, org: o})
}

// add turns one line into its records.
func (b *builder) add(l *logLine) {
	switch l.Machine {
	case fsm.MachineClient:
		b.client(l)
	case fsm.MachineSession:
		b.session(l)
	}
	// Node and peer lines (a cluster) carry no fact (a)-(e) judge.
}

func (b *builder) instanceName(l *logLine) string {
	return l.Source + " " + l.Machine.String() + " " + l.ID
}

func (b *builder) client(l *logLine) {
	k := key{l.Source, l.ID}
	c := b.clients[k]
	o := origin{line: l, instance: b.instanceName(l)}
	if c == nil {
		c = &clientLog{id: b.nClients}
		b.nClients++
		b.clients[k] = c
		b.names[fsm.MachineClient] = append(b.names[fsm.MachineClient], o.instance)
		b.emit(l.At, trace.Record{Kind: trace.ClientStart, ID: c.id}, o)
	} else if l.From == fsm.Idle {
		b.emit(l.At, trace.Record{Kind: trace.ClientStart, ID: c.id}, o)
	}
	if l.From == fsm.Idle {
		c.known, c.next = true, 1
	}
	c.state, c.lastSource = l.To, l.Source
	id := c.id
	if l.Trigger == fsm.ReconnectNow {
		b.emit(l.At, trace.Record{Kind: trace.Nudge, ID: id}, o) // the owner's request, before what it moved
	}
	switch l.To {
	case fsm.Connecting:
		if c.known {
			b.emit(l.At, trace.Record{Kind: trace.Dial, ID: id, Attempt: c.next}, o)
		}
	case fsm.Connected:
		b.emit(l.At, trace.Record{Kind: trace.Up, ID: id, Peer: trace.NoID}, o)
	case fsm.BackingOff, fsm.Rejected, fsm.GaveUp:
		if l.From == fsm.Connecting || l.From == fsm.Connected {
			b.emit(l.At, trace.Record{Kind: trace.Down, ID: id, Code: failureCode(l.Error), Delay: LoggedRetryAfter(l.Error)}, o)
		}
	}
	r := trace.Record{Kind: trace.Transition, Machine: fsm.MachineClient, ID: id, From: l.From, To: l.To,
		Trigger: l.Trigger, Reason: l.Reason, Attempt: int32(l.Attempt)}
	if l.To == fsm.BackingOff || l.To == fsm.Rejected {
		c.known, c.next = true, int32(l.Attempt)
		n := l.Attempt - 1
		if n <= 1 {
			c.prev = 0 // a run of failures begins: decorrelated jitter starts over
		}
		r.Delay = LoggedDelay(b.policy, n, time.Duration(l.DelayMS)*time.Millisecond, c.prev)
		c.prev = r.Delay
	}
	b.emit(l.At, r, o)
}

// Patterns of the failures the failure table classes, as conn's errors
// word them: a refused handshake's status (DialError) and a close frame's
// code (websocket.CloseError).
var (
	statusRE = regexp.MustCompile(`answered HTTP (\d{3}) `)
	closeRE  = regexp.MustCompile(`websocket: close (\d{4})`)
	// raRE finds the Retry-After a refused handshake's DialError names.
	raRE = regexp.MustCompile(`\(Retry-After ([0-9hmsµn.]+)\)`)
)

// LoggedRetryAfter returns the Retry-After a logged error names (conn's
// DialError writes "(Retry-After 3s)"), or zero: what a trace's Down
// record carries for invariant (n).
func LoggedRetryAfter(err string) time.Duration {
	if m := raRE.FindStringSubmatch(err); m != nil {
		if d, e := time.ParseDuration(m[1]); e == nil {
			return d
		}
	}
	return 0
}

// failureCode reads a Down's code from the error a line logged, as
// trace.Record.Code holds it: an HTTP status below 1000, a close code
// above; 0 for a network failure (or no error logged).
func failureCode(err string) uint16 {
	for _, re := range []*regexp.Regexp{statusRE, closeRE} {
		if m := re.FindStringSubmatch(err); m != nil {
			n, _ := strconv.Atoi(m[1])
			return uint16(n)
		}
	}
	return 0
}

// LoggedDelay is the backoff delay a client drew for failure n under b,
// the one before it having been prev, when its log carries it as whole
// milliseconds ms (delay_ms): the delay drawn lies in [ms, ms+1ms). It
// returns the value in that interval nearest the policy's range, the
// highest in range when several are (decorrelated jitter's next range
// grows with it): a decision off by less than the log's resolution is not
// called a violation, one off by more still is. Audit and conn's tests
// that judge a run from its log read delays with it.
func LoggedDelay(b fsm.Backoff, n int, ms, prev time.Duration) time.Duration {
	lo, hi := b.Earliest(n), b.LatestAfter(n, prev)
	top := ms + time.Millisecond - 1
	switch {
	case top < lo:
		return top
	case ms > hi:
		return ms
	}
	return max(min(top, hi), lo)
}

func (b *builder) session(l *logLine) {
	k := key{l.Source, l.ID}
	s := b.sessions[k]
	o := origin{line: l, instance: b.instanceName(l)}
	if s == nil || l.From == fsm.Handshaking {
		s = &sessionLog{id: b.nSess}
		b.nSess++
		b.sessions[k] = s
		b.names[fsm.MachineSession] = append(b.names[fsm.MachineSession], o.instance)
		b.emit(l.At, trace.Record{Kind: trace.Register, ID: s.id, Peer: trace.NoID, Server: b.server(l.Source)}, o)
	}
	s.state = l.To
	id := s.id
	if l.HasSilence {
		silent := time.Duration(l.SilentMS) * time.Millisecond
		if b.deadBy(l, silent) {
			b.emit(l.At, trace.Record{Kind: trace.PeerDead, ID: id}, o)
			b.recs[len(b.recs)-1].lastSign = l.At.Add(-silent) // in the trace's terms once its epoch is known
		}
		if idle := time.Duration(l.IdleMS) * time.Millisecond; idle > 0 {
			b.emit(l.At.Add(-idle), trace.Record{Kind: trace.Send, ID: id}, o)
		}
	}
	switch l.Trigger {
	case fsm.SendError:
		b.emit(l.At, trace.Record{Kind: trace.SendFailed, ID: id}, o)
	case fsm.ProtocolError:
		b.emit(l.At, trace.Record{Kind: trace.BadRecv, ID: id}, o)
	case fsm.Recovered:
		b.emit(l.At, trace.Record{Kind: trace.Recv, ID: id}, o)
	case fsm.SlowConsumer:
		b.emit(l.At, trace.Record{Kind: trace.QueueFull, ID: id}, o)
	}
	b.emit(l.At, trace.Record{Kind: trace.Transition, Machine: fsm.MachineSession, ID: id, From: l.From, To: l.To,
		Trigger: l.Trigger, Reason: l.Reason}, o)
	if l.To == fsm.Reaped {
		b.emit(l.At, trace.Record{Kind: trace.Unregister, ID: id}, o)
	}
}

// deadBy reports whether a session's closing line proves its peer dead: a
// read error the transport reported (a reset, an EOF: not a read
// deadline's timeout, which is only the server's own verdict of silence),
// or a silence of the whole liveness window. The log's milliseconds are
// whole, so the silence may be up to 1ms longer than logged.
func (b *builder) deadBy(l *logLine, silent time.Duration) bool {
	if l.Trigger == fsm.ReadError && !strings.Contains(l.Error, "timeout") {
		return true
	}
	return (l.Trigger == fsm.PongTimeout || l.Trigger == fsm.ReadError) &&
		silent+time.Millisecond > b.live.PingInterval+b.live.PongTimeout
}

func (b *builder) server(source string) uint32 {
	id, ok := b.servers[source]
	if !ok {
		id = uint32(len(b.servers))
		b.servers[source] = id
	}
	return id
}

// endSource closes what is known of source's instances at its last line's
// time end: its clients exit (their log ends), its open sessions get an
// activity there (see the rules above).
func (b *builder) endSource(source string, end time.Time) {
	for k, c := range b.clients {
		if k.source == source {
			b.emit(end, trace.Record{Kind: trace.ClientExit, ID: c.id}, origin{instance: b.names[fsm.MachineClient][c.id]})
		}
	}
	for k, s := range b.sessions {
		if k.source == source && (s.state == fsm.Alive || s.state == fsm.Suspect) {
			b.emit(end, trace.Record{Kind: trace.Send, ID: s.id}, origin{instance: b.names[fsm.MachineSession][s.id]})
		}
	}
}

// records returns the records in time order (stable: one line's records
// keep their order), their times measured from the earliest, and where
// each came from.
func (b *builder) records() (epoch time.Time, recs []trace.Record, orgs []origin) {
	slices.SortStableFunc(b.recs, func(x, y stamped) int { return x.at.Compare(y.at) })
	if len(b.recs) > 0 {
		epoch = b.recs[0].at
	}
	recs = make([]trace.Record, len(b.recs))
	orgs = make([]origin, len(b.recs))
	for i := range b.recs {
		r := b.recs[i].rec
		r.At = b.recs[i].at.Sub(epoch)
		if r.Kind == trace.PeerDead {
			r.LastSign = b.recs[i].lastSign.Sub(epoch)
		}
		recs[i], orgs[i] = r, b.recs[i].org
	}
	return epoch, recs, orgs
}
