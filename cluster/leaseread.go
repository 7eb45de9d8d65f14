package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// leaseReader reads leases for one re-check. A KV Get is a direct get:
// every replica of the lease stream answers it through one queue group,
// and a request from a client goes to a member picked at random, local or
// routed. A replica whose process is stopped (SIGSTOP, a long GC pause)
// keeps its route open and answers nothing, so a third of the gets of a
// three-replica bucket would wait out the whole re-check and fail it
// (measured: the stopped node counted dead up to 6.6 s after the stop, the
// bound being 5 s). So a direct get waits at most try; once one timed out,
// the rest of the re-check reads through the stream leader (a non-direct
// get), which the stopped replica does not answer for.
type leaseReader struct {
	e         *engine
	try       time.Duration
	viaLeader bool // a direct get timed out: read through the leader
	timeouts  int  // direct gets that timed out
}

// newLeaseReader returns the reader of one re-check under lease l: a
// direct get waits a quarter of the heartbeat or of the slack, whichever
// is shorter, so a silent replica costs the verdict at most a quarter of
// the Slack that LatestDead allows for it.
func newLeaseReader(e *engine, l fsm.Lease) *leaseReader {
	return &leaseReader{e: e, try: min(l.Heartbeat, l.Slack) / 4}
}

// readLeases reads the leases of names; a missing one is absent from the
// result. Any other error fails the whole re-check: nobody is counted dead
// on an engine that did not answer. Each is a point read of the key: a
// listing by consumer can miss a key renewed while it runs, and so count
// a live node dead.
func (r *leaseReader) readLeases(ctx context.Context, names []string) (map[string]leaseSeen, error) {
	out := make(map[string]leaseSeen, len(names))
	for _, k := range names {
		ls, ok, err := r.read(ctx, k)
		if err != nil {
			return nil, err
		}
		if ok {
			out[k] = ls
		}
	}
	return out, nil
}

// read reads key's lease: ok false when it is missing or deleted.
func (r *leaseReader) read(ctx context.Context, key string) (leaseSeen, bool, error) {
	if !r.viaLeader {
		tctx, cancel := context.WithTimeout(ctx, r.try)
		en, err := r.e.leases.Get(tctx, key)
		timedOut := tctx.Err() != nil && ctx.Err() == nil
		cancel()
		if !timedOut || err == nil {
			if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
				return leaseSeen{}, false, nil
			}
			if err != nil {
				return leaseSeen{}, false, err
			}
			return decodeSeen(en.Value(), en.Created())
		}
		r.viaLeader = true
		r.timeouts++
	}
	return r.leaderGet(ctx, key)
}

func decodeSeen(val []byte, created time.Time) (leaseSeen, bool, error) {
	v, err := decodeLease(val)
	if err != nil {
		return leaseSeen{}, false, err
	}
	return leaseSeen{inc: v.Incarnation, renewed: created}, true, nil
}

// msgGetResponse is the JetStream API's answer to a (non-direct) message
// get; nats.go's jetstream package reads KV keys only by direct get when
// the stream allows it.
type msgGetResponse struct {
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
	Message *struct {
		Header []byte    `json:"hdrs"`
		Data   []byte    `json:"data"`
		Time   time.Time `json:"time"`
	} `json:"message"`
}

// errCodeNoMessage is JetStream's "no message found" (JSNoMessageFoundErr).
const errCodeNoMessage = 10037

// leaderGet reads key's last message through the lease stream's leader.
func (r *leaseReader) leaderGet(ctx context.Context, key string) (leaseSeen, bool, error) {
	bucket := r.e.leases.Bucket()
	req, _ := json.Marshal(map[string]string{"last_by_subj": "$KV." + bucket + "." + key})
	// The node's JetStream uses the default API prefix (jetstream.New).
	m, err := r.e.nc.RequestWithContext(ctx, jetstream.DefaultAPIPrefix+"STREAM.MSG.GET.KV_"+bucket, req)
	if err != nil {
		return leaseSeen{}, false, fmt.Errorf("read lease %s through the stream leader: %w", key, err)
	}
	var resp msgGetResponse
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return leaseSeen{}, false, fmt.Errorf("read lease %s through the stream leader: %w", key, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == errCodeNoMessage:
		return leaseSeen{}, false, nil
	case resp.Error != nil:
		return leaseSeen{}, false, fmt.Errorf("read lease %s through the stream leader: %s (%d)", key, resp.Error.Description, resp.Error.ErrCode)
	case resp.Message == nil:
		return leaseSeen{}, false, fmt.Errorf("read lease %s through the stream leader: empty answer", key)
	}
	if len(resp.Message.Header) > 0 {
		h, err := nats.DecodeHeadersMsg(resp.Message.Header)
		if err != nil {
			return leaseSeen{}, false, fmt.Errorf("read lease %s through the stream leader: %w", key, err)
		}
		// A delete or purge (KV-Operation) or an expiry marker: the
		// lease is gone, as a direct get's ErrKeyDeleted says.
		if h.Get("KV-Operation") != "" || h.Get(jetstream.MarkerReasonHeader) != "" {
			return leaseSeen{}, false, nil
		}
	}
	return decodeSeen(resp.Message.Data, resp.Message.Time)
}
