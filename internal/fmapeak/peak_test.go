package fmapeak

import (
	"slices"
	"testing"
	"time"
)

// TestMeasure: every loop the CPU has runs and reports a positive rate
// whose per-core figure is the aggregate over the threads; unknown loops
// and loops the CPU lacks are refused.
func TestMeasure(t *testing.T) {
	for _, name := range Available() {
		r, err := Measure(name, 2, 20*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if r.GFLOPs <= 0 || r.Threads != 2 || r.PerCore != r.GFLOPs/2 {
			t.Fatalf("%s: %+v", name, r)
		}
	}
	if _, err := Measure("fp64-avx9", 1, 0); err == nil {
		t.Fatal("unknown loop accepted")
	}
	for _, name := range []string{FP32AVX2, FP32AVX512, BF16AVX512} {
		if !slices.Contains(Available(), name) {
			if _, err := Measure(name, 1, 0); err == nil {
				t.Fatalf("%s accepted on a CPU without it", name)
			}
		}
	}
}

// BenchmarkPeak reports each loop's rate on one core and on GOMAXPROCS.
func BenchmarkPeak(b *testing.B) {
	for _, name := range Available() {
		b.Run(name, func(b *testing.B) {
			var r Result
			for b.Loop() {
				r, _ = Measure(name, 1, 50*time.Millisecond)
			}
			b.ReportMetric(r.GFLOPs, "GFLOP/s")
		})
	}
}
