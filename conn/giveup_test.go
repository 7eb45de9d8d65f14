package conn

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// TestClientGivesUpAfterOffline: with Backoff.GiveUpAfter and no attempt
// limit, a client that never gets a link gives up at the first failure
// past the deadline, and says so.
func TestClientGivesUpAfterOffline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "ws://" + ln.Addr().String() + "/"
	_ = ln.Close() // refused from here on
	b := fastBackoff()
	b.GiveUpAfter = 300 * time.Millisecond
	c, _, _ := newTestClient(t, ClientConfig{URL: url, Backoff: b})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = c.Run(ctx)
	var gu *GaveUpError
	if !errors.As(err, &gu) || !errors.Is(err, ErrGaveUp) {
		t.Fatalf("Run = %v, want a GaveUpError", err)
	}
	// The deadline is judged at failures: the give-up comes at the first
	// one at or past it, at most Max later (refused dials fail at once).
	eb := b.WithDefaults()
	if gu.Cause != fsm.GiveUpOffline || gu.Offline < b.GiveUpAfter || gu.Offline > b.GiveUpAfter+eb.Max+50*time.Millisecond {
		t.Errorf("cause %q after %s offline; want %q within [%s, %s]", gu.Cause, gu.Offline, fsm.GiveUpOffline,
			b.GiveUpAfter, b.GiveUpAfter+eb.Max+50*time.Millisecond)
	}
	if st := c.Stats(); st.State != fsm.GaveUp {
		t.Errorf("state %s, want GaveUp", st.State)
	}
}
