package bench

import (
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	ms := func(n int) []time.Duration {
		ds := make([]time.Duration, n)
		for i := range ds {
			ds[i] = time.Duration(i+1) * time.Millisecond
		}
		return ds
	}
	tests := []struct {
		name string
		lat  []time.Duration
		q    float64
		want time.Duration
	}{
		{"empty", nil, 0.99, 0},
		{"p99 of 100", ms(100), 0.99, 99 * time.Millisecond},
		{"p50 of 100", ms(100), 0.5, 50 * time.Millisecond},
		{"p99 of 3000 is the 2970th", ms(3000), 0.99, 2970 * time.Millisecond},
		{"max", ms(3000), 1, 3000 * time.Millisecond},
		{"p99 of 10 is the largest", ms(10), 0.99, 10 * time.Millisecond},
		{"p0 is the smallest", ms(10), 0, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (echoResult{Latencies: tt.lat}).Quantile(tt.q); got != tt.want {
				t.Errorf("Quantile(%v) = %s, want %s", tt.q, got, tt.want)
			}
		})
	}
}
