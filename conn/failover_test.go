package conn

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// failedURLs returns the endpoint of each failed attempt, in order: the
// DialError's URL, or, for observations read back from the log (where the
// error is its text), the one of urls whose host:port the text names.
func failedURLs(obs []Observation, urls []string) []string {
	var out []string
	for _, o := range transitions(obs, fsm.BackingOff) {
		var de *DialError
		if errors.As(o.Err, &de) {
			out = append(out, de.URL)
			continue
		}
		for _, u := range urls {
			if o.Err != nil && strings.Contains(o.Err.Error(), strings.TrimSuffix(strings.TrimPrefix(u, "ws://"), "/")) {
				out = append(out, u)
				break
			}
		}
	}
	return out
}

// TestClientFailoverRotatesWithUnchangedWaits: with three dead endpoints
// each attempt goes to the next one, wrapping around, and the retries keep
// exactly the single-URL policy: the attempt count in the window lies in
// the policy's range and no retry starts before its lower bound.
func TestClientFailoverRotatesWithUnchangedWaits(t *testing.T) {
	urls := []string{refusedURL(t), refusedURL(t), refusedURL(t)}
	// The policy's promises, exactly as with one URL.
	obs, _, _ := refusedWindow(t, ClientConfig{URL: urls[0], URLs: urls[1:]})
	got := failedURLs(obs, urls)
	if len(got) < 4 {
		t.Fatalf("only %d failed attempts recorded", len(got))
	}
	for i, u := range got {
		if want := urls[i%len(urls)]; u != want {
			t.Fatalf("attempt %d went to %s, want %s (rotation %v)", i+1, u, want, got)
		}
	}
}

// TestClientFailsOverToTheLiveNode: a client whose first endpoint is dead
// connects to the second; when that server goes away it comes back on
// the third.
func TestClientFailsOverToTheLiveNode(t *testing.T) {
	b, c2 := startServer(t, ServerConfig{}), startServer(t, ServerConfig{})
	c, rec, _ := newTestClient(t, ClientConfig{URLs: []string{refusedURL(t), b.url, c2.url}, Backoff: fastBackoff()})
	runClient(t, c)
	rec.wait(t, 5*time.Second, "Connected", countTo(fsm.Connected, 1))
	if c.URL() != b.url {
		t.Fatalf("connected to %s, want the second endpoint %s", c.URL(), b.url)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, 5*time.Second, "reconnected", countTo(fsm.Connected, 2))
	if c.URL() != c2.url {
		t.Fatalf("reconnected to %s, want the next endpoint %s", c.URL(), c2.url)
	}
}

func TestClientConfigValidateURLs(t *testing.T) {
	for _, tc := range []struct {
		cfg  ClientConfig
		want string // "" for valid
	}{
		{ClientConfig{URLs: []string{"ws://a/", "ws://b/"}}, ""},
		{ClientConfig{URL: "ws://a/", URLs: []string{"ws://b/"}}, ""},
		{ClientConfig{}, "URL"},
		{ClientConfig{URL: "ws://a/", URLs: []string{"http://b/"}}, "URLs[0]"},
		{ClientConfig{URLs: []string{"ws://a/", ""}}, "URLs[1]"},
	} {
		err := tc.cfg.Validate()
		var fe *fsm.FieldError
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.cfg, err)
		case tc.want != "" && (!errors.As(err, &fe) || fe.Field != tc.want):
			t.Errorf("%+v: %v, want a FieldError on %s", tc.cfg, err, tc.want)
		}
	}
}

// hookRec is a SessionHook that records what it is told.
type hookRec struct {
	mu     sync.Mutex
	refuse error
	opened []uint64
	closed map[uint64]fsm.Reason
	done   chan struct{}
	// once gets a value per Opened call (buffered: the test sizes it):
	// Opened runs after the session is Alive, so seeing it Alive does not
	// mean it was reported.
	once chan struct{}
}

func (h *hookRec) Admit(*http.Request) error { h.mu.Lock(); defer h.mu.Unlock(); return h.refuse }
func (h *hookRec) Opened(s *Session, _ *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.opened = append(h.opened, s.ID())
	h.once <- struct{}{}
}
func (h *hookRec) Closed(s *Session, r fsm.Reason) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed[s.ID()] = r
	if len(h.closed) == len(h.opened) {
		select {
		case h.done <- struct{}{}:
		default:
		}
	}
}

// TestSessionHookAdmitOpenedClosedAndFence: a refusing Admit answers 503
// and opens nothing; each session is reported opened and closed once;
// Fence reaps every session with the reason it is given.
func TestSessionHookAdmitOpenedClosedAndFence(t *testing.T) {
	const n = 3
	h := &hookRec{closed: map[uint64]fsm.Reason{}, done: make(chan struct{}, 1), once: make(chan struct{}, 2*n),
		refuse: errors.New("fenced")}
	ts := startServer(t, ServerConfig{Hook: h})
	if got := upgradeStatus(t, ts.url, nil); got != http.StatusServiceUnavailable {
		t.Fatalf("refused by Admit: HTTP %d, want 503", got)
	}
	h.mu.Lock()
	h.refuse = nil
	h.mu.Unlock()
	for range n {
		c, rec, _ := newTestClient(t, ClientConfig{URL: ts.url, Backoff: fastBackoff()})
		runClient(t, c)
		rec.wait(t, 5*time.Second, "Connected", countTo(fsm.Connected, 1))
	}
	ts.rec.wait(t, 5*time.Second, "3 Alive", countTo(fsm.Alive, n))
	for i := range n {
		select {
		case <-h.once:
		case <-time.After(5 * time.Second):
			t.Fatalf("Opened called %d times, want %d", i, n)
		}
	}
	h.mu.Lock()
	if len(h.opened) != n {
		t.Errorf("opened %v, want %d sessions", h.opened, n)
	}
	h.refuse = errors.New("fenced") // the clients' reconnects are refused, as a fenced node's are
	h.mu.Unlock()
	if got := ts.Fence(); got != n {
		t.Errorf("Fence reaped %d, want %d", got, n)
	}
	select {
	case <-h.done:
	case <-time.After(5 * time.Second):
		t.Fatal("Closed not called for every session")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, r := range h.closed {
		if r != fsm.ReasonFenced {
			t.Errorf("session %d closed for %s, want the fence's reason", id, r)
		}
	}
}

// TestSendNotifyReportsWrittenOrDropped: a message to a live session is
// reported written (nil); one to a session that closes first is reported
// with ErrSessionClosed and never as written.
func TestSendNotifyReportsWrittenOrDropped(t *testing.T) {
	opened := make(chan *Session, 1)
	ts := startServer(t, ServerConfig{OnOpen: func(s *Session, _ *http.Request) { opened <- s }})
	got := make(chan string, 1)
	c, _, _ := newTestClient(t, ClientConfig{URL: ts.url, OnMessage: func(_ MessageType, d []byte) { got <- string(d) }})
	runClient(t, c)
	s := <-opened
	res := make(chan error, 1)
	if err := s.SendNotify(TextMessage, []byte("hi"), func(err error) { res <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err != nil {
		t.Fatalf("written message reported %v", err)
	}
	if m := <-got; m != "hi" {
		t.Fatalf("client got %q", m)
	}
	ts.Fence()
	err := s.SendNotify(TextMessage, []byte("late"), func(err error) { t.Errorf("notify called for a refused send: %v", err) })
	if !errors.Is(err, ErrSessionClosed) || !strings.Contains(err.Error(), "fenced") {
		t.Fatalf("send after fence = %v, want ErrSessionClosed (fenced)", err)
	}
}
