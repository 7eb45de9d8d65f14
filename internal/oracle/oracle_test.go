package oracle

import (
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

func TestAttemptsWithin(t *testing.T) {
	for _, tc := range []struct {
		name         string
		b            fsm.Backoff
		d            time.Duration
		fewest, most int
	}{
		// 0, 1, 3, 7, 15 s: the fifth attempt starts at 15 s.
		{"no jitter", fsm.Backoff{Initial: time.Second, Multiplier: 2, Jitter: fsm.JitterNone}, 15 * time.Second, 5, 5},
		{"just short", fsm.Backoff{Initial: time.Second, Multiplier: 2, Jitter: fsm.JitterNone}, 15*time.Second - 1, 4, 4},
		// first retry immediate: 0, 0, 1, 3 s.
		{"first immediate", fsm.Backoff{Initial: time.Second, Multiplier: 2, Jitter: fsm.JitterNone, FirstImmediate: true}, 3 * time.Second, 4, 4},
		// ±20 %: latest 1.2, 2.4 s; earliest 0.8, 1.6, 3.2 s.
		{"symmetric", fsm.Backoff{Initial: time.Second, Multiplier: 2}, 2500 * time.Millisecond, 2, 3},
	} {
		f, m := AttemptsWithin(tc.b, tc.d)
		if f != tc.fewest || m != tc.most {
			t.Errorf("%s: AttemptsWithin = %d..%d, want %d..%d", tc.name, f, m, tc.fewest, tc.most)
		}
	}
}
