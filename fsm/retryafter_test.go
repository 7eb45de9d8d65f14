package fsm

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 29, 23, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"0", 0, false},
		{"3", 3 * time.Second, false},
		{" 120 ", 2 * time.Minute, false},
		{"99999999999999999999999", maxRetryAfter, false}, // hostile: capped by the client, not an error
		// Either side of the largest whole-second Duration: the last digit
		// that fits is kept, one more caps.
		{"9223372036", 9223372036 * time.Second, false},
		{"92233720360", maxRetryAfter, false},
		{"Sun, 29 Nov 2026 23:00:30 GMT", 30 * time.Second, false},
		{"Sunday, 29-Nov-26 23:01:00 GMT", time.Minute, false},
		{"Sun Nov 29 23:00:05 2026", 5 * time.Second, false},
		{"Sun, 29 Nov 2026 22:00:00 GMT", 0, false}, // in the past: now
		{"", 0, true},
		{"-1", 0, true},
		{"1.5", 0, true},
		{"3s", 0, true},
		{"soon", 0, true},
		{"Sun, 29 Nov 2026 23:00:30 CET", 0, true},
	} {
		got, err := ParseRetryAfter(tc.in, now)
		if tc.bad {
			if !errors.Is(err, ErrRetryAfter) {
				t.Errorf("%q: got %s, %v; want an ErrRetryAfter", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

// The wait after a failure with a Retry-After lies in [floor, latest] and
// is never shorter than the schedule's own draw; the cap holds; no
// Retry-After leaves the draw alone.
func TestRetryAfterWait(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		b           Backoff
		ra          time.Duration
		floor, late time.Duration
	}{
		{DefaultBackoff(), 3 * time.Second, 3 * time.Second, 4 * time.Second},
		{DefaultBackoff(), 24 * time.Hour, 120 * time.Second, 120 * time.Second}, // capped at Max, no room above it
		{Backoff{RetryAfterMax: 10 * time.Second}, time.Hour, 10 * time.Second, 11 * time.Second},
		{Backoff{Max: 5 * time.Second, RetryAfterMax: time.Minute}, 30 * time.Second, 30 * time.Second, 30 * time.Second},
		{Backoff{Jitter: JitterNone}, 2 * time.Second, 2 * time.Second, 2 * time.Second},
		{DefaultBackoff(), 0, 0, 0},
	} {
		if f, l := tc.b.RetryAfterFloor(tc.ra), tc.b.RetryAfterLatest(tc.ra); f != tc.floor || l != tc.late {
			t.Errorf("%+v ra=%s: floor %s latest %s, want %s %s", tc.b, tc.ra, f, l, tc.floor, tc.late)
		}
		lo, hi := time.Duration(1<<62), time.Duration(0)
		for range 2000 {
			draw := time.Duration(r.Int64N(int64(5 * time.Second)))
			w := tc.b.RetryAfterWait(draw, tc.ra, r)
			if w < max(draw, tc.floor) || w > max(draw, tc.late) {
				t.Fatalf("%+v ra=%s draw=%s: wait %s outside [max(draw, %s), max(draw, %s)]", tc.b, tc.ra, draw, w, tc.floor, tc.late)
			}
			if w2 := tc.b.RetryAfterWait(0, tc.ra, r); true {
				lo, hi = min(lo, w2), max(hi, w2)
			}
		}
		// The spread is used, not just allowed: the waits fill the window.
		if tc.late-tc.floor >= time.Second && (lo-tc.floor > 10*time.Millisecond || tc.late-hi > 10*time.Millisecond) {
			t.Errorf("%+v ra=%s: waits span [%s, %s], want about [%s, %s]", tc.b, tc.ra, lo, hi, tc.floor, tc.late)
		}
	}
	if err := (Backoff{RetryAfterMax: -1}).Validate(); err == nil {
		t.Error("negative RetryAfterMax accepted")
	}
}

// A client told Retry-After retries no sooner, whatever the failure count
// or class, a reconnect-now or a policy change; without one, a lone
// failure still retries at once.
func TestClientHonoursRetryAfter(t *testing.T) {
	newC := func() *Client {
		c, err := NewClient(ClientConfig{Backoff: DefaultBackoff(), Rand: rand.New(rand.NewPCG(5, 6))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Step(t0, EvStart); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// A lone failure with no Retry-After: at once.
	c := newC()
	if _, err := c.StepFailure(t0, EvDialFailed, Failure{Status: 503}); err != nil {
		t.Fatal(err)
	}
	if at, _ := c.RetryAt(); !at.Equal(t0) {
		t.Errorf("503 without Retry-After: retry at +%s, want at once", at.Sub(t0))
	}
	for _, f := range []Failure{{Status: 503, RetryAfter: 3 * time.Second}, {Status: 429, RetryAfter: 3 * time.Second}} {
		c := newC()
		out, err := c.StepFailure(t0, EvDialFailed, f)
		if err != nil {
			t.Fatal(err)
		}
		at, _ := c.RetryAt()
		if d := at.Sub(t0); d < 3*time.Second || d > 4*time.Second || out.Transition.Delay != d {
			t.Errorf("%s: first retry after %s (transition delay %s), want within [3s, 4s]", f, d, out.Transition.Delay)
		}
		// The owner's reconnect-now does not overrule the server.
		if _, err := c.Step(t0.Add(time.Second), EvReconnectNow); err != nil {
			t.Fatal(err)
		}
		if at2, _ := c.RetryAt(); at2.Before(t0.Add(3 * time.Second)) {
			t.Errorf("%s: reconnect-now moved the retry to +%s, before the Retry-After", f, at2.Sub(t0))
		}
		// Nor does a reset, nor a policy change to a faster schedule.
		if _, err := c.Step(t0.Add(time.Second), EvResetBackoff); err != nil {
			t.Fatal(err)
		}
		if _, err := c.SetBackoff(t0.Add(time.Second), Backoff{Initial: time.Millisecond, FirstImmediate: true}); err != nil {
			t.Fatal(err)
		}
		if at3, _ := c.RetryAt(); at3.Before(t0.Add(3 * time.Second)) {
			t.Errorf("%s: reset and policy change moved the retry to +%s, before the Retry-After", f, at3.Sub(t0))
		}
	}
	// A permanent failure's slow schedule takes the floor too.
	c = newC()
	if _, err := c.StepFailure(t0, EvDialFailed, Failure{Status: 403, RetryAfter: 100 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if at, _ := c.RetryAt(); at.Sub(t0) < 100*time.Second {
		t.Errorf("403 with Retry-After 100s: retry after %s", at.Sub(t0))
	}
}

// A herd of handshakes at one instant: Burst pass, the refused are told
// to come back spread at the rate, PerSecond per whole second, and the
// answer never passes the cap.
func TestAdmission(t *testing.T) {
	a, err := NewAdmission(HandshakeRate{PerSecond: 100}, t0)
	if err != nil {
		t.Fatal(err)
	}
	perSecond := map[time.Duration]int{}
	admitted := 0
	for range 500 {
		ok, ra := a.Admit(t0)
		if ok {
			admitted++
			continue
		}
		perSecond[ra]++
	}
	if admitted != 10 {
		t.Errorf("admitted %d of a herd of 500 at once; the default burst is ceil(100/10) = 10", admitted)
	}
	for s := time.Second; s <= 5*time.Second; s += time.Second {
		if n := perSecond[s]; n < 90 || n > 100 {
			t.Errorf("Retry-After %s given to %d, want about the rate, 100 (all: %v)", s, n, perSecond)
		}
	}
	// Refill: a second later a burst's worth passes again.
	if ok, _ := a.Admit(t0.Add(5 * time.Second)); !ok {
		t.Error("no token after 5 s at 100/s")
	}
	// The cap: a flood past a minute's worth takes no slot.
	b, _ := NewAdmission(HandshakeRate{PerSecond: 1, Burst: 1}, t0)
	var last time.Duration
	for range 200 {
		_, last = b.Admit(t0)
	}
	if last != MaxRetryAfterAnswer {
		t.Errorf("the 200th refusal at 1/s got Retry-After %s, want the cap %s", last, MaxRetryAfterAnswer)
	}
	// Off admits everything.
	off, _ := NewAdmission(HandshakeRate{}, t0)
	for range 1000 {
		if ok, _ := off.Admit(t0); !ok {
			t.Fatal("a zero HandshakeRate refused")
		}
	}
	for _, h := range []HandshakeRate{{PerSecond: -1}, {Burst: 3}, {PerSecond: 1, Burst: -1}} {
		if _, err := NewAdmission(h, t0); !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("%+v: %v, want a FieldError", h, err)
		}
	}
}

// The Retry-After spread rule, measured: 500 clients refused at one
// instant by a 100/s bucket, each coming back at its Retry-After, with
// the one-second spread (RetryAfterWait) and without it (the floor
// exactly). HTTP's whole seconds put every client told "1" at the same
// instant: without the spread the bucket meets them with its burst and
// refuses the rest again, second after second. The figures are in
// docs/decisions.md ("Retry-After: floor plus one second").
func TestRetryAfterSpreadMeasured(t *testing.T) {
	type result struct {
		refusals int
		peak     int // admissions in the busiest 100 ms
		last     time.Duration
	}
	run := func(spread bool) result {
		b := DefaultBackoff()
		r := rand.New(rand.NewPCG(7, 8))
		a, _ := NewAdmission(HandshakeRate{PerSecond: 100}, t0)
		due := make([]time.Duration, 500) // each client's next arrival; all at 0
		var admitted []time.Duration
		var res result
		for len(due) > 0 {
			i := 0
			for j := range due {
				if due[j] < due[i] {
					i = j
				}
			}
			now := due[i]
			ok, ra := a.Admit(t0.Add(now))
			if ok {
				admitted = append(admitted, now)
				due[i] = due[len(due)-1]
				due = due[:len(due)-1]
				continue
			}
			res.refusals++
			if spread {
				due[i] = now + b.RetryAfterWait(0, ra, r)
			} else {
				due[i] = now + b.RetryAfterFloor(ra)
			}
		}
		res.last = admitted[len(admitted)-1]
		for lo, hi := 0, 0; hi < len(admitted); hi++ {
			for admitted[hi]-admitted[lo] >= 100*time.Millisecond {
				lo++
			}
			res.peak = max(res.peak, hi-lo+1)
		}
		return res
	}
	with, without := run(true), run(false)
	t.Logf("spread 1s: %d refusals, busiest 100ms %d admissions, all in after %s", with.refusals, with.peak, with.last)
	t.Logf("no spread: %d refusals, busiest 100ms %d admissions, all in after %s", without.refusals, without.peak, without.last)
	if with.refusals*2 > without.refusals {
		t.Errorf("the spread saves too little: %d refusals with it, %d without", with.refusals, without.refusals)
	}
	if with.last > 8*time.Second { // 5 s at the rate, plus the 0–2 s between a slot and its rounded-up, spread return
		t.Errorf("with the spread the 500 took %s at 100/s", with.last)
	}
}

// countRand is a Rand that counts its draws.
type countRand struct{ n int }

func (c *countRand) Float64() float64 { c.n++; return 0.5 }

// RetryAfterWait reads r only when there is a spread to draw in: not
// under JitterNone (where r may be nil), not when the floor reaches Max,
// and not without a Retry-After; so a driver's random stream is the same
// whether or not a failure carried one it could not use.
func TestRetryAfterWaitDrawsOnlyASpread(t *testing.T) {
	for _, tc := range []struct {
		name      string
		b         Backoff
		draw, ra  time.Duration
		want      time.Duration
		wantDraws int
	}{
		{"JitterNone: the floor exactly", Backoff{Jitter: JitterNone}, time.Second, 2 * time.Second, 2 * time.Second, 0},
		{"floor at Max: no room above it", Backoff{Max: 5 * time.Second}, time.Second, 5 * time.Second, 5 * time.Second, 0},
		{"no Retry-After: the draw", DefaultBackoff(), time.Second, 0, time.Second, 0},
		{"a spread: one draw", Backoff{Max: 5 * time.Second}, time.Second, 2 * time.Second, 2*time.Second + 500*time.Millisecond, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Rand // nil: a draw panics where none is expected
			c := &countRand{}
			if tc.wantDraws > 0 {
				r = c
			}
			if got := tc.b.RetryAfterWait(tc.draw, tc.ra, r); got != tc.want || c.n != tc.wantDraws {
				t.Errorf("wait %s after %d draws, want %s after %d", got, c.n, tc.want, tc.wantDraws)
			}
		})
	}
	// No Retry-After is no floor, whatever the policy, even one Validate
	// refuses (a negative RetryAfterMax).
	for _, ra := range []time.Duration{0, -time.Second} {
		if f := (Backoff{RetryAfterMax: -time.Second}).RetryAfterFloor(ra); f != 0 {
			t.Errorf("RetryAfterFloor(%s) = %s, want 0", ra, f)
		}
	}
}

// The token bucket at its exact points, one handshake per second and a
// burst of one: a refusal with half a token owes half a second (told 1 s,
// rounded up); the bucket holds a token again at exactly 1/R; the
// refusal whose slot is exactly MaxRetryAfterAnswer away is told the cap
// and, like every one past it, takes no slot, so the next refusal a
// second later is given that slot (59 s).
func TestAdmissionExactPoints(t *testing.T) {
	if h := (HandshakeRate{}).WithDefaults(); h != (HandshakeRate{}) {
		t.Errorf("an off HandshakeRate got defaults: %+v", h)
	}
	type step struct {
		at   time.Duration // from t0
		ok   bool
		ra   time.Duration
		note string
	}
	ms := time.Millisecond
	sec := time.Second
	a, err := NewAdmission(HandshakeRate{PerSecond: 1, Burst: 1}, t0)
	if err != nil {
		t.Fatal(err)
	}
	steps := []step{
		{0, true, 0, "the burst"},
		{500 * ms, false, sec, "half a token: slot 0.5 s away"},
		{500 * ms, false, 2 * sec, "the next slot: 1.5 s away"},
		{sec, true, 0, "exactly 1/R later: a token"},
		{sec, false, 2 * sec, "slots t0+1s, t0+2s were given: this one t0+3s"},
	}
	for i, s := range steps {
		if ok, ra := a.Admit(t0.Add(s.at)); ok != s.ok || ra != s.ra {
			t.Errorf("step %d (%s): ok %v, Retry-After %s; want %v, %s", i, s.note, ok, ra, s.ok, s.ra)
		}
	}

	b, err := NewAdmission(HandshakeRate{PerSecond: 1, Burst: 1}, t0)
	if err != nil {
		t.Fatal(err)
	}
	steps = []step{{0, true, 0, "the burst"}}
	for k := 1; k < 60; k++ {
		steps = append(steps, step{0, false, time.Duration(k) * sec, "slot k s away"})
	}
	steps = append(steps,
		step{0, false, MaxRetryAfterAnswer, "exactly the cap away: told the cap, no slot"},
		step{0, false, MaxRetryAfterAnswer, "past the cap: told the cap, no slot"},
		step{sec, true, 0, "a token again"},
		step{sec, false, 59 * sec, "the slot at the cap, 59 s away now"},
		step{sec, false, MaxRetryAfterAnswer, "the next one, 60 s away: the cap"},
	)
	for i, s := range steps {
		if ok, ra := b.Admit(t0.Add(s.at)); ok != s.ok || ra != s.ra {
			t.Errorf("cap step %d (%s): ok %v, Retry-After %s; want %v, %s", i, s.note, ok, ra, s.ok, s.ra)
		}
	}
}
