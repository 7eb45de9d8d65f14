package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/internal/proc"
)

// Pacing of the echo measurement: one echo every echoGap, so the figure
// is the latency of a client among idle ones, not the server's
// throughput; echoTimeout fails an echo that never comes back.
const (
	echoGap     = 10 * time.Millisecond
	echoTimeout = 5 * time.Second
	echoSize    = 64
)

// echoResult is the echo measurement of one server.
type echoResult struct {
	Server string // the server role measured
	Idle   int    // idle sessions heartbeating beside the active client
	// Latencies are the round trips of the echoes, sorted.
	Latencies []time.Duration
	// Pings is how many pings the idle clients answered while the
	// echoes ran: proof that the heartbeat was running.
	Pings int64
}

// Quantile returns the q-quantile (0..1) of the latencies: the smallest
// latency with at least q of them at or below it.
func (r echoResult) Quantile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(q*float64(len(r.Latencies))+0.999999) - 1
	return r.Latencies[max(0, min(i, len(r.Latencies)-1))]
}

// runEcho times the echoes of one active client while cfg.EchoSessions
// idle sessions on the same server heartbeat every cfg.EchoPing: gorilla's
// echo server with a ping timer per connection (the baseline, so that a
// run on a loaded machine gives a ratio), then conn.Server. The idle
// clients run in fleet processes; the active one in this process, one
// echo every echoGap.
func runEcho(self proc.Self, cfg Config, w io.Writer) error {
	ping := cfg.EchoPing
	pong := min(10*time.Second, ping/2)
	fmt.Fprintf(w, "echo latency of one active client, %d-byte text messages, one every %s, %d echoes, while %d idle sessions on the same server heartbeat (ping every %s, pong timeout %s)\n",
		echoSize, echoGap, cfg.EchoCount, cfg.EchoSessions, ping, pong)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	res := map[string]echoResult{}
	for _, mode := range []string{"naive-heartbeat", "lifeline-goroutine", "lifeline"} {
		r, err := measureEcho(self, mode, cfg.EchoSessions, ping, pong, cfg.EchoCount)
		if err != nil {
			return fmt.Errorf("%s: %w", mode, err)
		}
		res[mode] = r
		fmt.Fprintf(w, "echo server=%s idle_sessions=%d echoes=%d p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f pings_answered_during=%d\n",
			r.Server, r.Idle, len(r.Latencies), ms(r.Quantile(0.5)), ms(r.Quantile(0.9)), ms(r.Quantile(0.99)), ms(r.Quantile(1)), r.Pings)
	}
	l, n := res["lifeline"].Quantile(0.99), res["naive-heartbeat"].Quantile(0.99)
	fmt.Fprintf(w, "summary: echo p99 with %d idle sessions heartbeating: lifeline %.3f ms vs gorilla's echo server %.3f ms in the same run (%.2fx); goal: no worse than today's goroutine-per-session lifeline, compared by this ratio across runs\n",
		cfg.EchoSessions, ms(l), ms(n), float64(l)/float64(n))
	g := res["lifeline-goroutine"].Quantile(0.99)
	fmt.Fprintf(w, "engine: echo p99 on the poll engine %.3f ms, on the goroutine engine %.3f ms in the same run (%.2fx)\n", ms(l), ms(g), float64(l)/float64(g))
	return nil
}

// measureEcho starts a server of mode (the mem-server role, which holds
// its sessions once counted), connects idle fleets, then times count
// echoes from one more client.
func measureEcho(self proc.Self, mode string, idle int, ping, pong time.Duration, count int) (echoResult, error) {
	srv, err := startMemServer(self, mode, idle, ping, pong, 0)
	if err != nil {
		return echoResult{}, err
	}
	defer srv.Kill()
	addr, fleets, err := loadServer(self, srv, idle, nil)
	defer killAll(fleets)
	if err != nil {
		return echoResult{}, err
	}
	if _, err := srv.Line("mem ", 5*time.Minute); err != nil {
		return echoResult{}, err
	}
	p0, err := fleetPings(fleets)
	if err != nil {
		return echoResult{}, err
	}
	lat, err := echoes(addr, count)
	if err != nil {
		return echoResult{}, err
	}
	p1, err := fleetPings(fleets)
	if err != nil {
		return echoResult{}, err
	}
	slices.Sort(lat)
	return echoResult{Server: mode, Idle: idle, Latencies: lat, Pings: p1 - p0}, nil
}

// echoes dials addr and times count echoes, one every echoGap; a wrong
// or missing answer is an error. Pings from the server are answered by
// gorilla's default handler while the client reads.
func echoes(addr string, count int) ([]time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+addr+"/", nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("e"), echoSize)
	lat := make([]time.Duration, 0, count)
	tick := time.NewTicker(echoGap)
	defer tick.Stop()
	for i := range count {
		<-tick.C
		copy(msg, fmt.Sprintf("%08d", i)) // tell echoes apart
		t0 := time.Now()
		_ = c.SetWriteDeadline(t0.Add(echoTimeout))
		if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
			return nil, fmt.Errorf("echo %d: write: %w", i, err)
		}
		_ = c.SetReadDeadline(t0.Add(echoTimeout))
		_, got, err := c.ReadMessage()
		if err != nil {
			return nil, fmt.Errorf("echo %d: read: %w", i, err)
		}
		if !bytes.Equal(got, msg) {
			return nil, fmt.Errorf("echo %d: got %q, want %q", i, got, msg)
		}
		lat = append(lat, time.Since(t0))
	}
	return lat, nil
}
