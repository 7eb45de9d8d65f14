package conn

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/fsm"
)

// TestServerHostileMessages: a message over ReadLimit is answered with
// close 1009 and a text message that is not UTF-8 with close 1007 (RFC
// 6455 §8.1; gorilla/websocket does not check text data itself); each
// reaps only its own session for read_error, and binary data, which is
// not text, may hold any bytes.
func TestServerHostileMessages(t *testing.T) {
	const limit = 1 << 10
	for _, tc := range []struct {
		name     string
		mt       int
		data     []byte
		wantCode int // 0: echoed back
	}{
		{"text at the limit", websocket.TextMessage, bytes.Repeat([]byte("a"), limit), 0},
		{"text over the limit", websocket.TextMessage, bytes.Repeat([]byte("a"), limit+1), websocket.CloseMessageTooBig},
		// 4 KiB, not more: the write must complete before the server answers
		// 1009 and closes, or the writer sees a reset instead of the close.
		{"binary over the limit", websocket.BinaryMessage, make([]byte, 4<<10), websocket.CloseMessageTooBig},
		{"invalid UTF-8 text", websocket.TextMessage, []byte("ok \xff\xfe"), websocket.CloseInvalidFramePayloadData},
		{"truncated UTF-8 text", websocket.TextMessage, []byte("\xe2\x82"), websocket.CloseInvalidFramePayloadData},
		{"surrogate half in text", websocket.TextMessage, []byte("\xed\xa0\x80"), websocket.CloseInvalidFramePayloadData},
		{"multibyte UTF-8 text", websocket.TextMessage, []byte("héllo 世界 🙂"), 0},
		{"invalid UTF-8 binary", websocket.BinaryMessage, []byte("\xff\xfe"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, ServerConfig{OnMessage: echo, ReadLimit: limit})
			ws := dialRaw(t, ts.url, nil)
			if err := ws.WriteMessage(tc.mt, tc.data); err != nil {
				t.Fatal(err)
			}
			_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			mt, got, err := ws.ReadMessage()
			if tc.wantCode == 0 {
				if err != nil || mt != tc.mt || !bytes.Equal(got, tc.data) {
					t.Fatalf("echo: got %d %d bytes, %v", mt, len(got), err)
				}
				return
			}
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != tc.wantCode {
				t.Fatalf("read = %v, want close %d", err, tc.wantCode)
			}
			obs := ts.rec.wait(t, 5*time.Second, "the reap", countTo(fsm.Reaped, 1))
			if r := transitions(obs, fsm.Reaped)[0].Transition.Reason; r != fsm.ReasonReadError {
				t.Errorf("reaped for %s, want read_error", r)
			}
		})
	}
}

// TestServerInvalidUTF8IsLogged: the reap's log line names the cause.
func TestServerInvalidUTF8IsLogged(t *testing.T) {
	ts := startServer(t, ServerConfig{OnMessage: echo})
	ws := dialRaw(t, ts.url, nil)
	if err := ws.WriteMessage(websocket.TextMessage, []byte{0xc0, 0x80}); err != nil {
		t.Fatal(err)
	}
	ts.rec.wait(t, 5*time.Second, "the reap", countTo(fsm.Reaped, 1))
	for _, l := range logLines(t, ts.logs) {
		if l["msg"] == "transition" && l["to"] == "Reaped" {
			if l["error"] != ErrInvalidUTF8.Error() || l["reason"] != "read_error" {
				t.Errorf("reap logged as %v", l)
			}
			return
		}
	}
	t.Fatal("no reap logged")
}

// TestServerMaxHandshakes: with MaxHandshakes handshakes held inside
// Authorize, the next request is answered 503 before Authorize sees it
// and is counted; once they finish, requests are served again.
func TestServerMaxHandshakes(t *testing.T) {
	const max = 3
	release := make(chan struct{})
	var entered sync.WaitGroup
	entered.Add(max)
	var calls sync.Mutex
	n := 0
	ts := startServer(t, ServerConfig{MaxHandshakes: max, Authorize: func(*http.Request) error {
		calls.Lock()
		n++
		first := n <= max
		calls.Unlock()
		if first {
			entered.Done()
			<-release
		}
		return nil
	}})
	statuses := make(chan int, max)
	for range max {
		go func() { statuses <- upgradeStatus(t, ts.url, nil) }()
	}
	entered.Wait()
	if got := upgradeStatus(t, ts.url, nil); got != http.StatusServiceUnavailable {
		t.Errorf("request over the cap: status %d, want 503", got)
	}
	if st := ts.Stats(); st.Overloaded != 1 {
		t.Errorf("Overloaded = %d, want 1", st.Overloaded)
	}
	calls.Lock()
	if n != max {
		t.Errorf("Authorize ran %d times, want %d: the refused request reached it", n, max)
	}
	calls.Unlock()
	close(release)
	for range max {
		if got := <-statuses; got != http.StatusSwitchingProtocols {
			t.Errorf("held handshake: status %d, want 101", got)
		}
	}
	// A held handshake's client has its 101 a moment before the handler
	// that wrote it returns and leaves the count: a 503 is right until
	// then, and only then. Polled, bounded.
	deadline := time.Now().Add(2 * time.Second)
	for got := upgradeStatus(t, ts.url, nil); got != http.StatusSwitchingProtocols; got = upgradeStatus(t, ts.url, nil) {
		if got != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("after the burst: status %d, want 101", got)
		}
	}
}

// TestServerUnauthenticatedNeverUpgrades: refused requests create no
// session, no transition and no goroutine; the counter says how many.
func TestServerUnauthenticatedNeverUpgrades(t *testing.T) {
	ts := startServer(t, ServerConfig{Authorize: BearerToken("s3cret")})
	const tries = 50
	for i := range tries {
		h := BearerHeader(strings.Repeat("x", i))
		if i%2 == 0 {
			h = nil
		}
		if got := upgradeStatus(t, ts.url, h); got != http.StatusUnauthorized && got != http.StatusForbidden {
			t.Fatalf("try %d: status %d", i, got)
		}
	}
	st := ts.Stats()
	if st.Refused != tries || st.Open != 0 || st.ReapedTotal != 0 {
		t.Errorf("stats after %d refused requests: %+v", tries, st)
	}
	if obs := ts.rec.all(); len(obs) != 0 {
		t.Errorf("%d observations for refused requests, want none (no session was made)", len(obs))
	}
}

// rawUpgrade opens a TCP connection to ts and performs the WebSocket
// upgrade by hand, returning the connection positioned after the 101
// response, ready for raw frames.
func rawUpgrade(t testing.TB, ts *testServer) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", ts.http.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, upgradeConn(t, c)
}

// upgradeConn sends a WebSocket upgrade request on c and reads the 101.
func upgradeConn(t testing.TB, c net.Conn) *bufio.Reader {
	t.Helper()
	req := "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return br
}

// maskedFrame encodes one client frame (clients must mask).
func maskedFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n < 1<<16:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		out = append(out, 0x80|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	key := [4]byte{1, 2, 3, 4}
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i%4])
	}
	return out
}

// TestServerFragmentedInvalidUTF8: a text message split over frames is
// judged whole, so a rune split across frames is fine and a bad byte in a
// continuation frame is not.
func TestServerFragmentedInvalidUTF8(t *testing.T) {
	for _, tc := range []struct {
		name     string
		frames   [][]byte
		wantEcho string
	}{
		{"rune split across frames", [][]byte{maskedFrame(false, 1, []byte("a\xe2\x82")), maskedFrame(true, 0, []byte("\xacb"))}, "a€b"},
		{"bad byte in continuation", [][]byte{maskedFrame(false, 1, []byte("ok")), maskedFrame(true, 0, []byte("\xff"))}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, ServerConfig{OnMessage: echo})
			c, br := rawUpgrade(t, ts)
			for _, f := range tc.frames {
				if _, err := c.Write(f); err != nil {
					t.Fatal(err)
				}
			}
			hdr := make([]byte, 2)
			if _, err := io.ReadFull(br, hdr); err != nil {
				t.Fatal(err)
			}
			body := make([]byte, hdr[1]&0x7f)
			if _, err := io.ReadFull(br, body); err != nil {
				t.Fatal(err)
			}
			if tc.wantEcho != "" {
				if hdr[0]&0x0f != 1 || string(body) != tc.wantEcho {
					t.Fatalf("got opcode %d %q, want text %q", hdr[0]&0x0f, body, tc.wantEcho)
				}
				return
			}
			if hdr[0]&0x0f != 8 || len(body) < 2 || int(body[0])<<8|int(body[1]) != websocket.CloseInvalidFramePayloadData {
				t.Fatalf("got opcode %d %x, want close 1007", hdr[0]&0x0f, body)
			}
		})
	}
}
