package fmapeak

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

// Loop names.
const (
	FP32AVX2   = "fp32-avx2"
	FP32AVX512 = "fp32-avx512"
	BF16AVX512 = "bf16-avx512"
)

// loop is one of the register-only loops.
type loop struct {
	name  string
	flops int // per iteration
	has   bool
	run   func(n int)
}

func loops() []loop {
	return []loop{
		{FP32AVX2, 12 * 16, hasYMM, fmaYMM},
		{FP32AVX512, 16 * 32, hasZMM, fmaZMM},
		{BF16AVX512, 12 * 64, hasBF16, dpbf16ZMM},
	}
}

// Available lists the loops this CPU runs.
func Available() []string {
	var names []string
	for _, l := range loops() {
		if l.has {
			names = append(names, l.name)
		}
	}
	return names
}

// Result is one loop's measured rate.
type Result struct {
	Loop    string  `json:"loop"`
	Threads int     `json:"threads"`
	GFLOPs  float64 `json:"gflops"`          // all threads together
	PerCore float64 `json:"gflops_per_core"` // GFLOPs ÷ threads
}

// Measure runs the named loop on threads goroutines at once, each locked
// to its own OS thread, for about d, and returns the aggregate rate (the
// best of a few repetitions of a fixed amount of work per thread, so that
// a moment of other load on a shared machine does not count).
func Measure(name string, threads int, d time.Duration) (Result, error) {
	var l loop
	for _, c := range loops() {
		if c.name == name {
			l = c
		}
	}
	if l.run == nil {
		return Result{}, fmt.Errorf("fmapeak: unknown loop %q (want %s, %s or %s)", name, FP32AVX2, FP32AVX512, BF16AVX512)
	}
	if !l.has {
		return Result{}, fmt.Errorf("fmapeak: loop %q: this CPU (or OS) does not run its instructions", name)
	}
	threads = max(1, threads)
	// Calibrate: iterations for about 10 ms on one thread.
	iters := 1 << 12
	for {
		t := time.Now()
		l.run(iters)
		if el := time.Since(t); el > 2*time.Millisecond || iters > 1<<30 {
			iters = max(1, int(float64(iters)*float64(10*time.Millisecond)/float64(el)))
			break
		}
		iters *= 4
	}
	best := 0.0
	deadline := time.Now().Add(d)
	for rep := 0; rep < 3 || time.Now().Before(deadline); rep++ {
		var wg sync.WaitGroup
		start := make(chan struct{})
		elapsed := make([]time.Duration, threads)
		for i := range threads {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				<-start
				t := time.Now()
				l.run(iters)
				elapsed[i] = time.Since(t)
			}()
		}
		close(start)
		wg.Wait()
		// The rate of the slowest thread times threads: all threads did the
		// same work, and the machine finished it when the last one did.
		slowest := time.Duration(0)
		for _, e := range elapsed {
			slowest = max(slowest, e)
		}
		if g := float64(threads) * float64(iters) * float64(l.flops) / slowest.Seconds() / 1e9; g > best {
			best = g
		}
	}
	return Result{Loop: name, Threads: threads, GFLOPs: best, PerCore: best / float64(threads)}, nil
}

// MeasureAll measures every loop the CPU runs on threads goroutines, about
// d each.
func MeasureAll(threads int, d time.Duration) []Result {
	var rs []Result
	for _, name := range Available() {
		if r, err := Measure(name, threads, d); err == nil {
			rs = append(rs, r)
		}
	}
	return rs
}
