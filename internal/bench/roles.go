package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
)

// RunRole runs one helper process's part and returns when it is killed or
// its work is done. Roles print their results as "<key> <value>" lines on
// stdout for the orchestrating process.
func RunRole(ctx context.Context, role string, o RoleOptions) error {
	switch role {
	case "mem-server":
		return memServer(ctx, o)
	case "cpu-server":
		return cpuServer(ctx, o)
	case "fleet":
		return fleet(ctx, o)
	case "client":
		return victim(ctx, o)
	case "herd-server":
		return herdServer(ctx, o)
	}
	return fmt.Errorf("unknown bench role %q", role)
}

// RoleOptions are the helper processes' parameters, passed as flags.
type RoleOptions struct {
	Mode     string        // mem-server: naive or lifeline
	N        int           // sessions or clients
	Addr     string        // host:port to dial
	Ping     time.Duration // liveness PingInterval
	Pong     time.Duration // liveness PongTimeout
	Settle   time.Duration // mem-server: wait after the last session, before measuring
	Window   time.Duration // cpu-server: measurement window
	Warmup   time.Duration // cpu-server: wait before the window
	Parallel int           // fleet: concurrent dials
	Rate     float64       // herd-server: handshakes admitted per second (0: no limit)
}

func discardLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// emit prints one result line: key, a space, v as JSON.
func emit(key string, v any) {
	b, _ := json.Marshal(v)
	fmt.Printf("%s %s\n", key, b)
}

type mem struct{ Heap, Stack int64 }

func heapStack() mem {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return mem{int64(ms.HeapInuse), int64(ms.StackInuse)}
}

// memResult is what a mem-server reports: for Mode's server holding
// Sessions idle sessions, the heap plus stack in use per session
// (PerSession, and apart HeapPer and StackPer) after GC against the same
// before any connection, its Goroutines, and how many sessions were
// Reaped meanwhile.
type memResult struct {
	Mode       string  `json:"mode"`
	Sessions   int64   `json:"sessions"`
	PerSession float64 `json:"bytes_per_session"`
	HeapPer    float64 `json:"heap_per_session"`
	StackPer   float64 `json:"stack_per_session"`
	Goroutines int     `json:"goroutines"`
	Reaped     uint64  `json:"reaped"`
}

// cpuProfileEnv names a file a cpu-server writes its CPU profile of the
// window to, for finding where the time goes.
const cpuProfileEnv = "LIFELINE_BENCH_CPUPROFILE"

// heapProfileEnv names a file a mem-server writes its heap profile to,
// right after it weighed its sessions, for finding where their bytes go
// (go tool pprof -sample_index=inuse_space).
const heapProfileEnv = "LIFELINE_BENCH_HEAPPROFILE"

// buildServer returns the server of mode o.Mode and how to count its open
// and reaped sessions:
//
//   - naive: gorilla/websocket's plain echo server (the read loop in the
//     handler, default buffers), no lifecycle, no heartbeat;
//   - naive-heartbeat: the same with the straightforward heartbeat, a
//     runtime timer per connection that writes a ping with WriteControl;
//   - lifeline: conn.Server with liveness o.Ping/o.Pong, its default
//     engine (EngineAuto: the poll engine on Linux);
//   - lifeline-goroutine: the same with EngineGoroutine, a reader
//     goroutine per session.
func buildServer(o RoleOptions) (http.Handler, func() int64, func() uint64, error) {
	var n atomic.Int64
	none := func() uint64 { return 0 }
	switch o.Mode {
	case "naive":
		return naiveEcho(&n, 0), n.Load, none, nil
	case "naive-heartbeat":
		return naiveEcho(&n, o.Ping), n.Load, none, nil
	case "lifeline", "lifeline-goroutine":
		srv, err := lifelineServer(o)
		if err != nil {
			return nil, nil, nil, err
		}
		return srv, func() int64 { return srv.Stats().Sessions[fsm.Alive.String()] }, func() uint64 { return srv.Stats().ReapedTotal }, nil
	}
	return nil, nil, nil, fmt.Errorf("unknown server mode %q", o.Mode)
}

// lifelineServer is the one place the bench builds the server it
// measures as "lifeline": conn.Server echoing every message, liveness
// o.Ping/o.Pong, everything else at its defaults. A server option under
// test (a read engine, say) goes here, so that every measurement (mem,
// cpu, rss, echo) gets it at once.
func lifelineServer(o RoleOptions) (*conn.Server, error) {
	engine := conn.EngineAuto
	if o.Mode == "lifeline-goroutine" {
		engine = conn.EngineGoroutine
	}
	return conn.NewServer(conn.ServerConfig{Liveness: fsm.Liveness{PingInterval: o.Ping, PongTimeout: o.Pong},
		OnMessage: echo, Logger: discardLogger(), Engine: engine})
}

// naiveEcho is the baseline: gorilla/websocket's plain echo server, the
// read loop inside the handler, default buffers, no lifecycle.
// With ping > 0 every connection gets a runtime timer that writes a ping
// each interval.
func naiveEcho(accepted *atomic.Int64, ping time.Duration) http.HandlerFunc {
	up := websocket.Upgrader{}
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		accepted.Add(1)
		defer c.Close()
		if ping > 0 {
			var t *time.Timer
			t = time.AfterFunc(ping, func() {
				if c.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)) == nil {
					t.Reset(ping)
				}
			})
			defer t.Stop()
		}
		for {
			mt, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			if c.WriteMessage(mt, p) != nil {
				return
			}
		}
	}
}

func echo(s *conn.Session, t conn.MessageType, data []byte) error { return s.Send(t, data) }

// memServer serves o.N sessions in mode o.Mode and reports the heap and
// stack they cost, measured after two GCs against the same before any
// session.
func memServer(ctx context.Context, o RoleOptions) error {
	if os.Getenv(heapProfileEnv) != "" {
		runtime.MemProfileRate = 1 // every allocation, to count bytes per session
	}
	h, sessions, reaped, err := buildServer(o)
	if err != nil {
		return err
	}
	before := heapStack()
	if err := serveUntil(ctx, h, sessions, o.N); err != nil {
		return err
	}
	// Heartbeat rounds, so every ping path ran and stacks grew to what
	// the heartbeat needs before they are weighed.
	if err := sleep(ctx, o.Settle); err != nil {
		return err
	}
	after := heapStack()
	if f := os.Getenv(heapProfileEnv); f != "" {
		if fh, err := os.Create(f); err == nil {
			_ = pprof.Lookup("heap").WriteTo(fh, 0)
			_ = fh.Close()
		}
	}
	n := sessions()
	emit("mem", memResult{
		Mode: o.Mode, Sessions: n,
		PerSession: float64((after.Heap+after.Stack)-(before.Heap+before.Stack)) / float64(n),
		HeapPer:    float64(after.Heap-before.Heap) / float64(n),
		StackPer:   float64(after.Stack-before.Stack) / float64(n),
		Goroutines: runtime.NumGoroutine(),
		Reaped:     reaped(),
	})
	<-ctx.Done()
	return nil
}

// cpuResult is what a cpu-server reports: for Mode's server holding
// Sessions heartbeating sessions, the process CPUSeconds over the measured
// Window and that as a fraction of one core (CoreFrac), how many sessions
// were Reaped meanwhile, the open-file limit (FDLimit) and its Goroutines.
type cpuResult struct {
	Mode       string  `json:"mode"`
	Sessions   int64   `json:"sessions"`
	Window     string  `json:"window"`
	CPUSeconds float64 `json:"cpu_seconds"`
	CoreFrac   float64 `json:"core_fraction"`
	Reaped     uint64  `json:"reaped"`
	FDLimit    uint64  `json:"fd_limit"`
	Goroutines int     `json:"goroutines"`
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuServer serves o.N idle sessions of server mode o.Mode and reports
// the CPU the process used over o.Window, after o.Warmup.
func cpuServer(ctx context.Context, o RoleOptions) error {
	h, sessions, reaped, err := buildServer(o)
	if err != nil {
		return err
	}
	if err := serveUntil(ctx, h, sessions, o.N); err != nil {
		return err
	}
	fmt.Println("ready")
	if err := sleep(ctx, o.Warmup); err != nil {
		return err
	}
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	fmt.Println("window start")
	if f := os.Getenv(cpuProfileEnv); f != "" {
		fh, _ := os.Create(f)
		_ = pprof.StartCPUProfile(fh)
		time.AfterFunc(o.Window, func() { pprof.StopCPUProfile(); fh.Close() })
	}
	c0, t0 := cpuTime(), time.Now()
	if err := sleep(ctx, o.Window); err != nil {
		return err
	}
	c1, t1 := cpuTime(), time.Now()
	n := sessions()
	emit("cpu", cpuResult{
		Sessions: n, Window: t1.Sub(t0).Round(time.Millisecond).String(),
		CPUSeconds: (c1 - c0).Seconds(), CoreFrac: (c1 - c0).Seconds() / t1.Sub(t0).Seconds(),
		Mode: o.Mode, Reaped: reaped(), FDLimit: lim.Cur, Goroutines: runtime.NumGoroutine(),
	})
	<-ctx.Done()
	return nil
}

// fleet keeps o.N plain WebSocket clients connected to o.Addr. They
// answer pings and send nothing: idle peers. On SIGUSR1 it prints how many
// pings they answered so far ("pings <n>").
func fleet(ctx context.Context, o RoleOptions) error {
	d := websocket.Dialer{ReadBufferSize: 256, WriteBufferSize: 256, HandshakeTimeout: 30 * time.Second}
	var pings atomic.Int64
	var mu sync.Mutex
	var firstErr error
	connected := 0
	work := make(chan struct{})
	var wg sync.WaitGroup
	for range max(o.Parallel, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				c, _, err := d.DialContext(ctx, "ws://"+o.Addr+"/", nil)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					connected++
				}
				mu.Unlock()
				if err != nil {
					continue
				}
				c.SetPingHandler(func(p string) error {
					pings.Add(1)
					_ = c.WriteControl(websocket.PongMessage, []byte(p), time.Now().Add(time.Second))
					return nil
				})
				go func() {
					for {
						if _, _, err := c.ReadMessage(); err != nil {
							return
						}
					}
				}()
			}
		}()
	}
	for range o.N {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("fleet: %d of %d connected; first error: %w", connected, o.N, firstErr)
	}
	fmt.Println("ready", connected)
	usr := make(chan os.Signal, 1)
	signal.Notify(usr, syscall.SIGUSR1)
	defer signal.Stop(usr)
	for {
		select {
		case <-usr:
			fmt.Println("pings", pings.Load())
		case <-ctx.Done():
			return nil
		}
	}
}

// victim runs one lifeline client. Once connected it says "hello <pid>"
// to the server, so the server knows which session to time, and prints
// "connected".
func victim(ctx context.Context, o RoleOptions) error {
	c, err := conn.NewClient(conn.ClientConfig{URL: "ws://" + o.Addr + "/", Logger: discardLogger(),
		Liveness: fsm.Liveness{PingInterval: o.Ping, PongTimeout: o.Pong}})
	if err != nil {
		return err
	}
	states := c.Subscribe(ctx)
	go func() {
		for tr := range states {
			if tr.To == fsm.Connected {
				if err := c.Send(ctx, conn.TextMessage, []byte(fmt.Sprintf("hello %d", os.Getpid()))); err == nil {
					fmt.Println("connected")
				}
			}
		}
	}()
	return c.Run(ctx)
}

// serveUntil serves h on a loopback port, prints "addr <host:port>" for
// the orchestrator, and returns once n sessions are open.
func serveUntil(ctx context.Context, h http.Handler, sessions func() int64, n int) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = http.Serve(ln, h) }()
	fmt.Println("addr", ln.Addr())
	return waitCount(ctx, sessions, int64(n), 5*time.Minute)
}

// waitCount polls n until it reaches want. It is a measurement tool's
// wait for a load to build up, bounded by limit.
func waitCount(ctx context.Context, n func() int64, want int64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for n() < want {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d sessions after %s", n(), want, limit)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RoleContext returns a context that ends on SIGTERM or SIGINT, for roles.
func RoleContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
}
