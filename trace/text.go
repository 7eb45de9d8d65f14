package trace

import (
	"bufio"
	"io"
	"strconv"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// AppendText appends r as one line of text (with its newline) to b and
// returns the extended buffer. The format is stable, so equal traces render
// to equal bytes:
//
//	1m30.25s client 3 transition Connecting->BackingOff trigger=dial_failed attempt=2 delay=0s
func (r *Record) AppendText(b []byte) []byte {
	b = appendDur(b, r.At)
	switch m, id := r.Subject(); {
	case m != 0:
		b = append(b, ' ')
		b = append(b, m.String()...)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(id), 10)
	case r.Kind == ServerDown || r.Kind == ServerUp:
		b = append(b, " server "...)
		b = strconv.AppendUint(b, uint64(r.Server), 10)
	default:
		b = append(b, " world"...)
	}
	b = append(b, ' ')
	b = append(b, r.Kind.String()...)
	switch r.Kind {
	case Transition:
		b = append(b, ' ')
		b = append(b, r.From.String()...)
		b = append(b, "->"...)
		b = append(b, r.To.String()...)
		b = append(b, " trigger="...)
		b = append(b, r.Trigger.String()...)
		if r.Reason != 0 {
			b = append(b, " reason="...)
			b = append(b, r.Reason.String()...)
		}
		if r.Attempt != 0 {
			b = appendInt(b, " attempt=", int64(r.Attempt))
		}
		if r.Machine == fsm.MachinePeer {
			b = appendInt(b, " node=", int64(r.Peer))
		}
		if r.Inc != 0 {
			b = appendUint(b, " inc=", r.Inc)
		}
		if r.To == fsm.BackingOff || r.To == fsm.Rejected {
			b = append(b, " delay="...)
			b = appendDur(b, r.Delay)
		}
	case Down:
		if r.Code != 0 {
			b = appendInt(b, " code=", int64(r.Code))
		}
	case Dial:
		b = appendInt(b, " attempt=", int64(r.Attempt))
		b = appendInt(b, " server=", int64(r.Server))
	case Up:
		if r.Peer == NoID {
			b = append(b, " session=none"...)
		} else {
			b = appendInt(b, " session=", int64(r.Peer))
		}
	case Register:
		b = appendInt(b, " client=", int64(r.Peer))
		b = appendInt(b, " server=", int64(r.Server))
	case PeerDead:
		b = append(b, " last_sign="...)
		b = appendDur(b, r.LastSign)
	case Degraded:
		if r.Delay != 0 {
			b = append(b, " delay="...)
			b = appendDur(b, r.Delay)
		}
	case Settled:
		b = appendInt(b, " live_peers=", int64(r.Peer))
		b = appendInt(b, " registered=", int64(r.ID))
	case Declared:
		b = appendInt(b, " node=", int64(r.Peer))
		b = appendUint(b, " inc=", r.Inc)
	case NodeStart, LeaseWrite, LeaseEnd:
		b = appendUint(b, " inc=", r.Inc)
	case DirAdd, DirDel:
		b = appendInt(b, " session=", int64(r.Peer))
	case XSend:
		b = appendInt(b, " from=", int64(r.Server))
		b = appendInt(b, " owner=", int64(r.Peer))
	case XAnswer:
		b = appendInt(b, " from=", int64(r.Server))
		b = append(b, " result="...)
		if int(r.Attempt) > 0 && int(r.Attempt) < len(resultNames) {
			b = append(b, resultNames[r.Attempt]...)
		} else {
			b = strconv.AppendInt(b, int64(r.Attempt), 10)
		}
		b = append(b, " after="...)
		b = appendDur(b, r.Delay)
	}
	return append(b, '\n')
}

// String returns r as AppendText renders it, without the newline.
func (r Record) String() string {
	b := r.AppendText(nil)
	return string(b[:len(b)-1])
}

func appendUint(b []byte, key string, v uint64) []byte {
	b = append(b, key...)
	return strconv.AppendUint(b, v, 10)
}

func appendInt(b []byte, key string, v int64) []byte {
	b = append(b, key...)
	return strconv.AppendInt(b, v, 10)
}

// appendDur renders d like time.Duration.String, which is exact and stable.
func appendDur(b []byte, d time.Duration) []byte { return append(b, d.String()...) }

// Write renders recs to w, one line each.
func Write(w io.Writer, recs []Record) error {
	bw := bufio.NewWriter(w)
	var line []byte
	for i := range recs {
		line = recs[i].AppendText(line[:0])
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// Excerpt returns the records that tell the story of one subject up to and
// including record index upto, keeping the last max of them: the subject's
// own records, those of its counterpart (a session's client, a client's
// sessions) and the server and world records in that span. It is what a
// failing property prints: the shortest part of the trace that shows the
// violation. For a node it is the cluster's story: every node's and
// peer view's transitions, deaths, incarnations and declarations (not the
// routine lease writes and directory entries).
func Excerpt(recs []Record, m fsm.Machine, id uint32, upto, max int) []Record {
	if upto >= len(recs) {
		upto = len(recs) - 1
	}
	client, sessions := NoID, map[uint32]bool{}
	switch m {
	case fsm.MachineClient:
		client = id
	case fsm.MachineSession:
		sessions[id] = true
	}
	for i := 0; i <= upto; i++ { // who belongs to whom, from the registry
		r := &recs[i]
		if r.Kind != Register {
			continue
		}
		if m == fsm.MachineSession && r.ID == id {
			client = r.Peer
		}
		if m == fsm.MachineClient && r.Peer == id {
			sessions[r.ID] = true
		}
	}
	var out []Record
	for i := 0; i <= upto; i++ {
		r := &recs[i]
		rm, rid := r.Subject()
		cluster := m == fsm.MachineNode && (rm == fsm.MachineNode || rm == fsm.MachinePeer) &&
			r.Kind != LeaseWrite && r.Kind != DirAdd && r.Kind != DirDel
		if rm == 0 || cluster || (rm == fsm.MachineClient && rid == client) || (rm == fsm.MachineSession && sessions[rid]) {
			out = append(out, *r)
		}
	}
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return out
}
