package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lifeline-go/lifeline/fsm"
)

// failureFlags registers the failure-table flags of connect: the slow
// schedule after a permanent failure and extra classing rules; the
// returned function reads them into a FailurePolicy after parsing.
func failureFlags(fs *flag.FlagSet) func() (fsm.FailurePolicy, error) {
	d := fsm.DefaultSchedule()
	slow := fs.String("permanent-backoff", fmt.Sprintf("%s,%g,%s", d.Initial, d.Multiplier, d.Max),
		"`INITIAL,MULTIPLIER,MAX` of the slow schedule after a permanent failure (401, 403, 404, close 1002/1003/1007/1008/1009)")
	classes := fs.String("failure-class", "",
		"extra failure rules before the defaults, `N=CLASS,...`: N an HTTP status (<1000) or close code, CLASS transient, permanent or fatal; e.g. 401=fatal,4001=permanent")
	return func() (fsm.FailurePolicy, error) {
		var p fsm.FailurePolicy
		s, err := parseSchedule(*slow)
		if err != nil {
			return p, usageError{fmt.Errorf("--permanent-backoff: %w", err)}
		}
		p.Schedule = s
		rules, err := parseFailureRules(*classes)
		if err != nil {
			return p, usageError{fmt.Errorf("--failure-class: %w", err)}
		}
		p.Rules = append(rules, fsm.DefaultFailureRules()...)
		if err := p.Validate(); err != nil {
			return p, usageError{err}
		}
		return p, nil
	}
}

// parseSchedule reads "30s,2,10m" into a Backoff with jitter and the other
// fields at their defaults.
func parseSchedule(v string) (fsm.Backoff, error) {
	parts := strings.Split(v, ",")
	if len(parts) != 3 {
		return fsm.Backoff{}, fmt.Errorf("want INITIAL,MULTIPLIER,MAX (e.g. 30s,2,10m), got %q", v)
	}
	initial, err := time.ParseDuration(parts[0])
	if err != nil {
		return fsm.Backoff{}, fmt.Errorf("initial: %w", err)
	}
	mult, err := strconv.ParseFloat(parts[1], 64)
	if err != nil {
		return fsm.Backoff{}, fmt.Errorf("multiplier: %w", err)
	}
	maxd, err := time.ParseDuration(parts[2])
	if err != nil {
		return fsm.Backoff{}, fmt.Errorf("max: %w", err)
	}
	b := fsm.Backoff{Initial: initial, Multiplier: mult, Max: maxd}
	return b, b.Validate()
}

// parseFailureRules reads "401=fatal,4001=permanent".
func parseFailureRules(v string) ([]fsm.FailureRule, error) {
	if v == "" {
		return nil, nil
	}
	var out []fsm.FailureRule
	for _, item := range strings.Split(v, ",") {
		num, class, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("want N=CLASS, got %q", item)
		}
		n, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("%q: not a status or close code", num)
		}
		c, err := fsm.ParseFailureClass(class)
		if err != nil {
			return nil, err
		}
		r := fsm.FailureRule{Class: c}
		if n < 1000 {
			r.Status = n
		} else {
			r.Code = n
		}
		out = append(out, r)
	}
	return out, nil
}
