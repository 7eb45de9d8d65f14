package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunReplacesBetweenMarkers(t *testing.T) {
	dir := t.TempDir()
	rows := filepath.Join(dir, "rows.jsonl")
	doc := filepath.Join(dir, "doc.md")
	_ = os.WriteFile(rows, []byte(`{"section":"S","case":"a|b","path":"p","bound":"1s","observed":"2ms","evidence":"0 lost","test":"TestX"}`+"\n"), 0o644)
	_ = os.WriteFile(doc, []byte("intro\n"+begin+"\nstale\n"+end+"\noutro\n"), 0o644)
	if err := run(rows, doc); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(doc)
	for _, want := range []string{"intro\n" + begin, "### S", `| a\|b | p | 1s | 2ms | 0 lost | ` + "`TestX` |", end + "\noutro\n"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("document lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(string(got), "stale") {
		t.Errorf("old table kept:\n%s", got)
	}
	_ = os.WriteFile(doc, []byte("no markers\n"), 0o644)
	if err := run(rows, doc); err == nil || !strings.Contains(err.Error(), "markers") {
		t.Errorf("missing markers: %v", err)
	}
	_ = os.WriteFile(rows, []byte("{bad\n"), 0o644)
	if err := run(rows, doc); err == nil || !strings.Contains(err.Error(), "rows.jsonl:1") {
		t.Errorf("bad row: %v", err)
	}
}
