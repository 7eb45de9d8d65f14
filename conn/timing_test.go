package conn

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/internal/report"
)

// TestTokenCompareLeaksNoTiming measures TokenEqual on guesses that share
// nothing, all but the last byte, and everything with the real token: a
// compare that stops at the first difference would answer the first
// fastest, and a brute-forcer would learn the token a byte at a time.
// Batches of the three are interleaved, so drift on a shared machine hits
// them alike; the medians are compared.
func TestTokenCompareLeaksNoTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	token := strings.Repeat("k", 31) + "Z"
	guesses := []struct {
		name, s string
	}{
		{"first byte wrong", "x" + token[1:]},
		{"last byte wrong", token[:31] + "Y"},
		{"right", token},
	}
	const batches, calls = 101, 2000
	per := make([][]time.Duration, len(guesses))
	sink := false
	for b := range batches {
		for k := range guesses {
			i := (b + k) % len(guesses) // rotate, so no guess always runs first
			g := guesses[i]
			start := time.Now()
			for range calls {
				sink = TokenEqual(g.s, token) != sink
			}
			per[i] = append(per[i], time.Since(start)/calls)
		}
	}
	_ = sink
	med := make([]time.Duration, len(guesses))
	for i := range per {
		slices.Sort(per[i])
		med[i] = per[i][batches/2]
	}
	ratio := float64(med[0]) / float64(med[1])
	// A compare that stops at the first differing byte makes the ratio
	// about 1/32 here (shown by swapping in a byte loop), one that stops at
	// the first differing 8-byte word about 1/4. The band [0.5, 2] catches
	// both with a factor of two to spare and leaves room for a loaded
	// 2-core machine, where medians of the same code were seen 0.78 apart.
	// (A vectorised == on 32 bytes differs by a nanosecond or two, below
	// what this can see: the hashing is what removes the signal, whatever
	// compare follows.)
	if ratio < 0.5 || ratio > 2 {
		t.Errorf("first-byte-wrong %s vs last-byte-wrong %s per compare: ratio %.3f", med[0], med[1], ratio)
	}
	report.Add(t, report.Row{Section: "Hostile input (lifeline serve, while a well-behaved client is served)",
		Case:     "token brute force: timing of TokenEqual by how much of the 32-byte token a guess gets right",
		Path:     "SHA-256 of both, then subtle.ConstantTimeCompare",
		Bound:    "no timing signal: first-byte-wrong / last-byte-wrong ≈ 1",
		Observed: fmt.Sprintf("medians %s / %s / %s (first wrong / last wrong / right): ratio %.3f", med[0], med[1], med[2], ratio),
		Evidence: fmt.Sprintf("%d interleaved batches of %d compares each", batches, calls)})
}
