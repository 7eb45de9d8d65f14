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

	stateAttrs   map[fsm.State]metric.AddOption
	triggerAttrs map[fsm.Trigger]metric.AddOption

	mu      sync.Mutex
	dropped map[string]time.Time // clients whose link dropped, since when
}

// NewClient creates the client instruments on cfg's meter.
func NewClient(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	in := &instruments{m: cfg.meter()}
	m := &Client{stateAttrs: map[fsm.State]metric.AddOption{}, triggerAttrs: map[fsm.Trigger]metric.AddOption{},
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
	for _, t := range fsm.ClientTable().Triggers() {
		m.triggerAttrs[t] = metric.WithAttributeSet(attribute.NewSet(attribute.String(attrTrigger, t.String())))
	}
	m.triggerAttrs[fsm.PongTimeout] = metric.WithAttributeSet(attribute.NewSet(attribute.String(attrTrigger, fsm.PongTimeout.String())))
	return m, nil
}

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
	case fsm.BackingOff, fsm.GaveUp:
		if tr.From == fsm.Connecting || tr.From == fsm.Connected {
			m.failures.Add(ctx, 1, m.triggerAttrs[tr.Trigger])
		}
		if tr.From == fsm.Connected {
			m.mu.Lock()
			m.dropped[o.ID] = tr.At
			m.mu.Unlock()
		}
		if tr.To == fsm.BackingOff {
			m.delay.Record(ctx, tr.Delay.Seconds())
		} else {
			m.gaveUp.Add(ctx, 1)
		}
	case fsm.Stopped:
		m.mu.Lock()
		delete(m.dropped, o.ID)
		m.mu.Unlock()
	}
}
