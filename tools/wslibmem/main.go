// Command wslibmem measures the memory an idle WebSocket connection costs a
// server built on each candidate library, in the shapes each allows:
//
//   - naive: the library's plain echo server (gorilla/websocket,
//     coder/websocket, gobwas/ws), the read loop inside the net/http
//     handler, library defaults, no heartbeat;
//   - lean: small buffers, the read loop on a fresh goroutine once the
//     handler has returned, and a WebSocket ping to every connection each
//     -ping interval (heartbeats on), answered by the clients; gws/lean is
//     lxzan/gws's own "Best Practice" server, which has this shape;
//   - epoll: no goroutine per connection; lesismal/nbio's engine with its
//     upgrader (nbio/epoll), and gobwas/ws on an epoll set of our own
//     (gobwas/epoll, the "million WebSockets" shape); heartbeats on.
//
// Each measurement runs a fresh server process and a separate client
// process (one process may hold 20 000 descriptors), waits until all -n
// connections are up and at least two ping rounds have passed, then
// reports two figures per connection:
//
//   - heap+stack: (HeapInuse + StackInuse after two GCs − the same
//     before any connection) ÷ n, read by the server itself;
//   - RSS: (VmRSS of the server process after those GCs − its VmRSS
//     once it listens, before any client) ÷ n, read by this orchestrator
//     from /proc/<pid>/status: what the machine pays, the GC's headroom
//     and the runtime's free-but-kept pages included.
//
// It lives in its own module so lifeline's go.mod does not carry the
// libraries it did not choose (docs/decisions.md). `lifeline bench -only
// rss` builds it and runs one of its servers (-role server) as the peer.
//
// Usage (from this directory):
//
//	flock /work/bench.lock go run . -n 5000,19900
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// result is what a server process reports on its "result " line.
type result struct {
	Server     string  `json:"server"`
	Conns      int64   `json:"conns"`
	PerConn    float64 `json:"per_conn_bytes"`
	HeapPer    float64 `json:"heap_per_conn_bytes"`
	StackPer   float64 `json:"stack_per_conn_bytes"`
	Goroutines int     `json:"goroutines"`
	Pongs      int64   `json:"pongs"`
}

func main() {
	role := flag.String("role", "orchestrate", "orchestrate, server or client (the last two are started by the first)")
	server := flag.String("server", "gorilla/lean", "server role: the server to run, lib/mode")
	list := flag.String("servers", strings.Join(servers, ","), "servers to measure, lib/mode")
	ns := flag.String("n", "10000", "connections per measurement; a comma-separated list measures each size")
	ping := flag.Duration("ping", 3*time.Second, "heartbeat interval of the servers that ping")
	addr := flag.String("addr", "", "client role: server address")
	flag.Parse()
	log.SetFlags(0)
	var sizes []int
	for _, s := range strings.Split(*ns, ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			log.Fatalf("-n: %q is not a connection count", s)
		}
		sizes = append(sizes, n)
	}
	switch *role {
	case "server":
		serve(*server, sizes[0], *ping)
	case "client":
		clients(*addr, sizes[0])
	default:
		orchestrate(strings.Split(*list, ","), sizes, *ping)
	}
}

func orchestrate(list []string, sizes []int, ping time.Duration) {
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("wslibmem: %v connections per measurement, ping every %s, %s, GOMAXPROCS=%d\n",
		sizes, ping, runtime.Version(), runtime.GOMAXPROCS(0))
	fmt.Printf("%-14s %6s %10s %10s %10s %10s %10s %8s\n", "server", "conns", "rss/conn", "heap+stack", "heap/conn", "stack/conn", "goroutines", "pongs")
	for _, n := range sizes {
		for _, name := range list {
			r, rss, err := measure(self, name, n, ping)
			if err != nil {
				log.Fatalf("%s at %d: %v", name, n, err)
			}
			fmt.Printf("%-14s %6d %10.0f %10.0f %10.0f %10.0f %10d %8d\n",
				r.Server, r.Conns, rss, r.PerConn, r.HeapPer, r.StackPer, r.Goroutines, r.Pongs)
		}
	}
}

// measure runs one server process and one client process and returns what
// the server reported and its RSS growth per connection, read from outside.
func measure(self, name string, n int, ping time.Duration) (result, float64, error) {
	srv := exec.Command(self, "-role", "server", "-server", name, "-n", fmt.Sprint(n), "-ping", ping.String())
	srv.Stderr = os.Stderr
	out, err := srv.StdoutPipe()
	if err != nil {
		return result{}, 0, err
	}
	if err := srv.Start(); err != nil {
		return result{}, 0, err
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	sc := bufio.NewScanner(out)
	addr, err := line(sc, "addr ")
	if err != nil {
		return result{}, 0, err
	}
	rss0, err := rss(srv.Process.Pid)
	if err != nil {
		return result{}, 0, err
	}
	cl := exec.Command(self, "-role", "client", "-addr", addr, "-n", fmt.Sprint(n))
	cl.Stderr = os.Stderr
	if err := cl.Start(); err != nil {
		return result{}, 0, err
	}
	defer func() { _ = cl.Process.Kill(); _ = cl.Wait() }()
	l, err := line(sc, "result ")
	if err != nil {
		return result{}, 0, err
	}
	rss1, err := rss(srv.Process.Pid)
	if err != nil {
		return result{}, 0, err
	}
	var r result
	if err := json.Unmarshal([]byte(l), &r); err != nil {
		return result{}, 0, err
	}
	return r, float64(rss1-rss0) / float64(r.Conns), nil
}

// line returns the next line that starts with prefix, prefix cut off.
func line(sc *bufio.Scanner, prefix string) (string, error) {
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			return rest, nil
		}
	}
	return "", fmt.Errorf("server exited before printing %q", prefix)
}

// rss reads a process's resident set size, in bytes, from
// /proc/<pid>/status (the VmRSS line, in kB).
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// accepted counts connections whose upgrade completed; pongs counts pongs
// heard by servers that ping (proof that the heartbeat ran).
var accepted, pongs atomic.Int64

// serve runs the server name until killed. It prints "addr <host:port>"
// once it listens, and once n connections are up and two and a half ping
// rounds have passed, two GCs later, "result <json>": the orchestrator
// reads the process's RSS at both lines.
func serve(name string, n int, ping time.Duration) {
	before := heapStack()
	addr, err := start(name, ping)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("addr", addr)
	deadline := time.Now().Add(2 * time.Minute)
	for accepted.Load() < int64(n) {
		if time.Now().After(deadline) {
			log.Fatalf("only %d of %d connections after 2 minutes", accepted.Load(), n)
		}
		time.Sleep(50 * time.Millisecond) // polling a counter in a measurement tool, not a test
	}
	// Two full ping rounds, so every heartbeat path has run and stacks have
	// grown to what the heartbeat needs.
	time.Sleep(2*ping + ping/2)
	after := heapStack()
	conns := accepted.Load()
	b, _ := json.Marshal(result{
		Server: name, Conns: conns,
		PerConn:    float64(after.total()-before.total()) / float64(conns),
		HeapPer:    float64(after.heap-before.heap) / float64(conns),
		StackPer:   float64(after.stack-before.stack) / float64(conns),
		Goroutines: runtime.NumGoroutine(),
		Pongs:      pongs.Load(),
	})
	fmt.Printf("result %s\n", b)
	select {} // the orchestrator kills us
}

type mem struct{ heap, stack int64 }

func (m mem) total() int64 { return m.heap + m.stack }

func heapStack() mem {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return mem{int64(ms.HeapInuse), int64(ms.StackInuse)}
}

// clients dials n connections, eight at a time, and keeps them open,
// answering pings (the library's default ping handler does), until killed.
func clients(addr string, n int) {
	d := websocket.Dialer{ReadBufferSize: 256, WriteBufferSize: 256, HandshakeTimeout: 30 * time.Second}
	work := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c, _, err := d.Dial("ws://"+addr+"/", nil)
				if err != nil {
					log.Fatalf("client %d: %v", i, err)
				}
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
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	_, _ = io.Copy(io.Discard, os.Stdin) // block until killed
	select {}
}
