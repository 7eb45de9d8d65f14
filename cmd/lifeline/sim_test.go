package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lifeline-go/lifeline/invariant"
)

// simJSON runs `lifeline sim` with args plus --json and returns its
// output with the timing object (the only real-time figures) removed.
func simJSON(t *testing.T, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), append([]string{"sim", "--json"}, args...), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(stdout.Bytes(), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout.String())
	}
	if _, ok := m["timing"]; !ok {
		t.Fatalf("no timing in %s", stdout.String())
	}
	delete(m, "timing")
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The reproducibility promise, verbatim: two runs of
// `lifeline sim --seed 7 --clients 1000 --duration 1h --json` print the
// same output apart from the real-time figures.
func TestSimJSONIsReproducible(t *testing.T) {
	args := []string{"--seed", "7", "--clients", "1000", "--duration", "1h"}
	a, b := simJSON(t, args...), simJSON(t, args...)
	if !bytes.Equal(a, b) {
		t.Fatalf("two runs differ:\n%s\n%s", a, b)
	}
	if c := simJSON(t, "--seed", "8", "--clients", "1000", "--duration", "1h"); bytes.Equal(a, c) {
		t.Fatal("seed 8 printed the same report as seed 7: the seed does not reach the world")
	}
	var rep struct {
		Invariants []struct {
			Letter     string `json:"letter"`
			Violations int    `json:"violations"`
		} `json:"invariants"`
		Stats struct {
			Attempts int `json:"attempts"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(a, &rep); err != nil {
		t.Fatal(err)
	}
	want := 0 // every invariant but the cluster's and the outbox's, which a run without them does not report
	for _, i := range invariant.All {
		if (i < invariant.NodeDeclaredDead || i > invariant.DirectoryMatches) && i != invariant.OutboxFaithful {
			want++
		}
	}
	if len(rep.Invariants) != want || rep.Stats.Attempts < 1000 {
		t.Fatalf("report lacks its verdicts or its attempts: %s", a)
	}
}

func TestSimTraceFileIsByteStable(t *testing.T) {
	dir := t.TempDir()
	var files [2][]byte
	for i := range files {
		path := filepath.Join(dir, "trace"+string(rune('a'+i)))
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"sim", "--seed", "3", "--clients", "20", "--duration", "5m", "--trace", path}, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		for _, want := range []string{"attempts", "backoff delays chosen", "reap latency", "invariants", "(a) no_early_retry", "× real time"} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("report lacks %q:\n%s", want, stdout.String())
			}
		}
		var err error
		if files[i], err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
	}
	if len(files[0]) == 0 || !bytes.Equal(files[0], files[1]) {
		t.Fatalf("traces differ or are empty (%d, %d bytes)", len(files[0]), len(files[1]))
	}
	if !bytes.Contains(files[0], []byte("client 0 transition Idle->Connecting trigger=start attempt=1\n")) {
		t.Fatalf("trace does not start as expected:\n%.400s", files[0])
	}
}

// A broken driver makes the command fail and name the invariant.
func TestSimReportsViolations(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"sim", "--clients", "10", "--duration", "5m", "--faults", "crash:0.5", "--bugs", "no_ping"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stdout.String(), "dead_reaped violated at") || !strings.Contains(stderr.String(), "invariant violation") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
}

// A rate-limited server and a driver that drops its Retry-After: the
// command names (n); the correct driver keeps it, with the cap from
// --policy.
func TestSimHandshakeRate(t *testing.T) {
	args := []string{"sim", "--clients", "50", "--duration", "2m", "--faults", "restart:1", "--handshake-rate", "10/s,1", "--policy", "retry_after_max=20s"}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), "servers admit 10 handshakes/s (burst 1); clients honour Retry-After up to 20s") ||
		!regexp.MustCompile(`rate limited  \d+ handshakes answered 503`).MatchString(stdout.String()) ||
		!regexp.MustCompile(`\(n\) retry_after_floor +held +[1-9]`).MatchString(stdout.String()) {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), append(args, "--bugs", "ignore_retry_after"), &stdout, &stderr); code != 1 ||
		!strings.Contains(stdout.String(), "retry_after_floor violated at") {
		t.Fatalf("broken driver: exit %d\nstdout:\n%s", code, stdout.String())
	}
}

func TestSimScenarioFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.json")
	sc := `{"seed": 5, "clients": 4, "duration": "2m", "faults": [{"kind": "restart", "start": "30s", "end": "40s"}]}`
	if err := os.WriteFile(path, []byte(sc), 0o644); err != nil {
		t.Fatal(err)
	}
	a := simJSON(t, "--scenario", path)
	if !bytes.Contains(a, []byte(`"kind":"restart"`)) {
		t.Fatalf("scenario not used: %s", a)
	}
}

func TestSimBadInput(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"clients": 3, "faults": [{"kind": "meteor"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--clients", "0"}, 2, "Clients must be within"},
		{[]string{"--faults", "meteor"}, 2, `unknown fault kind "meteor"`},
		{[]string{"--faults", "loss:2"}, 2, "loss rate must be below 1"},
		{[]string{"--policy", "initial=soon"}, 2, "--policy: initial"},
		{[]string{"--policy", "pong=40s"}, 2, "PongTimeout must be shorter than PingInterval"},
		{[]string{"--policy", "colour=blue"}, 2, `unknown key "colour"`},
		{[]string{"--bugs", "gremlins"}, 2, `unknown bug "gremlins"`},
		{[]string{"--herd-bound", "2"}, 2, "--herd-bound must be within"},
		{[]string{"--handshake-rate", "0"}, 2, "want R[/s][,BURST]"},
		{[]string{"--policy", "retry_after_max=-1s"}, 2, "RetryAfterMax must not be negative"},
		{[]string{"--scenario", bad}, 1, `unknown fault kind "meteor"`},
		{[]string{"--scenario", bad, "--clients", "3"}, 2, "drop --clients"},
		{[]string{"--scenario", filepath.Join(t.TempDir(), "missing.json")}, 1, "read scenario"},
		{[]string{"--nodes", "17"}, 2, "--nodes must be within [0, 16]"},
		{[]string{"--nodes", "3", "--servers", "2"}, 2, "drop --servers"},
		{[]string{"--lease-ttl", "3s"}, 2, "need --nodes"},
		{[]string{"--nodes", "3", "--lease-ttl", "2500ms"}, 2, "Lease.TTL must be whole seconds"},
		{[]string{"--faults", "node_crash"}, 2, "node_crash needs a cluster"},
		{[]string{"--policy", "outbox_bytes=12QB"}, 2, "--policy: outbox_bytes: want a byte count"},
		{[]string{"--policy", "outbox_count=-3"}, 2, "Outbox.Count must not be negative"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"sim"}, tt.args...), &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("exit %d (want %d), stderr %q lacks %q", code, tt.code, stderr.String(), tt.want)
			}
		})
	}
}

// A cluster run: the cluster fault mix by default, the node-death figures
// and the verdicts of (h) to (k); reproducible like any run.
func TestSimCluster(t *testing.T) {
	args := []string{"--nodes", "3", "--clients", "30", "--duration", "5m", "--lease-ttl", "3s", "--lease-heartbeat", "1s"}
	a := simJSON(t, args...)
	if !bytes.Equal(a, simJSON(t, args...)) {
		t.Fatal("two cluster runs differ")
	}
	var rep struct {
		Scenario struct {
			Faults []struct{ Kind string }
		}
		Stats struct {
			NodeDeath *struct{ N int } `json:"node_death"`
		}
		Invariants []struct {
			Name       string `json:"invariant"`
			Checked    int
			Violations int
		}
	}
	if err := json.Unmarshal(a, &rep); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, f := range rep.Scenario.Faults {
		kinds[f.Kind] = true
	}
	for _, k := range []string{"node_crash", "node_cutoff", "engine_failover", "watch_loss", "watch_delay"} {
		if !kinds[k] {
			t.Errorf("the default cluster mix has no %s", k)
		}
	}
	if rep.Stats.NodeDeath == nil || rep.Stats.NodeDeath.N == 0 {
		t.Errorf("no node-death figures: %s", a)
	}
	checked := map[string]int{}
	for _, v := range rep.Invariants {
		checked[v.Name] = v.Checked
		if v.Violations > 0 {
			t.Errorf("%s violated", v.Name)
		}
	}
	for _, name := range []string{"node_declared_dead", "fenced_first", "delivered_live", "directory_matches"} {
		if checked[name] == 0 {
			t.Errorf("%s never checked", name)
		}
	}
}
