package conn

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/fsm"
)

// checkLogContract checks the logging contract: every transition the
// observer saw is exactly one JSON line with msg "transition" and the keys
// machine, id, from, to, trigger; reason exactly when a session closes or
// is reaped; silent_ms and idle_ms exactly on the line that gives an open
// session's reason; attempt and delay_ms exactly when a client schedules a retry
// (BackingOff or Rejected);
// no other keys but error (and slog's time and level); nothing else logged.
func checkLogContract(t *testing.T, lines []map[string]any, obs []Observation) {
	t.Helper()
	trs := transitions(obs, 0)
	if len(lines) != len(trs) {
		t.Fatalf("%d log lines for %d transitions, want one each", len(lines), len(trs))
	}
	for i, l := range lines {
		tr := trs[i].Transition
		want := map[string]any{"msg": "transition", "level": "INFO", "machine": tr.Machine.String(), "id": trs[i].ID,
			"from": tr.From.String(), "to": tr.To.String(), "trigger": tr.Trigger.String()}
		if tr.Machine == fsm.MachineSession && (tr.To == fsm.Closing || tr.To == fsm.Reaped) {
			want["reason"] = tr.Reason.String()
		}
		// The line that gives a session's reason carries silent_ms and
		// idle_ms (lifeline audit's facts); the values are checked below.
		ends := tr.Machine == fsm.MachineSession && tr.Reason != fsm.NoReason &&
			(tr.From == fsm.Alive || tr.From == fsm.Suspect)
		if ends {
			want["silent_ms"], want["idle_ms"] = l["silent_ms"], l["idle_ms"]
			for _, k := range []string{"silent_ms", "idle_ms"} {
				if v, ok := l[k].(float64); !ok || v < 0 {
					t.Errorf("line %d: %s = %v, want a non-negative number of milliseconds", i, k, l[k])
				}
			}
			if tr.Trigger == fsm.PongTimeout && l["silent_ms"].(float64) < 1 {
				t.Errorf("line %d: reaped for silence with silent_ms %v", i, l["silent_ms"])
			}
		}
		if tr.Machine == fsm.MachineClient && (tr.To == fsm.BackingOff || tr.To == fsm.Rejected) {
			want["attempt"] = float64(tr.Attempt)
			want["delay_ms"] = float64(tr.Delay.Milliseconds())
		}
		for k, v := range want {
			if l[k] != v {
				t.Errorf("line %d: %s = %v, want %v (line: %v)", i, k, l[k], v, l)
			}
		}
		for k := range l {
			if _, ok := want[k]; !ok && !slices.Contains([]string{"time", "error"}, k) {
				t.Errorf("line %d: unexpected key %q (line: %v)", i, k, l)
			}
		}
		if _, ok := l["error"]; ok != (trs[i].Err != nil) {
			t.Errorf("line %d: error key present = %v, but the transition's cause is %v", i, ok, trs[i].Err)
		}
	}
}

func TestLogContractClient(t *testing.T) {
	ts := startServer(t, ServerConfig{Authorize: BearerToken("t")})
	b := fastBackoff()
	b.MaxAttempts = 4
	// Four attempts to a server that answers 403, then it gives up.
	c, rec, logs := newObservedClient(t, ClientConfig{URL: ts.url, Header: BearerHeader("wrong"), Backoff: b, ID: "edge-1",
		Failures: fsm.FailurePolicy{Schedule: b}}) // 403 is permanent: Rejected, here on a fast schedule
	if err := c.Run(context.Background()); err == nil {
		t.Fatal("Run succeeded against a 403 server")
	}
	lines := logLines(t, logs)
	checkLogContract(t, lines, rec.all())
	// Errors are logged once per attempt: one line per failed attempt.
	n := 0
	for _, l := range lines {
		if l["error"] != nil {
			n++
		}
	}
	if n != 4 {
		t.Errorf("%d lines carry an error for 4 failed attempts", n)
	}
}

func TestLogContractServer(t *testing.T) {
	live := fastLiveness()
	ts := startObservedServer(t, ServerConfig{Liveness: live, OnMessage: func(*Session, MessageType, []byte) error {
		return fmt.Errorf("not JSON")
	}})
	silent := dialRaw(t, ts.url, nil)
	silent.SetPingHandler(func(string) error { return nil })
	go func() {
		for {
			if _, _, err := silent.ReadMessage(); err != nil {
				return
			}
		}
	}()
	junk := dialRaw(t, ts.url, nil)
	for range 3 {
		_ = junk.WriteMessage(websocket.TextMessage, []byte("junk"))
	}
	go func() {
		for {
			if _, _, err := junk.ReadMessage(); err != nil {
				return
			}
		}
	}()
	obs := ts.rec.wait(t, 5*time.Second, "both reaped", countTo(fsm.Reaped, 2))
	checkLogContract(t, logLines(t, ts.logs), obs)
}
