package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/lifeline-go/lifeline/fsm"
)

func runDiagram(_ context.Context, args []string, stdout, stderr io.Writer) error {
	return diagram(args, stdout, stderr, fsm.Tables())
}

// diagram is runDiagram with the tables as a parameter, so a test can show
// that a table edit makes --check fail.
func diagram(args []string, stdout, stderr io.Writer, tables []*fsm.Table) error {
	fs := newFlagSet("diagram", stderr)
	machine := fs.String("machine", "all", "which lifecycle: client, session, node, peer or all")
	format := fs.String("format", "all", "which format: mermaid, dot or all")
	out := fs.String("out", "docs", "directory the diagram files go to")
	readme := fs.String("readme", "README.md", "file whose marked diagram blocks are refreshed too (empty: none)")
	check := fs.Bool("check", false, "write nothing; exit 1 and name each file that is out of date")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	files, err := diagramFiles(tables, *machine, *format, *out)
	if err != nil {
		return usageError{err}
	}
	if *readme != "" {
		old, err := os.ReadFile(*readme)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err == nil {
			files = append(files, genFile{*readme, spliceDiagrams(string(old), tables)})
		}
	}
	var stale []string
	for _, f := range files {
		cur, err := os.ReadFile(f.path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err == nil && string(cur) == f.content {
			continue
		}
		if *check {
			stale = append(stale, f.path)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f.path, []byte(f.content), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", f.path)
	}
	if len(stale) > 0 {
		for _, p := range stale {
			fmt.Fprintf(stdout, "stale: %s\n", p)
		}
		return exitError{1, fmt.Errorf("%d generated file(s) out of date; run: go run ./cmd/lifeline diagram", len(stale))}
	}
	if *check {
		fmt.Fprintf(stdout, "diagrams up to date (%d files)\n", len(files))
	}
	return nil
}

type genFile struct{ path, content string }

func diagramFiles(tables []*fsm.Table, machine, format, out string) ([]genFile, error) {
	renderers := map[string]func(*fsm.Table) string{"mermaid": fsm.Mermaid, "dot": fsm.DOT}
	ext := map[string]string{"mermaid": ".mmd", "dot": ".dot"}
	var formats []string
	switch format {
	case "all":
		formats = []string{"mermaid", "dot"}
	case "mermaid", "dot":
		formats = []string{format}
	default:
		return nil, fmt.Errorf("-format %q: want mermaid, dot or all", format)
	}
	var files []genFile
	for _, t := range tables {
		if machine != "all" && machine != t.Machine.String() {
			continue
		}
		for _, f := range formats {
			files = append(files, genFile{filepath.Join(out, t.Machine.String()+ext[f]), renderers[f](t)})
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("-machine %q: want client, session, node, peer or all", machine)
	}
	return files, nil
}

// spliceDiagrams replaces the body of every block marked
//
//	<!-- lifeline:diagram client -->
//	...
//	<!-- /lifeline:diagram -->
//
// with the machine's Mermaid diagram in a fenced block. Text outside the
// markers is kept byte for byte.
func spliceDiagrams(doc string, tables []*fsm.Table) string {
	const open, closing = "<!-- lifeline:diagram ", "<!-- /lifeline:diagram -->"
	var b bytes.Buffer
	for {
		i := strings.Index(doc, open)
		if i < 0 {
			b.WriteString(doc)
			return b.String()
		}
		eol := strings.Index(doc[i:], "-->")
		end := strings.Index(doc[i:], closing)
		if eol < 0 || end < 0 || end < eol {
			b.WriteString(doc)
			return b.String()
		}
		name := strings.TrimSpace(doc[i+len(open) : i+eol])
		b.WriteString(doc[:i+eol+3])
		b.WriteString("\n")
		for _, t := range tables {
			if t.Machine.String() == name {
				b.WriteString("```mermaid\n" + fsm.Mermaid(t) + "```\n")
			}
		}
		b.WriteString(closing)
		doc = doc[i+end+len(closing):]
	}
}
