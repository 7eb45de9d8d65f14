package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/lifeline-go/lifeline/conn"
)

// Anomaly judges the session count, the field report's "monitor the
// session count for abnormal growth": registered sessions should never
// outnumber the peers the server can prove alive (conn.Server.Unproven
// counts the ones it cannot), nor the peers it was told to expect. Either
// excess is a leak — sessions kept after their peers died — whatever the
// state counts say. Safe for concurrent use.
type Anomaly struct {
	// Expected is the most peers the deployment should hold; zero means
	// no expectation.
	Expected int
}

// Verdict is one judgement of the session count.
type Verdict struct {
	Registered int // sessions in the registry
	Unproven   int // of those, peers not heard from beyond every bound
	Expected   int // the expectation, 0 for none
}

// Anomalous reports whether the count shows a leak.
func (v Verdict) Anomalous() bool {
	return v.Unproven > 0 || (v.Expected > 0 && v.Registered > v.Expected)
}

// String says what is wrong, for the one log line an anomaly gets.
func (v Verdict) String() string {
	var why []error
	if v.Unproven > 0 {
		why = append(why, fmt.Errorf("%d of %d registered sessions have peers not heard from beyond every liveness bound", v.Unproven, v.Registered))
	}
	if v.Expected > 0 && v.Registered > v.Expected {
		why = append(why, fmt.Errorf("%d registered sessions for %d expected peers", v.Registered, v.Expected))
	}
	if len(why) == 0 {
		return "session count healthy"
	}
	return errors.Join(why...).Error()
}

// Judge returns the verdict on the counts.
func (a *Anomaly) Judge(registered, unproven int) Verdict {
	return Verdict{Registered: registered, Unproven: unproven, Expected: a.Expected}
}

// Run judges srv every interval until ctx ends, and writes one log line
// when the count turns anomalous (Warn, with the verdict) and one when it
// is healthy again (Info): a lasting leak is one line, not a flood. It
// returns when ctx ends.
func (a *Anomaly) Run(ctx context.Context, srv *conn.Server, log *slog.Logger, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	bad := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v := a.Judge(srv.Stats().Registered, srv.Unproven())
		switch {
		case v.Anomalous() && !bad:
			log.Warn("session count anomaly", "registered", v.Registered, "unproven", v.Unproven,
				"expected", v.Expected, "why", v.String())
		case !v.Anomalous() && bad:
			log.Info("session count healthy again", "registered", v.Registered)
		}
		bad = v.Anomalous()
	}
}

func joinErrs(errs ...error) error { return errors.Join(errs...) }
