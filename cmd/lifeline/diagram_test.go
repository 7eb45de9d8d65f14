package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeline-go/lifeline/fsm"
)

func builtin() []*fsm.Table { return fsm.Tables() }

func TestDiagramWriteThenCheck(t *testing.T) {
	dir := t.TempDir()
	out, readme := filepath.Join(dir, "docs"), filepath.Join(dir, "README.md")
	doc := "# x\n\n<!-- lifeline:diagram client -->\nold\n<!-- /lifeline:diagram -->\n\ntail\n"
	if err := os.WriteFile(readme, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-out", out, "-readme", readme}
	var stdout bytes.Buffer
	if err := diagram(args, &stdout, &stdout, builtin()); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"client.mmd", "client.dot", "session.mmd", "session.dot"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	got, _ := os.ReadFile(readme)
	if !strings.Contains(string(got), "```mermaid\n---\ntitle: lifeline client lifecycle") || !strings.HasSuffix(string(got), "\n\ntail\n") || strings.Contains(string(got), "old") {
		t.Fatalf("README block not refreshed:\n%s", got)
	}

	stdout.Reset()
	if err := diagram(append(args, "-check"), &stdout, &stdout, builtin()); err != nil {
		t.Fatalf("check right after writing: %v\n%s", err, stdout.String())
	}
	// A second write changes nothing: the output is byte-stable.
	stdout.Reset()
	if err := diagram(args, &stdout, &stdout, builtin()); err != nil || stdout.Len() != 0 {
		t.Fatalf("rewrite touched files: %v %q", err, stdout.String())
	}

	// A row added to a table and docs not regenerated: check names the
	// stale files and exits 1.
	tables := builtin()
	tables[0].Rows = append(tables[0].Rows, fsm.Row{From: fsm.Idle, Trigger: fsm.DialFailed, To: fsm.Stopped})
	stdout.Reset()
	err := diagram(append(args, "-check"), &stdout, &stdout, tables)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("check after a table edit: err = %v", err)
	}
	for _, f := range []string{filepath.Join(out, "client.mmd"), filepath.Join(out, "client.dot"), readme} {
		if !strings.Contains(stdout.String(), "stale: "+f+"\n") {
			t.Errorf("check did not name %s:\n%s", f, stdout.String())
		}
	}
	if strings.Contains(stdout.String(), "session") {
		t.Errorf("check named an unchanged file:\n%s", stdout.String())
	}
}

func TestDiagramExitCodes(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args []string
		code int
	}{
		{[]string{"diagram", "-out", dir, "-readme", ""}, 0},
		{[]string{"diagram", "-out", dir, "-readme", "", "-check"}, 0},
		{[]string{"diagram", "-out", t.TempDir(), "-readme", "", "-check"}, 1}, // missing files
		{[]string{"diagram", "-machine", "router"}, 2},
		{[]string{"diagram", "-format", "svg"}, 2},
		{[]string{"diagram", "-bogus"}, 2},
		{[]string{"diagram", "extra"}, 2},
		{[]string{"nosuch"}, 2},
		{[]string{"help"}, 0},
	}
	for _, c := range cases {
		var out bytes.Buffer
		if got := run(context.Background(), c.args, &out, &out); got != c.code {
			t.Errorf("lifeline %s: exit %d, want %d\n%s", strings.Join(c.args, " "), got, c.code, out.String())
		}
	}
}
