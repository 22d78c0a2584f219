package carbon

import (
	"context"
	"testing"
	"time"
)

// BenchmarkSample measures one background sample on this machine (the
// sampler's cost per SampleInterval).
func BenchmarkSample(b *testing.B) {
	m, err := NewMeter(Options{SampleInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	meas := m.Start(context.Background(), "bench")
	defer meas.Stop()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		meas.sample(time.Now())
	}
}

// BenchmarkStartStop measures the fixed cost a measurement adds to an activity.
func BenchmarkStartStop(b *testing.B) {
	m, err := NewMeter(Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m.Start(context.Background(), "bench").Stop()
	}
}
