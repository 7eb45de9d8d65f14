package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProcessRSS reads this process's RSS, touches 64 MiB and reads it
// again: the growth must show, in bytes (a parser that forgot VmRSS is in
// kB sees 1/1024 of it). The upper bound leaves room for the race
// detector's shadow memory, which doubles what is touched.
func TestProcessRSS(t *testing.T) {
	const size = 64 << 20
	before, err := processRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, size)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	after, err := processRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if grew := after - before; grew < size*9/10 || grew > size*4 {
		t.Errorf("RSS grew %d bytes after touching %d", grew, size)
	}
	if b[size-4096] != 1 {
		t.Fatal("unreachable: keeps b alive")
	}
}

func TestProcessRSSNoSuchProcess(t *testing.T) {
	if _, err := processRSS(1 << 30); err == nil {
		t.Fatal("no error for a process that does not exist")
	}
}

func TestRSSSummary(t *testing.T) {
	at := func(n int64, per float64) rssResult { return rssResult{Sessions: n, RSSPer: per} }
	peer := at(5000, 4000)
	tests := []struct {
		name       string
		l, naive   rssResult
		peer       *rssResult
		note       string
		want, deny []string
	}{
		{
			name: "all met", l: at(5000, 2900), naive: at(5000, 17000), peer: &peer,
			want: []string{"lifeline 2.90 KB RSS/session", "5.86x less", "goal <= 3.0 KB: met", "goal >= 5x: met", "goal lower than the peer: met"},
			deny: []string{"NOT"},
		},
		{
			name: "today's shape", l: at(5000, 7400), naive: at(5000, 17200), peer: &peer,
			want: []string{"goal <= 3.0 KB: NOT met", "goal >= 5x: NOT met", "lifeline 1.85x of it; goal lower than the peer: NOT met"},
		},
		{
			// 3.0 KB is 3000 bytes, not 3 KiB.
			name: "3001 bytes", l: at(5000, 3001), naive: at(5000, 30000), peer: &peer,
			want: []string{"goal <= 3.0 KB: NOT met", "goal >= 5x: met"},
		},
		{
			name: "equal to the peer is not lower", l: at(5000, 4000), naive: at(5000, 30000), peer: &peer,
			want: []string{"goal lower than the peer: NOT met"},
		},
		{
			name: "no peer", l: at(5000, 2000), naive: at(5000, 30000), note: "peer x NOT measured: no module",
			want: []string{"goal lower than the peer: not judged (peer x NOT measured: no module)"},
		},
		{
			name: "other size", l: at(19900, 1000), naive: at(19900, 30000), peer: &peer,
			want: []string{"19900 sessions", "goal <= 3.0 KB: judged at 5000 only", "goal >= 5x: judged at 5000 only"},
			deny: []string{": met"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rssSummary(tt.l, tt.naive, tt.peer, "x", tt.note)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("summary lacks %q:\n%s", w, got)
				}
			}
			for _, d := range tt.deny {
				if strings.Contains(got, d) {
					t.Errorf("summary has %q:\n%s", d, got)
				}
			}
		})
	}
}

func TestPerGiB(t *testing.T) {
	if got := (rssResult{RSSPer: 4096}).PerGiB(); got != 262144 {
		t.Errorf("PerGiB at 4 KiB = %v, want 262144", got)
	}
}

func TestBuildPeerNoModule(t *testing.T) {
	dir := t.TempDir()
	_, _, err := buildPeer(dir)
	if err == nil || !strings.Contains(err.Error(), "no tools/wslibmem module") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("buildPeer(%q) = %v, want an error naming the missing module and the directory", dir, err)
	}
}

// TestBuildPeerCompileError: a module that does not compile is reported
// with the compiler's words, and leaves no temporary directory behind.
func TestBuildPeerCompileError(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module broken\n\ngo 1.26\n")
	write("main.go", "package main\n\nfunc main() { undefinedName() }\n")
	tmpBefore, _ := filepath.Glob(filepath.Join(os.TempDir(), "lifeline-peer-*"))
	_, _, err := buildPeer(dir)
	if err == nil || !strings.Contains(err.Error(), "undefinedName") {
		t.Fatalf("buildPeer = %v, want the compiler's error", err)
	}
	tmpAfter, _ := filepath.Glob(filepath.Join(os.TempDir(), "lifeline-peer-*"))
	if len(tmpAfter) > len(tmpBefore) {
		t.Errorf("a failed build left %v", tmpAfter)
	}
}

func TestRSSSettle(t *testing.T) {
	if got := rssSettle(3 * time.Second); got != 7500*time.Millisecond {
		t.Errorf("rssSettle(3s) = %s, want 7.5s", got)
	}
	if p := rssPong(3 * time.Second); p != 2*time.Second {
		t.Errorf("rssPong(3s) = %s, want 2s", p)
	}
}
