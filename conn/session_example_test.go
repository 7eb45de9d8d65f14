package conn_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
)

// Sending to one session: the application keeps the ids it learns in
// OnOpen and finds the session by id when it has something for it. A
// session that was reaped meanwhile is no longer found, and a Send on a
// *Session the application kept returns ErrSessionClosed.
func ExampleServer_Session() {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	opened := make(chan uint64, 1)
	srv, err := conn.NewServer(conn.ServerConfig{
		Logger: quiet,
		OnOpen: func(s *conn.Session, _ *http.Request) { opened <- s.ID() },
	})
	if err != nil {
		panic(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()

	got := make(chan string, 1)
	c, err := conn.NewClient(conn.ClientConfig{
		URL:       "ws" + strings.TrimPrefix(hs.URL, "http") + "/",
		Logger:    quiet,
		OnMessage: func(_ conn.MessageType, data []byte) { got <- string(data) },
	})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	id := <-opened
	if s, ok := srv.Session(id); ok {
		if err := s.Send(conn.TextMessage, []byte("for you only")); err != nil {
			panic(err)
		}
	}
	fmt.Println("client got:", <-got)
	fmt.Println("alive sessions:", srv.Stats().Sessions[fsm.Alive.String()])
	cancel()
	<-done
	// Output:
	// client got: for you only
	// alive sessions: 1
}
