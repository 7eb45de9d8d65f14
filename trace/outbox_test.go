package trace

import (
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// The outbox facts belong to their client and render the message's
// number, size and drop reason.
func TestOutboxRecords(t *testing.T) {
	for _, tc := range []struct {
		r    Record
		want string
	}{
		{Record{At: time.Second, Kind: OutboxQueued, ID: 3, Inc: 7, Attempt: 120}, "1s client 3 outbox_queued msg=7 size=120"},
		{Record{At: time.Second, Kind: OutboxWritten, ID: 3, Inc: 7}, "1s client 3 outbox_written msg=7"},
		{Record{At: time.Second, Kind: OutboxDropped, ID: 3, Inc: 7, Code: uint16(fsm.DropExpired)}, "1s client 3 outbox_dropped msg=7 reason=expired"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
		if m, id := tc.r.Subject(); m != fsm.MachineClient || id != 3 {
			t.Errorf("%s: subject %v %d", tc.r.Kind, m, id)
		}
	}
}
