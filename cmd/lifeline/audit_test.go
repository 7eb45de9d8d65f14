package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/internal/proc"
	"github.com/lifeline-go/lifeline/internal/syncio"
)

// auditPolicy is the fault run's policy, as serve's and connect's flags:
// audit is handed the very same flags.
var (
	serverPolicy = []string{"--ping-interval", "300ms", "--pong-timeout", "200ms"}
	clientPolicy = []string{"--initial", "100ms", "--max", "1s"}
	auditPolicy  = append(append([]string{}, serverPolicy...), clientPolicy...)
)

// faultRun runs real serve and connect processes through the fault
// matrix's server-side and client-side faults on 127.0.0.1: a client
// frozen (SIGSTOP: reaped for silence), a client killed (kill -9: RST), a
// server restart the survivor reconnects through, and a clean stop. It
// writes each process's JSON log to dir and returns the file names.
func faultRun(t *testing.T, dir string) []string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	self := proc.Self{Argv: []string{exe}, Env: []string{mainEnv + "=1"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	logs := map[string]*syncio.Buffer{}
	start := func(name string, policy []string, args ...string) *proc.Child {
		t.Helper()
		logs[name] = &syncio.Buffer{}
		c, err := self.Start(logs[name], append(append(args, "--log-format", "json"), policy...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Kill)
		return c
	}
	count := func(name, substr string) int { return strings.Count(logs[name].String(), substr) }
	wait := func(what string, cond func() bool) {
		t.Helper()
		if !waitUntil(t, 15*time.Second, cond) {
			t.Fatalf("waiting for %s; logs:\n%v", what, logs)
		}
	}
	connect := func(name string) *proc.Child {
		return start(name, auditPolicy, "connect", "ws://"+addr+"/", "--id", name)
	}
	s1 := start("server1", serverPolicy, "serve", "--addr", addr)
	wait("server1 listening", func() bool { return count("server1", `"msg":"listening"`) == 1 })
	frozen, killed, survivor := connect("frozen"), connect("killed"), connect("survivor")
	wait("three sessions", func() bool { return count("server1", `"trigger":"upgraded"`) == 3 })
	if _, err := frozen.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	wait("the frozen peer reaped for silence", func() bool { return count("server1", `"trigger":"pong_timeout"`) == 1 })
	frozen.Kill()
	if _, err := killed.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wait("the killed peer's session reaped", func() bool { return count("server1", `"to":"Reaped"`) == 2 })
	killed.Kill()
	if _, err := s1.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	wait("server1 stopped and the survivor refused three times", func() bool {
		return count("server1", `"msg":"stopped"`) == 1 && count("survivor", `"trigger":"dial_failed"`) >= 3
	})
	s2 := start("server2", serverPolicy, "serve", "--addr", addr)
	wait("the survivor back", func() bool { return count("server2", `"trigger":"upgraded"`) == 1 })
	_, _ = survivor.Signal(syscall.SIGINT)
	wait("the survivor stopped", func() bool { return count("survivor", `"to":"Stopped"`) == 1 })
	_, _ = s2.Signal(syscall.SIGINT)
	wait("server2 stopped", func() bool { return count("server2", `"msg":"stopped"`) == 1 })
	var files []string
	for _, name := range []string{"server1", "server2", "frozen", "killed", "survivor"} {
		f := filepath.Join(dir, name+".log")
		if err := os.WriteFile(f, []byte(logs[name].String()), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// auditJSON runs lifeline audit with the fault run's policy and returns
// its exit status and JSON report.
func auditJSON(t *testing.T, args ...string) (int, map[string]any) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), append(append([]string{"audit", "--json"}, auditPolicy...), args...), &out, &errb)
	var rep map[string]any
	if code != 2 {
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("audit --json output: %v\n%s\nstderr: %s", err, out.String(), errb.String())
		}
	}
	return code, rep
}

// findings returns the report's findings as invariant → where.
func findings(rep map[string]any) map[string]string {
	m := map[string]string{}
	fs, _ := rep["findings"].([]any)
	for _, f := range fs {
		f := f.(map[string]any)
		where, _ := f["where"].(string)
		m[f["invariant"].(string)] = filepath.Base(where)
	}
	return m
}

// TestAuditFaultRun audits the logs of a real fault run: clean, with
// every judged promise checked; then plants, in copies of those logs, an
// early retry, an unjust reap and a retry after a give-up, and wants each
// found at its line, exit 1.
func TestAuditFaultRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	dir := t.TempDir()
	files := faultRun(t, dir)
	code, rep := auditJSON(t, files...)
	if code != 0 {
		t.Fatalf("audit of a healthy fault run exited %d: %v", code, rep["findings"])
	}
	checked := map[string]float64{}
	for _, v := range rep["verdicts"].([]any) {
		v := v.(map[string]any)
		checked[v["invariant"].(string)] = v["checked"].(float64)
	}
	for _, inv := range []string{"no_early_retry", "bounded_retries", "dead_reaped", "live_kept"} {
		if checked[inv] == 0 {
			t.Errorf("%s never checked on the fault run: %v", inv, checked)
		}
	}

	plant := func(name, file string, edit func([]string) []string) string {
		t.Helper()
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lines := edit(strings.Split(strings.TrimSpace(string(b)), "\n"))
		out := filepath.Join(dir, name+".log")
		if err := os.WriteFile(out, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return out
	}
	// lineOf finds the first line holding every one of subs after line from.
	lineOf := func(lines []string, from int, subs ...string) int {
		t.Helper()
	next:
		for i := from; i < len(lines); i++ {
			for _, s := range subs {
				if !strings.Contains(lines[i], s) {
					continue next
				}
			}
			return i
		}
		t.Fatalf("no line with %q in\n%s", subs, strings.Join(lines, "\n"))
		return -1
	}
	setTime := func(line string, at time.Time) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		return strings.Replace(line, m["time"].(string), at.Format(time.RFC3339Nano), 1)
	}
	timeOf := func(line string) time.Time {
		var m struct{ Time time.Time }
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		return m.Time
	}
	server1, survivor := files[0], files[4]
	cases := []struct {
		name, invariant string
		replace         int // the index in files of the planted copy
		file            string
		edit            func([]string) []string
	}{{
		// The survivor's retry after its second refusal (a 100ms-class
		// delay) moved to 1ms after the refusal: the field report's tight loop.
		name: "early-retry", invariant: "no_early_retry", replace: 4, file: survivor,
		edit: func(l []string) []string {
			f := lineOf(l, 0, `"trigger":"dial_failed"`, `"delay_ms"`)
			f = lineOf(l, f+1, `"trigger":"dial_failed"`, `"delay_ms"`)
			r := lineOf(l, f+1, `"trigger":"retry_due"`)
			l[r] = setTime(l[r], timeOf(l[f]).Add(time.Millisecond))
			return l
		},
	}, {
		// The frozen peer's reap claims a silence of 100ms: reaped before
		// the liveness window had passed.
		name: "unjust-reap", invariant: "live_kept", replace: 0, file: server1,
		edit: func(l []string) []string {
			r := lineOf(l, 0, `"trigger":"pong_timeout"`)
			var m map[string]any
			_ = json.Unmarshal([]byte(l[r]), &m)
			l[r] = strings.Replace(l[r], `"silent_ms":`+jsonNum(m["silent_ms"]), `"silent_ms":100`, 1)
			return l
		},
	}, {
		// The survivor, told to give up after its refusals, dials again.
		name: "retry-after-give-up", invariant: "bounded_retries", replace: 4, file: survivor,
		edit: func(l []string) []string {
			f := lineOf(l, 0, `"trigger":"dial_failed"`, `"delay_ms"`)
			f = lineOf(l, f+1, `"trigger":"dial_failed"`, `"delay_ms"`)
			at := timeOf(l[f])
			gave := strings.NewReplacer(`"to":"BackingOff"`, `"to":"GaveUp"`).Replace(l[f])
			again := setTime(strings.NewReplacer(`"from":"BackingOff"`, `"from":"GaveUp"`).Replace(l[lineOf(l, f+1, `"trigger":"retry_due"`)]),
				at.Add(5*time.Second))
			return append(append(l[:f:f], gave), again)
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			planted := append([]string{}, files...)
			planted[c.replace] = plant(c.name, c.file, c.edit)
			args := planted
			if c.name == "retry-after-give-up" {
				args = append([]string{"--max-attempts", "2"}, planted...)
			}
			code, rep := auditJSON(t, args...)
			if code != 1 {
				t.Fatalf("audit exited %d on a planted %s, want 1: %v", code, c.name, rep["findings"])
			}
			where, ok := findings(rep)[c.invariant]
			if !ok || !strings.HasPrefix(where, c.name+".log:") {
				t.Fatalf("findings %v, want %s in %s.log", rep["findings"], c.invariant, c.name)
			}
		})
	}
}

func jsonNum(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestAuditStdinAndBadInput(t *testing.T) {
	var out, errb bytes.Buffer
	good := `{"time":"2026-11-29T12:00:00Z","level":"INFO","msg":"transition","machine":"client","id":"c","from":"Idle","to":"Connecting","trigger":"start"}`
	if err := auditLogs(nil, strings.NewReader(good+"\n"), &out, &errb); err != nil || !strings.Contains(out.String(), "clean") {
		t.Fatalf("stdin audit: %v\n%s", err, out.String())
	}
	cases := []struct {
		args  []string
		stdin string
		want  string
	}{
		{nil, good + "\n{oops\n", "-:2: not a JSON log line"},
		{[]string{"--jitter", "wobbly"}, "", "wobbly"},
		{[]string{"--pong-timeout", "-1s"}, "", "PongTimeout"},
		{[]string{"/no/such/file"}, "", "no such file"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := 0
		if err := auditLogs(c.args, strings.NewReader(c.stdin), &out, &errb); err != nil {
			errb.WriteString(err.Error())
			var ue usageError
			if errors.As(err, &ue) {
				code = 2
			}
		}
		if code != 2 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("audit %v: exit %d, stderr %q; want 2 and %q", c.args, code, errb.String(), c.want)
		}
	}
}
