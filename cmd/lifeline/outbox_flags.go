package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// outboxFlag registers connect's --outbox; the returned function reads it
// into an fsm.Outbox (the zero Outbox, off, when the flag is not given).
func outboxFlag(fs *flag.FlagSet) func() (fsm.Outbox, error) {
	v := fs.String("outbox", "", "hold lines typed while down in a bounded outbox, `N,BYTES,AGE` (e.g. 100,64KiB,30s): at most N lines and BYTES bytes, each for at most AGE; written in order on reconnect, the oldest dropped over a bound, the stale dropped, never sent late (default: off, a line typed while down is reported and dropped)")
	return func() (fsm.Outbox, error) {
		if *v == "" {
			return fsm.Outbox{}, nil
		}
		o, err := parseOutbox(*v)
		if err != nil {
			return o, usageError{err}
		}
		return o, nil
	}
}

// parseOutbox reads --outbox's "N,BYTES,AGE"; a 0 part means the
// outbox's default. Its errors name the flag and the bad part.
func parseOutbox(v string) (fsm.Outbox, error) {
	parts := strings.Split(v, ",")
	if len(parts) != 3 {
		return fsm.Outbox{}, fmt.Errorf("--outbox: want N,BYTES,AGE (e.g. 100,64KiB,30s), got %q", v)
	}
	var o fsm.Outbox
	n, err := strconv.Atoi(strings.TrimSpace(parts[0]))
	if err != nil || n < 0 {
		return o, fmt.Errorf("--outbox: N %q: want a message count such as 100", parts[0])
	}
	b, err := parseBytes(strings.TrimSpace(parts[1]))
	if err != nil {
		return o, fmt.Errorf("--outbox: BYTES %q: %w", parts[1], err)
	}
	age, err := time.ParseDuration(strings.TrimSpace(parts[2]))
	if err != nil || age < 0 {
		return o, fmt.Errorf("--outbox: AGE %q: want a duration such as 30s", parts[2])
	}
	o = fsm.Outbox{Count: n, Bytes: b, Age: age}
	if !o.On() {
		return o, fmt.Errorf("--outbox: %q turns nothing on: leave --outbox out for no outbox", v)
	}
	if err := o.Validate(); err != nil {
		return o, fmt.Errorf("--outbox: %w", err)
	}
	return o, nil
}

// byteUnits are the suffixes parseBytes takes, longest first.
var byteUnits = []struct {
	suffix string
	n      int
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000_000}, {"GB", 1000_000_000},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}}

// parseBytes reads a byte count: 65536, 64KiB, 1MiB, 500KB, 2M.
func parseBytes(s string) (int, error) {
	num, mult := s, 1
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.n
			break
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("want a byte count such as 65536, 64KiB or 1MiB")
	}
	return n * mult, nil
}

// printOutbox writes the outbox's figures, one line, when it is on.
func printOutbox(w io.Writer, c fsm.OutboxCounts) {
	fmt.Fprintf(w, "lifeline connect: outbox: %d queued, %d written from it, %d held, %d dropped", c.Enqueued, c.Written, c.Held, c.Dropped.Total())
	for _, r := range fsm.DropReasons() {
		if n := c.Dropped.Of(r); n > 0 {
			fmt.Fprintf(w, " %s=%d", r, n)
		}
	}
	fmt.Fprintln(w)
}
