//go:build linux

package conn

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// conformanceLimit is the ReadLimit of the conformance servers: small, so
// the read-limit rows need only a few bytes.
const conformanceLimit = 64

// rawFrame is a masked client frame with the first byte b0 as given
// (FIN, RSV bits and opcode) and payload, in the shortest length form.
func rawFrame(b0 byte, payload []byte) []byte {
	f := maskedFrame(true, 0, payload)
	f[0] = b0
	return f
}

// closeFrame is a masked client close frame carrying code and reason.
func closeFrame(code int, reason string) []byte {
	return maskedFrame(true, opClose, append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...))
}

// longFrame is a masked frame whose length is given in the 64-bit form,
// whatever its value (the payload bytes sent are payload).
func longFrame(b0 byte, length uint64, payload []byte) []byte {
	out := binary.BigEndian.AppendUint64([]byte{b0, 0x80 | 127}, length)
	key := [4]byte{9, 8, 7, 6}
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i%4])
	}
	return out
}

// conformanceCases are raw client byte sequences and what the peer must
// see for each on both engines: the close code the server answers with,
// or (0) the messages it echoes, in order.
var conformanceCases = []struct {
	name  string
	in    [][]byte // each written with its own Write
	close int      // the close code the peer gets; 0: none, the echoes come back
	echo  []string // with close == 0: the messages echoed, in order
	// gorilla is what the goroutine engine answers instead of close, where
	// gorilla/websocket (which frames that engine) departs from RFC 6455
	// and conn cannot correct it; 0: the same as close.
	gorilla int
}{
	// RFC 6455 §5.1: a client must mask.
	{"unmasked text", [][]byte{{0x81, 0x02, 'h', 'i'}}, 1002, nil, 0},
	{"unmasked text over the limit", [][]byte{{0x81, 100}}, 1002, nil, 0},
	// §5.2: reserved bits without a negotiated extension.
	{"rsv1", [][]byte{rawFrame(0x80|0x40|opText, []byte("x"))}, 1002, nil, 0},
	{"rsv2", [][]byte{rawFrame(0x80|0x20|opText, []byte("x"))}, 1002, nil, 0},
	{"rsv3", [][]byte{rawFrame(0x80|0x10|opText, []byte("x"))}, 1002, nil, 0},
	// §5.2: unknown opcodes.
	{"opcode 3", [][]byte{rawFrame(0x83, []byte("x"))}, 1002, nil, 0},
	{"opcode 0xb", [][]byte{rawFrame(0x8b, nil)}, 1002, nil, 0},
	// §5.5: control frames are short and never fragmented.
	{"ping of 126 bytes", [][]byte{rawFrame(0x80|opPing, bytes.Repeat([]byte("p"), 126))}, 1002, nil, 0},
	{"close of 126 bytes", [][]byte{rawFrame(0x80|opClose, append([]byte{0x03, 0xe8}, bytes.Repeat([]byte("r"), 124)...))}, 1002, nil, 0},
	{"ping not final", [][]byte{rawFrame(opPing, []byte("p"))}, 1002, nil, 0},
	{"close not final", [][]byte{rawFrame(opClose, []byte{0x03, 0xe8})}, 1002, nil, 0},
	// §5.4: fragmentation.
	{"continuation with no message", [][]byte{rawFrame(0x80|opContinuation, []byte("x"))}, 1002, nil, 0},
	{"continuation with no message, over the limit", [][]byte{rawFrame(0x80|opContinuation, bytes.Repeat([]byte("x"), 100))}, 1002, nil, 0},
	{"text inside a fragmented text", [][]byte{rawFrame(opText, []byte("a")), rawFrame(0x80|opText, []byte("b"))}, 1002, nil, 0},
	{"text inside a fragmented text, over the limit", [][]byte{rawFrame(opText, []byte("a")), rawFrame(0x80|opText, bytes.Repeat([]byte("b"), 100))}, 1002, nil, 0},
	{"fragments", [][]byte{rawFrame(opText, []byte("ab")), rawFrame(opContinuation, []byte("cd")), rawFrame(0x80|opContinuation, []byte("ef"))}, 0, []string{"abcdef"}, 0},
	{"ping between fragments", [][]byte{rawFrame(opBinary, []byte("ab")), rawFrame(0x80|opPing, []byte("p")), rawFrame(0x80|opContinuation, []byte("cd"))}, 0, []string{"abcd"}, 0},
	{"empty text", [][]byte{rawFrame(0x80|opText, nil)}, 0, []string{""}, 0},
	{"frame split byte by byte", splitBytes(rawFrame(0x80|opText, []byte("slow"))), 0, []string{"slow"}, 0},
	{"two frames in one write", [][]byte{append(rawFrame(0x80|opText, []byte("one")), rawFrame(0x80|opText, []byte("two"))...)}, 0, []string{"one", "two"}, 0},
	// §5.2: a 64-bit length has its top bit clear. gorilla takes such a
	// length for one over the read limit (ErrReadLimit, and writes no
	// close frame for it); both engines answer it 1009 like any length
	// over the limit. A longer length form than needed is refused by
	// neither.
	{"64-bit length, top bit set", [][]byte{longFrame(0x80|opBinary, 1<<63|5, []byte("hello"))}, 1009, nil, 0},
	{"64-bit length, top bit set, control", [][]byte{longFrame(0x80|opPing, 1<<63|5, []byte("hello"))}, 1002, nil, 0},
	{"64-bit length form for 5 bytes", [][]byte{longFrame(0x80|opBinary, 5, []byte("hello"))}, 0, []string{"hello"}, 0},
	// The read limit counts a whole message, across its fragments.
	{"at the limit across fragments", [][]byte{rawFrame(opText, bytes.Repeat([]byte("a"), 32)), rawFrame(0x80|opContinuation, bytes.Repeat([]byte("b"), 32))}, 0,
		[]string{strings.Repeat("a", 32) + strings.Repeat("b", 32)}, 0},
	{"over the limit across fragments", [][]byte{rawFrame(opText, bytes.Repeat([]byte("a"), 40)), rawFrame(0x80|opContinuation, bytes.Repeat([]byte("b"), 40))}, 1009, nil, 0},
	{"over the limit in one frame", [][]byte{rawFrame(0x80|opBinary, make([]byte, 65))}, 1009, nil, 0},
	// §8.1: text is UTF-8, judged over the whole message.
	{"invalid UTF-8 text", [][]byte{rawFrame(0x80|opText, []byte("a\xff"))}, 1007, nil, 0},
	{"UTF-8 split across fragments", [][]byte{rawFrame(opText, []byte("a\xe2\x82")), rawFrame(0x80|opContinuation, []byte("\xacb"))}, 0, []string{"a€b"}, 0},
	{"invalid UTF-8 in a continuation", [][]byte{rawFrame(opText, []byte("ok")), rawFrame(0x80|opContinuation, []byte("\xff"))}, 1007, nil, 0},
	{"truncated UTF-8 at the end", [][]byte{rawFrame(opText, []byte("a")), rawFrame(0x80|opContinuation, []byte("\xe2\x82"))}, 1007, nil, 0},
	{"invalid UTF-8 binary", [][]byte{rawFrame(0x80|opBinary, []byte("\xff"))}, 0, []string{"\xff"}, 0},
	// §5.5.1, §7.4: close frames.
	{"close, no payload", [][]byte{rawFrame(0x80|opClose, nil)}, 1000, nil, 0},
	{"close 1000", [][]byte{closeFrame(1000, "bye")}, 1000, nil, 0},
	{"close 1001", [][]byte{closeFrame(1001, "")}, 1001, nil, 0},
	{"close 1012", [][]byte{closeFrame(1012, "")}, 1012, nil, 0},
	{"close 1013", [][]byte{closeFrame(1013, "")}, 1013, nil, 0},
	{"close 3000", [][]byte{closeFrame(3000, "")}, 3000, nil, 0},
	{"close 4999", [][]byte{closeFrame(4999, "")}, 4999, nil, 0},
	{"close 999", [][]byte{closeFrame(999, "")}, 1002, nil, 0},
	{"close 1004", [][]byte{closeFrame(1004, "")}, 1002, nil, 0},
	{"close 1005", [][]byte{closeFrame(1005, "")}, 1002, nil, 0},
	{"close 1006", [][]byte{closeFrame(1006, "")}, 1002, nil, 0},
	{"close 1014", [][]byte{closeFrame(1014, "")}, 1002, nil, 0},
	{"close 1015", [][]byte{closeFrame(1015, "")}, 1002, nil, 0},
	{"close 1016", [][]byte{closeFrame(1016, "")}, 1002, nil, 0},
	{"close 2999", [][]byte{closeFrame(2999, "")}, 1002, nil, 0},
	{"close 5000", [][]byte{closeFrame(5000, "")}, 1002, nil, 0},
	{"close reason not UTF-8", [][]byte{closeFrame(1000, "\xff")}, 1002, nil, 0},
	// gorilla reads a one-byte close payload as no payload (1005) and
	// hands conn only that, so the goroutine engine answers 1000.
	{"close with a one-byte payload", [][]byte{rawFrame(0x80|opClose, []byte{0x03})}, 1002, nil, 1000},
	{"close inside a fragmented text", [][]byte{rawFrame(opText, []byte("a")), closeFrame(1000, "")}, 1000, nil, 0},
}

func splitBytes(b []byte) [][]byte {
	out := make([][]byte, len(b))
	for i := range b {
		out[i] = b[i : i+1]
	}
	return out
}

// TestFrameConformance sends each raw byte sequence to a server on each
// engine over a real TCP socket and checks that the peer gets the same
// answer from both: the close code RFC 6455 asks for, or the echoes.
func TestFrameConformance(t *testing.T) {
	for _, tc := range conformanceCases {
		t.Run(tc.name, func(t *testing.T) {
			for _, e := range []Engine{EngineGoroutine, EnginePoll} {
				got := conformanceAnswer(t, e, tc.in, tc.close == 0)
				code := tc.close
				if e == EngineGoroutine && tc.gorilla != 0 {
					code = tc.gorilla
				}
				want := fmt.Sprintf("close %d", code)
				if code == 0 {
					want = fmt.Sprintf("echo %q", tc.echo)
				}
				if got != want {
					t.Errorf("%s engine: peer got %s, want %s", e, got, want)
				}
			}
		})
	}
}

// conformanceAnswer sends in to a fresh server on engine e and returns
// what the peer got back: "close N" (N the code, 1005 for a close frame
// without one, "close none" for a connection ended without a close frame),
// or, when accept is set, `echo [...]`: the messages echoed before the
// end marker the test sends after in.
func conformanceAnswer(t *testing.T, e Engine, in [][]byte, accept bool) string {
	t.Helper()
	ts := startServer(t, ServerConfig{Engine: e, OnMessage: echo, ReadLimit: conformanceLimit})
	c, br := rawUpgrade(t, ts)
	const end = "\x00end"
	for _, b := range in {
		if _, err := c.Write(b); err != nil {
			t.Fatalf("%s engine: write: %v", e, err)
		}
	}
	if accept {
		if _, err := c.Write(rawFrame(0x80|opBinary, []byte(end))); err != nil {
			t.Fatalf("%s engine: write: %v", e, err)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var echoes []string
	for {
		op, payload, err := readServerFrame(br)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return fmt.Sprintf("nothing within 5s (echoes %q)", echoes)
			}
			return fmt.Sprintf("close none (%v; echoes %q)", err, echoes)
		}
		switch op {
		case opText, opBinary:
			if string(payload) == end {
				return fmt.Sprintf("echo %q", echoes)
			}
			echoes = append(echoes, string(payload))
		case opClose:
			code := 1005
			if len(payload) >= 2 {
				code = int(binary.BigEndian.Uint16(payload))
			}
			// Nothing may follow the close frame (a second one, say):
			// the server closes the connection.
			if op, p, err := readServerFrame(br); err == nil {
				return fmt.Sprintf("close %d, then frame %x %q", code, op, p)
			}
			return fmt.Sprintf("close %d", code)
		}
	}
}

// readServerFrame reads one unfragmented, unmasked server frame.
func readServerFrame(br *bufio.Reader) (op byte, payload []byte, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if n > 1<<20 {
		return 0, nil, fmt.Errorf("server frame of %d bytes", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		return 0, nil, err
	}
	return hdr[0] & 0x0f, payload, nil
}
