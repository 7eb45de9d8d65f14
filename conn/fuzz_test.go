package conn

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// FuzzBearerToken feeds arbitrary Authorization headers and query strings
// to BearerToken's hook: it never panics, answers only nil,
// ErrUnauthorized or ErrForbidden, and lets a request through only if it
// carries exactly the token.
func FuzzBearerToken(f *testing.F) {
	const token = "s3cret-token"
	for _, seed := range []struct{ header, query string }{
		{"", ""}, {"Bearer s3cret-token", ""}, {"bearer s3cret-token ", ""}, {"Basic czNjcmV0", ""},
		{"Bearer", ""}, {"Bearer ", ""}, {"", "access_token=s3cret-token"}, {"", "access_token=%00"},
		{"", "access_token=a&access_token=s3cret-token"}, {"Bearer s3cret-tokem", ""}, {"", "%zz"},
	} {
		f.Add(seed.header, seed.query)
	}
	auth := BearerToken(token)
	f.Fuzz(func(t *testing.T, header, query string) {
		r := &http.Request{Header: http.Header{}, URL: &url.URL{Path: "/", RawQuery: query}}
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		err := auth(r)
		switch {
		case err == nil:
			got, _ := requestToken(r)
			if got != token {
				t.Fatalf("accepted header %q query %q (token %q)", header, query, got)
			}
		case errors.Is(err, ErrUnauthorized), errors.Is(err, ErrForbidden):
		default:
			t.Fatalf("untyped error %v", err)
		}
	})
}

// FuzzServerFrames writes arbitrary bytes as frames after a valid upgrade
// on a real loopback connection: the server never panics, reads no more
// than ReadLimit into memory per message, and reaps the session once the
// connection ends, leaving nothing open.
func FuzzServerFrames(f *testing.F) {
	for _, seed := range [][]byte{
		maskedFrame(true, 1, []byte("hello")),
		maskedFrame(true, 2, []byte{0, 1, 2}),
		maskedFrame(true, 1, []byte("\xff")),
		append(maskedFrame(false, 1, []byte("a\xe2")), maskedFrame(true, 0, []byte("\x82\xac"))...),
		maskedFrame(true, 9, []byte("ping")),
		maskedFrame(true, 8, []byte{0x03, 0xe8}),
		maskedFrame(true, 8, []byte{0x03, 0xe8, 0xff}),
		maskedFrame(true, 1, make([]byte, 5000)),
		{0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4}, // 2^63-1 length
		{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'},                                    // unmasked
		{0x0f, 0x80, 0, 0, 0, 0},                                                 // reserved opcode
	} {
		f.Add(seed)
	}
	live := fastLiveness()
	ts := startServer(f, ServerConfig{OnMessage: echo, ReadLimit: 4 << 10, Liveness: live, Logger: quietLogger()})
	f.Fuzz(func(t *testing.T, data []byte) {
		before := ts.Stats().ReapedTotal
		c, _ := rawUpgrade(t, ts)
		_, _ = c.Write(data)
		_ = c.Close()
		// The close is seen at once as EOF; the liveness bound is the
		// backstop if it were not.
		deadline := time.Now().Add(live.PingInterval + live.PongTimeout + time.Second)
		for ts.Stats().ReapedTotal == before {
			if time.Now().After(deadline) {
				t.Fatalf("session not reaped after the connection closed: %+v", ts.Stats())
			}
			time.Sleep(time.Millisecond) // polling a counter the server owns; bounded by deadline
		}
	})
}
