// Command apiuse measures lifeline's exported API: for every exported
// identifier of every package in the module (package-level types, funcs,
// consts and vars, plus the exported methods and struct fields of exported
// types), it reports whether anything outside the package uses it.
//
// "Outside" means another package of the module (its code or its tests,
// cmd/lifeline included) or an Example function of the package's own
// external test package. The package's own tests do not count: a name that
// only its tests reach is not API anyone needs. A method also counts as used
// when its type satisfies an interface of another package that declares it
// (fmt.Stringer, error, http.Handler, ...) or an interface of its own
// package whose method is used outside: callers reach those through the
// interface, never by name.
//
// It lives in its own module, like tools/wslibmem, so lifeline's go.mod does
// not carry golang.org/x/tools.
//
// Usage (from this directory):
//
//	go run . ../..            # per-package table: exports, no outside user
//	go run . -v ../..         # and the names with no outside user
//	go run . -v -pkg fsm ../..
//	go run . -keep keep.txt /tmp/other-checkout   # another version, this list
//	go run . -check ../..     # exit 1 when an export is unexplained
//
// keep.txt lists the exports with no outside user that are kept on
// purpose, each with its reason (config fields, error types, constants of
// an enumeration, ...); the table counts them apart, so "unexplained" is
// what a trim has left to decide.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"go/ast"
	"go/types"
	"io"
	"log"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/tools/go/packages"
)

func main() {
	verbose := flag.Bool("v", false, "list the exports with no outside user")
	only := flag.String("pkg", "", "only this package (path relative to the module, e.g. conn/onebot)")
	keepFile := flag.String("keep", "", "the keep list (default: tools/apiuse/keep.txt under the module)")
	check := flag.Bool("check", false, "exit 1 when an export with no outside user is not in the keep list")
	flag.Parse()
	dir := "."
	if flag.NArg() > 0 {
		dir = flag.Arg(0)
	}
	rep, err := measure(dir)
	if err != nil {
		log.Fatal(err)
	}
	if *keepFile == "" {
		*keepFile = filepath.Join(dir, "tools", "apiuse", "keep.txt")
	}
	keep, err := readKeep(*keepFile)
	if err != nil {
		log.Fatal(err)
	}
	if unexplained := rep.write(os.Stdout, keep, *verbose, *only); *check && unexplained > 0 {
		fmt.Fprintf(os.Stderr, "apiuse: %d exports have no user outside their package and no reason in %s: unexport them or say why there (-v lists them)\n", unexplained, *keepFile)
		os.Exit(1)
	}
}

// export is one exported identifier and how it is used.
type export struct {
	key      string // Name, Type.Method or Type.Field
	kind     string // type, func, method, field, const, var
	outside  bool   // another package uses it (code or tests)
	example  bool   // an Example of its own package uses it
	viaIface string // the interface through which callers reach this method, or the export whose signature needs this type
}

type pkgReport struct {
	path    string // relative to the module
	exports map[string]*export
}

type report struct {
	module string
	pkgs   map[string]*pkgReport // by import path
}

func measure(dir string) (*report, error) {
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedSyntax |
			packages.NeedTypes | packages.NeedTypesInfo | packages.NeedImports |
			packages.NeedDeps | packages.NeedModule,
		Dir:   dir,
		Tests: true,
	}
	pkgs, err := packages.Load(cfg, "./...")
	if err != nil {
		return nil, err
	}
	if n := packages.PrintErrors(pkgs); n > 0 {
		return nil, fmt.Errorf("%d errors loading packages", n)
	}
	rep := &report{pkgs: map[string]*pkgReport{}}

	// Definitions come from each package's plain variant (no test files).
	for _, p := range pkgs {
		if p.ID != p.PkgPath || p.Name == "main" || p.Module == nil {
			continue
		}
		rep.module = p.Module.Path
		pr := &pkgReport{path: strings.TrimPrefix(strings.TrimPrefix(p.PkgPath, p.Module.Path), "/"), exports: map[string]*export{}}
		if pr.path == "" {
			pr.path = "."
		}
		collect(p.Types, pr)
		rep.pkgs[p.PkgPath] = pr
	}

	// Uses: every variant of every package, its tests included.
	for _, p := range pkgs {
		if strings.HasSuffix(p.ID, ".test") {
			continue // the generated test main
		}
		user := strings.TrimSuffix(p.PkgPath, "_test")
		examples := exampleRanges(p)
		for id, obj := range p.TypesInfo.Uses {
			if obj == nil || obj.Pkg() == nil {
				continue
			}
			pr := rep.pkgs[obj.Pkg().Path()]
			if pr == nil {
				continue
			}
			e := pr.exports[keyOf(obj)]
			if e == nil {
				continue
			}
			switch {
			case user != obj.Pkg().Path():
				e.outside = true
			case p.PkgPath != user && examples.containsPos(int(id.Pos())):
				e.example = true
			}
		}
	}

	// Methods reached through an interface.
	var ifaces []*types.Named
	packages.Visit(pkgs, nil, func(p *packages.Package) {
		if p.Types == nil || strings.HasSuffix(p.PkgPath, "_test") {
			return
		}
		scope := p.Types.Scope()
		for _, name := range scope.Names() {
			tn, ok := scope.Lookup(name).(*types.TypeName)
			if !ok || !tn.Exported() {
				continue
			}
			if n, ok := tn.Type().(*types.Named); ok {
				if _, ok := n.Underlying().(*types.Interface); ok {
					ifaces = append(ifaces, n)
				}
			}
		}
	})
	for path, pr := range rep.pkgs {
		for _, p := range pkgs {
			if p.ID != path {
				continue
			}
			markInterfaceMethods(p.Types, pr, ifaces, rep)
		}
	}
	for _, p := range pkgs {
		if pr := rep.pkgs[p.ID]; pr != nil {
			markSignatureTypes(p.Types, pr)
		}
	}
	return rep, nil
}

// collect records the exported identifiers of pkg.
func collect(pkg *types.Package, pr *pkgReport) {
	scope := pkg.Scope()
	for _, name := range scope.Names() {
		obj := scope.Lookup(name)
		if !obj.Exported() {
			continue
		}
		switch o := obj.(type) {
		case *types.TypeName:
			pr.add(name, "type")
			n, ok := o.Type().(*types.Named)
			if !ok {
				continue // an alias
			}
			for i := 0; i < n.NumMethods(); i++ {
				if m := n.Method(i); m.Exported() {
					pr.add(name+"."+m.Name(), "method")
				}
			}
			switch u := n.Underlying().(type) {
			case *types.Struct:
				for i := 0; i < u.NumFields(); i++ {
					if f := u.Field(i); f.Exported() {
						pr.add(name+"."+f.Name(), "field")
					}
				}
			case *types.Interface:
				for i := 0; i < u.NumExplicitMethods(); i++ {
					if m := u.ExplicitMethod(i); m.Exported() {
						pr.add(name+"."+m.Name(), "method")
					}
				}
			}
		case *types.Func:
			pr.add(name, "func")
		case *types.Const:
			pr.add(name, "const")
		case *types.Var:
			pr.add(name, "var")
		}
	}
}

func (pr *pkgReport) add(key, kind string) {
	pr.exports[key] = &export{key: key, kind: kind}
}

// keyOf names obj the way collect does: Name, Type.Method or Type.Field.
func keyOf(obj types.Object) string {
	switch o := obj.(type) {
	case *types.Func:
		sig, _ := o.Type().(*types.Signature)
		if sig == nil || sig.Recv() == nil {
			return o.Name()
		}
		if n := namedOf(sig.Recv().Type()); n != nil {
			return n.Obj().Name() + "." + o.Name()
		}
		return ""
	case *types.Var:
		if !o.IsField() {
			return o.Name()
		}
		owner := fieldOwner(o)
		if owner == "" {
			return ""
		}
		return owner + "." + o.Name()
	}
	return obj.Name()
}

// fieldOwner finds the exported named struct type of obj's package that
// declares field f directly.
func fieldOwner(f *types.Var) string {
	scope := f.Pkg().Scope()
	for _, name := range scope.Names() {
		tn, ok := scope.Lookup(name).(*types.TypeName)
		if !ok {
			continue
		}
		st, ok := tn.Type().Underlying().(*types.Struct)
		if !ok {
			continue
		}
		for i := 0; i < st.NumFields(); i++ {
			if st.Field(i) == f {
				return name
			}
		}
	}
	return ""
}

func namedOf(t types.Type) *types.Named {
	if p, ok := t.(*types.Pointer); ok {
		t = p.Elem()
	}
	n, _ := t.(*types.Named)
	return n
}

// markInterfaceMethods marks the methods of pkg's types that satisfy an
// interface of another package, or one of pkg's own interfaces whose method
// has an outside user.
func markInterfaceMethods(pkg *types.Package, pr *pkgReport, ifaces []*types.Named, rep *report) {
	scope := pkg.Scope()
	for _, name := range scope.Names() {
		tn, ok := scope.Lookup(name).(*types.TypeName)
		if !ok || !tn.Exported() {
			continue
		}
		n, ok := tn.Type().(*types.Named)
		if !ok {
			continue
		}
		if _, isIface := n.Underlying().(*types.Interface); isIface {
			continue
		}
		for _, in := range ifaces {
			it := in.Underlying().(*types.Interface)
			if it.NumMethods() == 0 {
				continue
			}
			if !types.Implements(n, it) && !types.Implements(types.NewPointer(n), it) {
				continue
			}
			for i := 0; i < it.NumMethods(); i++ {
				m := it.Method(i)
				e := pr.exports[name+"."+m.Name()]
				if e == nil || e.viaIface != "" {
					continue
				}
				ipath := in.Obj().Pkg().Path()
				if ipath == pkg.Path() {
					ie := pr.exports[in.Obj().Name()+"."+m.Name()]
					if ie == nil || !(ie.outside || ie.example) {
						continue
					}
				}
				e.viaIface = in.Obj().Pkg().Name() + "." + in.Obj().Name()
			}
		}
	}
	// error is not a named type of any package.
	errIface := types.Universe.Lookup("error").Type().Underlying().(*types.Interface)
	for _, name := range scope.Names() {
		tn, ok := scope.Lookup(name).(*types.TypeName)
		if !ok || !tn.Exported() {
			continue
		}
		if e := pr.exports[name+".Error"]; e != nil && e.viaIface == "" &&
			(types.Implements(tn.Type(), errIface) || types.Implements(types.NewPointer(tn.Type()), errIface)) {
			e.viaIface = "error"
		}
	}
}

// markSignatureTypes marks the types of pkg that appear in the signature,
// field type or value type of an export with an outside user: a caller
// holds values of them without naming them (the Stats a Stats() returns,
// the Observer a config field takes), so they stay exported.
func markSignatureTypes(pkg *types.Package, pr *pkgReport) {
	scope := pkg.Scope()
	lookup := func(key string) types.Object {
		typ, member, ok := strings.Cut(key, ".")
		obj := scope.Lookup(typ)
		if !ok || obj == nil {
			return obj
		}
		o, _, _ := types.LookupFieldOrMethod(obj.Type(), true, pkg, member)
		return o
	}
	for changed := true; changed; {
		changed = false
		for key, e := range pr.exports {
			if !e.used() || e.kind == "type" {
				continue
			}
			obj := lookup(key)
			if obj == nil {
				continue
			}
			visitNamed(obj.Type(), map[types.Type]bool{}, func(n *types.Named) {
				if n.Obj().Pkg() != pkg {
					return
				}
				if t := pr.exports[n.Obj().Name()]; t != nil && !t.used() {
					t.viaIface = "signature of " + key
					changed = true
				}
			})
		}
	}
}

// visitNamed calls f for every named type t mentions (not through the
// fields of a named struct).
func visitNamed(t types.Type, seen map[types.Type]bool, f func(*types.Named)) {
	if seen[t] {
		return
	}
	seen[t] = true
	switch t := t.(type) {
	case *types.Named:
		f(t)
		if ta := t.TypeArgs(); ta != nil {
			for i := 0; i < ta.Len(); i++ {
				visitNamed(ta.At(i), seen, f)
			}
		}
	case *types.Pointer:
		visitNamed(t.Elem(), seen, f)
	case *types.Slice:
		visitNamed(t.Elem(), seen, f)
	case *types.Array:
		visitNamed(t.Elem(), seen, f)
	case *types.Map:
		visitNamed(t.Key(), seen, f)
		visitNamed(t.Elem(), seen, f)
	case *types.Chan:
		visitNamed(t.Elem(), seen, f)
	case *types.Signature:
		for _, tup := range []*types.Tuple{t.Params(), t.Results()} {
			for i := 0; i < tup.Len(); i++ {
				visitNamed(tup.At(i).Type(), seen, f)
			}
		}
	case *types.Struct:
		for i := 0; i < t.NumFields(); i++ {
			visitNamed(t.Field(i).Type(), seen, f)
		}
	}
}

func (e *export) used() bool { return e.outside || e.example || e.viaIface != "" }

// exampleRanges returns the source spans of p's Example functions.
func exampleRanges(p *packages.Package) spans {
	var s spans
	for _, f := range p.Syntax {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if ok && fd.Recv == nil && strings.HasPrefix(fd.Name.Name, "Example") {
				s = append(s, [2]int{int(fd.Pos()), int(fd.End())})
			}
		}
	}
	return s
}

// spans are [start, end) token positions.
type spans [][2]int

func (s spans) containsPos(pos int) bool {
	for _, r := range s {
		if pos >= r[0] && pos < r[1] {
			return true
		}
	}
	return false
}

// keepRule is one line of keep.txt.
type keepRule struct{ pkg, pattern, reason string }

// readKeep reads keep.txt: "package pattern reason" per line, # comments.
func readKeep(name string) ([]keepRule, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rules []keepRule
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 3 {
			return nil, fmt.Errorf("%s:%d: want package, pattern and reason, got %q", name, n, line)
		}
		if _, err := path.Match(fields[1], ""); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, n, err)
		}
		rules = append(rules, keepRule{fields[0], fields[1], fields[2]})
	}
	return rules, sc.Err()
}

// kept returns the reason keep.txt gives for e of package pkg, or "".
func kept(rules []keepRule, pkg string, e *export) string {
	for _, r := range rules {
		if r.pkg != pkg {
			continue
		}
		subject := e.key
		if strings.Contains(r.pattern, ":") {
			subject = e.kind + ":" + e.key
		}
		if ok, _ := path.Match(r.pattern, subject); ok {
			return r.reason
		}
	}
	return ""
}

// write prints the table (and with verbose the names) and returns how many
// exports with no outside user the keep list does not explain.
func (r *report) write(w io.Writer, keep []keepRule, verbose bool, only string) int {
	var paths []string
	for path := range r.pkgs {
		paths = append(paths, path)
	}
	sort.Slice(paths, func(i, j int) bool { return r.pkgs[paths[i]].path < r.pkgs[paths[j]].path })
	fmt.Fprintf(w, "%-22s %8s %14s %6s %12s\n", "package", "exports", "no outside use", "kept", "unexplained")
	var total, unused, keptN int
	for _, path := range paths {
		pr := r.pkgs[path]
		if only != "" && pr.path != only {
			continue
		}
		var none []*export
		for _, e := range pr.exports {
			if !e.used() {
				none = append(none, e)
			}
		}
		sort.Slice(none, func(i, j int) bool { return none[i].key < none[j].key })
		var lines []string
		k := 0
		for _, e := range none {
			reason := kept(keep, pr.path, e)
			if reason != "" {
				k++
			} else {
				reason = "UNEXPLAINED"
			}
			lines = append(lines, fmt.Sprintf("    %-7s %-40s %s", e.kind, e.key, reason))
		}
		total += len(pr.exports)
		unused += len(none)
		keptN += k
		fmt.Fprintf(w, "%-22s %8d %14d %6d %12d\n", pr.path, len(pr.exports), len(none), k, len(none)-k)
		if verbose {
			for _, l := range lines {
				fmt.Fprintln(w, l)
			}
		}
	}
	fmt.Fprintf(w, "%-22s %8d %14d %6d %12d\n", "total", total, unused, keptN, unused-keptN)
	return unused - keptN
}
