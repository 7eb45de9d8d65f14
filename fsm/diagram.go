package fsm

import (
	"fmt"
	"slices"
	"strings"
)

// sortedRows returns t's rows in a canonical order: by the From state's
// position in States, then trigger name, then guard name, then To. Diagrams
// made from it do not depend on the order rows were written in.
func (t *Table) sortedRows() []Row {
	pos := map[State]int{}
	for i, s := range t.States {
		pos[s] = i
	}
	rows := slices.Clone(t.Rows)
	slices.SortStableFunc(rows, func(a, b Row) int {
		if c := pos[a.From] - pos[b.From]; c != 0 {
			return c
		}
		if c := strings.Compare(a.Trigger.String(), b.Trigger.String()); c != 0 {
			return c
		}
		if c := strings.Compare(a.Guard.String(), b.Guard.String()); c != 0 {
			return c
		}
		return pos[a.To] - pos[b.To]
	})
	return rows
}

// label is an edge label: the trigger, and the guard in brackets.
func (r Row) label() string {
	if r.Guard == NoGuard {
		return r.Trigger.String()
	}
	return r.Trigger.String() + " [" + r.Guard.String() + "]"
}

// Mermaid renders t as a Mermaid stateDiagram-v2. The output is byte-stable:
// the same table gives the same bytes whatever the order of its rows.
func Mermaid(t *Table) string {
	var b strings.Builder
	fmt.Fprintf(&b, "---\ntitle: lifeline %s lifecycle\n---\nstateDiagram-v2\n", t.Machine)
	for _, s := range t.States {
		fmt.Fprintf(&b, "    state %s\n", s)
	}
	fmt.Fprintf(&b, "    [*] --> %s\n", t.Initial)
	for _, r := range t.sortedRows() {
		fmt.Fprintf(&b, "    %s --> %s: %s\n", r.From, r.To, r.label())
	}
	for _, s := range t.States {
		if t.isTerminal(s) {
			fmt.Fprintf(&b, "    %s --> [*]\n", s)
		}
	}
	return b.String()
}

// DOT renders t as a Graphviz digraph, byte-stable like Mermaid. Terminal
// states are drawn with a double border.
func DOT(t *Table) string {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n\trankdir=LR;\n\tnode [shape=box, style=rounded];\n", t.Machine)
	b.WriteString("\t__start [shape=point, label=\"\"];\n")
	for _, s := range t.States {
		if t.isTerminal(s) {
			fmt.Fprintf(&b, "\t%s [peripheries=2];\n", s)
		} else {
			fmt.Fprintf(&b, "\t%s;\n", s)
		}
	}
	fmt.Fprintf(&b, "\t__start -> %s;\n", t.Initial)
	for _, r := range t.sortedRows() {
		fmt.Fprintf(&b, "\t%s -> %s [label=%q];\n", r.From, r.To, r.label())
	}
	b.WriteString("}\n")
	return b.String()
}
