// Package proptest helps lifeline's property tests prove they bite: a
// property only counts once it has been seen to fail on a deliberately
// broken implementation, and ExpectFailure runs it that way inside an
// ordinary test.
package proptest

import (
	"flag"
	"fmt"
	"strings"
	"sync"
	"testing"

	"pgregory.net/rapid"
)

// recorder is a rapid.TB that records a failure instead of failing the
// enclosing test.
type recorder struct {
	name string

	mu     sync.Mutex
	failed bool
	out    strings.Builder
}

func (r *recorder) Helper()      {}
func (r *recorder) Name() string { return r.name }
func (r *recorder) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(&r.out, format+"\n", args...)
}
func (r *recorder) Log(args ...any) { r.Logf("%s", fmt.Sprint(args...)) }
func (r *recorder) Errorf(format string, args ...any) {
	r.Fail()
	r.Logf(format, args...)
}
func (r *recorder) Error(args ...any)                 { r.Errorf("%s", fmt.Sprint(args...)) }
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...) }
func (r *recorder) Fatal(args ...any)                 { r.Error(args...) }
func (r *recorder) Skipf(format string, args ...any)  { r.Logf("skip: "+format, args...) }
func (r *recorder) Skip(args ...any)                  { r.Log(args...) }
func (r *recorder) SkipNow()                          {}

// FailNow does not stop the goroutine: rapid calls it once, after it has
// shrunk and reported the counterexample, and the caller then inspects it.
func (r *recorder) FailNow() {}
func (r *recorder) Fail() {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
}
func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

var serial sync.Mutex // rapid's flags are process-wide

// ExpectFailure runs prop with rapid and fails t unless rapid finds a
// counterexample. It returns rapid's report (the shrunk input and the
// property's message), for asserting that the right check fired. No fail
// file is written for the expected failure.
func ExpectFailure(t testing.TB, prop func(*rapid.T)) string {
	t.Helper()
	serial.Lock()
	defer serial.Unlock()
	if f := flag.Lookup("rapid.nofailfile"); f != nil {
		old := f.Value.String()
		_ = f.Value.Set("true")
		defer func() { _ = f.Value.Set(old) }()
	}
	rec := &recorder{name: t.Name() + "/expected-failure"}
	rapid.Check(rec, prop)
	if !rec.Failed() {
		t.Fatalf("the property passed on a deliberately broken implementation: it cannot catch the bug it is meant to catch")
	}
	return rec.out.String()
}
