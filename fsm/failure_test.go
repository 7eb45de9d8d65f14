package fsm

import (
	"errors"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	custom := FailurePolicy{Rules: []FailureRule{{Status: 401, Class: Fatal}, {Code: 4001, Class: Permanent}}, AppCodes: Transient}
	apps := FailurePolicy{AppCodes: Permanent}
	for _, c := range []struct {
		p    FailurePolicy
		f    Failure
		want FailureClass
	}{
		{FailurePolicy{}, Failure{}, Transient},
		{FailurePolicy{}, Failure{Status: 401}, Permanent},
		{FailurePolicy{}, Failure{Status: 403}, Permanent},
		{FailurePolicy{}, Failure{Status: 404}, Permanent},
		{FailurePolicy{}, Failure{Status: 429}, Transient},
		{FailurePolicy{}, Failure{Status: 500}, Transient},
		{FailurePolicy{}, Failure{Status: 503}, Transient},
		{FailurePolicy{}, Failure{Code: 1001}, Transient},
		{FailurePolicy{}, Failure{Code: 1002}, Permanent},
		{FailurePolicy{}, Failure{Code: 1003}, Permanent},
		{FailurePolicy{}, Failure{Code: 1006}, Transient},
		{FailurePolicy{}, Failure{Code: 1007}, Permanent},
		{FailurePolicy{}, Failure{Code: 1008}, Permanent},
		{FailurePolicy{}, Failure{Code: 1009}, Permanent},
		{FailurePolicy{}, Failure{Code: 1011}, Transient},
		{FailurePolicy{}, Failure{Code: 1012}, Transient},
		{FailurePolicy{}, Failure{Code: 1013}, Transient},
		{FailurePolicy{}, Failure{Code: 4001}, Transient},
		{apps, Failure{Code: 4001}, Permanent},
		{apps, Failure{Status: 4001}, Transient}, // a status is never an app close code
		{custom, Failure{Status: 401}, Fatal},
		{custom, Failure{Status: 403}, Transient}, // non-nil Rules replace the defaults
		{custom, Failure{Code: 4001}, Permanent},
		{custom, Failure{Code: 4002}, Transient},
		// The app-code range is 4000-4999, both ends in.
		{apps, Failure{Code: 3999}, Transient},
		{apps, Failure{Code: 4000}, Permanent},
		{apps, Failure{Code: 4999}, Permanent},
		{apps, Failure{Code: 5000}, Transient},
	} {
		if got := c.p.Classify(c.f); got != c.want {
			t.Errorf("%+v: Classify(%s) = %s, want %s", c.p, c.f, got, c.want)
		}
	}
}

func TestFailurePolicyValidate(t *testing.T) {
	for _, c := range []struct {
		p     FailurePolicy
		field string
	}{
		{FailurePolicy{Rules: []FailureRule{{}}}, "Rules[0]"},
		{FailurePolicy{Rules: []FailureRule{{Status: 401, Code: 1008}}}, "Rules[0]"},
		{FailurePolicy{Rules: []FailureRule{{Status: 101}}}, "Rules[0].Status"},
		{FailurePolicy{Rules: []FailureRule{{Code: 1000}}}, "Rules[0].Code"},
		{FailurePolicy{Rules: []FailureRule{{Code: 1008, Class: 9}}}, "Rules[0].Class"},
		{FailurePolicy{AppCodes: 7}, "AppCodes"},
		// One past Fatal, the last class, is the first bad one.
		{FailurePolicy{Rules: []FailureRule{{Status: 500, Class: Fatal + 1}}}, "Rules[0].Class"},
		{FailurePolicy{AppCodes: Fatal + 1}, "AppCodes"},
		{FailurePolicy{Rules: []FailureRule{{Status: 99}}}, "Rules[0].Status"},
		{FailurePolicy{Rules: []FailureRule{{Status: 600}}}, "Rules[0].Status"},
		{FailurePolicy{Rules: []FailureRule{{Code: 999}}}, "Rules[0].Code"},
		{FailurePolicy{Rules: []FailureRule{{Code: 5000}}}, "Rules[0].Code"},
		{FailurePolicy{Schedule: Backoff{Multiplier: 0.5}}, "Multiplier"},
	} {
		err := c.p.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || !errors.Is(err, ErrInvalidPolicy) || fe.Field != c.field {
			t.Errorf("%+v: Validate = %v, want a FieldError on %s", c.p, err, c.field)
		}
	}
	if err := (FailurePolicy{}).Validate(); err != nil {
		t.Errorf("zero policy: %v", err)
	}
	edges := FailurePolicy{AppCodes: Fatal, Rules: []FailureRule{{Status: 100, Class: Fatal}, {Status: 599}, {Code: 1001}, {Code: 4999}}}
	if err := edges.Validate(); err != nil {
		t.Errorf("the edges of every range: %v", err)
	}
}

// The zero policy's slow schedule is 30 s ×2 up to 10 min, with the
// client's jitter; a set Schedule is kept.
func TestFailurePolicyDefaults(t *testing.T) {
	b := Backoff{Jitter: JitterFull, JitterFraction: 0.25}
	got := FailurePolicy{}.WithDefaults(b).Schedule
	want := Backoff{Initial: 30 * time.Second, Multiplier: 2, Max: 10 * time.Minute, Jitter: JitterFull, JitterFraction: 0.25}.WithDefaults()
	if got != want || got.Initial != 30*time.Second || got.Max != 10*time.Minute {
		t.Errorf("zero policy's schedule = %+v, want %+v", got, want)
	}
	if d := DefaultSchedule(); d.Initial != 30*time.Second || d.Multiplier != 2 || d.Max != 10*time.Minute || d.Jitter != DefaultBackoff().Jitter {
		t.Errorf("DefaultSchedule() = %+v", d)
	}
	set := Backoff{Initial: time.Second, Multiplier: 3, Max: time.Minute, Jitter: JitterNone}
	if got := (FailurePolicy{Schedule: set}).WithDefaults(b).Schedule; got != set.WithDefaults() {
		t.Errorf("a set schedule = %+v, want %+v", got, set.WithDefaults())
	}
}

func TestFailureNames(t *testing.T) {
	for f, want := range map[Failure]string{{}: "network", {Status: 401}: "http 401", {Code: 1008}: "close 1008", {Status: 503, Code: 1011}: "http 503"} {
		if got := f.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", f, got, want)
		}
	}
	for c, want := range map[FailureClass]string{Transient: "transient", Permanent: "permanent", Fatal: "fatal", 3: "FailureClass(3)"} {
		if got := c.String(); got != want {
			t.Errorf("FailureClass %d = %q, want %q", c, got, want)
		}
		p, err := ParseFailureClass(want)
		if ok := c <= Fatal; ok != (err == nil) || ok && p != c {
			t.Errorf("ParseFailureClass(%q) = %v, %v", want, p, err)
		}
	}
	for g, want := range map[GiveUpCause]string{GiveUpNone: "", GiveUpAttempts: "max_attempts", GiveUpOffline: "give_up_after", GiveUpFatal: "fatal_failure", 4: "GiveUpCause(4)"} {
		if got := g.String(); got != want {
			t.Errorf("GiveUpCause %d = %q, want %q", g, got, want)
		}
	}
}

// A server that says "go away" is retried on the slow schedule, counted
// in rejections; a link that comes up ends them; a fatal failure gives up.
func TestPermanentFailures(t *testing.T) {
	b := Backoff{Initial: time.Second, Multiplier: 2, Jitter: JitterNone, FirstImmediate: true}
	sched := Backoff{Initial: 10 * time.Second, Multiplier: 3, Max: time.Minute, Jitter: JitterNone}
	c, err := NewClient(ClientConfig{Backoff: b, Failures: FailurePolicy{Schedule: sched}})
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	step := func(ev Event, f Failure) *Output {
		t.Helper()
		out, err := c.StepFailure(now, ev, f)
		if err != nil {
			t.Fatal(err)
		}
		return &out
	}
	step(EvStart, Failure{})
	for k, want := range []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, time.Minute} {
		out := step(EvDialFailed, Failure{Status: 401})
		if c.State() != Rejected || out.Transition.Trigger != GoAway || out.Transition.Delay != want {
			t.Fatalf("rejection %d: %s %+v, want Rejected after %s", k+1, c.State(), out.Transition, want)
		}
		if at, ok := c.RetryAt(); !ok || !at.Equal(now.Add(want)) {
			t.Fatalf("rejection %d: retry at %v %v", k+1, at, ok)
		}
		// A rejection counts as a failure too: the retry is attempt k+2.
		acts := out.Actions
		if c.Failures() != k+1 || c.Rejections() != k+1 || out.Transition.Attempt != k+2 ||
			len(acts) == 0 || acts[len(acts)-1].Kind != ActScheduleRetry || acts[len(acts)-1].Attempt != k+2 {
			t.Fatalf("rejection %d: failures %d, rejections %d, transition attempt %d, actions %+v; want %d, %d, %d",
				k+1, c.Failures(), c.Rejections(), out.Transition.Attempt, acts, k+1, k+1, k+2)
		}
		if _, err := c.Step(now, EvReconnectNow); err != nil || c.State() != Rejected {
			t.Fatalf("reconnect-now cut a rejection short: %v %s", err, c.State())
		}
		now = now.Add(want)
		step(EvTick, Failure{})
	}
	step(EvDialOK, Failure{})
	out := step(EvDropped, Failure{Code: 1008})
	if out.Transition.Delay != 10*time.Second {
		t.Fatalf("after a link came up the rejections start again: delay %s", out.Transition.Delay)
	}
	now = now.Add(10 * time.Second)
	step(EvTick, Failure{})
	if out := step(EvDialFailed, Failure{Status: 503}); c.State() != BackingOff || out.Transition.Trigger != DialFailed {
		t.Fatalf("a 503 is transient: %s %+v", c.State(), out.Transition)
	}

	f, err := NewClient(ClientConfig{Backoff: b, Failures: FailurePolicy{Rules: []FailureRule{{Status: 401, Class: Fatal}}}})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Step(t0, EvStart)
	if _, err := f.StepFailure(t0, EvDialFailed, Failure{Status: 401}); err != nil || f.State() != GaveUp || f.GaveUpCause() != GiveUpFatal {
		t.Fatalf("fatal 401: %v %s %q", err, f.State(), f.GaveUpCause())
	}
}
