package lora

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/loraflow/loraflow/internal/fmapeak"
	"github.com/loraflow/loraflow/internal/procfs"
	"github.com/loraflow/loraflow/lora/internal/sgemm"
	"github.com/loraflow/loraflow/lora/peft"
)

// Reference workloads (docs/architecture.md, Performance reference; random weights).
var (
	// Llama30M: vocab 8192, hidden 512, 8 layers, 8 heads, SwiGLU 1408,
	// untied head; batch 8 × 256; LoRA r 16, alpha 32 on q,k,v,o,gate,up,down.
	Llama30M = Workload{Name: "llama30m",
		Model: ModelConfig{ModelType: "llama", VocabSize: 8192, Hidden: 512, Layers: 8, Heads: 8, KVHeads: 8,
			Intermediate: 1408, MaxPositions: 256, RopeTheta: 10000, BosTokenID: -1, EosTokenID: -1},
		Batch: 8, SeqLen: 256, Rank: 16, Alpha: 32,
		Targets: []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}}
	// GPT2Small: GPT-2 small shapes, tied head; batch 4 × 256; LoRA r 8, alpha 16 on c_attn.
	GPT2Small = Workload{Name: "gpt2s",
		Model: ModelConfig{ModelType: "gpt2", VocabSize: 50257, Hidden: 768, Layers: 12, Heads: 12,
			Intermediate: 3072, MaxPositions: 1024, BosTokenID: -1, EosTokenID: -1},
		Batch: 4, SeqLen: 256, Rank: 8, Alpha: 16, Targets: []string{"c_attn"}}
)

// Real-scale workloads: the published shapes of real checkpoints, random
// weights (never downloaded), LoRA r 16, alpha 32 on q,k,v,o, batch 1 × 256.
// Each needs several GiB: on a shared machine run one at a time.
var (
	// Llama1B: Llama-3.2-1B's config.json (hidden 2048, 16 layers, 32
	// heads, 8 key-value heads, head_dim 64, intermediate 8192, vocab
	// 128256, tied embeddings, rope_theta 500000 with llama3 scaling).
	Llama1B = Workload{Name: "llama1b",
		Model: ModelConfig{ModelType: "llama", VocabSize: 128256, Hidden: 2048, Layers: 16, Heads: 32, KVHeads: 8,
			HeadDim: 64, Intermediate: 8192, MaxPositions: 256, NormEps: 1e-5, RopeTheta: 500000,
			RopeScaling: &RopeScaling{Type: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4,
				OriginalMaxPositions: 8192},
			TieWordEmbeddings: true, BosTokenID: -1, EosTokenID: -1},
		Batch: 1, SeqLen: 256, Rank: 16, Alpha: 32, Targets: attentionTargets}
	// Qwen05B: Qwen2.5-0.5B's widths (hidden 896, 24 layers, 14 heads, 2
	// key-value heads, head_dim 64, intermediate 4864, vocab 151936, tied,
	// rope_theta 1e6) on the llama architecture with attention biases: the
	// engine has no qwen2 model type yet, and qwen2 biases q, k and v only,
	// so this shape has one more bias (o_proj's, 896 values) than Qwen's.
	Qwen05B = Workload{Name: "qwen0.5b",
		Model: ModelConfig{ModelType: "llama", VocabSize: 151936, Hidden: 896, Layers: 24, Heads: 14, KVHeads: 2,
			HeadDim: 64, Intermediate: 4864, MaxPositions: 256, NormEps: 1e-6, RopeTheta: 1e6,
			TieWordEmbeddings: true, AttentionBias: true, BosTokenID: -1, EosTokenID: -1},
		Batch: 1, SeqLen: 256, Rank: 16, Alpha: 32, Targets: attentionTargets}
	// Llama8B: Llama-3-8B's shape (hidden 4096, 32 layers, 32 heads, 8
	// key-value heads, intermediate 14336, vocab 128256, untied), for peak
	// RSS only (one step). Its float32 weights alone are 30 GiB, so it runs
	// only where they fit (RunBenchmark checks MemAvailable first); the
	// 16- and 4-bit frozen weights that make it fit in 24 GiB are the
	// precision setting's.
	Llama8B = Workload{Name: "llama8b", MemoryOnly: true,
		Model: ModelConfig{ModelType: "llama", VocabSize: 128256, Hidden: 4096, Layers: 32, Heads: 32, KVHeads: 8,
			HeadDim: 128, Intermediate: 14336, MaxPositions: 256, NormEps: 1e-5, RopeTheta: 500000,
			BosTokenID: -1, EosTokenID: -1},
		Batch: 1, SeqLen: 256, Rank: 16, Alpha: 32, Targets: attentionTargets}
)

var attentionTargets = []string{"q_proj", "k_proj", "v_proj", "o_proj"}

// weightBytes is the float32 size of c's weights, counted from the config
// before anything is allocated (llama layout; gpt2's is within a few per
// cent).
func weightBytes(c ModelConfig) int64 {
	c = c.withDefaults()
	h, q, kv, in := int64(c.Hidden), int64(c.qDim()), int64(c.kvDim()), int64(c.Intermediate)
	layer := h*q + 2*h*kv + q*h + 3*h*in + 2*h
	if c.AttentionBias {
		layer += q + 2*kv + h
	}
	if c.MLPBias {
		layer += 2*in + h
	}
	n := int64(c.VocabSize)*h + int64(c.Layers)*layer + h
	if !c.TieWordEmbeddings {
		n += int64(c.VocabSize) * h
	}
	return 4 * n
}

// Workload is a training benchmark: a model shape, a batch and a LoRA setup.
type Workload struct {
	Name          string
	Model         ModelConfig
	Batch, SeqLen int
	Rank          int
	Alpha         float64
	Targets       []string
	// MemoryOnly marks a workload run for its peak RSS: one step.
	MemoryOnly bool
	// Precision is how the frozen weights are kept: PrecisionFP32 (or
	// empty) or PrecisionBF16 (see LoadOptions); RunBenchmarkWith's
	// options take precedence.
	Precision string
}

// BenchResult is what RunBenchmark measured.
type BenchResult struct {
	Workload     string
	FullFineTune bool
	Steps        int
	Seconds      float64 // training time, model creation excluded
	TokensPerSec float64
	GFLOPs       float64 // achieved, from StepFLOPs
	StepGFLOP    float64 // FLOPs of one step, in GFLOP
	PeakRSSBytes int64   // the process's peak RSS so far (run each workload in its own process to compare)
	BaseRSSBytes int64   // the process's RSS before the model was made: the binary, its packages' state, the BLAS library
	BLAS         string
	Kernel       string // the sgemm kernel of the pure-Go products (avx512, avx2, gonum)
	Precision    string // of the frozen weights' products: fp32 or bf16
	Quantization string // of the block weights ("" none, nf4, fp4, int8)
	WeightBytes  int64  // the model's weights as held (Model.WeightBytes)
}

// RunBenchmark trains w for steps optimizer steps on random tokens with a
// random-weight model and reports its throughput.
func RunBenchmark(ctx context.Context, w Workload, steps int, fullFineTune, gradientCheckpointing bool) (BenchResult, error) {
	return RunBenchmarkWith(ctx, w, steps, fullFineTune, gradientCheckpointing, LoadOptions{})
}

// RunBenchmarkWith is RunBenchmark with the frozen weights held as o says
// (precision, quantization; see NewModelWith).
func RunBenchmarkWith(ctx context.Context, w Workload, steps int, fullFineTune, gradientCheckpointing bool, o LoadOptions) (BenchResult, error) {
	if o.Precision == "" {
		o.Precision = w.Precision
	}
	if o.Precision == "" {
		o.Precision = PrecisionFP32
	}
	base, _ := procfs.RSS()
	if w.MemoryOnly {
		steps = 1
	}
	if need := int64(float64(weightBytes(w.Model)) * o.weightScale()); need > 1<<30 {
		if kb, err := procfs.KBField("/proc/meminfo", "MemAvailable:"); err == nil && float64(need) > kb*1024 {
			return BenchResult{}, fmt.Errorf("workload %s: its %s weights need %.1f GiB and the machine has %.1f GiB available; it needs fewer bits a frozen weight to run here",
				w.Name, o.Precision, float64(need)/(1<<30), kb/(1<<20))
		}
	}
	m, err := NewModelWith(w.Model, 1, o)
	if err != nil {
		return BenchResult{}, err
	}
	pc := peft.DefaultConfig(w.Targets...)
	pc.R, pc.LoraAlpha = w.Rank, w.Alpha
	rng := rand.New(rand.NewPCG(1, 1))
	data := make([]Sequence, w.Batch*steps)
	for i := range data {
		toks := make([]int, w.SeqLen)
		for j := range toks {
			toks[j] = rng.IntN(w.Model.VocabSize)
		}
		data[i] = Sequence{Tokens: toks}
	}
	start := time.Now()
	_, res, err := Train(ctx, m, pc, TrainConfig{Steps: steps, BatchSize: w.Batch, SeqLen: w.SeqLen,
		FullFineTune: fullFineTune, GradientCheckpointing: gradientCheckpointing}, data, nil)
	if err != nil {
		return BenchResult{}, err
	}
	el := time.Since(start).Seconds()
	stepFLOPs := m.StepFLOPs(pc, w.Batch, w.SeqLen, fullFineTune)
	rss, _ := PeakRSS()
	return BenchResult{Workload: w.Name, FullFineTune: fullFineTune, Steps: steps, Seconds: el,
		TokensPerSec: res.TokensPerSec, GFLOPs: stepFLOPs * float64(steps) / el / 1e9, StepGFLOP: stepFLOPs / 1e9,
		PeakRSSBytes: rss, BaseRSSBytes: base, BLAS: BLASBackend(), Kernel: sgemm.Kernel(),
		Precision: o.Precision, Quantization: o.quantName(), WeightBytes: int64(m.WeightBytes())}, nil
}

// SgemmKernels lists the pure-Go sgemm kernels this CPU runs, fastest first
// (avx512, avx2, gonum); the go backend uses the first unless
// LORAFLOW_SGEMM or UseSgemmKernel chose another.
func SgemmKernels() []string { return sgemm.Kernels() }

// SgemmKernel returns the name of the pure-Go sgemm kernel in use.
func SgemmKernel() string { return sgemm.Kernel() }

// UseSgemmKernel switches the pure-Go sgemm kernel (benchmarks and tests
// that compare them; call it before training, not during).
func UseSgemmKernel(name string) error { return sgemm.UseKernel(name) }

// PeakResult is one register-only FMA loop's measured rate (see
// MeasurePeaks).
type PeakResult = fmapeak.Result

// MeasurePeaks measures the CPU's physical arithmetic limit on GOMAXPROCS
// threads, about d per loop: register-only loops of independent FMA chains
// for each instruction set the CPU has (fp32 AVX2, fp32 AVX-512, bf16
// VDPBF16PS), the most any kernel can reach.
func MeasurePeaks(d time.Duration) []PeakResult {
	return fmapeak.MeasureAll(runtime.GOMAXPROCS(0), d)
}

// FP32Peak returns the highest fp32 rate among rs (AVX-512 where the CPU
// has it, else AVX2), or 0.
func FP32Peak(rs []PeakResult) float64 {
	best := 0.0
	for _, r := range rs {
		if r.Loop == fmapeak.FP32AVX2 || r.Loop == fmapeak.FP32AVX512 {
			best = max(best, r.GFLOPs)
		}
	}
	return best
}

// SgemmGFLOPs measures the float32 GEMM throughput of the BLAS in use on an
// m×k by k×n product (as the engine's forward pass calls it), best of reps:
// the library's own sgemm on GOMAXPROCS threads (OpenBLAS's thread pool,
// gonum's goroutines), not the engine's split of products; for the go
// backend, whose sgemm runs on the calling goroutine, the engine's split.
func SgemmGFLOPs(m, n, k, reps int) float64 {
	if setBLASThreads != nil && blasBackend == "openblas" {
		prev := setBLASThreads(runtime.GOMAXPROCS(0))
		defer setBLASThreads(prev)
	}
	a, b, c := make([]float32, m*k), make([]float32, n*k), make([]float32, m*n)
	for i := range a {
		a[i] = float32(i%7) * 0.1
	}
	for i := range b {
		b[i] = float32(i%5) * 0.1
	}
	best := 0.0
	for r := 0; r < max(1, reps); r++ {
		t := time.Now()
		if blasBackend == "go" {
			gemm(false, true, m, n, k, 1, a, k, b, k, 0, c, n)
		} else {
			gemm1(false, true, m, n, k, 1, a, k, b, k, 0, c, n)
		}
		if g := 2 * float64(m) * float64(n) * float64(k) / time.Since(t).Seconds() / 1e9; g > best {
			best = g
		}
	}
	return best
}

// PeakRSS returns the process's peak resident set size (VmHWM, Linux).
func PeakRSS() (int64, error) { return procfs.PeakRSS() }
