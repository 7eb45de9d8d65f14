package conn

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/fsm"
)

// failureCode is the trace code of a failure an observation reports: the
// status or close code failureOf reads, or, for an observation read back
// from the log (where the error is its text), the one the text names.
func failureCode(err error) uint16 {
	f := failureOf(err)
	if f == (fsm.Failure{}) && err != nil {
		if m := codeText.FindStringSubmatch(err.Error()); m != nil {
			n, _ := strconv.Atoi(m[1] + m[2])
			return uint16(n)
		}
	}
	return uint16(f.Status + f.Code)
}

// codeText finds "answered HTTP 403" or "close 1008" in an error's text.
var codeText = regexp.MustCompile(`answered HTTP (\d{3})|websocket: close (\d{4})`)

func TestFailureOf(t *testing.T) {
	for _, c := range []struct {
		err  error
		want fsm.Failure
	}{
		{errors.New("connection refused"), fsm.Failure{}},
		{&DialError{Status: 403, Err: errors.New("bad handshake")}, fsm.Failure{Status: 403}},
		{&DialError{Err: errors.New("refused")}, fsm.Failure{}},
		{&DialError{Status: 503, RetryAfter: 3 * time.Second}, fsm.Failure{Status: 503, RetryAfter: 3 * time.Second}},
		{errors.Join(errors.New("link dropped"), &websocket.CloseError{Code: 1008}), fsm.Failure{Code: 1008}},
		{&websocket.CloseError{Code: websocket.CloseAbnormalClosure}, fsm.Failure{}},
		{&websocket.CloseError{Code: websocket.CloseNoStatusReceived}, fsm.Failure{}},
		{nil, fsm.Failure{}},
	} {
		if got := failureOf(c.err); got != c.want {
			t.Errorf("failureOf(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestClientRejectedOnPolicyClose: a server that closes the link with
// 1008 (policy violation) said "go away": the client enters Rejected on
// the slow schedule, and Stats say why.
func TestClientRejectedOnPolicyClose(t *testing.T) {
	up := websocket.Upgrader{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1008, "banned"), time.Now().Add(time.Second))
		_, _, _ = ws.ReadMessage() // until the client's close answer
	}))
	defer ts.Close()
	sched := fsm.Backoff{Initial: time.Hour, Multiplier: 2, Max: 2 * time.Hour, Jitter: fsm.JitterNone}
	c, rec, logs := newTestClient(t, ClientConfig{URL: "ws" + strings.TrimPrefix(ts.URL, "http") + "/", Backoff: fastBackoff(),
		Failures: fsm.FailurePolicy{Schedule: sched}})
	runClient(t, c)
	obs := rec.wait(t, 5*time.Second, "Rejected", countTo(fsm.Rejected, 1))
	tr := transitions(obs, fsm.Rejected)[0].Transition
	if tr.From != fsm.Connected || tr.Trigger != fsm.GoAway || tr.Delay != time.Hour {
		t.Fatalf("transition %+v, want Connected -go_away-> Rejected after 1h", tr)
	}
	st := c.Stats()
	if st.State != fsm.Rejected || st.LastFailure != (fsm.Failure{Code: 1008}) || st.LastClass != fsm.Permanent || st.Rejections != 1 {
		t.Fatalf("stats %+v", st)
	}
	if !strings.Contains(logs.String(), `"to":"Rejected","trigger":"go_away"`) {
		t.Errorf("the log does not show the rejection:\n%s", logs.String())
	}
}

// TestClientReconnectNowFloor: an owner calling ReconnectNow in a loop
// against a refused port gets attempts no closer than the floor, where
// the backoff alone would wait 10 s.
func TestClientReconnectNowFloor(t *testing.T) {
	b := fsm.Backoff{Initial: 10 * time.Second, Multiplier: 2, Max: time.Minute, Jitter: fsm.JitterNone,
		ReconnectFloor: 100 * time.Millisecond}
	c, rec, _ := newTestClient(t, ClientConfig{URL: refusedURL(t), Backoff: b})
	stop := runClient(t, c)
	rec.wait(t, 5*time.Second, "first failure", countTo(fsm.BackingOff, 1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	tick := time.NewTicker(2 * time.Millisecond) // the caller in a loop: the load under test
	defer tick.Stop()
	for ctx.Err() == nil {
		c.ReconnectNow()
		<-tick.C
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	starts, _ := attemptStarts(rec.all())
	for i := 1; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < b.ReconnectFloor {
			t.Errorf("attempt %d started %s after the one before, under the floor %s", i+1, gap, b.ReconnectFloor)
		}
	}
	// About one attempt per floor over the second; the backoff alone
	// would have made one.
	if len(starts) < 4 || len(starts) > 12 {
		t.Errorf("%d attempts in about a second of reconnect-now every 2 ms; the floor allows at most 11", len(starts))
	}
}

func TestClientConfigValidatesFailures(t *testing.T) {
	err := ClientConfig{URL: "ws://127.0.0.1:1/", Failures: fsm.FailurePolicy{Rules: []fsm.FailureRule{{Status: 101}}}}.Validate()
	var fe *fsm.FieldError
	if !errors.As(err, &fe) || fe.Field != "Rules[0].Status" {
		t.Fatalf("Validate = %v, want a FieldError on Rules[0].Status", err)
	}
}
