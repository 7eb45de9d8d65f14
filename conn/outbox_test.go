package conn

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/internal/proptest"
	"github.com/lifeline-go/lifeline/invariant"
	"github.com/lifeline-go/lifeline/trace"
	"pgregory.net/rapid"
)

// refusedDial is a dialer whose every attempt is refused.
func refusedDial(context.Context, string, string) (net.Conn, error) {
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
}

// Without an outbox, Send without a link fails at once, as it always did,
// and Stats show no outbox.
func TestOutboxOffSendFailsAtOnce(t *testing.T) {
	c, err := NewClient(ClientConfig{URL: "ws://127.0.0.1:1/", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var nce *NotConnectedError
	if err := c.Send(context.Background(), TextMessage, []byte("x")); !errors.As(err, &nce) || nce.State != fsm.Idle {
		t.Fatalf("Send without a link: %v", err)
	}
	if st := c.Stats(); st.Outbox != (fsm.OutboxCounts{}) {
		t.Errorf("outbox counts without an outbox: %+v", st.Outbox)
	}
}

// With an outbox, Send without a link queues; what cannot be queued is
// refused with its reason, ephemeral messages included; a bad policy is
// refused by name.
func TestOutboxQueuesAndRefuses(t *testing.T) {
	if _, err := NewClient(ClientConfig{URL: "ws://h/", Outbox: fsm.Outbox{Count: -1}}); !errors.Is(err, fsm.ErrInvalidPolicy) ||
		!strings.Contains(err.Error(), "Outbox.Count") {
		t.Fatalf("bad outbox: %v", err)
	}
	c, err := NewClient(ClientConfig{URL: "ws://127.0.0.1:1/", Logger: quietLogger(), Outbox: fsm.Outbox{Count: 2, Bytes: 10, Age: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, m := range []string{"a", "bb", "ccc"} {
		if err := c.Send(ctx, TextMessage, []byte(m)); err != nil {
			t.Fatalf("Send %q while down: %v", m, err)
		}
	}
	if err := c.Send(ctx, TextMessage, []byte("12345678901")); !errors.Is(err, fsm.ErrOutboxTooLarge) {
		t.Errorf("a message over Bytes: %v", err)
	}
	if err := c.SendEphemeral(ctx, TextMessage, []byte("hb")); !errors.Is(err, ErrNotConnected) {
		t.Errorf("an ephemeral message while down: %v", err)
	}
	want := fsm.OutboxCounts{Held: 2, Bytes: 5, Enqueued: 3, Dropped: fsm.DropCounts{OverCount: 1}}
	if st := c.Stats(); st.Outbox != want {
		t.Errorf("counts %+v, want %+v", st.Outbox, want)
	}
}

// On a real loopback server: what was queued before Run goes out after
// OnConnect's ephemeral hello, in order, and a Send racing the drain
// (from OnConnect itself, or after) never overtakes it. Stopping counts
// what is left, and OnDrop hears of it.
func TestOutboxDrainsInOrderAfterOnConnect(t *testing.T) {
	var mu sync.Mutex
	var got []string
	arrived := make(chan struct{}, 100)
	srv := startServer(t, ServerConfig{OnMessage: func(_ *Session, _ MessageType, data []byte) error {
		mu.Lock()
		got = append(got, string(data))
		mu.Unlock()
		arrived <- struct{}{}
		return nil
	}})
	var sendMu sync.Mutex // the numbers are the order Send was called in
	n := 0
	sendNext := func(c *Client) {
		sendMu.Lock()
		defer sendMu.Unlock()
		n++
		if err := c.Send(context.Background(), TextMessage, []byte("m"+strconv.Itoa(n))); err != nil {
			t.Errorf("m%d: %v", n, err)
		}
	}
	c, err := NewClient(ClientConfig{URL: srv.url, Logger: quietLogger(), Backoff: fastBackoff(),
		Outbox: fsm.Outbox{Count: 100, Age: time.Minute},
		OnConnect: func(c *Client) {
			_ = c.SendEphemeral(context.Background(), TextMessage, []byte("hello"))
			sendNext(c) // joins the tail: what was queued before waits
		}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		sendNext(c)
	}
	stop := runClient(t, c)
	for range 16 { // racing the reconnect and the drain
		sendNext(c)
	}
	for range 21 {
		select {
		case <-arrived:
		case <-time.After(5 * time.Second):
			mu.Lock()
			t.Fatalf("only %v arrived", got)
		}
	}
	mu.Lock()
	want := []string{"hello"}
	for i := 1; i <= 20; i++ {
		want = append(want, "m"+strconv.Itoa(i))
	}
	if !slices.Equal(got, want) {
		t.Errorf("the server got %v, want %v", got, want)
	}
	mu.Unlock()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats().Outbox; st.Enqueued < 4 || st.Written != st.Enqueued || st.Dropped.Total() != 0 || st.Held != 0 {
		t.Errorf("counts after a full drain: %+v", st)
	}
}

// A client that never connects counts what it held as stopped when Run
// ends, or as gave_up when it gives up, and hands each to OnDrop with its
// payload.
func TestOutboxCountsWhatIsLeft(t *testing.T) {
	for _, tc := range []struct {
		name   string
		giveUp bool
		reason fsm.DropReason
	}{{"stopped", false, fsm.DropStopped}, {"gave up", true, fsm.DropGaveUp}} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var drops []OutboxDrop
			b := fastBackoff()
			if tc.giveUp {
				b.MaxAttempts = 2
			}
			c, err := NewClient(ClientConfig{URL: "ws://mem/", NetDialContext: refusedDial, Logger: quietLogger(), Backoff: b,
				Outbox: fsm.Outbox{Age: time.Hour},
				OnDrop: func(d OutboxDrop) { mu.Lock(); drops = append(drops, d); mu.Unlock() }})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				_ = c.Send(context.Background(), BinaryMessage, []byte{byte(i)})
			}
			ctx, cancel := context.WithCancel(context.Background())
			if !tc.giveUp {
				cancel()
			}
			err = c.Run(ctx)
			cancel()
			if tc.giveUp != errors.Is(err, ErrGaveUp) {
				t.Fatalf("Run: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(drops) != 3 {
				t.Fatalf("OnDrop got %d drops, want 3", len(drops))
			}
			for i, d := range drops {
				if d.Reason != tc.reason || d.Seq != uint64(i+1) || d.Type != BinaryMessage || !slices.Equal(d.Data, []byte{byte(i)}) {
					t.Errorf("drop %d: %+v", i, d)
				}
			}
			if st := c.Stats().Outbox; st.Dropped.Of(tc.reason) != 3 || st.Held != 0 {
				t.Errorf("counts: %+v", st)
			}
			if err := c.Send(context.Background(), TextMessage, []byte("late")); !errors.Is(err, ErrNotConnected) {
				t.Errorf("Send after Run ended: %v", err)
			}
		})
	}
}

// --- the property: (o) judges the real client through outages ---

type window struct{ from, to time.Duration }

type outboxCase struct {
	p       fsm.Outbox
	backoff fsm.Backoff
	outages []window // the server refuses dials, and drops its links at from
	every   time.Duration
	horizon time.Duration
	seed    uint64
	racer   bool // OnConnect sends an application message too, racing the drain
}

func drawOutboxCase(t *rapid.T) outboxCase {
	c := outboxCase{
		p: fsm.Outbox{Count: rapid.IntRange(1, 20).Draw(t, "count"), Bytes: rapid.IntRange(256, 4096).Draw(t, "bytes")},
		backoff: fsm.Backoff{Initial: drawDuration(t, 50*time.Millisecond, 2*time.Second, "initial"), Multiplier: 2,
			Jitter: fsm.JitterFull, MaxAttempts: rapid.SampledFrom([]int{0, 0, 0, 5}).Draw(t, "max_attempts")},
		every:   drawDuration(t, 10*time.Millisecond, 2*time.Second, "every"),
		horizon: drawDuration(t, 5*time.Second, 3*time.Minute, "horizon"),
		seed:    rapid.Uint64().Draw(t, "seed"),
		racer:   rapid.Bool().Draw(t, "racer"),
	}
	c.backoff.Max = 4 * c.backoff.Initial
	// Age against the send interval: shorter, and the outbox holds the
	// latest message only and expires it as soon as the link is slow to
	// come back; longer, and it holds a backlog to drain in order.
	c.p.Age = time.Duration(float64(c.every) * rapid.Float64Range(0.2, 30).Draw(t, "age_per_interval"))
	at := time.Duration(0)
	for i := range rapid.IntRange(0, 4).Draw(t, "outages") {
		from := at + drawDuration(t, 0, c.horizon/4, fmt.Sprintf("up%d", i))
		to := from + drawDuration(t, 100*time.Millisecond, time.Minute, fmt.Sprintf("down%d", i))
		c.outages = append(c.outages, window{from, to})
		at = to
	}
	return c
}

// outboxRun is what one case produced: the client's outbox observations
// and the application messages the server got, in order.
type outboxRun struct {
	start, end time.Time
	obs        []Observation
	got        []int // the numbers of the application messages, as the server read them
	hellos     []int // per link, how many app messages it read before its hello (must be 0)
}

// runOutboxCase runs one client with an outbox against a server that
// goes down and up by c.outages, while the application sends a numbered
// message every c.every (and, if c.racer, one more from every OnConnect,
// racing the drain), until the horizon.
func runOutboxCase(c outboxCase, hooks *testHooks) outboxRun {
	run := outboxRun{start: time.Now()}
	ln := newMemListener()
	var mu sync.Mutex // guards down, conns, run.got, run.hellos
	down := false
	conns := map[*websocket.Conn]bool{}
	up := websocket.Upgrader{}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		mu.Lock()
		conns[ws] = true
		mu.Unlock()
		defer func() { mu.Lock(); delete(conns, ws); mu.Unlock(); _ = ws.Close() }()
		before := 0
		hello := false
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			mu.Lock()
			if string(data) == "hello" {
				hello = true
				run.hellos = append(run.hellos, before)
			} else {
				n, _ := strconv.Atoi(strings.SplitN(string(data), ":", 2)[0])
				run.got = append(run.got, n)
				if !hello {
					before++
				}
			}
			mu.Unlock()
		}
	})}
	go func() { _ = hs.Serve(ln) }()
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		d := down
		mu.Unlock()
		if d {
			return refusedDial(ctx, network, addr)
		}
		return ln.dial(ctx, network, addr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rec := newRecorder()
	rng := rand.New(rand.NewPCG(c.seed, 2))
	var appMu sync.Mutex // one numbered send at a time: the numbers are the order sent
	k := 0
	sendNext := func(cl *Client) {
		appMu.Lock()
		defer appMu.Unlock()
		k++
		_ = cl.Send(ctx, TextMessage, []byte(strconv.Itoa(k)+":"+strings.Repeat("x", rng.IntN(300))))
	}
	cl, err := newClient(ClientConfig{URL: "ws://mem/", NetDialContext: dial, Backoff: c.backoff, Outbox: c.p,
		Rand: rand.New(rand.NewPCG(c.seed, 1)), Logger: quietLogger(), Observer: func(o Observation) {
			switch o.Kind {
			case ObsOutboxQueued, ObsOutboxWritten, ObsOutboxDropped:
				rec.observe(o)
			}
		},
		OnConnect: func(cl *Client) {
			_ = cl.SendEphemeral(ctx, TextMessage, []byte("hello"))
			if c.racer {
				sendNext(cl)
			}
		}}, hooks)
	if err != nil {
		panic(err) // drawn policies are valid by construction
	}
	done := make(chan error, 1)
	go func() { done <- cl.Run(ctx) }()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the application
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(c.every):
				sendNext(cl)
			}
		}
	}()
	go func() { // the outages
		defer wg.Done()
		for _, o := range c.outages {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(run.start.Add(o.from))):
			}
			mu.Lock()
			down = true
			for ws := range conns {
				_ = ws.Close()
			}
			mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(run.start.Add(o.to))):
			}
			mu.Lock()
			down = false
			mu.Unlock()
		}
	}()
	time.Sleep(c.horizon)
	cancel()
	<-done
	wg.Wait()
	run.end = time.Now()
	_ = hs.Close()
	_ = ln.Close()
	run.obs = rec.all()
	mu.Lock()
	defer mu.Unlock()
	return run
}

// judgeOutboxRun holds the run to (o), from the client's outbox
// observations, and to what the server saw: the application's numbers in
// strictly increasing order across every link, and each link's hello
// first.
func judgeOutboxRun(t *rapid.T, c outboxCase, run outboxRun) {
	recs := []timedRecord{{at: run.start, rec: trace.Record{Kind: trace.ClientStart}}}
	kinds := map[ObservationKind]trace.Kind{ObsOutboxQueued: trace.OutboxQueued, ObsOutboxWritten: trace.OutboxWritten, ObsOutboxDropped: trace.OutboxDropped}
	for _, o := range run.obs {
		recs = append(recs, timedRecord{at: o.At, rec: trace.Record{Kind: kinds[o.Kind], Inc: o.Seq, Attempt: int32(o.Size), Code: uint16(o.Drop)}})
	}
	judge(t, invariant.Config{Outbox: c.p, Only: []invariant.Invariant{invariant.OutboxFaithful}}, run.start, run.end, recs)
	for i := 1; i < len(run.got); i++ {
		if run.got[i] <= run.got[i-1] {
			t.Fatalf("the server read message %d after message %d: out of order (%v)", run.got[i], run.got[i-1], run.got)
		}
	}
	for i, n := range run.hellos {
		if n > 0 {
			t.Fatalf("link %d carried %d application messages before OnConnect's hello", i, n)
		}
	}
}

func outboxProperty(t *testing.T, hooks *testHooks) func(*rapid.T) {
	return func(rt *rapid.T) {
		c := drawOutboxCase(rt)
		run := inBubble(t, func() outboxRun { return runOutboxCase(c, hooks) })
		judgeOutboxRun(rt, c, run)
	}
}

func TestPropertyOutboxFaithful(t *testing.T) {
	rapid.Check(t, outboxProperty(t, nil))
}

// The broken outboxes: a Send that overtakes the drain, and a drain that
// never judges age, each caught by (o) on the real client.
func TestPropertyOutboxCatchesBrokenOutbox(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hooks *testHooks
		want  string
	}{
		{"a Send overtakes the drain", &testHooks{overtake: true}, "overtook them"},
		{"stale messages flushed after a reconnect", &testHooks{stale: true}, "sent late"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			report := proptest.ExpectFailure(t, outboxProperty(t, tc.hooks))
			if !strings.Contains(report, "(o) outbox_faithful") || !strings.Contains(report, tc.want) {
				t.Fatalf("the property failed for another reason:\n%s", report)
			}
		})
	}
}
