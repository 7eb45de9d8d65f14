package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/lifeline-go/lifeline/internal/syncio"
)

// TestBenchRSSAndEcho runs issue 14's rows at a small size: every server
// of the RSS row (the naive one, lifeline, the peer built from
// tools/wslibmem) is weighed with its heartbeat seen running, and the
// echo row times every echo while the idle sessions are pinged (the
// echoes last longer than one ping interval, so every idle session pings
// during them). Pong timeouts are 1 s and more: a loaded machine under
// the race detector must not reap the idle sessions.
func TestBenchRSSAndEcho(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server and client processes and builds tools/wslibmem")
	}
	var out bytes.Buffer
	var stderr syncio.Buffer
	code := run(context.Background(), []string{"bench", "-only", "rss,echo", "-rss-sessions", "40", "-rss-ping", "1500ms",
		"-echo-sessions", "40", "-echo-ping", "2s", "-echo-count", "250", "-peer-dir", filepath.Join("..", "..", "tools", "wslibmem")},
		&out, &stderr)
	if code != 0 {
		t.Fatalf("bench exited %d:\n%s\n%s", code, out.String(), stderr.String())
	}
	got := out.String()
	for _, server := range []string{"naive-heartbeat", "lifeline", "peer gobwas/epoll"} {
		m := regexp.MustCompile(`rss server="` + regexp.QuoteMeta(server) + `" sessions=40 rss/session=(-?\d+) .* pings_answered=(\d+)`).FindStringSubmatch(got)
		if m == nil {
			t.Errorf("no rss row for %s:\n%s", server, got)
			continue
		}
		// Two and a half ping rounds ran before the weighing: at least
		// two pings per session were answered.
		if p, _ := strconv.Atoi(m[2]); p < 2*40 {
			t.Errorf("%s: %d pings answered by 40 sessions, want >= 80: the heartbeat did not run", server, p)
		}
	}
	if !strings.Contains(got, "summary: 40 sessions: lifeline ") || !strings.Contains(got, "; peer gobwas/epoll ") {
		t.Errorf("no rss summary naming the peer:\n%s", got)
	}
	for _, server := range []string{"naive-heartbeat", "lifeline"} {
		m := regexp.MustCompile(`echo server=` + server + ` idle_sessions=40 echoes=250 p50_ms=\S+ p90_ms=\S+ p99_ms=\S+ max_ms=\S+ pings_answered_during=(\d+)`).FindStringSubmatch(got)
		if m == nil {
			t.Errorf("no echo row of %s with 250 echoes:\n%s", server, got)
			continue
		}
		if p, _ := strconv.Atoi(m[1]); p == 0 {
			t.Errorf("%s: no ping answered while 2.5s of echoes ran with a 2s ping:\n%s", server, got)
		}
	}
	if !strings.Contains(got, "summary: echo p99 with 40 idle sessions heartbeating: lifeline ") {
		t.Errorf("no echo summary:\n%s", got)
	}
}

// TestBenchRSSWithoutPeer: a peer that cannot be built is named, with the
// reason, in the output and in the summary; the rest is measured.
func TestBenchRSSWithoutPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server and client processes")
	}
	var out bytes.Buffer
	var stderr syncio.Buffer
	dir := t.TempDir()
	code := run(context.Background(), []string{"bench", "-only", "rss", "-rss-sessions", "20", "-rss-ping", "1500ms", "-peer-dir", dir}, &out, &stderr)
	if code != 0 {
		t.Fatalf("bench exited %d:\n%s\n%s", code, out.String(), stderr.String())
	}
	got := out.String()
	for _, want := range []string{
		"peer gobwas/epoll NOT measured: no tools/wslibmem module at \"" + dir + "\"",
		`rss server="lifeline" sessions=20`,
		"goal lower than the peer: not judged (peer gobwas/epoll NOT measured",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, `rss server="peer`) {
		t.Errorf("a peer row without a peer:\n%s", got)
	}
}

func TestBenchFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "-rss-sessions", "5000,x"}, `-rss-sessions: "x" is not a session count`},
		{[]string{"bench", "-rss-sessions", "0"}, `-rss-sessions: "0" is not a session count`},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), tc.args, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
