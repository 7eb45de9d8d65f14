package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

func TestParseOutbox(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want fsm.Outbox
		err  string
	}{
		{"100,64KiB,30s", fsm.Outbox{Count: 100, Bytes: 64 << 10, Age: 30 * time.Second}, ""},
		{"10,1000,1m", fsm.Outbox{Count: 10, Bytes: 1000, Age: time.Minute}, ""},
		{"0,2MiB,0", fsm.Outbox{Bytes: 2 << 20}, ""},
		{"5,500KB,2s", fsm.Outbox{Count: 5, Bytes: 500_000, Age: 2 * time.Second}, ""},
		{"100,12QB,30s", fsm.Outbox{}, `BYTES "12QB": want a byte count`},
		{"x,1KiB,30s", fsm.Outbox{}, `N "x": want a message count`},
		{"-1,1KiB,30s", fsm.Outbox{}, `N "-1"`},
		{"1,1KiB,soon", fsm.Outbox{}, `AGE "soon": want a duration`},
		{"1,1KiB", fsm.Outbox{}, "want N,BYTES,AGE"},
		{"0,0,0", fsm.Outbox{}, "turns nothing on"},
	} {
		got, err := parseOutbox(tc.in)
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("%q: %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
		}
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"connect", "ws://127.0.0.1:1/", "--outbox", "100,12QB,30s"}, io.Discard, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), `--outbox: BYTES "12QB"`) {
		t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
	}
}

// Lines typed while the server is unreachable are held, and counted as
// dropped (gave_up) when connect gives up.
func TestConnectOutboxCountsLines(t *testing.T) {
	var stderr bytes.Buffer
	err := connect(context.Background(), []string{"ws://127.0.0.1:1/", "--outbox", "10,1KiB,1m", "--give-up-after", "1s",
		"--initial", "10ms", "--max", "50ms", "--log-format", "json"}, strings.NewReader("one\ntwo\nthree\n"), io.Discard, &stderr)
	if err == nil {
		t.Fatal("connect should give up")
	}
	out := stderr.String()
	if strings.Contains(out, "not sent") || !strings.Contains(out, "outbox: 3 queued, 0 written from it, 0 held, 3 dropped gave_up=3") {
		t.Errorf("stderr:\n%s", out)
	}
}

// `lifeline sim --policy` takes the outbox keys: the clients' applications
// send (every second by default), (o) judges them, and the report shows
// the outbox's figures; a broken outbox is reported as (o)'s violation.
func TestSimOutboxPolicy(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"sim", "--clients", "10", "--duration", "3m", "--policy", "outbox_count=20,outbox_bytes=8KiB,outbox_age=10s"}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr.String(), stdout.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "outbox        20, 8192 bytes, 10s each:") || !strings.Contains(out, "(o) outbox_faithful      held") {
		t.Errorf("report:\n%s", out)
	}
	stdout.Reset()
	if code := run(context.Background(), append(args, "--bugs", "outbox_no_age_check"), &stdout, &stderr); code != 1 ||
		!strings.Contains(stdout.String(), "older than Age 10s: sent late") {
		t.Errorf("exit %d, report:\n%s", code, stdout.String())
	}
}
