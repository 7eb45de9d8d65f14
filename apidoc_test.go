package lifeline_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestExportsDocumented holds the rule that every exported name carries a
// doc comment (STYLE.md): each exported type, function and method (of an
// exported type) of every library package has one that starts with its
// name (after an optional "A", "An" or "The"); each exported const, var,
// struct field and interface method has a comment of its own or, inside a
// parenthesised group, the group's. Commands (package main), tests and
// the separate modules under tools/ are not API and are skipped. Which
// exports anything outside their package uses is measured by tools/apiuse
// (docs/decisions.md, "API trim").
func TestExportsDocumented(t *testing.T) {
	fset := token.NewFileSet()
	var missing []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "tools" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		if f.Name.Name == "main" {
			return nil
		}
		missing = append(missing, undocumented(fset, f)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(missing)
	for _, m := range missing {
		t.Error(m)
	}
}

// undocumented lists f's exported names that lack the doc comment
// TestExportsDocumented asks for, as "file:line: what".
func undocumented(fset *token.FileSet, f *ast.File) []string {
	var out []string
	bad := func(pos token.Pos, format string) {
		out = append(out, fset.Position(pos).String()+": "+format)
	}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() || (d.Recv != nil && !exportedRecv(d.Recv)) {
				continue
			}
			if !startsWith(d.Doc, d.Name.Name) {
				bad(d.Pos(), d.Name.Name+" has no doc comment starting with its name")
			}
		case *ast.GenDecl:
			grouped := d.Lparen.IsValid()
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					if !s.Name.IsExported() {
						continue
					}
					doc := s.Doc
					if doc == nil && !grouped {
						doc = d.Doc
					}
					if !startsWith(doc, s.Name.Name) {
						bad(s.Pos(), "type "+s.Name.Name+" has no doc comment starting with its name")
					}
					members(s, doc, bad)
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if !n.IsExported() {
							continue
						}
						switch {
						case grouped && (s.Doc != nil || s.Comment != nil || d.Doc != nil):
						case !grouped && startsWith(d.Doc, n.Name):
						default:
							bad(n.Pos(), n.Name+" has no doc comment")
						}
					}
				}
			}
		}
	}
	return out
}

// members checks the exported fields of a struct type and the methods of
// an interface type: each needs a comment above it or at the end of its
// line, or the type's doc or the doc above the uncommented run of fields
// it belongs to must name it ("LastError is ..., and LastErrorAt when it
// happened").
func members(s *ast.TypeSpec, typeDoc *ast.CommentGroup, bad func(token.Pos, string)) {
	var list *ast.FieldList
	switch u := s.Type.(type) {
	case *ast.StructType:
		list = u.Fields
	case *ast.InterfaceType:
		list = u.Methods
	default:
		return
	}
	var prev *ast.CommentGroup // the doc above the run of fields this one ends, which may name it too
	for _, fld := range list.List {
		for _, n := range fld.Names {
			if n.IsExported() && fld.Doc == nil && fld.Comment == nil && !mentions(typeDoc, n.Name) && !mentions(prev, n.Name) {
				bad(n.Pos(), s.Name.Name+"."+n.Name+" has no comment")
			}
		}
		switch {
		case fld.Doc != nil:
			prev = fld.Doc
		case fld.Comment != nil:
			prev = nil
		}
	}
}

// exportedRecv reports whether a method's receiver type is exported.
func exportedRecv(recv *ast.FieldList) bool {
	if len(recv.List) == 0 {
		return false
	}
	t := recv.List[0].Type
	if st, ok := t.(*ast.StarExpr); ok {
		t = st.X
	}
	switch x := t.(type) {
	case *ast.IndexExpr:
		t = x.X
	case *ast.IndexListExpr:
		t = x.X
	}
	id, ok := t.(*ast.Ident)
	return ok && id.IsExported()
}

// startsWith reports whether doc's text begins with name (after an
// optional article), as go doc and gopls expect.
func startsWith(doc *ast.CommentGroup, name string) bool {
	if doc == nil {
		return false
	}
	text := doc.Text()
	for _, article := range []string{"A ", "An ", "The "} {
		text = strings.TrimPrefix(text, article)
	}
	rest, ok := strings.CutPrefix(text, name)
	if !ok {
		return false
	}
	// The name must end there: "Send" must not accept "Sends ...".
	return rest == "" || !isIdentRune(rune(rest[0]))
}

// mentions reports whether doc names name as a whole word.
func mentions(doc *ast.CommentGroup, name string) bool {
	if doc == nil {
		return false
	}
	text := doc.Text()
	for i := strings.Index(text, name); i >= 0; {
		end := i + len(name)
		if (i == 0 || !isIdentRune(rune(text[i-1]))) && (end == len(text) || !isIdentRune(rune(text[end]))) {
			return true
		}
		next := strings.Index(text[i+1:], name)
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return false
}

func isIdentRune(r rune) bool {
	return r == '_' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
}
