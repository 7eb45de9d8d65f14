package conn

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/fsm"
)

func dialRaw(t testing.TB, url string, header http.Header) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, header)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return ws
}

func TestServerEchoes(t *testing.T) {
	ts := startServer(t, ServerConfig{OnMessage: echo})
	ws := dialRaw(t, ts.url, nil)
	for _, msg := range []string{"hello", `{"post_type":"meta_event"}`} {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		mt, got, err := ws.ReadMessage()
		if err != nil || mt != websocket.TextMessage || string(got) != msg {
			t.Fatalf("echo of %q: got %d %q, %v", msg, mt, got, err)
		}
	}
	if got := ts.Stats().Sessions[fsm.Alive.String()]; got != 1 {
		t.Errorf("Alive sessions = %d, want 1", got)
	}
}

func TestServerAuthorizesBeforeUpgrade(t *testing.T) {
	ts := startServer(t, ServerConfig{Authorize: BearerToken("s3cret")})
	for _, tc := range []struct {
		name   string
		url    string
		header http.Header
		want   int
	}{
		{"no credentials", ts.url, nil, http.StatusUnauthorized},
		{"wrong token", ts.url, BearerHeader("guess"), http.StatusForbidden},
		{"other scheme", ts.url, http.Header{"Authorization": {"Basic czNjcmV0"}}, http.StatusForbidden},
		{"wrong query token", ts.url + "?access_token=guess", nil, http.StatusForbidden},
		{"bearer header", ts.url, BearerHeader("s3cret"), http.StatusSwitchingProtocols},
		{"query token", ts.url + "?access_token=s3cret", nil, http.StatusSwitchingProtocols},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := upgradeStatus(t, tc.url, tc.header); got != tc.want {
				t.Errorf("status = %d, want %d", got, tc.want)
			}
		})
	}
	if got := ts.Stats().Refused; got != 4 {
		t.Errorf("Stats().Refused = %d, want 4 (sessions are never created for refused requests)", got)
	}
}

func TestTokenEqual(t *testing.T) {
	for _, tc := range []struct {
		got, want string
		eq        bool
	}{
		{"abc", "abc", true}, {"abc", "abd", false}, {"", "abc", false}, {"abcd", "abc", false}, {"", "", true},
	} {
		if TokenEqual(tc.got, tc.want) != tc.eq {
			t.Errorf("TokenEqual(%q, %q) = %v, want %v", tc.got, tc.want, !tc.eq, tc.eq)
		}
	}
}

// TestServerReapsSilentPeer: a peer that stops answering pings (its process
// stopped, the path blackholed) is reaped by pong timeout within the
// liveness bound of the last frame heard.
func TestServerReapsSilentPeer(t *testing.T) {
	live := fastLiveness()
	ts := startServer(t, ServerConfig{Liveness: live})
	ws := dialRaw(t, ts.url, nil)
	var pings atomic.Int32
	ws.SetPingHandler(func(string) error { pings.Add(1); return nil }) // hears pings, never answers
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	obs := ts.rec.wait(t, 5*time.Second, "the session reaped", countTo(fsm.Reaped, 1))
	alive, reaped := transitions(obs, fsm.Alive)[0], transitions(obs, fsm.Reaped)[0]
	if reaped.Transition.Reason != fsm.ReasonPongTimeout || reaped.Transition.Trigger != fsm.PongTimeout {
		t.Fatalf("reaped by %s for %s, want pong_timeout", reaped.Transition.Trigger, reaped.Transition.Reason)
	}
	if want := "silent for " + (live.PingInterval + live.PongTimeout).String(); reaped.Err == nil || !strings.Contains(reaped.Err.Error(), want) {
		t.Errorf("logged cause %v, want it to say %q", reaped.Err, want)
	}
	bound := live.ReapDeadline(alive.At)
	if reaped.At.Before(bound) || reaped.At.After(bound.Add(50*time.Millisecond)) {
		t.Errorf("reaped %s after the last frame, want within [%s, +50ms]",
			reaped.At.Sub(alive.At), bound.Sub(alive.At))
	}
	// The peer's view: exactly one ping came before the reap.
	if n := pings.Load(); n != 1 {
		t.Errorf("the peer heard %d pings before the reap, want exactly 1", n)
	}
	if st := ts.Stats(); st.Open != 0 || st.Reaped["pong_timeout"] != 1 {
		t.Errorf("Stats after the reap: %+v", st)
	}
}

// TestServerKeepsLivePeer: a peer that answers pings is never reaped, over
// many ping intervals. Counted from the peer's side: the pings it heard
// and answered.
func TestServerKeepsLivePeer(t *testing.T) {
	live := fastLiveness()
	ts := startServer(t, ServerConfig{Liveness: live})
	ws := dialRaw(t, ts.url, nil)
	heard := make(chan struct{})
	var pings atomic.Int32
	ws.SetPingHandler(func(p string) error {
		if pings.Add(1) == int32(liveWindow) {
			close(heard)
		}
		return ws.WriteControl(websocket.PongMessage, []byte(p), time.Now().Add(time.Second))
	})
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	select {
	case <-heard:
	case <-time.After(time.Duration(liveWindow+5) * live.PingInterval): // a ping per interval of silence, each after a round trip
		t.Fatalf("the peer heard %d pings in %d ping intervals, want %d", pings.Load(), liveWindow+5, liveWindow)
	}
	if st := ts.Stats(); st.Open != 1 || st.ReapedTotal != 0 {
		t.Fatalf("a live peer was reaped: %+v", st)
	}
}

func TestServerReapReasons(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    ServerConfig
		peer   func(t *testing.T, ws *websocket.Conn)
		reason fsm.Reason
		code   int // close code the peer should get, 0 for none checked
	}{
		{"close frame", ServerConfig{}, func(t *testing.T, ws *websocket.Conn) {
			_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
		}, fsm.ReasonPeerClose, websocket.CloseNormalClosure},
		{"close frame with an application code", ServerConfig{}, func(t *testing.T, ws *websocket.Conn) {
			_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "done"))
		}, fsm.ReasonPeerClose, 4001}, // echoed as it came
		{"close frame without a status", ServerConfig{}, func(t *testing.T, ws *websocket.Conn) {
			_ = ws.WriteMessage(websocket.CloseMessage, nil)
		}, fsm.ReasonPeerClose, websocket.CloseNormalClosure}, // 1005 cannot be sent: answered 1000
		{"RST", ServerConfig{}, func(t *testing.T, ws *websocket.Conn) {
			_ = ws.NetConn().(*net.TCPConn).SetLinger(0)
			_ = ws.NetConn().Close()
		}, fsm.ReasonReadError, 0},
		{"over the read limit", ServerConfig{ReadLimit: 16}, func(t *testing.T, ws *websocket.Conn) {
			_ = ws.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 17)))
		}, fsm.ReasonReadError, websocket.CloseMessageTooBig},
		{"idle", ServerConfig{Liveness: fsm.Liveness{IdleTimeout: 100 * time.Millisecond}}, nil,
			fsm.ReasonIdleTimeout, websocket.CloseNormalClosure},
		{"protocol errors", ServerConfig{OnMessage: func(*Session, MessageType, []byte) error { return errors.New("not JSON") }},
			func(t *testing.T, ws *websocket.Conn) {
				for range 3 {
					_ = ws.WriteMessage(websocket.TextMessage, []byte("junk"))
				}
			}, fsm.ReasonProtocolErrors, websocket.ClosePolicyViolation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, tc.cfg)
			ws := dialRaw(t, ts.url, nil)
			gotCode := make(chan int, 1)
			go func() {
				for {
					_, _, err := ws.ReadMessage()
					var ce *websocket.CloseError
					if errors.As(err, &ce) {
						gotCode <- ce.Code
						return
					}
					if err != nil {
						gotCode <- 0
						return
					}
				}
			}()
			if tc.peer != nil {
				tc.peer(t, ws)
			}
			obs := ts.rec.wait(t, 5*time.Second, "the reap", countTo(fsm.Reaped, 1))
			if got := transitions(obs, fsm.Reaped)[0].Transition.Reason; got != tc.reason {
				t.Fatalf("reason = %s, want %s", got, tc.reason)
			}
			if tc.code != 0 {
				select {
				case c := <-gotCode:
					if c != tc.code {
						t.Errorf("peer got close code %d, want %d", c, tc.code)
					}
				case <-time.After(5 * time.Second):
					t.Errorf("peer got no close frame")
				}
			}
			if got := ts.Stats().Reaped[tc.reason.String()]; got != 1 {
				t.Errorf("Stats().Reaped[%s] = %d, want 1", tc.reason, got)
			}
		})
	}
}

// TestServerRecoversFromAnError: an error streak below MaxErrors makes the
// session Suspect, and a good message makes it Alive again.
func TestServerRecoversFromAnError(t *testing.T) {
	ts := startServer(t, ServerConfig{OnMessage: func(_ *Session, _ MessageType, data []byte) error {
		if string(data) == "junk" {
			return errors.New("not JSON")
		}
		return nil
	}})
	ws := dialRaw(t, ts.url, nil)
	for _, m := range []string{"junk", "junk", "{}"} {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	obs := ts.rec.wait(t, 5*time.Second, "recovery", func(obs []Observation) bool {
		return len(transitions(obs, fsm.Alive)) >= 2
	})
	var path []string
	for _, o := range transitions(obs, 0) {
		path = append(path, o.Transition.To.String())
	}
	// Each error of the streak is a transition (Suspect re-entered with
	// the count up), so each is logged once.
	if got := strings.Join(path, ","); got != "Alive,Suspect,Suspect,Alive" {
		t.Errorf("path = %s, want Alive,Suspect,Suspect,Alive", got)
	}
}

// TestServerSlowConsumer: a peer that stops reading fills its queue; the
// next Send reaps it for slow_consumer and every later send fails.
func TestServerSlowConsumer(t *testing.T) {
	// Observed: it checks the Observer's promise that no data frame is
	// committed after the reap.
	ts := startObservedServer(t, ServerConfig{QueueSize: 8})
	dialRaw(t, ts.url, nil) // never reads
	var s *Session
	ts.rec.wait(t, 5*time.Second, "the session", countTo(fsm.Alive, 1))
	for _, x := range ts.snapshot() {
		s = x
	}
	payload := []byte(strings.Repeat("x", 64<<10))
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		err = s.Send(BinaryMessage, payload)
	}
	var sc *SessionClosedError
	if !errors.As(err, &sc) || sc.Reason != fsm.ReasonSlowConsumer || sc.State != fsm.Reaped {
		t.Fatalf("Send error = %v, want a slow_consumer reap", err)
	}
	if err := s.Send(TextMessage, []byte("late")); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("Send after reap = %v, want ErrSessionClosed", err)
	}
	// The reap dropped the full queue, and said so.
	if got := ts.Stats().DroppedMessages; got != 8 {
		t.Errorf("DroppedMessages = %d, want the 8 queued when the queue overflowed", got)
	}
	if _, ok := ts.Session(s.ID()); ok {
		t.Fatal("Session(id) still finds the reaped session")
	}
	obs := ts.rec.all()
	reapedAt := -1
	for i, o := range obs {
		if o.Kind == ObsTransition && o.Transition.To == fsm.Reaped {
			reapedAt = i
		}
		if reapedAt >= 0 && i > reapedAt && o.Kind == ObsSend && (o.Frame == FrameText || o.Frame == FrameBinary) {
			t.Fatalf("data frame committed after the reap: %+v", o)
		}
	}
}

func TestServerBroadcast(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	var peers []*websocket.Conn
	for range 3 {
		peers = append(peers, dialRaw(t, ts.url, nil))
	}
	ts.rec.wait(t, 5*time.Second, "three sessions", countTo(fsm.Alive, 3))
	n, err := ts.Broadcast(TextMessage, []byte("news"))
	if n != 3 || err != nil {
		t.Fatalf("Broadcast = %d, %v; want 3, nil", n, err)
	}
	for _, p := range peers {
		_ = p.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, got, err := p.ReadMessage(); err != nil || string(got) != "news" {
			t.Fatalf("peer got %q, %v", got, err)
		}
	}
	if s, ok := ts.Session(999); ok {
		t.Errorf("Session(unknown) = %v, true", s)
	}
}

func TestServerShutdown(t *testing.T) {
	t.Run("graceful", func(t *testing.T) {
		ts := startServer(t, ServerConfig{})
		ws := dialRaw(t, ts.url, nil)
		code := make(chan int, 1)
		go func() { // answers the close as any WebSocket library does
			_, _, err := ws.ReadMessage()
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				code <- ce.Code
			}
			close(code)
		}()
		ts.rec.wait(t, 5*time.Second, "the session", countTo(fsm.Alive, 1))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ts.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown = %v, want nil (the peer answered)", err)
		}
		if c := <-code; c != websocket.CloseGoingAway {
			t.Errorf("peer got close code %d, want 1001", c)
		}
		if st := ts.Stats(); st.Open != 0 || st.Reaped["shutdown"] != 1 {
			t.Errorf("after Shutdown: %+v", st)
		}
		if err := ts.Shutdown(ctx); !errors.Is(err, ErrServerClosed) {
			t.Errorf("second Shutdown = %v, want ErrServerClosed", err)
		}
		if got := upgradeStatus(t, ts.url, nil); got != http.StatusServiceUnavailable {
			t.Errorf("upgrade after Shutdown = %d, want 503", got)
		}
	})
	t.Run("forced", func(t *testing.T) {
		ts := startServer(t, ServerConfig{Liveness: fsm.Liveness{CloseTimeout: time.Minute}})
		dialRaw(t, ts.url, nil) // never reads, so never answers the close
		ts.rec.wait(t, 5*time.Second, "the session", countTo(fsm.Alive, 1))
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		if err := ts.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("forced Shutdown took %s", d)
		}
		if st := ts.Stats(); st.Open != 0 {
			t.Errorf("sessions left after a forced Shutdown: %+v", st)
		}
	})
}

func TestServerConfigValidate(t *testing.T) {
	_, err := NewServer(ServerConfig{QueueSize: -1, ReadLimit: -2, Liveness: fsm.Liveness{PingInterval: time.Second, PongTimeout: 2 * time.Second}})
	for _, field := range []string{"QueueSize", "ReadLimit", "PongTimeout"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("error %v does not name %s", err, field)
		}
	}
	if !errors.Is(err, fsm.ErrInvalidPolicy) {
		t.Errorf("error does not match fsm.ErrInvalidPolicy")
	}
}
