// Command render writes the generated part of docs/reliability.md from
// the rows the tests appended to a JSON-lines file (package report).
//
//	go run ./internal/report/render -in rows.jsonl -doc docs/reliability.md
//
// The tables replace what lies between the markers
// <!-- reliability:begin --> and <!-- reliability:end --> in the document.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/lifeline-go/lifeline/internal/report"
)

const begin, end = "<!-- reliability:begin -->", "<!-- reliability:end -->"

func main() {
	in := flag.String("in", "", "JSON-lines file of report rows")
	doc := flag.String("doc", "docs/reliability.md", "document to update between the markers")
	flag.Parse()
	if err := run(*in, *doc); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(in, doc string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	var order []string
	rows := map[string][]report.Row{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		var r report.Row
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("%s:%d: %w", in, n, err)
		}
		if _, ok := rows[r.Section]; !ok {
			order = append(order, r.Section)
		}
		rows[r.Section] = append(rows[r.Section], r)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	// Sections in reading order: the fault matrix first, whatever order
	// the tests ran in; sections not named here follow as they came.
	slices.SortStableFunc(order, func(x, y string) int { return rank(x) - rank(y) })
	var b bytes.Buffer
	b.WriteString(begin + "\n")
	for _, sec := range order {
		fmt.Fprintf(&b, "\n### %s\n\n", sec)
		b.WriteString("| case | observed path | bound | measured | nothing lost | test |\n|---|---|---|---|---|---|\n")
		for _, r := range rows[sec] {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | `%s` |\n", cell(r.Case), cell(r.Path), cell(r.Bound),
				cell(r.Observed), cell(r.Evidence), r.Test)
		}
	}
	b.WriteString("\n" + end)
	old, err := os.ReadFile(doc)
	if err != nil {
		return err
	}
	i, j := bytes.Index(old, []byte(begin)), bytes.Index(old, []byte(end))
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s … %s markers", doc, begin, end)
	}
	out := append(append(append([]byte{}, old[:i]...), b.Bytes()...), old[j+len(end):]...)
	return os.WriteFile(doc, out, 0o644)
}

// sectionOrder lists section title prefixes in the order the document
// presents them.
var sectionOrder = []string{"Fault matrix", "Hostile input", "Churn soak", "OneBot interop"}

func rank(section string) int {
	for i, p := range sectionOrder {
		if strings.HasPrefix(section, p) {
			return i
		}
	}
	return len(sectionOrder)
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
