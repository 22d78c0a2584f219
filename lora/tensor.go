package lora

import (
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

var blasBackend = "gonum"

// BLASBackend names the BLAS the engine's matrix products run on:
// "openblas", "go" or "gonum" (see BLASBackends).
func BLASBackend() string { return blasBackend }

// float is the element type of the numerics: float32 for models, float64 for
// the gradient checks.
type float interface{ float32 | float64 }

func trans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// gemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, with
// op(A) m×k and op(B) k×n, through blas32 or blas64. Large products on
// OpenBLAS are split into row or column blocks of C across goroutines
// (splitGEMM); each element of C is computed as without the split.
func gemm[T float](tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	parts, alongM := splitGEMM(m, n, k)
	if parts == 1 {
		gemm1(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	size := m
	if !alongM {
		size = n
	}
	grain := (size + parts - 1) / parts
	grain = (grain + 15) / 16 * 16
	parallelFor(size, grain, func(lo, hi int) {
		if alongM {
			ao := lo * lda // row lo of op(A)
			if tA {
				ao = lo
			}
			gemm1(tA, tB, hi-lo, n, k, alpha, a[ao:], lda, b, ldb, beta, c[lo*ldc:], ldc)
			return
		}
		bo := lo // column lo of op(B)
		if tB {
			bo = lo * ldb
		}
		gemm1(tA, tB, m, hi-lo, k, alpha, a, lda, b[bo:], ldb, beta, c[lo:], ldc)
	})
}

func gemm1[T float](tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	switch av := any(a).(type) {
	case []float32:
		sgemmFor(m, n, k).Sgemm(trans(tA), trans(tB), m, n, k, float32(alpha), av, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		blas64.Implementation().Dgemm(trans(tA), trans(tB), m, n, k, float64(alpha), av, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}

// parallelFor runs fn over [0,n) in chunks of at least grain items on up to
// GOMAXPROCS goroutines. Chunk boundaries depend only on n and grain, so
// per-chunk reductions are deterministic whatever the thread count.
func parallelFor(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	chunks := (n + grain - 1) / grain
	workers := runtime.GOMAXPROCS(0)
	if chunks == 1 || workers == 1 {
		for c := 0; c < chunks; c++ {
			lo := c * grain
			fn(lo, min(n, lo+grain))
		}
		return
	}
	if workers > chunks {
		workers = chunks
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				c := next
				next++
				mu.Unlock()
				if c >= chunks {
					return
				}
				lo := c * grain
				fn(lo, min(n, lo+grain))
			}
		}()
	}
	wg.Wait()
}

// param is one named tensor of the network. w holds the values; g is the
// gradient buffer, nil for frozen tensors.
type param[T float] struct {
	name  string // Hugging Face name, e.g. "model.layers.0.mlp.up_proj.weight"
	shape []int
	w     []T
	g     []T
	lp    lowWeight // a frozen weight kept in fewer bits (w is nil then); see frozen.go
}

func (p *param[T]) size() int {
	if p.lp == nil {
		return len(p.w)
	}
	n := 1
	for _, d := range p.shape {
		n *= d
	}
	return n
}

func newParam[T float](name string, shape []int) *param[T] {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return &param[T]{name: name, shape: append([]int(nil), shape...), w: make([]T, n)}
}

func grow[T float](buf []T, n int) []T {
	if cap(buf) < n {
		return make([]T, n)
	}
	return buf[:n]
}

func zero[T float](x []T) {
	for i := range x {
		x[i] = 0
	}
}

func toFloat32[T float](x []T) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

func fromFloat32[T float](x []float32) []T {
	out := make([]T, len(x))
	for i, v := range x {
		out[i] = T(v)
	}
	return out
}

// bufPool lends reusable buffers to concurrent workers.
type bufPool[T float] struct {
	mu   sync.Mutex
	free [][]T
}

func (p *bufPool[T]) get(n int) []T {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.free) - 1; i >= 0; i-- {
		if cap(p.free[i]) >= n {
			b := p.free[i][:n]
			p.free = append(p.free[:i], p.free[i+1:]...)
			return b
		}
	}
	return make([]T, n)
}

func (p *bufPool[T]) put(b []T) {
	p.mu.Lock()
	p.free = append(p.free, b)
	p.mu.Unlock()
}

var (
	scratch32 bufPool[float32]
	scratch64 bufPool[float64]
)

// scratchPool is the process-wide pool of temporary buffers for T, for the
// helpers that have no workspace of their own.
func scratchPool[T float]() *bufPool[T] {
	var z T
	if _, ok := any(z).(float32); ok {
		return any(&scratch32).(*bufPool[T])
	}
	return any(&scratch64).(*bufPool[T])
}
