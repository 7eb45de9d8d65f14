package trace

import (
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// The session facts name themselves, belong to their session, and a
// Degraded record shows its transit time when it has one.
func TestFacts(t *testing.T) {
	for k, want := range map[Kind]string{Recv: "recv", BadRecv: "bad_recv", QueueFull: "queue_full", Kind(40): "Kind(40)"} {
		if k.String() != want {
			t.Errorf("Kind %d: %q, want %q", k, k, want)
		}
	}
	for _, k := range []Kind{Recv, BadRecv, QueueFull, Degraded} {
		r := Record{Kind: k, ID: 7}
		if m, id := r.Subject(); m != fsm.MachineSession || id != 7 {
			t.Errorf("%s: subject %v %d", k, m, id)
		}
	}
	for _, tc := range []struct {
		r    Record
		want string
	}{
		{Record{At: time.Second, Kind: Degraded, ID: 2, Delay: 600 * time.Millisecond}, "1s session 2 degraded delay=600ms"},
		{Record{At: time.Second, Kind: Degraded, ID: 2}, "1s session 2 degraded"},
		{Record{At: time.Second, Kind: BadRecv, ID: 2}, "1s session 2 bad_recv"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}
