package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
)

// limits are the bounds on bad input that serve and onebot serve share:
// how long a handshake may take (a slowloris peer is cut off there), how
// big a message may be, how many handshakes may run at once.
type limits struct {
	handshake     time.Duration
	readLimit     byteSize
	maxHandshakes int
	handshakeRate rateFlag
}

func limitFlags(fs *flag.FlagSet) *limits {
	l := &limits{readLimit: 1 << 20}
	fs.DurationVar(&l.handshake, "handshake-timeout", 10*time.Second,
		"bound on a handshake, request headers included: a peer that opens TCP and stalls is cut off")
	fs.Var(&l.readLimit, "read-limit", "largest message accepted, e.g. 512, 64KiB, 1MiB; a bigger one closes the session with 1009")
	fs.IntVar(&l.maxHandshakes, "max-handshakes", 1024, "handshakes served at once; more are answered 503 before auth (0: no cap)")
	fs.Var(&l.handshakeRate, "handshake-rate",
		"admit handshakes at `R[/s][,BURST]` (e.g. 200/s or 200,20; burst default ceil(R/10)); more are answered 503 with a Retry-After that spreads them at the rate (default: off)")
	return l
}

// apply sets the limits in a server's configuration.
func (l *limits) apply(cfg *conn.ServerConfig) {
	cfg.Liveness.HandshakeTimeout = l.handshake
	cfg.ReadLimit = int64(l.readLimit)
	cfg.MaxHandshakes = l.maxHandshakes
	cfg.HandshakeRate = fsm.HandshakeRate(l.handshakeRate)
}

// check rejects limits the flag package cannot: a handshake timeout must
// be positive, or headers could be trickled in for ever.
func (l *limits) check() error {
	if l.handshake <= 0 {
		return fmt.Errorf("-handshake-timeout %s: must be positive", l.handshake)
	}
	return nil
}

// byteSize is a flag value in bytes that accepts units: B, KiB, MiB, GiB
// (powers of 1024) and KB, MB, GB (powers of 1000).
type byteSize int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{ // longest suffixes first, so "KiB" is not read as "B"
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
}

func (b *byteSize) String() string {
	v := int64(*b)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v >= u.mult && v%u.mult == 0 {
			return strconv.FormatInt(v/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(v, 10)
}

var errSize = errors.New("want a positive size like 512, 64KiB or 1MiB")

// Set parses s; the flag package names the flag and the value in its
// error, and this says what was expected.
func (b *byteSize) Set(s string) error {
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/mult {
		return errSize
	}
	*b = byteSize(n * mult)
	return nil
}

// rateFlag is --handshake-rate: "R", "R/s", "R,BURST" or "R/s,BURST",
// R a positive number of handshakes per second, BURST a positive count.
type rateFlag fsm.HandshakeRate

func (r *rateFlag) String() string {
	if r == nil || r.PerSecond == 0 {
		return ""
	}
	s := strconv.FormatFloat(r.PerSecond, 'g', -1, 64) + "/s"
	if r.Burst != 0 {
		s += "," + strconv.Itoa(r.Burst)
	}
	return s
}

var errRate = errors.New("want R[/s][,BURST]: a positive rate per second, e.g. 200/s, and optionally a positive burst, e.g. 200/s,20")

// Set parses s; the flag package names the flag and the value in its
// error, and this says what was expected.
func (r *rateFlag) Set(s string) error {
	rate, burst, hasBurst := strings.Cut(strings.TrimSpace(s), ",")
	rate = strings.TrimSuffix(strings.TrimSpace(rate), "/s")
	v, err := strconv.ParseFloat(strings.TrimSpace(rate), 64)
	if err != nil || !(v > 0) || math.IsInf(v, 0) {
		return errRate
	}
	h := fsm.HandshakeRate{PerSecond: v}
	if hasBurst {
		n, err := strconv.Atoi(strings.TrimSpace(burst))
		if err != nil || n <= 0 {
			return errRate
		}
		h.Burst = n
	}
	*r = rateFlag(h)
	return nil
}
