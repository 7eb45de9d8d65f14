package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/internal/syncio"
)

// startServe runs `lifeline serve` in-process on a free loopback port and
// returns its address and exit status channel; it stops when the test ends.
func startServe(t *testing.T, args ...string) (addr string, logs *syncio.Buffer) {
	t.Helper()
	return startListening(t, []string{"serve"}, args...)
}

// startListening runs a serving command (serve, onebot serve) in-process
// on a free loopback port with JSON logs, and returns its address once it
// logged "listening"; it stops when the test ends and must exit 0.
func startListening(t *testing.T, command []string, args ...string) (addr string, logs *syncio.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	logs = &syncio.Buffer{}
	done := make(chan int, 1)
	go func() {
		argv := append(append(command[:len(command):len(command)], "--addr", "127.0.0.1:0", "--log-format", "json"), args...)
		done <- run(ctx, argv, io.Discard, pw)
		_ = pw.Close()
	}()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			_, _ = logs.Write(append(sc.Bytes(), '\n'))
			var l map[string]any
			if json.Unmarshal(sc.Bytes(), &l) == nil && l["msg"] == "listening" {
				found <- l["addr"].(string)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("%s exited %d after SIGINT-equivalent, want 0", command, code)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not stop", command)
		}
	})
	select {
	case addr = <-found:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s printed no listening line", command)
	}
	return addr, logs
}

func TestServeAndConnect(t *testing.T) {
	addr, logs := startServe(t, "--token", "T", "--ping-interval", "1s", "--pong-timeout", "500ms")
	ctx, cancel := context.WithCancel(context.Background())
	stdinR, stdinW := io.Pipe()
	stdout, stderr := &syncio.Buffer{}, &syncio.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- connect(ctx, []string{"ws://" + addr + "/", "--token", "T", "--log-format", "json", "--id", "t1"}, stdinR, stdout, stderr)
	}()
	// A line sent before the link is up is refused on stderr, not queued:
	// wait for the Connected transition first.
	if !waitUntil(t, 10*time.Second, func() bool { return strings.Contains(stderr.String(), `"to":"Connected"`) }) {
		t.Fatalf("never connected; stderr:\n%s", stderr.String())
	}
	if _, err := io.WriteString(stdinW, "hello\n"); err != nil {
		t.Fatal(err)
	}
	if !waitUntil(t, 10*time.Second, func() bool { return strings.Contains(stdout.String(), "hello") }) {
		t.Fatalf("no echo; stderr:\n%s", stderr.String())
	}
	resp := getStats(t, addr, "T")
	if resp["open"].(float64) != 1 {
		t.Errorf("stats: %v", resp)
	}
	cancel()
	_ = stdinW.Close()
	if err := <-done; err != nil {
		t.Fatalf("connect returned %v after cancel, want nil (exit 0)", err)
	}
	if !strings.Contains(stderr.String(), `"to":"Connected"`) || !strings.Contains(logs.String(), `"to":"Alive"`) {
		t.Errorf("transitions not logged:\n%s\n%s", stderr.String(), logs.String())
	}
}

// waitUntil polls cond for up to d; a bounded wait for an observable
// condition, reporting whether it held.
func waitUntil(t *testing.T, d time.Duration, cond func() bool) bool {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

func getStats(t *testing.T, addr, token string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/stats", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return map[string]any{"status": float64(resp.StatusCode)}
	}
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestServeStatsNeedsToken(t *testing.T) {
	addr, _ := startServe(t, "--token", "T")
	for _, tc := range []struct {
		token string
		want  float64
	}{{"", 401}, {"wrong", 403}} {
		if got := getStats(t, addr, tc.token); got["status"] != tc.want {
			t.Errorf("GET /stats with token %q: %v, want status %v", tc.token, got, tc.want)
		}
	}
	if got := getStats(t, addr, "T"); got["reaped"] == nil {
		t.Errorf("GET /stats with the token: %v", got)
	}
}

func TestConnectGivesUp(t *testing.T) {
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"connect", "ws://127.0.0.1:1/", "--max-attempts", "3",
		"--initial", "10ms", "--max", "20ms", "--log-format", "json"}, io.Discard, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	out := stderr.String()
	if !strings.Contains(out, "lifeline connect: gave up after 3 consecutive failed attempts") || !strings.Contains(out, "refused") {
		t.Errorf("stderr lacks a clear give-up message:\n%s", out)
	}
	if n := strings.Count(out, `"to":"BackingOff"`); n != 2 {
		t.Errorf("%d retries logged, want 2 (the third failure gives up)", n)
	}
}

func TestCommandUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"connect"}, "want at least one"},
		{[]string{"connect", "ws://127.0.0.1:1/", "--jitter", "wild"}, "unknown jitter kind"},
		{[]string{"connect", "ws://127.0.0.1:1/", "--multiplier", "0.5"}, "Multiplier"},
		{[]string{"connect", "http://127.0.0.1:1/"}, "ws or wss"},
		{[]string{"connect", "ws://127.0.0.1:1/", "--log-format", "xml"}, "json or text"},
		{[]string{"serve", "--ping-interval", "1s", "--pong-timeout", "2s"}, "PongTimeout"},
		{[]string{"serve", "stray"}, "unexpected argument"},
		{[]string{"demo", "--clients", "0"}, "at least 1"},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), tc.args, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// TestDemo runs the README's main job, faster paced, and checks that its
// own checks passed.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	var stderr syncio.Buffer
	code := run(context.Background(), []string{"demo", "--clients", "8", "--pace", "0s", "--outage", "1s"}, &out, &stderr)
	if code != 0 {
		t.Fatalf("demo exited %d:\n%s\n%s", code, out.String(), stderr.String())
	}
	// The checks are package invariant's: (a) to (f) each judged at least
	// once and held; the two victims' sessions are (c)'s and (d)'s cases.
	for _, want := range []string{"victim-kill  reaped", "victim-stop  reaped", "sessions     open 8, live clients 8",
		"(c) dead_reaped              2 checks: ok", "(d) live_kept                2 checks: ok", "(f) registry_matches         1 checks: ok"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	for _, inv := range []string{"(a) no_early_retry", "(e) no_send_after_close"} {
		if !regexp.MustCompile(regexp.QuoteMeta(inv) + ` +[1-9]\d* checks: ok`).MatchString(out.String()) {
			t.Errorf("summary lacks %s judged and held:\n%s", inv, out.String())
		}
	}
}
