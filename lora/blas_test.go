package lora

import (
	"context"
	"math"
	"runtime"
	"slices"
	"testing"

	"github.com/loraflow/loraflow/lora/internal/sgemm"
	"github.com/loraflow/loraflow/lora/peft"
)

// TestUseBLAS: the default backend is the first of BLASBackends, gonum is
// always there (and go on amd64 with AVX2), and an unknown or absent
// backend is refused.
func TestUseBLAS(t *testing.T) {
	bs := BLASBackends()
	if BLASBackend() != bs[0] || !slices.Contains(bs, "gonum") {
		t.Fatalf("backend %q, available %v", BLASBackend(), bs)
	}
	defer func() {
		if err := UseBLAS(bs[0]); err != nil {
			t.Fatal(err)
		}
	}()
	if err := UseBLAS("gonum"); err != nil || BLASBackend() != "gonum" {
		t.Fatalf("UseBLAS(gonum): %v, backend %q", err, BLASBackend())
	}
	if err := UseBLAS("mkl"); err == nil {
		t.Fatal("UseBLAS(mkl) accepted")
	}
	if slices.Contains(bs, "go") != sgemm.Accelerated() {
		t.Fatalf("available %v, AVX2 sgemm %v", bs, sgemm.Accelerated())
	}
	if !slices.Contains(bs, "openblas") && UseBLAS("openblas") == nil {
		t.Fatal("UseBLAS(openblas) accepted in a build without -tags openblas")
	}
}

// TestSplitGEMMMatchesWhole: the engine's split of large products into row
// or column blocks across goroutines gives the same C as one call of the
// backend (OpenBLAS, go), for every transpose combination, with beta 0 and 1.
func TestSplitGEMMMatchesWhole(t *testing.T) {
	defer func(b string) {
		if err := UseBLAS(b); err != nil {
			t.Fatal(err)
		}
	}(BLASBackend())
	for _, backend := range BLASBackends() {
		if backend == "gonum" {
			continue
		}
		if err := UseBLAS(backend); err != nil {
			t.Fatal(err)
		}
		t.Run(backend, testSplitGEMMMatchesWhole)
	}
}

func testSplitGEMMMatchesWhole(t *testing.T) {
	for _, sz := range [][3]int{{517, 45, 61}, {45, 517, 61}} {
		m, n, k := sz[0], sz[1], sz[2]
		if p, _ := splitGEMM(m, n, k); p < 2 {
			t.Fatalf("no split of %v", sz)
		}
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				lda, ldb := k+3, n+5
				if tA {
					lda = m + 3
				}
				if tB {
					ldb = k + 5
				}
				a, b := make([]float32, max(m, k)*lda), make([]float32, max(n, k)*ldb)
				for i := range a {
					a[i] = float32(math.Sin(float64(i) * 0.37))
				}
				for i := range b {
					b[i] = float32(math.Cos(float64(i) * 0.11))
				}
				for _, beta := range []float32{0, 1} {
					c1, c2 := make([]float32, m*(n+2)), make([]float32, m*(n+2))
					for i := range c1 {
						c1[i], c2[i] = float32(i%13), float32(i%13)
					}
					gemm(tA, tB, m, n, k, 0.5, a, lda, b, ldb, beta, c1, n+2)
					gemm1(tA, tB, m, n, k, 0.5, a, lda, b, ldb, beta, c2, n+2)
					// the split does not depend on the thread count: bit-identical on one thread
					c3 := make([]float32, m*(n+2))
					for i := range c3 {
						c3[i] = float32(i % 13)
					}
					old := runtime.GOMAXPROCS(1)
					gemm(tA, tB, m, n, k, 0.5, a, lda, b, ldb, beta, c3, n+2)
					runtime.GOMAXPROCS(old)
					if !slices.Equal(c1, c3) {
						t.Fatalf("%v tA=%v tB=%v beta=%v: split product differs between GOMAXPROCS %d and 1", sz, tA, tB, beta, old)
					}
					for i := range c1 {
						if d := math.Abs(float64(c1[i] - c2[i])); d > 1e-5*math.Max(1, math.Abs(float64(c2[i]))) {
							t.Fatalf("%v tA=%v tB=%v beta=%v: C[%d] split %v, whole %v", sz, tA, tB, beta, i, c1[i], c2[i])
						}
					}
				}
			}
		}
	}
}

// TestBackendsTrainAlike: a few LoRA steps of a small Llama and GPT-2 give
// the same losses (within float32 rounding) on every backend of the binary.
func TestBackendsTrainAlike(t *testing.T) {
	defer func(b string) {
		if err := UseBLAS(b); err != nil {
			t.Fatal(err)
		}
	}(BLASBackend())
	for _, cfg := range []ModelConfig{tinyLlamaConfig(), tinyGPT2Config()} {
		cfg.Hidden = 64
		if !cfg.isGPT2() {
			cfg.Heads, cfg.KVHeads = 4, 2
		}
		var ref []float64
		for _, backend := range BLASBackends() {
			if err := UseBLAS(backend); err != nil {
				t.Fatal(err)
			}
			m := newTiny(t, cfg, 5)
			pc := peft.DefaultConfig(loraTargetsOf(cfg)...)
			_, res, err := Train(context.Background(), m, pc, TrainConfig{Steps: 4, BatchSize: 2, SeqLen: 32, LearningRate: 1e-2},
				shiftedData(cfg.VocabSize, 8, 32, 3), nil)
			if err != nil {
				t.Fatal(err)
			}
			if ref == nil {
				ref = res.Losses
				continue
			}
			for i, l := range res.Losses {
				if math.Abs(l-ref[i]) > 1e-4*math.Abs(ref[i]) {
					t.Fatalf("%s on %s: step %d loss %v, on %s %v", cfg.ModelType, backend, i+1, l, BLASBackends()[0], ref[i])
				}
			}
		}
	}
}
