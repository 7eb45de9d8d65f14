// Package audit judges production logs by the invariants: it reads the
// JSON transition lines package conn writes (the logging contract in
// docs/decisions.md), rebuilds the trace records they prove (see
// records.go for each rule), and hands them to package invariant with the
// policy the deployment ran. It backs `lifeline audit`.
//
// What a log can prove is less than what the simulator knows: it names no
// frames, so (e) is judged on the activity the closing lines report, and a
// peer counts as dead only when its session's closing line shows silence
// for the whole liveness window. Invariants (f) and (g) need the world's
// view (live peers, server restarts) and are not judged.
package audit

import (
	"fmt"
	"io"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
	"github.com/lifeline-go/lifeline/invariant"
)

// Config is the policy the logged deployment ran, and the tolerance.
type Config struct {
	// Backoff is the clients' reconnect policy (lifeline connect's flags);
	// zero fields mean fsm's defaults.
	Backoff fsm.Backoff
	// Failures is the clients' failure table (lifeline connect's
	// --permanent-backoff and --failure-class); the zero value means fsm's
	// defaults.
	Failures fsm.FailurePolicy
	// Liveness is the server's liveness policy (lifeline serve's flags);
	// zero fields mean fsm's defaults.
	Liveness fsm.Liveness
	// Slack is how late an upper bound (a retry's latest, a reap deadline)
	// may be met: the server's timer granularity plus scheduling. Lower
	// bounds (no early retry, no reap before the silence) get none.
	Slack time.Duration
}

// Validate reports what is wrong with c, naming each field.
func (c Config) Validate() error { return c.suite().Validate() }

func (c Config) suite() invariant.Config {
	return invariant.Config{Backoff: c.Backoff, Failures: c.Failures, Liveness: c.Liveness, Slack: c.Slack, Only: Judged}
}

// Judged are the invariants a log can be judged by.
var Judged = []invariant.Invariant{invariant.NoEarlyRetry, invariant.BoundedRetries, invariant.DeadReaped,
	invariant.LiveKept, invariant.NoSendAfterClose, invariant.PermanentSlow, invariant.ReconnectFloor, invariant.RetryAfterFloor}

// Input is one log to read.
type Input struct {
	Name string    // in errors and the report: the file name, "-" for stdin
	R    io.Reader // the JSON log lines
}

// Finding is one violation, placed in the log.
type Finding struct {
	Invariant string    `json:"invariant"` // the broken promise's name
	Letter    string    `json:"letter"`    // its letter in package invariant
	At        time.Time `json:"at"`        // when, by the log's clock
	// Where is the line that revealed it, "file:12", or "" when the end
	// of the log did (a reap or retry that never came).
	Where string `json:"where,omitempty"`
	// Instance is the client or session: "file machine id".
	Instance string `json:"instance,omitempty"`
	Detail   string `json:"detail"` // what happened, in words
}

// Report is the outcome of an audit.
type Report struct {
	Lines    int                 `json:"lines"`    // transition lines read
	Records  int                 `json:"records"`  // trace records rebuilt from them
	Clients  int                 `json:"clients"`  // client instances seen
	Sessions int                 `json:"sessions"` // session instances seen
	Start    time.Time           `json:"start"`    // the first line's time
	End      time.Time           `json:"end"`      // the last line's time
	Verdicts []invariant.Verdict `json:"verdicts"` // one per judged invariant
	Findings []Finding           `json:"findings"` // the violations found, up to 64
	// Violations counts every violation; Findings keeps the first 64.
	Violations int `json:"violations"`
}

// Run reads every input, in order, and judges the whole as one run: lines
// of different inputs (a server's log and its clients') are merged by
// time. A malformed line is an error naming it; a violation is not an
// error but a Finding.
func Run(cfg Config, inputs []Input) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := newBuilder(cfg.Backoff, cfg.Liveness)
	rep := &Report{}
	for _, in := range inputs {
		var last time.Time
		err := parseLog(in.Name, in.R, func(l logLine) error {
			rep.Lines++
			b.add(&l)
			last = later(last, l.At)
			return nil
		})
		if err != nil {
			return nil, err
		}
		b.endSource(in.Name, last)
	}
	epoch, recs, orgs := b.records()
	suite, err := invariant.New(cfg.suite())
	if err != nil {
		return nil, err
	}
	for i := range recs {
		suite.Observe(&recs[i])
	}
	var end time.Duration
	if n := len(recs); n > 0 {
		end = recs[n-1].At
	}
	suite.Finish(end)
	rep.Records, rep.Clients, rep.Sessions = len(recs), int(b.nClients), int(b.nSess)
	rep.Start, rep.End = epoch, epoch.Add(end)
	rep.Verdicts = suite.Verdicts()
	for _, v := range rep.Verdicts {
		rep.Violations += v.Violations
	}
	for _, v := range suite.Violations() {
		f := Finding{Invariant: v.Invariant.String(), Letter: string(v.Invariant.Letter()), At: epoch.Add(v.At), Detail: v.Detail}
		if v.Index < len(orgs) {
			if l := orgs[v.Index].line; l != nil {
				f.Where = l.Where()
			}
			f.Instance = orgs[v.Index].instance
		} else if names := b.names[v.Machine]; int(v.ID) < len(names) {
			f.Instance = names[v.ID]
		}
		rep.Findings = append(rep.Findings, f)
	}
	return rep, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Clean reports whether no invariant was violated.
func (r *Report) Clean() bool { return r.Violations == 0 }

// WriteText writes the report for a reader: one line per verdict, then
// each finding with its place in the log.
func (r *Report) WriteText(w io.Writer) error {
	var err error
	p := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, args...)
		}
	}
	p("audited %d transition lines (%d clients, %d sessions) from %s to %s\n", r.Lines, r.Clients, r.Sessions,
		r.Start.Format(time.RFC3339Nano), r.End.Format(time.RFC3339Nano))
	for _, v := range r.Verdicts {
		verdict := "held"
		if !v.Held() {
			verdict = fmt.Sprintf("VIOLATED %d times", v.Violations)
		}
		p("  (%s) %-20s checked %6d  %s\n", v.Letter, v.Name, v.Checked, verdict)
	}
	for _, f := range r.Findings {
		where := f.Where
		if where == "" {
			where = "end of log"
		}
		p("%s: (%s) %s: %s: %s\n", where, f.Letter, f.Invariant, f.Instance, f.Detail)
	}
	if n := r.Violations - len(r.Findings); n > 0 {
		p("... and %d more violations\n", n)
	}
	if r.Clean() {
		p("clean: every promise judged was kept\n")
	}
	return err
}
