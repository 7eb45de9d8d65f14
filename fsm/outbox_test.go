package fsm

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestOutboxValidate(t *testing.T) {
	for _, tc := range []struct {
		o    Outbox
		want []string // fields named, in order
	}{
		{Outbox{}, nil},
		{Outbox{Count: 10, Bytes: 100, Age: time.Second}, nil},
		{Outbox{Count: -1}, []string{"Outbox.Count"}},
		{Outbox{Bytes: -1, Age: -time.Second}, []string{"Outbox.Bytes", "Outbox.Age"}},
	} {
		before := tc.o
		err := tc.o.Validate()
		if tc.o != before {
			t.Fatalf("Validate changed %+v", before)
		}
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%+v: %v", tc.o, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidPolicy) {
			t.Fatalf("%+v: %v is not ErrInvalidPolicy", tc.o, err)
		}
		var fe *FieldError
		if !errors.As(err, &fe) || "Outbox."+fe.Field != tc.want[0] {
			t.Errorf("%+v: first field error %v, want %s", tc.o, fe, tc.want[0])
		}
		for _, f := range tc.want {
			if !strings.Contains(err.Error(), f) {
				t.Errorf("%+v: %q does not name %s", tc.o, err, f)
			}
		}
	}
}

func TestOutboxDefaults(t *testing.T) {
	if got := (Outbox{}).WithDefaults(); got.On() {
		t.Errorf("the zero outbox must stay off: %+v", got)
	}
	got := Outbox{Age: time.Second}.WithDefaults()
	if got != (Outbox{Count: 100, Bytes: 1 << 20, Age: time.Second}) {
		t.Errorf("defaults: %+v", got)
	}
	if _, err := NewOutboxQueue[struct{}](Outbox{}); !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("an off outbox makes no queue: %v", err)
	}
}

// The queue's decisions, step by step: bounds drop the oldest, age is
// judged when a message is taken, order is first in, first out, and the
// counters always add up.
func TestOutboxQueue(t *testing.T) {
	t0 := time.Unix(0, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type step struct {
		op    string // push SIZE, next, clear, expire
		at    int    // ms
		size  int
		want  []string // drops as "seq:reason"
		taken uint64   // next: the seq taken, 0 for none
		err   error
	}
	q, err := NewOutboxQueue[int](Outbox{Count: 3, Bytes: 100, Age: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	steps := []step{
		{op: "push", at: 0, size: 10},
		{op: "push", at: 100, size: 10},
		{op: "push", at: 200, size: 10},
		{op: "push", at: 300, size: 10, want: []string{"1:over_count"}},                 // Count held: the oldest goes
		{op: "push", at: 400, size: 85, want: []string{"2:over_count", "3:over_bytes"}}, // Count held, then 20+85 > 100
		{op: "push", at: 500, size: 101, err: ErrOutboxTooLarge},                        // never fits: refused, nothing dropped
		{op: "next", at: 1301, taken: 5, want: []string{"4:expired"}},                   // 4 queued at 300: 1001ms old
		{op: "next", at: 1400},                                                          // empty
		{op: "push", at: 2000, size: 1},                                                 // 6
		{op: "push", at: 2500, size: 1},                                                 // 7
		{op: "next", at: 3000, taken: 6},                                                // exactly Age old: still fresh
		{op: "push", at: 3000, size: 1},                                                 // 8
		{op: "clear", at: 3501, want: []string{"7:expired", "8:stopped"}},
	}
	for i, s := range steps {
		var drops []OutboxDrop[int]
		var got uint64
		switch s.op {
		case "push":
			_, drops, err = q.Push(at(s.at), s.size, i, drops)
		case "next":
			var m Queued[int]
			var ok bool
			m, ok, drops = q.Next(at(s.at), drops)
			if ok {
				got = m.Seq
			}
		case "clear":
			drops = q.Clear(at(s.at), DropStopped, drops)
		}
		if !errors.Is(err, s.err) {
			t.Fatalf("step %d: error %v, want %v", i, err, s.err)
		}
		err = nil
		if got != s.taken {
			t.Errorf("step %d: took %d, want %d", i, got, s.taken)
		}
		var names []string
		for _, d := range drops {
			names = append(names, itoa(d.Seq)+":"+d.Reason.String())
		}
		if strings.Join(names, ",") != strings.Join(s.want, ",") {
			t.Errorf("step %d (%s at %dms): dropped %v, want %v", i, s.op, s.at, names, s.want)
		}
		c := q.Counts()
		if c.Enqueued != c.Written+c.Dropped.Total()+c.Held {
			t.Errorf("step %d: counts do not add up: %+v", i, c)
		}
	}
	c := q.Counts()
	want := OutboxCounts{Enqueued: 8, Written: 2, Dropped: DropCounts{OverCount: 2, OverBytes: 1, Expired: 2, Stopped: 1}}
	if c != want {
		t.Errorf("counts %+v, want %+v", c, want)
	}
	for _, r := range DropReasons() {
		if c.Dropped.Of(r) == 0 && r != DropWriteFailed && r != DropGaveUp {
			t.Errorf("%s not counted", r)
		}
	}
}

func itoa(n uint64) string {
	const digits = "0123456789"
	if n < 10 {
		return digits[n : n+1]
	}
	return itoa(n/10) + digits[n%10:n%10+1]
}

// A queue that stays full, dropping its oldest on every push, keeps its
// array bounded: the taken prefix is reclaimed.
func TestOutboxQueueBoundedMemory(t *testing.T) {
	q, err := NewOutboxQueue[[]byte](Outbox{Count: 8, Bytes: 1 << 20, Age: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(0, 0)
	var drops []OutboxDrop[[]byte]
	for i := range 10_000 {
		_, drops, _ = q.Push(now.Add(time.Duration(i)), 1, nil, drops[:0])
	}
	if cap(q.items) > 64 || q.Len() != 8 {
		t.Errorf("held %d in an array of %d", q.Len(), cap(q.items))
	}
	m, ok, _ := q.Next(now.Add(time.Minute), nil)
	if !ok || m.Seq != 10_000-7 {
		t.Errorf("oldest held is %d, want %d", m.Seq, 10_000-7)
	}
	if d := q.Failed(m, DropWriteFailed); d.Reason != DropWriteFailed || q.Counts().Dropped.WriteFailed != 1 {
		t.Errorf("a failed write is a counted drop: %+v %+v", d, q.Counts())
	}
}

func TestDropReasonNames(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range DropReasons() {
		if seen[r.String()] || strings.HasPrefix(r.String(), "DropReason(") {
			t.Errorf("%d: name %q", r, r)
		}
		seen[r.String()] = true
	}
	// Either side of the names: no name, and no index past the table.
	for _, r := range []DropReason{0, DropGaveUp + 1} {
		if want := "DropReason(" + strconv.Itoa(int(r)) + ")"; r.String() != want {
			t.Errorf("%q, want %q", r.String(), want)
		}
	}
}

// The outbox's bounds at exactly their values: a message of exactly Bytes
// fits an empty outbox, messages summing to exactly Bytes or numbering
// exactly Count are all held, and one more byte or message drops the
// oldest.
func TestOutboxQueueExactBounds(t *testing.T) {
	t0 := time.Unix(0, 0)
	for _, tt := range []struct {
		name  string
		sizes []int
		drops []string // "seq:reason", over the whole run
		held  int
		err   error // of the last push
	}{
		{"one message of exactly Bytes", []int{100}, nil, 1, nil},
		{"one byte over Bytes", []int{101}, nil, 0, ErrOutboxTooLarge},
		{"two summing to exactly Bytes", []int{60, 40}, nil, 2, nil},
		{"two summing to one byte over", []int{60, 41}, []string{"1:over_bytes"}, 1, nil},
		{"exactly Count", []int{1, 1, 1}, nil, 3, nil},
		{"one over Count", []int{1, 1, 1, 1}, []string{"1:over_count"}, 3, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q, err := NewOutboxQueue[int](Outbox{Count: 3, Bytes: 100, Age: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			var drops []OutboxDrop[int]
			for i, size := range tt.sizes {
				_, drops, err = q.Push(t0, size, i, drops)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("last push: %v, want %v", err, tt.err)
			}
			var got []string
			for _, d := range drops {
				got = append(got, itoa(d.Seq)+":"+d.Reason.String())
			}
			if strings.Join(got, " ") != strings.Join(tt.drops, " ") || q.Len() != tt.held {
				t.Errorf("dropped %v, held %d; want %v, %d", got, q.Len(), tt.drops, tt.held)
			}
		})
	}
}

// Push reclaims the taken prefix once it is half the array or more, and
// not before: a full queue that keeps dropping its oldest then copies
// each message a bounded number of times, and its array stays bounded.
func TestOutboxQueueReclaimsAtHalf(t *testing.T) {
	t0 := time.Unix(0, 0)
	for _, tt := range []struct {
		taken          int // of 4 queued, before the fifth push
		wantLen, wantH int // len(q.items) and q.head after it
	}{
		{1, 5, 1}, // a quarter taken: kept
		{2, 3, 0}, // exactly half: reclaimed
		{3, 2, 0}, // three quarters: reclaimed
	} {
		q, err := NewOutboxQueue[int](Outbox{Count: 8, Bytes: 100, Age: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			_, _, _ = q.Push(t0, 1, i, nil)
		}
		for range tt.taken {
			_, _, _ = q.Next(t0, nil)
		}
		_, _, _ = q.Push(t0, 1, 4, nil)
		if len(q.items) != tt.wantLen || q.head != tt.wantH || q.Len() != 5-tt.taken {
			t.Errorf("%d taken: array %d, head %d, held %d; want %d, %d, %d",
				tt.taken, len(q.items), q.head, q.Len(), tt.wantLen, tt.wantH, 5-tt.taken)
		}
		if m, _ := q.Oldest(); m.Seq != uint64(tt.taken+1) {
			t.Errorf("%d taken: oldest %d, want %d", tt.taken, m.Seq, tt.taken+1)
		}
	}
}

// A failed write moves its message from written to dropped: Written
// counts only what was written, and Total every drop once.
func TestOutboxCounts(t *testing.T) {
	q, err := NewOutboxQueue[int](Outbox{Count: 3, Bytes: 100, Age: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(0, 0)
	for i := range 2 {
		_, _, _ = q.Push(t0, 1, i, nil)
	}
	m, _, _ := q.Next(t0, nil)
	_, _, _ = q.Next(t0, nil)
	q.Failed(m, DropWriteFailed)
	if c := q.Counts(); c.Enqueued != 2 || c.Written != 1 || c.Dropped.WriteFailed != 1 || c.Dropped.Total() != 1 {
		t.Errorf("counts %+v, want 2 enqueued, 1 written, 1 write failed", c)
	}
	d := DropCounts{OverCount: 1, OverBytes: 2, Expired: 4, WriteFailed: 8, Stopped: 16, GaveUp: 32}
	if got := d.Total(); got != 63 {
		t.Errorf("Total of %+v = %d, want 63", d, got)
	}
	for _, r := range DropReasons() {
		if d.Of(r) == 0 {
			t.Errorf("Of(%s) = 0", r)
		}
	}
}
