package metrics_test

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// reader is an SDK meter provider read on demand: the tests' exporter.
type reader struct {
	*sdkmetric.MeterProvider
	r *sdkmetric.ManualReader
}

func newReader(t testing.TB) *reader {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return &reader{MeterProvider: mp, r: r}
}

// point is one collected value: a sum's or gauge's value, or a
// histogram's count, keyed by metric name and its one attribute's value.
type point struct {
	name, attr string
}

// collect returns every value collected now.
func (rd *reader) collect(t testing.TB) map[point]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := rd.r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[point]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[point{m.Name, attrValue(p.Attributes.ToSlice())}] = float64(p.Value)
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					out[point{m.Name, attrValue(p.Attributes.ToSlice())}] = float64(p.Value)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[point{m.Name, attrValue(p.Attributes.ToSlice())}] = float64(p.Count)
				}
			default:
				t.Fatalf("%s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return out
}

// attrValue is the values of a point's attributes in key order, joined
// with commas; "" for none.
func attrValue(kv []attribute.KeyValue) string {
	var vs []string
	for _, a := range kv {
		vs = append(vs, a.Value.String())
	}
	return strings.Join(vs, ",")
}
