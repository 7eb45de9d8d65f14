package sim

import (
	"math"
	"time"

	"github.com/lifeline-go/lifeline/fsm"

	"github.com/lifeline-go/lifeline/trace"
)

// frame is what travels on a link.
type frame uint8

const (
	fHello       frame = iota + 1 // client → server: TCP connect plus upgrade request
	fUpgraded                     // server → client: 101 Switching Protocols
	fRefused                      // → client: RST to the SYN
	fNotWS                        // → client: an HTTP answer that is not an upgrade
	fHTTPError                    // → client: 401/403 before the upgrade
	fAcceptClose                  // → client: 101, then the link closed at once
	fDNSFail                      // → client: the name did not resolve
	fPing
	fPong
	fMsg      // an application message
	fClose    // a close frame
	fCloseAck // the answer to a close frame
	fFIN      // the transport closed (EOF at the other end)
	fRST      // → the writer: the middlebox reset the link
	fBad      // client → server: an application message that does not decode
)

const noLink = int32(-1)

// link is one connection attempt and, if it came up, the connection: both
// ends' view of it and the server's session.
type link struct {
	sess      *fsm.Session
	client    uint32
	server    uint16
	c2s, s2c  int64 // last scheduled arrival each way: TCP delivers in order
	timer     timer // the session's
	eventGen  uint32
	cEventGen uint32 // the client's application messages
	lastSign  int64  // when the dead peer's last frame reached the server (-1: peer alive), for reap latency

	clientUp      bool // the client holds it as its current link (dialing or up)
	serverOpen    bool // the server has a session on it that is not yet reaped
	registered    bool
	blackholed    bool
	reset         bool
	peerDead      bool
	sendsAfterEnd uint8  // BugSendAfterClose: writes made after the session closed
	code          uint16 // the HTTP status (Auth, a rate limit) or close code the server answered with
	retryAfter    uint16 // the Retry-After of a rate-limited handshake's 503, whole seconds
}

// linkTable stores links in fixed-size chunks: adding one never copies
// the others (a 10 000-client hour opens over 100 000 links), and a
// pointer to a link stays valid for the whole run.
type linkTable struct {
	chunks [][]link
	n      int
}

const linkChunk = 4096

func (t *linkTable) at(i uint32) *link { return &t.chunks[i/linkChunk][i%linkChunk] }

func (t *linkTable) len() int { return t.n }

func (t *linkTable) add(l link) uint32 {
	if t.n%linkChunk == 0 {
		t.chunks = append(t.chunks, make([]link, linkChunk))
	}
	i := uint32(t.n)
	t.chunks[t.n/linkChunk][t.n%linkChunk] = l
	t.n++
	return i
}

// sample draws a one-way delay from l.
func (w *world) sample(l Latency) int64 {
	d := int64(l.Base)
	if l.Jitter > 0 {
		switch l.Dist {
		case Exponential:
			d += int64(math.Min(w.rng.ExpFloat64(), 10) * float64(l.Jitter))
		default:
			d += int64(w.rng.Float64() * float64(l.Jitter))
		}
	}
	return d
}

// pathFaults returns what the open faults do to frames between client c
// and server s now: the latency in force, the loss rate, and when a
// partition between them heals (0 if none).
func (w *world) pathFaults(c int, s int) (lat Latency, loss float64, heal int64) {
	lat = w.sc.Latency
	for _, i := range w.active {
		f := &w.faults[i]
		if !f.Clients.has(c) || !f.hasServer(s) {
			continue
		}
		switch f.Kind {
		case LatencySpike:
			lat = f.Latency
		case Loss:
			loss = max(loss, f.Rate)
		case Partition:
			heal = max(heal, int64(w.faultEnd(f)))
		}
	}
	return lat, loss, heal
}

// transmit sends fr on link l from one end at sendAt: toServer says which
// way. Blackholed links drop it; reset links answer the writer with RST;
// partitions hold it until they heal; loss delays it by retransmissions.
func (w *world) transmit(li uint32, toServer bool, fr frame, sendAt int64) {
	l := w.links.at(li)
	if l.blackholed {
		return
	}
	lat, loss, heal := w.pathFaults(int(l.client), int(l.server))
	if l.reset && fr != fHello {
		// The middlebox answers the segment with RST, one round trip later.
		rtt := w.sample(lat) + w.sample(lat)
		kind := evToServer // a frame the server wrote is answered to the server
		if toServer {
			kind = evToClient
		}
		w.q.push(event{at: sendAt + rtt, kind: kind, id: li, arg: fRST})
		return
	}
	d := w.sample(lat)
	held := false
	if heal > 0 && heal > sendAt {
		d += heal - sendAt
		held = true
	}
	for rto := int64(200e6); loss > 0 && w.rng.Float64() < loss && rto < 60e9; rto *= 2 {
		d += rto
	}
	arrive := sendAt + d
	kind := evToClient
	if toServer {
		kind = evToServer
		arrive = max(arrive, l.c2s)
		l.c2s = arrive
	} else {
		arrive = max(arrive, l.s2c)
		l.s2c = arrive
	}
	if (held || arrive-sendAt >= w.halfPong) && l.sess != nil {
		// The transit time lets each end judge it by its own pong
		// timeout; a frame held by a partition excuses both (zero).
		r := trace.Record{Kind: trace.Degraded, ID: li, Delay: time.Duration(arrive - sendAt)}
		if held {
			r.Delay = 0
		}
		w.emit(r)
	}
	w.q.push(event{at: arrive, kind: kind, id: li, arg: fr})
}
