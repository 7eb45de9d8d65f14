package metrics

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

// scope is the instrumentation scope the instruments are created under.
const scope = "github.com/lifeline-go/lifeline/conn/metrics"

// Config chooses where the instruments live.
type Config struct {
	// MeterProvider creates the meter. Nil means otel.GetMeterProvider(),
	// the global one (a no-op until the program installs an SDK).
	MeterProvider metric.MeterProvider
	// ExpectedPeers is how many peers the server should hold at most (a
	// fleet's size); more registered sessions than that is an anomaly
	// (see Anomaly). Zero: no expectation, only the proof counts.
	ExpectedPeers int
}

// Validate reports what is wrong with c.
func (c Config) Validate() error {
	if c.ExpectedPeers < 0 {
		return fmt.Errorf("metrics: Config.ExpectedPeers must not be negative (got %d)", c.ExpectedPeers)
	}
	return nil
}

func (c Config) meter() metric.Meter {
	mp := c.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	return mp.Meter(scope)
}

// Attribute keys.
const (
	attrState   = "lifeline.session.state"
	attrReason  = "lifeline.session.reason"
	attrCState  = "lifeline.client.state"
	attrTrigger = "lifeline.client.trigger"
	attrClass   = "lifeline.client.failure.class"
)

// Bucket boundaries in seconds. Durations of sessions span seconds to
// days; round trips, backoff delays and reconnects span milliseconds to
// minutes (the default backoff's cap is 30s).
var (
	durationBuckets = []float64{1, 10, 60, 300, 1800, 3600, 6 * 3600, 24 * 3600, 7 * 24 * 3600}
	shortBuckets    = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}
)

// instruments creates instruments in order, stopping at the first error.
type instruments struct {
	m   metric.Meter
	err error
}

func (in *instruments) histogram(name, unit, desc string, buckets []float64) metric.Float64Histogram {
	h, err := in.m.Float64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(buckets...))
	in.err = errors.Join(in.err, err)
	return h
}

func (in *instruments) counter(name, unit, desc string) metric.Int64Counter {
	c, err := in.m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	in.err = errors.Join(in.err, err)
	return c
}
