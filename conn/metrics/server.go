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

// Server holds a conn.Server's instruments. Create it with NewServer, put
// Observe in ServerConfig.Observer, then Watch the server. Safe for
// concurrent use.
type Server struct {
	cfg      Config
	meter    metric.Meter
	duration metric.Float64Histogram
	rtt      metric.Float64Histogram

	mu     sync.Mutex
	opened map[string]time.Time // upgraded sessions, by id
	pinged map[string]time.Time // the ping each session awaits a pong for

	reasonAttrs map[fsm.Reason]metric.RecordOption
	anomaly     *Anomaly
	reg         metric.Registration
}

// NewServer creates the server instruments on cfg's meter.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	in := &instruments{m: cfg.meter()}
	m := &Server{cfg: cfg, meter: in.m, opened: map[string]time.Time{}, pinged: map[string]time.Time{},
		reasonAttrs: map[fsm.Reason]metric.RecordOption{}}
	m.duration = in.histogram("lifeline.server.session.duration", "s",
		"Time from a session's upgrade to its reap, by the reason it ended.", durationBuckets)
	m.rtt = in.histogram("lifeline.server.ping.rtt", "s",
		"Time from a ping's write to the next pong read on that session.", shortBuckets)
	if in.err != nil {
		return nil, fmt.Errorf("metrics: %w", in.err)
	}
	for _, r := range fsm.Reasons() {
		m.reasonAttrs[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String(attrReason, r.String())))
	}
	return m, nil
}

// Observe is a conn.Observer: put it in ServerConfig.Observer (call it
// from your own Observer to keep both). Data frames, the hot path, return
// at the first comparison; transitions, pings and pongs take one short
// lock.
func (m *Server) Observe(o conn.Observation) {
	switch o.Kind {
	case conn.ObsTransition:
		m.transition(o)
	case conn.ObsSend:
		if o.Frame == conn.FramePing {
			m.mu.Lock()
			if _, ok := m.opened[o.ID]; ok {
				m.pinged[o.ID] = o.At
			}
			m.mu.Unlock()
		}
	case conn.ObsReceive:
		if o.Frame == conn.FramePong {
			m.mu.Lock()
			sent, ok := m.pinged[o.ID]
			delete(m.pinged, o.ID)
			m.mu.Unlock()
			if ok && !o.At.Before(sent) {
				m.rtt.Record(context.Background(), o.At.Sub(sent).Seconds())
			}
		}
	}
}

func (m *Server) transition(o conn.Observation) {
	tr := &o.Transition
	switch {
	case tr.From == fsm.Handshaking && tr.To != fsm.Reaped:
		m.mu.Lock()
		m.opened[o.ID] = tr.At
		m.mu.Unlock()
	case tr.To == fsm.Reaped:
		m.mu.Lock()
		at, ok := m.opened[o.ID]
		delete(m.opened, o.ID)
		delete(m.pinged, o.ID)
		m.mu.Unlock()
		if ok {
			m.duration.Record(context.Background(), tr.At.Sub(at).Seconds(), m.reasonAttrs[tr.Reason])
		}
	}
}

// Watch registers the instruments read from srv when metrics are
// collected: sessions by state, reaps by reason, refused, overloaded and
// rate-limited handshakes, dropped messages, and the anomaly (see Anomaly). Call it
// once; Close unregisters them.
func (m *Server) Watch(srv *conn.Server) error {
	if m.reg != nil {
		return fmt.Errorf("metrics: Server.Watch called twice")
	}
	in := m.meter
	sessions, err1 := in.Int64ObservableUpDownCounter("lifeline.server.sessions", metric.WithUnit("{session}"),
		metric.WithDescription("Registered sessions by state (Reaped excluded)."))
	reaps, err2 := in.Int64ObservableCounter("lifeline.server.reaps", metric.WithUnit("{session}"),
		metric.WithDescription("Sessions reaped, by reason."))
	dropped, err3 := in.Int64ObservableCounter("lifeline.server.send_queue.dropped", metric.WithUnit("{message}"),
		metric.WithDescription("Queued messages discarded because their session closed before they were written."))
	refused, err4 := in.Int64ObservableCounter("lifeline.server.handshakes.refused", metric.WithUnit("{request}"),
		metric.WithDescription("Requests turned away before the upgrade (401/403)."))
	over, err5 := in.Int64ObservableCounter("lifeline.server.handshakes.overloaded", metric.WithUnit("{request}"),
		metric.WithDescription("Requests answered 503 because MaxHandshakes handshakes were in progress."))
	unproven, err6 := in.Int64ObservableGauge("lifeline.server.sessions.unproven", metric.WithUnit("{session}"),
		metric.WithDescription("Registered sessions whose peer has not been heard from for longer than any bound the server keeps."))
	anomalous, err7 := in.Int64ObservableGauge("lifeline.server.sessions.anomaly", metric.WithUnit("1"),
		metric.WithDescription("1 while registered sessions exceed the expected peers or the peers proven alive (a leak), else 0."))
	limited, err8 := in.Int64ObservableCounter("lifeline.server.handshakes.rate_limited", metric.WithUnit("{request}"),
		metric.WithDescription("Requests answered 503 with a Retry-After because they came faster than HandshakeRate."))
	if err := joinErrs(err1, err2, err3, err4, err5, err6, err7, err8); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	m.anomaly = &Anomaly{Expected: m.cfg.ExpectedPeers}
	states := map[string]metric.ObserveOption{}
	for _, s := range fsm.SessionTable().States {
		states[s.String()] = metric.WithAttributeSet(attribute.NewSet(attribute.String(attrState, s.String())))
	}
	reasons := map[string]metric.ObserveOption{}
	for _, r := range fsm.Reasons() {
		reasons[r.String()] = metric.WithAttributeSet(attribute.NewSet(attribute.String(attrReason, r.String())))
	}
	reg, err := in.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := srv.Stats()
		for name, n := range st.Sessions {
			o.ObserveInt64(sessions, n, states[name])
		}
		for name, n := range st.Reaped {
			o.ObserveInt64(reaps, int64(n), reasons[name])
		}
		o.ObserveInt64(dropped, int64(st.DroppedMessages))
		o.ObserveInt64(refused, int64(st.Refused))
		o.ObserveInt64(over, int64(st.Overloaded))
		o.ObserveInt64(limited, int64(st.RateLimited))
		v := m.anomaly.Judge(st.Registered, srv.Unproven())
		o.ObserveInt64(unproven, int64(v.Unproven))
		o.ObserveInt64(anomalous, boolInt(v.Anomalous()))
		return nil
	}, sessions, reaps, dropped, refused, over, limited, unproven, anomalous)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	m.reg = reg
	return nil
}

// Anomaly returns the anomaly judge Watch installed (nil before Watch),
// for a caller that logs its verdicts (Anomaly.Judge's doc).
func (m *Server) Anomaly() *Anomaly { return m.anomaly }

// Close unregisters what Watch registered.
func (m *Server) Close() error {
	if m.reg == nil {
		return nil
	}
	return m.reg.Unregister()
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
