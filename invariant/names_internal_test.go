package invariant

import (
	"strconv"
	"testing"
)

// The invariant past the last named one is numbered, not indexed.
func TestNamePastTheEnd(t *testing.T) {
	i := Invariant(len(invNames))
	if got, want := i.String(), "Invariant("+strconv.Itoa(len(invNames))+")"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}
