package onebot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/conn/onebot"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// A forward server, and an application calling its API through a Caller.
func ExampleNewServer() {
	srv, err := onebot.NewServer(onebot.ServerConfig{
		SelfID:      10001,
		AccessToken: "s3cret", // 401 without it, 403 if wrong, before the upgrade
		Conn:        conn.ServerConfig{Logger: quiet},
	})
	if err != nil {
		panic(err)
	}
	hs := httptest.NewServer(srv) // in production: &http.Server{Addr: "127.0.0.1:6700", Handler: srv}
	defer hs.Close()
	defer srv.Close()

	// The application's side: a reconnecting conn.Client on /api, its
	// messages fed to a Caller that matches answers by echo.
	var caller *onebot.Caller
	up := make(chan struct{}, 1)
	app, _ := conn.NewClient(conn.ClientConfig{
		URL:       "ws" + strings.TrimPrefix(hs.URL, "http") + "/api",
		Header:    conn.BearerHeader("s3cret"),
		Logger:    quiet,
		OnMessage: func(_ conn.MessageType, data []byte) { caller.Deliver(data) },
		OnConnect: func(*conn.Client) {
			select {
			case up <- struct{}{}:
			default:
			}
		},
	})
	caller = onebot.NewCaller(func(ctx context.Context, b []byte) error { return app.Send(ctx, conn.TextMessage, b) }, 5*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go app.Run(ctx)
	<-up

	resp, err := caller.Call(ctx, "get_login_info", nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.Status, string(resp.Data))
	resp, _ = caller.Call(ctx, "no_such_action", nil)
	fmt.Println(resp.Status, resp.Retcode)
	// Output:
	// ok {"user_id":10001,"nickname":"lifeline"}
	// failed 1404
}

// A reverse client: the bot dials the application, greets with the
// lifecycle event on every (re)connect, and answers its API calls.
func ExampleNewClient() {
	got := make(chan string, 1)
	app, _ := conn.NewServer(conn.ServerConfig{Logger: quiet,
		OnOpen: func(_ *conn.Session, r *http.Request) {
			fmt.Println(r.Header.Get("X-Self-ID"), r.Header.Get("X-Client-Role"))
		},
		OnMessage: func(_ *conn.Session, _ conn.MessageType, data []byte) error {
			var ev struct {
				MetaEventType string `json:"meta_event_type"`
				SubType       string `json:"sub_type"`
			}
			_ = json.Unmarshal(data, &ev)
			select {
			case got <- ev.MetaEventType + " " + ev.SubType:
			default:
			}
			return nil
		}})
	hs := httptest.NewServer(app)
	defer hs.Close()
	defer app.Close()

	bot, err := onebot.NewClient(onebot.ClientConfig{
		URL:    "ws" + strings.TrimPrefix(hs.URL, "http") + "/onebot/v11/ws",
		SelfID: 10001,
		Conn:   conn.ClientConfig{Logger: quiet}, // Backoff: onebot.DefaultBackoff(), 3 s first delay
	})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- bot.Run(ctx) }()
	fmt.Println(<-got)
	cancel()
	<-done
	// Output:
	// 10001 Universal
	// lifecycle connect
}
