package conn

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lifeline-go/lifeline/fsm"
)

// The tests in this file pin edges of the lifecycle files that a mutation
// run (scripts/mutation --conn) found unpinned: each names the surviving
// mutants it kills.

// readAll reads ws until it fails, so that its control frames are handled
// (a ping answered, unless a handler says otherwise; a close echoed).
func readAll(ws *websocket.Conn) {
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			return
		}
	}
}

// stateRec is a SessionHook and SessionStateHook that records the state
// changes it is told of.
type stateRec struct {
	mu     sync.Mutex
	states []fsm.State
	closed chan fsm.Reason
}

func (*stateRec) Admit(*http.Request) error         { return nil }
func (*stateRec) Opened(*Session, *http.Request)    {}
func (h *stateRec) Closed(_ *Session, r fsm.Reason) { h.closed <- r }
func (h *stateRec) StateChanged(_ *Session, to fsm.State) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.states = append(h.states, to)
}

// TestSessionStateHookToldChangesOnly: the state hook hears the changes
// between Opened and Closed, and only those: not the upgrade (Opened says
// it), not a re-entered state (Suspect with the error count up), not the
// reap (Closed says it). Kills the three negations of session.go's
// stateHook condition.
func TestSessionStateHookToldChangesOnly(t *testing.T) {
	h := &stateRec{closed: make(chan fsm.Reason, 1)}
	live := fastLiveness()
	live.PingInterval, live.PongTimeout = time.Minute, 10*time.Second // errors decide, not silence
	live.MaxErrors = 3
	ts := startServer(t, ServerConfig{Hook: h, Liveness: live, OnMessage: func(_ *Session, _ MessageType, data []byte) error {
		if string(data) == "junk" {
			return errors.New("not JSON")
		}
		return nil
	}})
	ws := dialRaw(t, ts.url, nil)
	go readAll(ws) // so the close handshake completes
	// Suspect, Suspect again, Alive; then three in a row: Suspect,
	// Suspect, Suspect, Closing (MaxErrors), Reaped.
	for _, m := range []string{"junk", "junk", "{}", "junk", "junk", "junk"} {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case r := <-h.closed:
		if r != fsm.ReasonProtocolErrors {
			t.Errorf("closed for %s, want %s", r, fsm.ReasonProtocolErrors)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the session was not closed after MaxErrors errors in a row")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if want := []fsm.State{fsm.Suspect, fsm.Alive, fsm.Suspect, fsm.Closing}; !slices.Equal(h.states, want) {
		t.Errorf("StateChanged told %v, want %v", h.states, want)
	}
}

// TestSessionPongTimeoutCause: a pong-timeout reap's log line names the
// silence it judged, PingInterval + PongTimeout; another reap's does not.
// Kills session.go's errSilent condition negated and its sum made a
// difference. Default path: no Observer, read from the log.
func TestSessionPongTimeoutCause(t *testing.T) {
	live := fastLiveness() // 200 ms + 100 ms
	ts := startServer(t, ServerConfig{Liveness: live})
	ws := dialRaw(t, ts.url, nil)
	ws.SetPingHandler(func(string) error { return nil }) // hears pings, never answers
	go readAll(ws)
	ts.rec.wait(t, 5*time.Second, "the reap", countTo(fsm.Reaped, 1))
	var reaps []map[string]any
	for _, l := range logLines(t, ts.logs) {
		if l["to"] == "Reaped" {
			reaps = append(reaps, l)
		}
	}
	const want = "peer silent for 300ms: no pong (killed, stopped or cut off)"
	if len(reaps) != 1 || reaps[0]["reason"] != "pong_timeout" || reaps[0]["error"] != want {
		t.Fatalf("reap lines %v, want one for pong_timeout with error %q", reaps, want)
	}

	// A reap for another reason carries its own cause, not the silence.
	ws2 := dialRaw(t, ts.url, nil)
	ts.rec.wait(t, 5*time.Second, "the second session", countTo(fsm.Alive, 2))
	_ = ws2.NetConn().Close()
	ts.rec.wait(t, 5*time.Second, "the second reap", countTo(fsm.Reaped, 2))
	for _, l := range logLines(t, ts.logs) {
		if l["to"] == "Reaped" && l["reason"] != "pong_timeout" && l["error"] == want {
			t.Errorf("a %s reap logged the silence: %v", l["reason"], l)
		}
	}
}

// hasObs reports whether obs holds an observation of kind k and frame f.
func hasObs(k ObservationKind, f Frame) func([]Observation) bool {
	return func(obs []Observation) bool {
		return slices.ContainsFunc(obs, func(o Observation) bool { return o.Kind == k && o.Frame == f })
	}
}

// TestObserverSeesControlFrames: an Observer is told of the control frames
// each end writes and reads: the client's pongs and its close frame, the
// server's received pongs and the close frame its teardown writes on a
// reap straight from Alive (not the Closing handshake's, which the writer
// reports). Kills
// the Observer-only negations in client_link.go (onPing, writeClose),
// session_io.go (onPong) and session.go (teardown's close frame).
func TestObserverSeesControlFrames(t *testing.T) {
	ts := startObservedServer(t, ServerConfig{Liveness: fastLiveness()}) // pings every 200 ms
	c, rec, _ := newObservedClient(t, ClientConfig{URL: ts.url, Backoff: fastBackoff()})
	stop := runClient(t, c)
	rec.wait(t, 5*time.Second, "the client's pong", hasObs(ObsSend, FramePong))
	ts.rec.wait(t, 5*time.Second, "the server's received pong", hasObs(ObsReceive, FramePong))
	if err := stop(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if !hasObs(ObsSend, FrameClose)(rec.all()) {
		t.Error("the stopped client's close frame was not observed")
	}

	// The server's teardown writes a close frame too: a reap straight from
	// Alive, here for silence (1001), to a peer that hears pings but never
	// answers them and still reads.
	ws := dialRaw(t, ts.url, nil)
	ws.SetPingHandler(func(string) error { return nil })
	go readAll(ws)
	ts.rec.wait(t, 5*time.Second, "the server's close frame to the silent peer", func(obs []Observation) bool {
		return slices.ContainsFunc(obs, func(o Observation) bool {
			return o.Kind == ObsSend && o.Frame == FrameClose && o.ID == "2"
		})
	})
}
