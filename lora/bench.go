package lora

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

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

// Workload is a training benchmark: a model shape, a batch and a LoRA setup.
type Workload struct {
	Name          string
	Model         ModelConfig
	Batch, SeqLen int
	Rank          int
	Alpha         float64
	Targets       []string
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
}

// RunBenchmark trains w for steps optimizer steps on random tokens with a
// random-weight model and reports its throughput.
func RunBenchmark(ctx context.Context, w Workload, steps int, fullFineTune, gradientCheckpointing bool) (BenchResult, error) {
	base, _ := procStatusBytes("VmRSS:")
	m, err := NewModel(w.Model, 1)
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
		PeakRSSBytes: rss, BaseRSSBytes: base, BLAS: BLASBackend()}, nil
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
func PeakRSS() (int64, error) { return procStatusBytes("VmHWM:") }

// procStatusBytes reads a kB field of /proc/self/status.
func procStatusBytes(field string) (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("lora: %s: %w", field, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("lora: /proc/self/status %s: %w", field, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("lora: no %s in /proc/self/status", field)
}
