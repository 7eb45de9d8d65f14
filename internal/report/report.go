// Package report collects the rows of docs/reliability.md from the tests
// that measure them: a test calls Add with what it observed, and when
// LIFELINE_RELIABILITY_OUT names a file the row is appended to it as one
// JSON line. internal/report/render turns the file into the document's
// tables, so every figure there comes from a run, not from a keyboard.
//
// Regenerate the document (root, namespaces and the interop peers needed
// for every row):
//
//	scripts/reliability-report
package report

import (
	"encoding/json"
	"os"
	"sync"
	"testing"
)

// env names the file rows are appended to. Unset: Add only logs.
const env = "LIFELINE_RELIABILITY_OUT"

// Row is one fault or bad input and what a run observed.
type Row struct {
	// Section groups rows: "Fault matrix", "Hostile input", ...
	Section string `json:"section"`
	// Case names the fault, e.g. "SIGKILL of the client".
	Case string `json:"case"`
	// Path is the observed state path or answer, e.g.
	// "session Alive→Reaped (read_error)".
	Path string `json:"path"`
	// Bound is what the policy allows, e.g. "≤ ping+pong+50ms = 1.55s".
	Bound string `json:"bound"`
	// Observed is the measured figure against the bound.
	Observed string `json:"observed"`
	// Evidence is the "nothing lost" count: sessions against live
	// clients, messages sent against received.
	Evidence string `json:"evidence"`
	// Test names the test that produced the row.
	Test string `json:"test"`
}

var mu sync.Mutex

// Add logs r on t and, with env set, appends it to that file.
func Add(t testing.TB, r Row) {
	t.Helper()
	r.Test = t.Name()
	t.Logf("%s | %s | %s | bound %s | observed %s | %s", r.Section, r.Case, r.Path, r.Bound, r.Observed, r.Evidence)
	path := os.Getenv(env)
	if path == "" {
		return
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	defer f.Close()
	if _, err := f.Write(append(b, '\n')); err != nil {
		t.Fatalf("report: %v", err)
	}
}
