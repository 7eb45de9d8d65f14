package metrics

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/lifeline-go/lifeline/conn"
	"github.com/lifeline-go/lifeline/fsm"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Client holds the client instruments; one Client serves any number of
// conn.Clients (a fleet in one process): put Observe in each
// ClientConfig.Observer. Safe for concurrent use.
type Client struct {
	state     metric.Int64UpDownCounter
	attempts  metric.Int64Counter
	failures  metric.Int64Counter
	delay     metric.Float64Histogram
	reconnect metric.Float64Histogram
	gaveUp    metric.Int64Counter

	stateAttrs map[fsm.State]metric.AddOption
	// failAttrs are a failure's attributes by its trigger and the state it
	// led to (its class: BackingOff transient, Rejected permanent, GaveUp
	// final).
	failAttrs map[failKey]metric.AddOption

	mu      sync.Mutex
	dropped map[string]time.Time // clients whose link dropped, since when
}

// NewClient creates the client instruments on cfg's meter.
func NewClient(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	in := &instruments{m: cfg.meter()}
	m := &Client{stateAttrs: map[fsm.State]metric.AddOption{}, failAttrs: map[failKey]metric.AddOption{},
		dropped: map[string]time.Time{}}
	var err error
	m.state, err = in.m.Int64UpDownCounter("lifeline.client.state", metric.WithUnit("{client}"),
		metric.WithDescription("Clients by state, from their first transition."))
	in.err = joinErrs(in.err, err)
	m.attempts = in.counter("lifeline.client.attempts", "{attempt}", "Connection attempts started.")
	m.failures = in.counter("lifeline.client.failures", "{failure}", "Failed attempts and dropped links, by the trigger that ended them.")
	m.gaveUp = in.counter("lifeline.client.gave_up", "{client}", "Clients that gave up (MaxAttempts).")
	m.delay = in.histogram("lifeline.client.backoff.delay", "s", "Backoff delay chosen after a failure.", shortBuckets)
	m.reconnect = in.histogram("lifeline.client.reconnect.duration", "s", "Time from a link's drop to the next link up.", shortBuckets)
	if in.err != nil {
		return nil, fmt.Errorf("metrics: %w", in.err)
	}
	for _, s := range fsm.ClientTable().States {
		m.stateAttrs[s] = metric.WithAttributeSet(attribute.NewSet(attribute.String(attrCState, s.String())))
	}
	for _, t := range append(fsm.ClientTable().Triggers(), fsm.PongTimeout) {
		for to, class := range failureClasses {
			m.failAttrs[failKey{t, to}] = metric.WithAttributeSet(attribute.NewSet(
				attribute.String(attrTrigger, t.String()), attribute.String(attrClass, class)))
		}
	}
	return m, nil
}

// failKey is what a failure's attributes depend on.
type failKey struct {
	trigger fsm.Trigger
	to      fsm.State
}

// failureClasses names a failure's class by the state it led to: the
// failure table's transient failures back off, permanent ones wait in
// Rejected on the slow schedule, and a fatal failure or the last allowed
// attempt ends the run.
var failureClasses = map[fsm.State]string{fsm.BackingOff: "transient", fsm.Rejected: "permanent", fsm.GaveUp: "final"}

// Observe is a conn.Observer for ClientConfig.Observer. Frames return at
// the first comparison; a transition takes at most one short lock.
func (m *Client) Observe(o conn.Observation) {
	if o.Kind != conn.ObsTransition {
		return
	}
	ctx := context.Background()
	tr := &o.Transition
	if tr.From != fsm.Idle {
		m.state.Add(ctx, -1, m.stateAttrs[tr.From])
	}
	m.state.Add(ctx, 1, m.stateAttrs[tr.To])
	switch tr.To {
	case fsm.Connecting:
		m.attempts.Add(ctx, 1)
	case fsm.Connected:
		m.mu.Lock()
		since, ok := m.dropped[o.ID]
		delete(m.dropped, o.ID)
		m.mu.Unlock()
		if ok {
			m.reconnect.Record(ctx, tr.At.Sub(since).Seconds())
		}
	case fsm.BackingOff, fsm.Rejected, fsm.GaveUp:
		if tr.From == fsm.Connecting || tr.From == fsm.Connected {
			m.failures.Add(ctx, 1, m.failAttrs[failKey{tr.Trigger, tr.To}])
		}
		if tr.From == fsm.Connected {
			m.mu.Lock()
			m.dropped[o.ID] = tr.At
			m.mu.Unlock()
		}
		if tr.To == fsm.GaveUp {
			m.gaveUp.Add(ctx, 1)
		} else {
			m.delay.Record(ctx, tr.Delay.Seconds())
		}
	case fsm.Stopped:
		m.mu.Lock()
		delete(m.dropped, o.ID)
		m.mu.Unlock()
	}
}
