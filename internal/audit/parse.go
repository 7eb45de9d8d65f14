package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// logLine is one transition line of conn's logging contract, parsed: msg
// "transition" with machine, id, from, to and trigger; reason when a
// session closes or is reaped; attempt and delay_ms when a client
// schedules a retry; silent_ms and idle_ms on a session's closing line.
type logLine struct {
	Source  string // the file it came from ("-" for stdin)
	Number  int    // 1-based line number in Source
	At      time.Time
	Machine fsm.Machine
	ID      string
	From    fsm.State
	To      fsm.State
	Trigger fsm.Trigger
	Reason  fsm.Reason
	Attempt int
	// DelayMS is the backoff delay in whole milliseconds (the log's
	// resolution); HasDelay says the line carried one.
	DelayMS  int64
	HasDelay bool
	// SilentMS and IdleMS: how long the peer had been silent, and how long
	// no application message had gone either way, when the session's
	// closing line was written; HasSilence says the line carried them.
	SilentMS, IdleMS int64
	HasSilence       bool
	// Error is the failure that caused the transition, as logged.
	Error string
}

// Where names the line for an error or a report: "file:12".
func (l *logLine) Where() string { return fmt.Sprintf("%s:%d", l.Source, l.Number) }

// rawLine is the JSON shape of a log line; fields absent stay nil.
type rawLine struct {
	Time     *time.Time `json:"time"`
	Msg      string     `json:"msg"`
	Machine  *string    `json:"machine"`
	ID       *string    `json:"id"`
	From     *string    `json:"from"`
	To       *string    `json:"to"`
	Trigger  *string    `json:"trigger"`
	Reason   *string    `json:"reason"`
	Attempt  *int       `json:"attempt"`
	DelayMS  *int64     `json:"delay_ms"`
	SilentMS *int64     `json:"silent_ms"`
	IdleMS   *int64     `json:"idle_ms"`
	Error    string     `json:"error"`
}

// maxLine bounds one log line; a longer one is bad input, not a reason to
// grow without limit.
const maxLine = 1 << 20

// parseLog reads the JSON log r (named source in errors) and hands each
// transition line to fn, in order. Blank lines and JSON lines with another
// msg (listening, stopped, ...) are skipped; a line that is not a JSON
// object, or a transition line with a missing or unknown field, is an
// error naming the line. An error from fn is returned as it is.
func parseLog(source string, r io.Reader, fn func(logLine) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	n := 0
	for sc.Scan() {
		n++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var raw rawLine
		if err := json.Unmarshal([]byte(text), &raw); err != nil {
			return fmt.Errorf("%s:%d: not a JSON log line (lifeline's --log-format json): %w", source, n, err)
		}
		if raw.Msg != "transition" {
			continue
		}
		l, err := raw.line()
		if err != nil {
			return fmt.Errorf("%s:%d: %w", source, n, err)
		}
		l.Source, l.Number = source, n
		if err := fn(l); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s:%d: %w", source, n+1, err)
	}
	return nil
}

// line checks a transition line's fields and converts them.
func (r *rawLine) line() (logLine, error) {
	var l logLine
	if r.Time == nil {
		return l, fmt.Errorf("transition line without time")
	}
	l.At = *r.Time
	for _, f := range []struct {
		name string
		v    *string
	}{{"machine", r.Machine}, {"id", r.ID}, {"from", r.From}, {"to", r.To}, {"trigger", r.Trigger}} {
		if f.v == nil {
			return l, fmt.Errorf("transition line without %s", f.name)
		}
	}
	var ok bool
	if l.Machine, ok = machines[*r.Machine]; !ok {
		return l, fmt.Errorf("unknown machine %q", *r.Machine)
	}
	l.ID = *r.ID
	if l.From, ok = states[*r.From]; !ok {
		return l, fmt.Errorf("unknown from state %q", *r.From)
	}
	if l.To, ok = states[*r.To]; !ok {
		return l, fmt.Errorf("unknown to state %q", *r.To)
	}
	if l.Trigger, ok = triggers[*r.Trigger]; !ok {
		return l, fmt.Errorf("unknown trigger %q", *r.Trigger)
	}
	if r.Reason != nil {
		if l.Reason, ok = reasons[*r.Reason]; !ok {
			return l, fmt.Errorf("unknown reason %q", *r.Reason)
		}
	}
	l.Error = r.Error
	if r.Attempt != nil {
		l.Attempt = *r.Attempt
	}
	if r.DelayMS != nil {
		if *r.DelayMS < 0 {
			return l, fmt.Errorf("negative delay_ms %d", *r.DelayMS)
		}
		l.DelayMS, l.HasDelay = *r.DelayMS, true
	}
	if l.Machine == fsm.MachineClient && l.To == fsm.BackingOff && (!l.HasDelay || r.Attempt == nil) {
		return l, fmt.Errorf("client line into %s without attempt and delay_ms", l.To)
	}
	if r.SilentMS != nil && r.IdleMS != nil {
		if *r.SilentMS < 0 || *r.IdleMS < 0 {
			return l, fmt.Errorf("negative silent_ms or idle_ms")
		}
		l.SilentMS, l.IdleMS, l.HasSilence = *r.SilentMS, *r.IdleMS, true
	}
	return l, nil
}

// The names fsm gives its machines, states, triggers and reasons, read
// back from their String methods so that there is one spelling.
var (
	machines = names[fsm.Machine]()
	states   = names[fsm.State]()
	triggers = names[fsm.Trigger]()
	reasons  = names[fsm.Reason]()
)

// names maps every named value of a uint8 enum to itself by name; the
// unnamed ones print as "Type(n)" and are left out.
func names[T interface {
	~uint8
	String() string
}]() map[string]T {
	m := map[string]T{}
	for i := 1; i < 256; i++ {
		v := T(i)
		if s := v.String(); !strings.HasSuffix(s, ")") {
			m[s] = v
		}
	}
	return m
}
