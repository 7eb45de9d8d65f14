//go:build linux

package conn

import (
	"bytes"
	"runtime"
	"testing"
	"time"
)

// TestPollTrickledFrameCopiesLinearly: a frame that arrives in many small
// reads (a peer sending one small TCP segment at a time) costs the poller
// copying in proportion to the frame, not to the frame times the number
// of reads. Keeping a fresh copy of everything read so far after every
// read made a 64 KiB message sent in 64-byte segments cost ~34 MB of
// allocation and copying: an amplification any client could buy.
func TestPollTrickledFrameCopiesLinearly(t *testing.T) {
	const size, seg = 64<<10 - 16, 64
	h := newPollHarness(t, ServerConfig{}, 16<<10, nil)
	in := clientFrame(true, opBinary, bytes.Repeat([]byte("x"), size))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for b := in; len(b) > 0; {
		k := min(seg, len(b))
		if _, err := h.peer.Write(b[:k]); err != nil {
			t.Fatal(err)
		}
		b = b[k:]
		h.pc.onReadable(h.buf)
	}
	runtime.ReadMemStats(&after)
	select {
	case got := <-h.msgs:
		if len(got) != size {
			t.Fatalf("OnMessage got %d bytes, want %d", len(got), size)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the message never reached OnMessage")
	}
	// Linear: the growing frame (amortised doubling, < 2×), the message
	// (1×), the OnMessage string and the test's own writes: under 8×.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8*size {
		t.Fatalf("reading a %d-byte frame in %d-byte reads allocated %d bytes (%.0f× the frame); want under 8×",
			size, seg, alloc, float64(alloc)/size)
	}
}
