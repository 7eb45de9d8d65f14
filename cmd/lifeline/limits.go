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
)

// limits are the bounds on bad input that serve and onebot serve share:
// how long a handshake may take (a slowloris peer is cut off there), how
// big a message may be, how many handshakes may run at once.
type limits struct {
	handshake     time.Duration
	readLimit     byteSize
	maxHandshakes int
}

func limitFlags(fs *flag.FlagSet) *limits {
	l := &limits{readLimit: 1 << 20}
	fs.DurationVar(&l.handshake, "handshake-timeout", 10*time.Second,
		"bound on a handshake, request headers included: a peer that opens TCP and stalls is cut off")
	fs.Var(&l.readLimit, "read-limit", "largest message accepted, e.g. 512, 64KiB, 1MiB; a bigger one closes the session with 1009")
	fs.IntVar(&l.maxHandshakes, "max-handshakes", 1024, "handshakes served at once; more are answered 503 before auth (0: no cap)")
	return l
}

// apply sets the limits in a server's configuration.
func (l *limits) apply(cfg *conn.ServerConfig) {
	cfg.Liveness.HandshakeTimeout = l.handshake
	cfg.ReadLimit = int64(l.readLimit)
	cfg.MaxHandshakes = l.maxHandshakes
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
