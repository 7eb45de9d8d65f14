package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/internal/syncio"
)

// metricsURL returns the URL a serving command logged for --metrics.
func metricsURL(t *testing.T, logs *syncio.Buffer) string {
	t.Helper()
	var url string
	waitUntil(t, 5*time.Second, func() bool {
		for _, l := range strings.Split(logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "metrics" {
				url = m["url"].(string)
				return true
			}
		}
		return false
	})
	if url == "" {
		t.Fatalf("no metrics line logged:\n%s", logs.String())
	}
	return url
}

// scrape reads the Prometheus text at url into name{labels} → value,
// comments and histogram buckets left out.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want Prometheus text", ct)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") || strings.Contains(l, "_bucket{") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", l, err)
		}
		out[l[:i]] = v
	}
	return out
}

// checkAgainstStats compares every count the endpoint shares with /stats,
// exactly.
func checkAgainstStats(t *testing.T, got map[string]float64, st map[string]any) {
	t.Helper()
	for state, n := range st["sessions"].(map[string]any) {
		k := `lifeline_server_sessions{lifeline_session_state="` + state + `"}`
		if got[k] != n.(float64) {
			t.Errorf("%s = %v, /stats says %v", k, got[k], n)
		}
	}
	for reason, n := range st["reaped"].(map[string]any) {
		k := `lifeline_server_reaps_total{lifeline_session_reason="` + reason + `"}`
		if got[k] != n.(float64) {
			t.Errorf("%s = %v, /stats says %v", k, got[k], n)
		}
	}
	for k, stat := range map[string]string{
		"lifeline_server_handshakes_refused_total":    "refused",
		"lifeline_server_handshakes_overloaded_total": "overloaded",
		"lifeline_server_send_queue_dropped_total":    "dropped_messages",
	} {
		if got[k] != st[stat].(float64) {
			t.Errorf("%s = %v, /stats %s says %v", k, got[k], stat, st[stat])
		}
	}
}

// TestServeMetrics runs `serve --metrics` with a live peer (it answers
// pings), a silent one (reaped for silence) and a refused handshake, and
// checks the scraped numbers against /stats and against what happened.
func TestServeMetrics(t *testing.T) {
	addr, logs := startServe(t, "--token", "T", "--ping-interval", "150ms", "--pong-timeout", "100ms", "--metrics", "127.0.0.1:0")
	url := metricsURL(t, logs)
	hdr := http.Header{"Authorization": {"Bearer T"}}
	live, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/", hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	go func() {
		for {
			if _, _, err := live.ReadMessage(); err != nil {
				return
			}
		}
	}()
	silent, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/", hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close() // never read: its pings go unanswered
	if _, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/", nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dial without token: %v, want 401", err)
	}
	var got map[string]float64
	if !waitUntil(t, 10*time.Second, func() bool {
		got = scrape(t, url)
		return got[`lifeline_server_reaps_total{lifeline_session_reason="pong_timeout"}`] == 1 &&
			got["lifeline_server_ping_rtt_seconds_count"] >= 1
	}) {
		t.Fatalf("silent peer not reaped or no round trip measured: %v", got)
	}
	st := getStats(t, addr, "T")
	got = scrape(t, url)
	checkAgainstStats(t, got, st)
	for k, want := range map[string]float64{
		`lifeline_server_reaps_total{lifeline_session_reason="pong_timeout"}`:                    1,
		`lifeline_server_session_duration_seconds_count{lifeline_session_reason="pong_timeout"}`: 1,
		"lifeline_server_handshakes_refused_total":                                               1,
		"lifeline_server_sessions_unproven":                                                      0,
		"lifeline_server_sessions_anomaly_ratio":                                                 0,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if open := got[`lifeline_server_sessions{lifeline_session_state="Alive"}`] + got[`lifeline_server_sessions{lifeline_session_state="Suspect"}`]; open != 1 {
		t.Errorf("open sessions %v, want the live peer's 1", open)
	}
}

// TestOneBotServeMetrics: onebot serve takes the same flag and exports
// the same instruments.
func TestOneBotServeMetrics(t *testing.T) {
	addr, logs := startListening(t, []string{"onebot", "serve"}, "--self-id", "10001", "--access-token", "T", "--metrics", "127.0.0.1:0")
	url := metricsURL(t, logs)
	if _, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/event", nil); err == nil {
		t.Fatal("dial without token succeeded")
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/event?access_token=T", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	// The client has its 101 before the server's handler counts the
	// session Alive: wait for that, bounded.
	var got map[string]float64
	if !waitUntil(t, 5*time.Second, func() bool {
		got = scrape(t, url)
		return got[`lifeline_server_sessions{lifeline_session_state="Alive"}`] == 1
	}) {
		t.Fatalf("want 1 Alive: %v", got)
	}
	checkAgainstStats(t, got, getStats(t, addr, "T"))
	if got["lifeline_server_handshakes_refused_total"] != 1 {
		t.Errorf("want 1 refused: %v", got)
	}
}

func TestMetricsFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--metrics", "127.0.0.1:0", "--expected-peers", "-1"}, "-expected-peers must not be negative"},
		{[]string{"serve", "--metrics", "127.0.0.1:0", "--anomaly-interval", "0s"}, "-anomaly-interval must be positive"},
		{[]string{"serve", "--addr", "127.0.0.1:0", "--metrics", "256.0.0.1:1"}, "-metrics"},
	} {
		var errb strings.Builder
		code := run(t.Context(), c.args, &strings.Builder{}, &errb)
		if code == 0 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", c.args, code, errb.String(), c.want)
		}
	}
}

// TestDashboardNamesExist: every metric the Grafana dashboard queries is
// in docs/metrics.md's table, and every server metric it queries is one
// `serve --metrics` really exports (a renamed instrument breaks here, not
// in an operator's empty panel).
func TestDashboardNamesExist(t *testing.T) {
	dash, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	table, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(dash) {
		t.Fatal("dashboard is not valid JSON")
	}
	_, logs := startServe(t, "--metrics", "127.0.0.1:0")
	var exported strings.Builder
	for k := range scrape(t, metricsURL(t, logs)) {
		exported.WriteString(k + "\n")
	}
	var names []string // metric names: each query selects one with {job=~"$job"}
	for _, m := range regexp.MustCompile(`(lifeline_[a-z_]+)\{`).FindAllStringSubmatch(string(dash), -1) {
		names = append(names, m[1])
	}
	if len(names) < 10 {
		t.Fatalf("dashboard queries only %d metrics", len(names))
	}
	for _, n := range names {
		base := strings.TrimSuffix(n, "_bucket")
		if !strings.Contains(string(table), "`"+base+"`") {
			t.Errorf("dashboard queries %s, which docs/metrics.md does not list", n)
		}
		// A histogram appears once it has a value: TestServeMetrics
		// checks the server's two by their _count.
		if strings.HasPrefix(n, "lifeline_server_") && !strings.HasSuffix(n, "_bucket") && !strings.Contains(exported.String(), base) {
			t.Errorf("dashboard queries %s, which serve --metrics does not export", n)
		}
	}
}
