package conn_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
)

// A server that echoes every message, and a client that connects to it,
// sends one message and prints the echo.
func Example() {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := conn.NewServer(conn.ServerConfig{
		Logger: quiet,
		OnMessage: func(s *conn.Session, t conn.MessageType, data []byte) error {
			return s.Send(t, data)
		},
	})
	if err != nil {
		panic(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()

	echoed := make(chan string, 1)
	c, err := conn.NewClient(conn.ClientConfig{
		URL:       "ws" + strings.TrimPrefix(hs.URL, "http") + "/",
		Logger:    quiet,
		OnMessage: func(_ conn.MessageType, data []byte) { echoed <- string(data) },
	})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	states := c.Subscribe(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	for tr := range states {
		if tr.To == fsm.Connected {
			break
		}
	}
	if err := c.Send(ctx, conn.TextMessage, []byte("hello")); err != nil {
		panic(err)
	}
	fmt.Println("echo:", <-echoed)
	cancel()
	fmt.Println("Run returned:", <-done, "in state", c.State())
	// Output:
	// echo: hello
	// Run returned: <nil> in state Stopped
}

// Sending while the client has no link fails at once with a typed error:
// nothing is dropped silently.
func ExampleClient_Send() {
	c, err := conn.NewClient(conn.ClientConfig{URL: "ws://127.0.0.1:9/"})
	if err != nil {
		panic(err)
	}
	err = c.Send(context.Background(), conn.TextMessage, []byte("event"))
	fmt.Println(err)
	// Output:
	// conn: cannot send: client is Idle, not Connected
}

// A configuration mistake names the field.
func ExampleNewClient_validation() {
	_, err := conn.NewClient(conn.ClientConfig{URL: "http://127.0.0.1/", Backoff: fsm.Backoff{Multiplier: 0.5}})
	fmt.Println(err)
	// Output:
	// fsm: ClientConfig.URL must use the ws or wss scheme (got http://127.0.0.1/)
	// fsm: Backoff.Multiplier must be at least 1 (0 means 1.6) (got 0.5)
}

// BearerToken refuses requests before the upgrade: 401 without
// credentials, 403 with wrong ones.
func ExampleBearerToken() {
	srv, err := conn.NewServer(conn.ServerConfig{Authorize: conn.BearerToken("s3cret")})
	if err != nil {
		panic(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	for _, h := range []http.Header{nil, conn.BearerHeader("guess")} {
		req, _ := http.NewRequest(http.MethodGet, hs.URL, nil)
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
	}
	fmt.Println("refused:", srv.Stats().Refused)
	// Output:
	// 401 Unauthorized
	// 403 Forbidden
	// refused: 2
}

// Shutdown sends every session a 1001 close, waits for the peers to
// answer, and forces what is left when ctx ends.
func ExampleServer_Shutdown() {
	srv, err := conn.NewServer(conn.ServerConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		panic(err)
	}
	hs := &http.Server{Addr: "127.0.0.1:0", Handler: srv}
	// ... hs.ListenAndServe() on its own goroutine ...
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println(srv.Shutdown(ctx)) // first the sessions,
	fmt.Println(hs.Shutdown(ctx))  // then the listener
	fmt.Println(srv.Shutdown(ctx))
	// Output:
	// <nil>
	// <nil>
	// conn: server closed
}

// With an outbox, what is sent while the client has no link is held (at
// most 100 messages, 64 KiB, 30 s each) and written in order once the
// link is up, after OnConnect's greeting; a heartbeat sent with
// SendEphemeral is never held.
func ExampleClientConfig_outbox() {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	got := make(chan string, 10)
	srv, err := conn.NewServer(conn.ServerConfig{
		Logger: quiet,
		OnMessage: func(_ *conn.Session, _ conn.MessageType, data []byte) error {
			got <- string(data)
			return nil
		},
	})
	if err != nil {
		panic(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()

	c, err := conn.NewClient(conn.ClientConfig{
		URL:    "ws" + strings.TrimPrefix(hs.URL, "http") + "/",
		Logger: quiet,
		Outbox: fsm.Outbox{Count: 100, Bytes: 64 << 10, Age: 30 * time.Second},
		OnConnect: func(c *conn.Client) {
			_ = c.SendEphemeral(context.Background(), conn.TextMessage, []byte("hello"))
		},
	})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// Not connected yet: these are queued, the heartbeat is refused.
	fmt.Println(c.Send(ctx, conn.TextMessage, []byte("event 1")))
	fmt.Println(c.Send(ctx, conn.TextMessage, []byte("event 2")))
	fmt.Println(c.SendEphemeral(ctx, conn.TextMessage, []byte("heartbeat")))
	fmt.Println("held:", c.Stats().Outbox.Held)

	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	for range 3 {
		fmt.Println("server got:", <-got)
	}
	cancel()
	<-done
	st := c.Stats().Outbox
	fmt.Println("written:", st.Written, "dropped:", st.Dropped.Total())
	// Output:
	// <nil>
	// <nil>
	// conn: cannot send: client is Idle, not Connected
	// held: 2
	// server got: hello
	// server got: event 1
	// server got: event 2
	// written: 2 dropped: 0
}

// A server whose sessions each keep a reader goroutine, as on systems
// without epoll: the zero value, EngineAuto, polls plain TCP on Linux.
func ExampleEngine() {
	cfg := conn.ServerConfig{Engine: conn.EngineGoroutine}
	srv, err := conn.NewServer(cfg)
	fmt.Println(cfg.Engine, srv != nil, err)
	fmt.Println(conn.ServerConfig{Engine: 7}.Validate() != nil)
	// Output:
	// goroutine true <nil>
	// true
}
