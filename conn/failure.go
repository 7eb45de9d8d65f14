package conn

import (
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/fsm"
)

// failureOf reads what the failure table needs from the error a failed
// attempt or a dropped link reported: the HTTP status of a refused
// handshake (DialError.Status) or the close code the server sent
// (*websocket.CloseError; 1006, no close frame, counts as none). Anything
// else is a network failure, the zero fsm.Failure.
func failureOf(err error) fsm.Failure {
	var de *DialError
	if errors.As(err, &de) && de.Status != 0 {
		return fsm.Failure{Status: de.Status, RetryAfter: de.RetryAfter}
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure && ce.Code != websocket.CloseNoStatusReceived {
		return fsm.Failure{Code: ce.Code}
	}
	return fsm.Failure{}
}

// ReconnectNow asks a client that is waiting to retry after a transient
// failure to dial now (the network came back, say). The attempt starts at
// once if Backoff.ReconnectFloor has passed since the latest attempt
// started, else at that instant: a caller in a loop gets at most one
// attempt per floor. It does nothing in other states: a Rejected client
// keeps the slow schedule the server asked for, a Connecting or Connected
// one is already there. It never blocks; requests made faster than Run
// takes them are coalesced.
func (c *Client) ReconnectNow() { c.request(fsm.EvReconnectNow) }

// ResetBackoff forgets the run of failures: a Connected client's next drop
// is a first failure again (FirstImmediate applies), and a waiting
// client's retry is drawn again as after a first failure, no sooner than
// Backoff.ReconnectFloor after its latest attempt. Rejections (the slow
// schedule) are not reset: only a link that comes up ends them. It never
// blocks.
func (c *Client) ResetBackoff() { c.request(fsm.EvResetBackoff) }

func (c *Client) request(ev fsm.Event) {
	select {
	case c.reqs <- ev:
	default: // Run has two unread requests: this one adds nothing a floor would not cut
	}
}

// retryAfterOf reads a refused handshake's Retry-After header as a wait
// from now (fsm.ParseRetryAfter), or says why it ignores it: a value it
// cannot read, or none at all (nil error, zero wait).
func retryAfterOf(resp *http.Response, now time.Time) (time.Duration, error) {
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0, nil
	}
	ra, err := fsm.ParseRetryAfter(v, now)
	if err != nil {
		return 0, err
	}
	return ra, nil
}
