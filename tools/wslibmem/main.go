// Command wslibmem measures the memory an idle WebSocket connection costs a
// server with each candidate library (gorilla/websocket, coder/websocket,
// gobwas/ws), in two shapes:
//
//   - naive: the library's plain echo server, the read loop inside the
//     net/http handler, library defaults, no heartbeat;
//   - lean: small buffers, the read loop on a fresh goroutine once the
//     handler has returned, and a WebSocket ping to every connection each
//     -ping interval (heartbeats on), answered by the clients.
//
// Each measurement runs a fresh server process and a separate client
// process (file-descriptor limits allow ~20 000 per process), waits until
// all -n connections are up and at least two ping rounds have passed, then
// reports (HeapInuse + StackInuse after two GCs − the same before any
// connection) ÷ n. It lives in its own module so lifeline's go.mod does not
// carry the two libraries it did not choose (docs/decisions.md).
//
// Usage (from this directory):
//
//	flock /work/bench.lock go run . -n 10000
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

type result struct {
	Lib        string  `json:"lib"`
	Mode       string  `json:"mode"`
	Conns      int64   `json:"conns"`
	PerConn    float64 `json:"per_conn_bytes"`
	HeapPer    float64 `json:"heap_per_conn_bytes"`
	StackPer   float64 `json:"stack_per_conn_bytes"`
	Goroutines int     `json:"goroutines"`
	Pongs      int64   `json:"pongs"`
}

func main() {
	role := flag.String("role", "orchestrate", "orchestrate, server or client (the last two are started by the first)")
	lib := flag.String("lib", "gorilla", "server role: gorilla, coder or gobwas")
	mode := flag.String("mode", "lean", "server role: naive or lean")
	libs := flag.String("libs", "gorilla,coder,gobwas", "libraries to measure")
	modes := flag.String("modes", "naive,lean", "shapes to measure")
	n := flag.Int("n", 10000, "connections per measurement")
	ping := flag.Duration("ping", 3*time.Second, "lean mode: ping interval")
	addr := flag.String("addr", "", "client role: server address")
	flag.Parse()
	log.SetFlags(0)
	switch *role {
	case "server":
		serve(*lib, *mode, *n, *ping)
	case "client":
		clients(*addr, *n)
	default:
		orchestrate(strings.Split(*libs, ","), strings.Split(*modes, ","), *n, *ping)
	}
}

func orchestrate(libs, modes []string, n int, ping time.Duration) {
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("wslibmem: %d connections per measurement, lean ping every %s, %s, GOMAXPROCS=%d\n",
		n, ping, runtime.Version(), runtime.GOMAXPROCS(0))
	fmt.Printf("%-8s %-6s %8s %12s %10s %10s %10s %8s\n", "lib", "mode", "conns", "bytes/conn", "heap/conn", "stack/conn", "goroutines", "pongs")
	for _, mode := range modes {
		for _, lib := range libs {
			r, err := measure(self, lib, mode, n, ping)
			if err != nil {
				log.Fatalf("%s %s: %v", lib, mode, err)
			}
			fmt.Printf("%-8s %-6s %8d %12.0f %10.0f %10.0f %10d %8d\n",
				r.Lib, r.Mode, r.Conns, r.PerConn, r.HeapPer, r.StackPer, r.Goroutines, r.Pongs)
		}
	}
}

// measure runs one server process and one client process and returns what
// the server reported.
func measure(self, lib, mode string, n int, ping time.Duration) (result, error) {
	srv := exec.Command(self, "-role", "server", "-lib", lib, "-mode", mode, "-n", fmt.Sprint(n), "-ping", ping.String())
	srv.Stderr = os.Stderr
	out, err := srv.StdoutPipe()
	if err != nil {
		return result{}, err
	}
	if err := srv.Start(); err != nil {
		return result{}, err
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		return result{}, fmt.Errorf("server printed no address")
	}
	addr := strings.TrimPrefix(sc.Text(), "addr ")
	cl := exec.Command(self, "-role", "client", "-addr", addr, "-n", fmt.Sprint(n))
	cl.Stderr = os.Stderr
	if err := cl.Start(); err != nil {
		return result{}, err
	}
	defer func() { _ = cl.Process.Kill(); _ = cl.Wait() }()
	if !sc.Scan() {
		return result{}, fmt.Errorf("server exited without a result")
	}
	var r result
	return r, json.Unmarshal(sc.Bytes(), &r)
}

// accepted counts connections whose upgrade completed; pongs counts pongs
// heard by lean servers (proof that the heartbeat ran).
var accepted, pongs atomic.Int64

func serve(lib, mode string, n int, ping time.Duration) {
	h, err := handler(lib, mode, ping)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	before := heapStack()
	go func() { _ = http.Serve(ln, h) }()
	fmt.Println("addr", ln.Addr())
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
	_ = json.NewEncoder(os.Stdout).Encode(result{
		Lib: lib, Mode: mode, Conns: conns,
		PerConn:    float64(after.total()-before.total()) / float64(conns),
		HeapPer:    float64(after.heap-before.heap) / float64(conns),
		StackPer:   float64(after.stack-before.stack) / float64(conns),
		Goroutines: runtime.NumGoroutine(),
		Pongs:      pongs.Load(),
	})
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

// clients dials n connections and keeps them open, answering pings (the
// library's default ping handler does), until killed.
func clients(addr string, n int) {
	d := websocket.Dialer{ReadBufferSize: 256, WriteBufferSize: 256}
	for i := 0; i < n; i++ {
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
	_, _ = io.Copy(io.Discard, os.Stdin) // block until killed
	select {}
}
