package lora

import (
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/loraflow/loraflow/lora/internal/sgemm"
)

// The OpenBLAS implementations, set by blas_openblas.go when the binary is
// built with -tags openblas (and cgo); nil otherwise.
var (
	openblas32 blas.Float32
	openblas64 blas.Float64
)

// setBLASThreads sets OpenBLAS's thread count and returns the previous one
// (nil without OpenBLAS).
var setBLASThreads func(n int) int

// With OpenBLAS the engine keeps OpenBLAS single-threaded and splits large
// products into blocks for its GOMAXPROCS goroutines itself (splitGEMM): OpenBLAS's own
// threads spin (sched_yield) for a while after each call, taking the CPU from
// the engine's element-wise work in between, and concurrent callers of a
// multi-threaded OpenBLAS wait on each other.

// splitMinFLOPs is the size (m·n·k) from which gemm splits a product.
const splitMinFLOPs = 1 << 20

// noSplit > 0 while goroutines call gemm concurrently (concurrentGEMMs).
var noSplit atomic.Int32

// concurrentGEMMs runs fn, whose goroutines call gemm concurrently (one
// small product each, as attention does per head); gemm then does not split
// products further.
func concurrentGEMMs(fn func()) {
	noSplit.Add(1)
	defer noSplit.Add(-1)
	fn()
}

// splitParts is the number of blocks a large product is split into: the
// machine's CPU count (2 to 16), not GOMAXPROCS, so that results do not
// depend on GOMAXPROCS: each block is the same OpenBLAS call whichever
// goroutine makes it. (More blocks than cores would pack the shared operand
// once per block for nothing.)
var splitParts = min(max(runtime.NumCPU(), 2), 16)

// splitGEMM reports whether gemm should split an m×n×k product into blocks
// of C for goroutines, into how many, and along m (true) or n (false).
// The answer depends only on the shape and the backend.
func splitGEMM(m, n, k int) (parts int, alongM bool) {
	if blasBackend == "gonum" || noSplit.Load() > 0 || m*n*k < splitMinFLOPs {
		return 1, false
	}
	size := max(m, n)
	parts = min(splitParts, size/16)
	if parts < 2 {
		return 1, false
	}
	return parts, m >= n
}

// The backends:
//   - "openblas": OpenBLAS through cgo, in a binary built with -tags openblas
//     (narrow products on internal/sgemm, see narrowMax);
//   - "go": pure Go, gonum's BLAS with its sgemm replaced by internal/sgemm's
//     AVX-512 or AVX2/FMA assembly kernel (amd64 CPUs that have them);
//   - "gonum": gonum's pure-Go BLAS alone (its sgemm parallelises itself).
// The engine starts on the one that measured fastest on the CPU's family
// (blas_default.go), not on OpenBLAS merely because it is built in.
// With OpenBLAS and "go" the engine keeps each BLAS call on one core and
// splits large products itself (splitGEMM).

// narrowMax is the smallest dimension up to which the openblas backend
// hands a product to internal/sgemm instead: the LoRA branches' rank-r
// products and attention's per-head ones, where OpenBLAS pays a full
// packing pass (or a cgo call) for little arithmetic and the Go kernel,
// which reads a narrow A in place, measured 1.2–2× faster in the engine
// (llama30m and gpt2s, one step each); larger products stay on OpenBLAS.
const narrowMax = 64

// sgemmFor returns the float32 BLAS that runs an m×n×k product.
func sgemmFor(m, n, k int) blas.Float32 {
	if blasBackend == "openblas" && sgemm.Accelerated() && min(m, n, k) <= narrowMax {
		return sgemm.Implementation{}
	}
	return blas32.Implementation()
}

// BLASBackends lists the backends this binary can run on, the default
// (the one the engine started on, see defaultBackend) first.
func BLASBackends() []string {
	bs := builtBackends()
	if i := slices.Index(bs, startBackend); i > 0 {
		bs = append([]string{startBackend}, slices.Delete(bs, i, i+1)...)
	}
	return bs
}

// builtBackends lists the backends of this binary, fastest in general
// first.
func builtBackends() []string {
	var bs []string
	if openblas32 != nil {
		bs = append(bs, "openblas")
	}
	if sgemm.Accelerated() {
		bs = append(bs, "go")
	}
	return append(bs, "gonum")
}

// startBackend is the backend init chose.
var startBackend string

// UseBLAS switches the engine's matrix products to the named backend (see
// BLASBackends). It is meant for benchmarks and tests that compare them;
// call it before training, not during.
func UseBLAS(name string) error {
	switch name {
	case "gonum":
		blas32.Use(gonum.Implementation{})
		blas64.Use(gonum.Implementation{})
	case "go":
		if !sgemm.Accelerated() {
			return fmt.Errorf("lora: BLAS backend %q: this CPU has no AVX2 and FMA (or is not amd64); use gonum", name)
		}
		blas32.Use(sgemm.Implementation{})
		blas64.Use(gonum.Implementation{})
	case "openblas":
		if openblas32 == nil {
			return fmt.Errorf("lora: BLAS backend %q: this binary was built without -tags openblas (and cgo)", name)
		}
		blas32.Use(openblas32)
		blas64.Use(openblas64)
	default:
		return fmt.Errorf("lora: unknown BLAS backend %q (want openblas, go or gonum)", name)
	}
	blasBackend = name
	return nil
}

// init picks the default backend (defaultBackend). blas_openblas.go
// registers OpenBLAS during package variable initialisation, which Go runs
// before any init function, so every backend of the binary is known here.
func init() {
	useDefaultBackend()
	startBackend = blasBackend
}
