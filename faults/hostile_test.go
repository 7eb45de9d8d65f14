package faults

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/internal/report"
)

const hostile = "Hostile input (lifeline serve, while a well-behaved client is served)"

// echoRTTs measures n echo round trips of a small message on ws.
func echoRTTs(t *testing.T, ws *websocket.Conn, n int) []time.Duration {
	t.Helper()
	out := make([]time.Duration, 0, n)
	for i := range n {
		msg := fmt.Sprintf("good %d", i)
		start := time.Now()
		if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatalf("good client: %v", err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, got, err := ws.ReadMessage()
		if err != nil || string(got) != msg {
			t.Fatalf("good client: got %q, %v", got, err)
		}
		out = append(out, time.Since(start))
	}
	return out
}

func pct(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// TestHostileInput runs every kind of bad input at once against a real
// `lifeline serve`, each answered as the limits say, while a
// well-behaved client keeps echoing; its latency is compared with the
// same client's before the attack, in the same run.
func TestHostileInput(t *testing.T) {
	const handshake = 500 * time.Millisecond
	s := startLifeline(t, "", "serve", serveArgs("127.0.0.1:0", "--token", "T", "--handshake-timeout", handshake.String(),
		"--read-limit", "1KiB")...)
	addr := s.listening(t)
	url := "ws://" + addr + "/"
	auth := http.Header{"Authorization": {"Bearer T"}}
	good, _, err := websocket.DefaultDialer.Dial(url, auth)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	const rtts = 300
	before := echoRTTs(t, good, rtts)

	var wg sync.WaitGroup
	var mu sync.Mutex
	results := map[string][]string{}
	note := func(kind, what string) {
		mu.Lock()
		results[kind] = append(results[kind], what)
		mu.Unlock()
	}
	// Slowloris: TCP open, headers started and never finished.
	const slow = 100
	var cutMu sync.Mutex
	var cut []time.Duration
	for range slow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				note("slowloris", "dial: "+err.Error())
				return
			}
			defer c.Close()
			start := time.Now()
			_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n")
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = io.Copy(io.Discard, c) // until the server hangs up
			cutMu.Lock()
			cut = append(cut, time.Since(start))
			cutMu.Unlock()
			if err != nil {
				note("slowloris", "not cut off: "+err.Error())
			}
		}()
	}
	// Oversize messages and invalid UTF-8, on authorized links.
	closeCode := func(kind string, mt int, data []byte, want int) {
		defer wg.Done()
		ws, _, err := websocket.DefaultDialer.Dial(url, auth)
		if err != nil {
			note(kind, "dial: "+err.Error())
			return
		}
		defer ws.Close()
		_ = ws.WriteMessage(mt, data)
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _, err = ws.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code == want {
			note(kind, "ok")
			return
		}
		note(kind, fmt.Sprintf("got %v", err))
	}
	const each = 20
	for range each {
		wg.Add(2)
		go closeCode("oversize", websocket.BinaryMessage, make([]byte, 2<<10), websocket.CloseMessageTooBig)
		go closeCode("utf8", websocket.TextMessage, []byte("bad \xff\xfe"), websocket.CloseInvalidFramePayloadData)
	}
	// Unauthenticated upgrades: no token, and wrong ones.
	const unauth = 200
	for i := range unauth {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var h http.Header
			if i%2 == 1 {
				h = http.Header{"Authorization": {"Bearer guess-" + fmt.Sprint(i)}}
			}
			_, resp, err := websocket.DefaultDialer.Dial(url, h)
			switch {
			case err == nil:
				note("unauth", "upgraded!")
			case resp != nil && (resp.StatusCode == 401 || resp.StatusCode == 403):
				note("unauth", "ok")
			default:
				note("unauth", fmt.Sprint(err))
			}
		}()
	}
	// The good client echoes for as long as the attack lasts (the
	// slowloris connections hold it open for the handshake timeout).
	attack := make(chan struct{})
	go func() { wg.Wait(); close(attack) }()
	var during []time.Duration
	for done := false; !done; {
		during = append(during, echoRTTs(t, good, 10)...)
		select {
		case <-attack:
			done = true
		default:
		}
	}

	count := func(kind string) (ok int, bad []string) {
		for _, r := range results[kind] {
			if r == "ok" {
				ok++
			} else {
				bad = append(bad, r)
			}
		}
		return ok, bad
	}
	slices.Sort(cut)
	if n := len(results["slowloris"]); n != 0 || len(cut) != slow {
		t.Errorf("slowloris: %d of %d cut off; problems %v", len(cut), slow, results["slowloris"])
	}
	if worst := cut[len(cut)-1]; worst > handshake+500*time.Millisecond || cut[0] < handshake/2 {
		t.Errorf("slowloris cut off after %s..%s; --handshake-timeout %s", cut[0], worst, handshake)
	}
	okBig, badBig := count("oversize")
	okUTF, badUTF := count("utf8")
	okAuth, badAuth := count("unauth")
	if okBig != each || okUTF != each || okAuth != unauth {
		t.Errorf("oversize %d/%d %v; utf8 %d/%d %v; unauthenticated %d/%d %v", okBig, each, badBig, okUTF, each, badUTF, okAuth, unauth, badAuth)
	}
	st := stats(t, addr, "T")
	refused, _ := st["refused"].(float64)
	open, _ := st["open"].(float64)
	if refused != unauth || open != 1 {
		t.Errorf("stats after the attack: refused %v (want %d), open %v (want 1, the good client)", refused, unauth, open)
	}
	p50b, p99b, p50d, p99d := pct(before, .5), pct(before, .99), pct(during, .5), pct(during, .99)
	if p99d > 100*time.Millisecond {
		t.Errorf("good client's p99 echo under attack %s", p99d)
	}
	evidence := fmt.Sprintf("good client: %d echoes during the attack, all returned; server open sessions after: %v (the good client)", len(during), open)
	report.Add(t, report.Row{Section: hostile, Case: fmt.Sprintf("slowloris: %d connections send half a request and stall", slow),
		Path: "connection closed by the server, no session made", Bound: "--handshake-timeout " + handshake.String(),
		Observed: fmt.Sprintf("all %d cut off after %s..%s", slow, cut[0].Round(time.Millisecond), cut[len(cut)-1].Round(time.Millisecond)), Evidence: evidence})
	report.Add(t, report.Row{Section: hostile, Case: fmt.Sprintf("oversize: %d links send a 2 KiB message", each),
		Path: "close 1009, session Reaped (read_error)", Bound: "--read-limit 1KiB",
		Observed: fmt.Sprintf("%d of %d closed with 1009", okBig, each), Evidence: evidence})
	report.Add(t, report.Row{Section: hostile, Case: fmt.Sprintf("invalid UTF-8 in text: %d links", each),
		Path: "close 1007, session Reaped (read_error)", Bound: "RFC 6455 §8.1",
		Observed: fmt.Sprintf("%d of %d closed with 1007", okUTF, each), Evidence: evidence})
	report.Add(t, report.Row{Section: hostile, Case: fmt.Sprintf("unauthenticated upgrades: %d (no token, wrong tokens)", unauth),
		Path: "401 / 403 before the upgrade", Bound: "no upgrade, no session",
		Observed: fmt.Sprintf("%d of %d refused; stats.refused %v", okAuth, unauth, refused), Evidence: evidence})
	report.Add(t, report.Row{Section: hostile, Case: "the well-behaved client's echo round trip, before and during all of the above",
		Path: "Connected throughout", Bound: "p99 ≤ 100 ms on loopback",
		Observed: fmt.Sprintf("p50 %s → %s, p99 %s → %s (×%.1f at p99)", p50b.Round(time.Microsecond), p50d.Round(time.Microsecond),
			p99b.Round(time.Microsecond), p99d.Round(time.Microsecond), float64(p99d)/float64(p99b)),
		Evidence: fmt.Sprintf("%d before + %d during, all returned intact", rtts, len(during))})
}
