package soak

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
)

// The watchdog makes a failure of the soak's reap account explain itself.
// A 10-minute run once reaped 942 of 1 000 live sessions for pong_timeout
// within one quiet minute, and the account only found out at the next
// event's settle, a minute later: by then whatever had stopped the server
// hearing its peers (a stalled poller or timer goroutine, a process that
// was not scheduled, a poller that had exited) was long gone. So while the
// churn runs the watchdog samples, every watchPeriod:
//
//   - how late its own sleep woke (this process's scheduling stall: a
//     second or more means every goroutine of the server, its poller and
//     timer included, may have been off the CPU that long),
//   - the server's pong_timeout count and open sessions, and its Health:
//     how long ago its timer last ran and its poller last woke, and how
//     many sessions its readers have not heard from within the liveness
//     bound (reaps with none unheard: frames read but not believed; a
//     timer or poller seconds behind: that loop stalled),
//   - the runtime's scheduling latency and GC pause histograms (their
//     worst bucket since the previous sample);
//
// and at the first burst of pong_timeout reaps no silence round accounts
// for (more than burstReaps within burstWindow), or when the account
// fails, it writes every goroutine's stack (pprof goroutine profile,
// debug=2) while the cause may still be under way, and logs the samples of
// the last watchHistory. A burst found by the watchdog is only reported;
// the account stays the judge.
const (
	watchPeriod  = 100 * time.Millisecond
	watchHistory = 10 * time.Second
	burstWindow  = time.Second
	// burstReaps: a stop and a blackhole round reap perProc each, never
	// both within one second (the blackhole round starts once the stop
	// round settled).
	burstReaps = 2 * perProc
)

// watchSample is one sample of the watchdog.
type watchSample struct {
	at     time.Time
	late   time.Duration // how much later than watchPeriod the sample came
	pongTO uint64        // the server's pong_timeout reaps (of its current instance)
	open   int64
	// From the server's Health: how long ago its timer last ran and its
	// poller last woke, and how many sessions its readers have not heard
	// from within the liveness bound.
	timerAge, pollerAge time.Duration
	unheard             int
	schedMax            float64 // worst scheduling latency bucket hit since the previous sample, s
	gcMax               float64 // worst GC pause bucket hit since the previous sample, s
}

func (w watchSample) String() string {
	return fmt.Sprintf("%s late %s pong_timeout %d open %d unheard %d timer -%s poller -%s sched≤%s gc≤%s",
		w.at.Format("15:04:05.000"), w.late.Round(time.Millisecond), w.pongTO, w.open, w.unheard,
		w.timerAge.Round(time.Millisecond), w.pollerAge.Round(time.Millisecond), secs(w.schedMax), secs(w.gcMax))
}

// age is how long before at t was; -1 for the zero time (never).
func age(at, t time.Time) time.Duration {
	if t.IsZero() {
		return -1
	}
	return at.Sub(t)
}

func secs(s float64) string {
	if s == 0 {
		return "-"
	}
	return time.Duration(s * float64(time.Second)).Round(time.Microsecond).String()
}

// watchdog samples the soak's server while the churn runs.
type watchdog struct {
	t      *testing.T
	server func() *conn.Server // the current server (restarts replace it)
	stop   chan struct{}
	done   chan struct{}

	mu      sync.Mutex
	samples []watchSample // the last watchHistory
	dumped  string        // the goroutine dump's file, once written
	burst   string        // what the first burst was, once seen
}

var watchMetrics = []string{"/sched/latencies:seconds", "/sched/pauses/total/gc:seconds"}

func startWatchdog(t *testing.T, server func() *conn.Server) *watchdog {
	w := &watchdog{t: t, server: server, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *watchdog) run() {
	defer close(w.done)
	ms := make([]metrics.Sample, len(watchMetrics))
	for i, n := range watchMetrics {
		ms[i].Name = n
	}
	metrics.Read(ms)
	prev := histCounts(ms)
	tick := time.NewTicker(watchPeriod)
	defer tick.Stop()
	last := time.Now()
	var srv *conn.Server
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
			now := time.Now() // the tick's own time would hide how late the receive was
			metrics.Read(ms)
			cur := histCounts(ms)
			s := watchSample{at: now, late: max(0, now.Sub(last)-watchPeriod),
				schedMax: worstNew(ms[0], prev[0], cur[0]), gcMax: worstNew(ms[1], prev[1], cur[1])}
			prev, last = cur, now
			if cs := w.server(); cs != srv {
				srv = cs // a restart: the new server counts from zero
				w.mu.Lock()
				w.samples = w.samples[:0]
				w.mu.Unlock()
			}
			st := srv.Stats()
			s.pongTO, s.open = st.Reaped[fsm.ReasonPongTimeout.String()], st.Open
			h := srv.Health()
			s.timerAge, s.pollerAge, s.unheard = age(h.At, h.TimerAt), age(h.At, h.PollerAt), h.Unheard
			w.add(s)
		}
	}
}

// add keeps s and looks for a burst of pong_timeout reaps ending at it.
func (w *watchdog) add(s watchSample) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cut := 0
	for cut < len(w.samples) && s.at.Sub(w.samples[cut].at) > watchHistory {
		cut++
	}
	w.samples = append(w.samples[cut:], s)
	if w.burst != "" {
		return
	}
	for _, o := range w.samples {
		if s.at.Sub(o.at) <= burstWindow && s.pongTO-o.pongTO > burstReaps {
			w.burst = fmt.Sprintf("%d sessions reaped for pong_timeout between %s and %s (a silence round accounts for %d)",
				s.pongTO-o.pongTO, o.at.Format("15:04:05.000"), s.at.Format("15:04:05.000"), perProc)
			w.dumpLocked("burst")
			return
		}
	}
}

// dumpLocked writes every goroutine's stack into a file: in
// $LIFELINE_SOAK_PPROF if set, else the system's temporary directory (a
// test's TempDir is removed when the test ends, with the evidence).
func (w *watchdog) dumpLocked(why string) {
	if w.dumped != "" {
		return
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "soak watchdog, %s, %s\n", why, time.Now().Format(time.RFC3339Nano))
	if err := pprof.Lookup("goroutine").WriteTo(&b, 2); err != nil {
		fmt.Fprintf(&b, "goroutine profile: %v\n", err)
	}
	dir := os.Getenv("LIFELINE_SOAK_PPROF")
	if dir == "" {
		dir = os.TempDir()
	}
	name := filepath.Join(dir, fmt.Sprintf("lifeline-soak-goroutines-%d-%s.txt", os.Getpid(), why))
	if err := os.WriteFile(name, b.Bytes(), 0o644); err != nil {
		name = "(not written: " + err.Error() + ")"
	}
	w.dumped = name
}

// explain returns what the watchdog saw, for a failed account's message:
// writing the goroutine dump now if no burst wrote one.
func (w *watchdog) explain() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dumpLocked("failure")
	var b strings.Builder
	fmt.Fprintf(&b, "watchdog: goroutines in %s", w.dumped)
	if w.burst != "" {
		fmt.Fprintf(&b, " (written at the burst: %s)", w.burst)
	}
	var worst watchSample
	for _, s := range w.samples {
		if s.late > worst.late {
			worst = s
		}
	}
	fmt.Fprintf(&b, "; this process's worst stall in the last %s: %s late at %s; samples:", watchHistory,
		worst.late.Round(time.Millisecond), worst.at.Format("15:04:05.000"))
	for _, s := range w.samples {
		fmt.Fprintf(&b, "\n\t%s", s)
	}
	return b.String()
}

// close stops the watchdog and logs the burst it saw, if any.
func (w *watchdog) close() {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.burst != "" {
		w.t.Logf("watchdog: %s; goroutines in %s", w.burst, w.dumped)
	}
}

// histCounts copies the histograms' bucket counts.
func histCounts(ms []metrics.Sample) [][]uint64 {
	out := make([][]uint64, len(ms))
	for i, m := range ms {
		if m.Value.Kind() == metrics.KindFloat64Histogram {
			out[i] = append([]uint64(nil), m.Value.Float64Histogram().Counts...)
		}
	}
	return out
}

// worstNew returns the lower bound of the highest bucket whose count grew
// between prev and cur, 0 if none did.
func worstNew(m metrics.Sample, prev, cur []uint64) float64 {
	if m.Value.Kind() != metrics.KindFloat64Histogram || len(prev) != len(cur) {
		return 0
	}
	h := m.Value.Float64Histogram()
	for i := len(cur) - 1; i >= 0; i-- {
		if cur[i] > prev[i] {
			if b := h.Buckets[i]; !math.IsInf(b, 0) {
				return b
			}
			return 0
		}
	}
	return 0
}

// TestWatchdogBurst: the watchdog names a burst of pong_timeout reaps that
// no silence round accounts for, and writes the goroutine dump at once;
// the two silence rounds' reaps, even close together, are no burst.
func TestWatchdogBurst(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("LIFELINE_SOAK_PPROF", dir)
	t0 := time.Now()
	cases := []struct {
		name  string
		reaps []uint64 // pong_timeout count at each sample, watchPeriod apart
		burst bool
	}{
		{"quiet", []uint64{0, 0, 0, 0}, false},
		{"a stop and a blackhole round", []uint64{0, perProc, perProc, 2 * perProc}, false},
		{"the same reaps slower than the window", []uint64{0, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 60}, false},
		{"942 at once", []uint64{0, 10, 400, 942}, true},
		{"one over", []uint64{0, 2*perProc + 1}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := &watchdog{t: t}
			for i, n := range c.reaps {
				w.add(watchSample{at: t0.Add(time.Duration(i) * watchPeriod), pongTO: n, open: 1000})
			}
			if got := w.burst != ""; got != c.burst {
				t.Fatalf("burst %q, want one: %v", w.burst, c.burst)
			}
			if !c.burst {
				return
			}
			b, err := os.ReadFile(w.dumped)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), "goroutine ") || !strings.Contains(string(b), "TestWatchdogBurst") {
				t.Fatalf("dump %s holds no goroutine stacks:\n%.300s", w.dumped, b)
			}
			w.dumped = "" // a new file for the next case
		})
	}
}
