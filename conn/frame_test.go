package conn

import (
	"bytes"
	"errors"
	"testing"
)

// clientFrame builds a masked client frame (RFC 6455 §5.3) with a fixed
// mask key, so the bytes are the same on every run.
func clientFrame(fin bool, op byte, payload []byte) []byte { return maskedFrame(fin, op, payload) }

// TestParseFrame: each rule of the framer, with the close code a broken
// frame fails the connection with and the bytes a whole one takes.
func TestParseFrame(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 300)
	for _, tc := range []struct {
		name     string
		in       []byte
		room     int64
		wantN    int // bytes taken; 0: incomplete
		wantOp   byte
		wantFin  bool
		wantData string
		wantCode int // the failure's close code; 0: none
	}{
		{"empty", nil, 100, 0, 0, false, "", 0},
		{"one byte", []byte{0x81}, 100, 0, 0, false, "", 0},
		{"mask key cut", []byte{0x81, 0x82, 1}, 100, 0, 0, false, "", 0}, // FuzzFramer's first find: a panic
		{"text", clientFrame(true, opText, []byte("hi")), 100, 8, opText, true, "hi", 0},
		{"text missing its last byte", clientFrame(true, opText, []byte("hi"))[:7], 100, 0, 0, false, "", 0},
		{"first fragment", clientFrame(false, opBinary, []byte{1, 2}), 100, 8, opBinary, false, "\x01\x02", 0},
		{"16-bit length", clientFrame(true, opBinary, long), 1000, 2 + 2 + 4 + 300, opBinary, true, string(long), 0},
		{"16-bit length, header cut", clientFrame(true, opBinary, long)[:3], 1000, 0, 0, false, "", 0},
		{"64-bit length, header cut", []byte{0x82, 0xff, 0, 0}, 1 << 40, 0, 0, false, "", 0},
		{"ping", clientFrame(true, opPing, []byte("p")), 0, 7, opPing, true, "p", 0},
		{"pong at the read limit 0", clientFrame(true, opPong, nil), 0, 6, opPong, true, "", 0},
		{"at the limit", clientFrame(true, opText, []byte("abc")), 3, 9, opText, true, "abc", 0},
		{"over the limit, header only", clientFrame(true, opText, []byte("abcd"))[:2], 3, 0, 0, false, "", closeMessageTooBig},
		{"unmasked", []byte{0x81, 0x02, 'h', 'i'}, 100, 0, 0, false, "", closeProtocolError},
		{"reserved bit", append([]byte{0xc1}, clientFrame(true, opText, nil)[1:]...), 100, 0, 0, false, "", closeProtocolError},
		{"reserved opcode", clientFrame(true, 0x3, nil), 100, 0, 0, false, "", closeProtocolError},
		{"control opcode 0xb", clientFrame(true, 0xb, nil), 100, 0, 0, false, "", closeProtocolError},
		{"fragmented ping", clientFrame(false, opPing, nil), 100, 0, 0, false, "", closeProtocolError},
		{"long close", clientFrame(true, opClose, bytes.Repeat([]byte("x"), 126)), 1000, 0, 0, false, "", closeProtocolError},
		{"length top bit", []byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1}, 1 << 40, 0, 0, false, "", closeMessageTooBig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]byte(nil), tc.in...)
			f, n, err := parseFrame(in, tc.room, false)
			var fe *frameError
			switch {
			case tc.wantCode != 0:
				if !errors.As(err, &fe) || fe.code != tc.wantCode {
					t.Fatalf("err = %v, want close %d", err, tc.wantCode)
				}
			case err != nil:
				t.Fatalf("err = %v", err)
			case n != tc.wantN:
				t.Fatalf("took %d bytes, want %d", n, tc.wantN)
			case n > 0 && (f.op != tc.wantOp || f.fin != tc.wantFin || string(f.payload) != tc.wantData):
				t.Fatalf("frame = %x fin %v %q, want %x fin %v %q", f.op, f.fin, f.payload, tc.wantOp, tc.wantFin, tc.wantData)
			}
		})
	}
}

// TestMsgAssembly: fragments make one message, in order; the rules about
// continuations; UTF-8 checked on the whole text message only.
func TestMsgAssembly(t *testing.T) {
	type step struct {
		f        wsFrame
		want     readEvent
		wantData string
		wantCode int
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"one frame", []step{{wsFrame{opText, true, []byte("héllo")}, readMessage, "héllo", 0}}},
		{"three fragments", []step{
			{wsFrame{opBinary, false, []byte("a")}, readNone, "", 0},
			{wsFrame{opContinuation, false, []byte("b")}, readNone, "", 0},
			{wsFrame{opContinuation, true, []byte("c")}, readMessage, "abc", 0},
		}},
		{"ping between fragments", []step{
			{wsFrame{opText, false, []byte("a")}, readNone, "", 0},
			{wsFrame{opPing, true, []byte("p")}, readPing, "p", 0},
			{wsFrame{opContinuation, true, []byte("b")}, readMessage, "ab", 0},
		}},
		{"rune split across fragments", []step{
			{wsFrame{opText, false, []byte("\xe2\x82")}, readNone, "", 0},
			{wsFrame{opContinuation, true, []byte("\xac")}, readMessage, "€", 0},
		}},
		{"invalid text", []step{{wsFrame{opText, true, []byte("\xff")}, 0, "", closeInvalidPayload}}},
		{"invalid binary is data", []step{{wsFrame{opBinary, true, []byte("\xff")}, readMessage, "\xff", 0}}},
		{"stray continuation", []step{{wsFrame{opContinuation, true, []byte("x")}, 0, "", closeProtocolError}}},
		{"new message mid-message", []step{
			{wsFrame{opText, false, []byte("a")}, readNone, "", 0},
			{wsFrame{opText, true, []byte("b")}, 0, "", closeProtocolError},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m msgAssembly
			for i, st := range tc.steps {
				ev, _, data, err := m.take(st.f)
				var fe *frameError
				switch {
				case st.wantCode != 0:
					if !errors.As(err, &fe) || fe.code != st.wantCode {
						t.Fatalf("step %d: err = %v, want close %d", i, err, st.wantCode)
					}
				case err != nil || ev != st.want || (ev == readMessage || ev == readPing) && string(data) != st.wantData:
					t.Fatalf("step %d: %v %q %v, want %v %q", i, ev, data, err, st.want, st.wantData)
				}
			}
		})
	}
}

// TestClosePayload: the close frame's code and reason, RFC 6455 §7.4.
func TestClosePayload(t *testing.T) {
	for _, tc := range []struct {
		in       []byte
		wantCode int
		bad      bool
	}{
		{nil, 1005, false},
		{[]byte{0x03}, 0, true},
		{[]byte{0x03, 0xe8}, 1000, false},
		{[]byte{0x03, 0xe8, 'o', 'k'}, 1000, false},
		{[]byte{0x03, 0xed}, 0, true}, // 1005 may not be sent
		{[]byte{0x03, 0xee}, 0, true}, // nor 1006
		{[]byte{0x0b, 0xb8}, 3000, false},
		{[]byte{0x13, 0x88}, 0, true}, // 5000
		{[]byte{0x03, 0xe8, 0xff}, 0, true},
	} {
		code, _, err := closePayload(tc.in)
		if (err != nil) != tc.bad || !tc.bad && code != tc.wantCode {
			t.Errorf("closePayload(%x) = %d, %v; want %d, bad %v", tc.in, code, err, tc.wantCode, tc.bad)
		}
	}
}

// TestAppendFrameHeader: the three length encodings of a server frame.
func TestAppendFrameHeader(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{65535, []byte{0x81, 126, 0xff, 0xff}},
		{65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		if got := appendFrameHeader(nil, opText, tc.n); !bytes.Equal(got, tc.want) {
			t.Errorf("header for %d bytes = %x, want %x", tc.n, got, tc.want)
		}
	}
}

// framerRun feeds b to the framer the way the poll engine does, in reads
// of at most chunk bytes (keeping what is left of an incomplete frame),
// and returns what it made of them: one line per event, then the failure.
func framerRun(b []byte, chunk int, limit int64) []string {
	var out []string
	var in []byte
	var m msgAssembly
	for len(b) > 0 {
		k := min(chunk, len(b))
		in = append(in, b[:k]...)
		b = b[k:]
		for {
			f, n, err := m.next(in, limit, false)
			if err == nil && n > 0 {
				var ev readEvent
				var data []byte
				ev, _, data, err = m.take(f)
				in = in[n:]
				if err == nil {
					if ev != readNone {
						out = append(out, string(rune('0'+ev))+string(data))
					}
					continue
				}
			}
			if err != nil {
				return append(out, "fail "+err.Error())
			}
			break
		}
		in = append([]byte(nil), in...) // what is kept of an incomplete frame
	}
	return out
}

// FuzzFramer: however a client's bytes are split into reads, the framer
// makes the same events of them and fails at the same frame with the
// same error; it never panics and never hands on a message over the read
// limit. The corpus is in testdata/fuzz/FuzzFramer.
func FuzzFramer(f *testing.F) {
	for _, seed := range [][]byte{
		clientFrame(true, opText, []byte("hello")),
		append(clientFrame(false, opText, []byte("a\xe2")), clientFrame(true, opContinuation, []byte("\x82\xac"))...),
		append(clientFrame(true, opPing, []byte("p")), clientFrame(true, opClose, []byte{3, 232})...),
		clientFrame(true, opBinary, make([]byte, 300)),
		{0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4},
		{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'},
	} {
		f.Add(seed, uint8(1))
	}
	const limit = 256
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		whole := framerRun(append([]byte(nil), data...), len(data)+1, limit)
		split := framerRun(append([]byte(nil), data...), int(chunk%16)+1, limit)
		if len(whole) != len(split) {
			t.Fatalf("whole: %q\nsplit by %d: %q", whole, chunk%16+1, split)
		}
		for i := range whole {
			if whole[i] != split[i] {
				t.Fatalf("event %d: whole %q, split %q", i, whole[i], split[i])
			}
			if whole[i][0] == '0'+byte(readMessage) && len(whole[i])-1 > limit {
				t.Fatalf("message of %d bytes over the read limit %d", len(whole[i])-1, limit)
			}
		}
	})
}
