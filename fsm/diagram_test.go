package fsm

import (
	"html"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var (
	dotEdge = regexp.MustCompile(`^\t"?([^" ]+)"? -> "?([^" ]+)"? \[label=(.*)\];$`)
	dotCell = regexp.MustCompile(`<TD ALIGN="LEFT">(.*?)</TD>`)
)

// toGraphEdges parses stateless' own DOT output into "from -> to: label"
// strings, one per trigger and guard.
func toGraphEdges(t *testing.T, dot string) []string {
	t.Helper()
	var edges []string
	for _, line := range strings.Split(dot, "\n") {
		m := dotEdge.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, cell := range dotCell.FindAllStringSubmatch(m[3], -1) {
			edges = append(edges, m[1]+" -> "+m[2]+": "+html.UnescapeString(cell[1]))
		}
	}
	slices.Sort(edges)
	return edges
}

func tableEdges(tb *Table) []string {
	var edges []string
	for _, r := range tb.Rows {
		edges = append(edges, r.From.String()+" -> "+r.To.String()+": "+r.label())
	}
	slices.Sort(edges)
	return edges
}

// The table and the machine the runtime fires cannot drift: the edges
// stateless reports for the built machine are exactly the table's rows.
func TestToGraphMatchesTable(t *testing.T) {
	for _, tb := range Tables() {
		t.Run(tb.Machine.String(), func(t *testing.T) {
			sm, err := build(tb)
			if err != nil {
				t.Fatal(err)
			}
			got, want := toGraphEdges(t, sm.ToGraph()), tableEdges(tb)
			if len(want) != len(tb.Rows) {
				t.Fatalf("table has duplicate rows")
			}
			if !slices.Equal(got, want) {
				t.Fatalf("stateless edges differ from the table\n got: %q\nwant: %q", got, want)
			}
		})
	}
}

// The check itself must be able to fail: a row the machine lacks shows up.
func TestToGraphCheckBites(t *testing.T) {
	tb := ClientTable()
	sm, err := build(tb)
	if err != nil {
		t.Fatal(err)
	}
	tb.Rows = append(tb.Rows, Row{Idle, DialFailed, Stopped, NoGuard})
	if slices.Equal(toGraphEdges(t, sm.ToGraph()), tableEdges(tb)) {
		t.Fatal("an extra table row went unnoticed")
	}
}

func TestDiagramsAreStableAndComplete(t *testing.T) {
	for _, mk := range []func() *Table{ClientTable, SessionTable, NodeTable, PeerTable} {
		tb := mk()
		mmd, dot := Mermaid(tb), DOT(tb)
		// Shuffled rows render to the same bytes.
		r := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < 20; i++ {
			sh := mk()
			r.Shuffle(len(sh.Rows), func(i, j int) { sh.Rows[i], sh.Rows[j] = sh.Rows[j], sh.Rows[i] })
			if Mermaid(sh) != mmd || DOT(sh) != dot {
				t.Fatalf("%s: diagram depends on row order", tb.Machine)
			}
		}
		if !strings.Contains(mmd, "stateDiagram-v2") || !strings.HasPrefix(dot, "digraph ") {
			t.Fatalf("%s: not a Mermaid state diagram / DOT graph", tb.Machine)
		}
		for _, s := range tb.States {
			if !strings.Contains(mmd, "state "+s.String()+"\n") || !strings.Contains(dot, "\t"+s.String()) {
				t.Errorf("%s: state %s missing from a diagram", tb.Machine, s)
			}
		}
		for _, r := range tb.Rows {
			edge := r.From.String() + " --> " + r.To.String() + ": " + r.label() + "\n"
			if !strings.Contains(mmd, edge) {
				t.Errorf("%s: mermaid lacks %q", tb.Machine, edge)
			}
		}
	}
}
