package lora

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/loraflow/loraflow/internal/procfs"
	"github.com/loraflow/loraflow/lora/peft"
)

func benchData(vocab, n, length int) []Sequence {
	rng := rand.New(rand.NewPCG(1, 1))
	var out []Sequence
	for i := 0; i < n; i++ {
		toks := make([]int, length)
		for j := range toks {
			toks[j] = rng.IntN(vocab)
		}
		out = append(out, Sequence{Tokens: toks})
	}
	return out
}

// BenchmarkTrainStepLlama30M times LoRA training steps (batch 8 × 256, r 16
// on q,k,v,o,gate,up,down) and reports tokens/s.
func BenchmarkTrainStepLlama30M(b *testing.B) { benchLlama30M(b, false, false) }

// BenchmarkTrainStepLlama30MCheckpointed is the same with gradient checkpointing.
func BenchmarkTrainStepLlama30MCheckpointed(b *testing.B) { benchLlama30M(b, false, true) }

// BenchmarkFullFineTuneStepLlama30M is the same workload as full
// fine-tuning, for the memory comparison.
func BenchmarkFullFineTuneStepLlama30M(b *testing.B) { benchLlama30M(b, true, false) }

// BenchmarkFullFineTuneStepLlama30MCheckpointed is full fine-tuning with gradient checkpointing.
func BenchmarkFullFineTuneStepLlama30MCheckpointed(b *testing.B) { benchLlama30M(b, true, true) }

func benchLlama30M(b *testing.B, full, ckpt bool) {
	m, err := NewModel(Llama30M.Model, 1)
	if err != nil {
		b.Fatal(err)
	}
	pc := peft.DefaultConfig("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
	pc.R, pc.LoraAlpha = 16, 32
	data := benchData(Llama30M.Model.VocabSize, 8*(b.N+1), 256)
	b.ResetTimer()
	_, res, err := Train(context.Background(), m, pc, TrainConfig{Steps: b.N, BatchSize: 8, SeqLen: 256, FullFineTune: full, GradientCheckpointing: ckpt}, data, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.TokensPerSec, "tokens/s")
	b.ReportMetric(m.StepFLOPs(pc, 8, 256, full)*res.TokensPerSec/2048/1e9, "GFLOP/s")
	b.Logf("BLAS backend: %s", BLASBackend())
}

// BenchmarkTrainStepSmall is a quick profile target: llama30m shapes with 2 layers, batch 2 × 256.
func BenchmarkTrainStepSmall(b *testing.B) {
	cfg := Llama30M.Model
	cfg.Layers = 2
	m, err := NewModel(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	pc := peft.DefaultConfig("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
	pc.R, pc.LoraAlpha = 16, 32
	data := benchData(cfg.VocabSize, 2*(b.N+1), 256)
	b.ResetTimer()
	_, res, err := Train(context.Background(), m, pc, TrainConfig{Steps: b.N, BatchSize: 2, SeqLen: 256}, data, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.TokensPerSec, "tokens/s")
}

// BenchmarkSgemm measures the float32 GEMM the engine runs on (2048×512 by
// 512×1408, a llama30m MLP product) in GFLOP/s.
func BenchmarkSgemm(b *testing.B) {
	m, k, n := 2048, 512, 1408
	a, w, c := make([]float32, m*k), make([]float32, n*k), make([]float32, m*n)
	for i := range a {
		a[i] = float32(i%7) * 0.1
	}
	for i := range w {
		w[i] = float32(i%5) * 0.1
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		gemm(false, true, m, n, k, 1, a, k, w, k, 0, c, n)
	}
	b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	b.Logf("BLAS backend: %s", BLASBackend())
}

func TestStepFLOPs(t *testing.T) {
	m, err := NewModel(Llama30M.Model, 1)
	if err != nil {
		t.Fatal(err)
	}
	pc := peft.DefaultConfig("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
	pc.R = 16
	lora := m.StepFLOPs(pc, 8, 256, false)
	full := m.StepFLOPs(pc, 8, 256, true)
	// docs/architecture.md, Performance reference: about 4 × matmul parameters × tokens plus attention for LoRA.
	params := 8*(4*512*512+3*512*1408) + 8192*512
	base := 4 * float64(params) * 2048
	if lora < base || lora > 1.2*base || full < 1.45*base {
		t.Fatalf("LoRA %.3g, full %.3g FLOPs; 4·P·T = %.3g", lora, full, base)
	}
	t.Logf("llama30m step: LoRA %.1f GFLOP, full %.1f GFLOP", lora/1e9, full/1e9)
	// Block 0's q, k, v input gradients are not computed (the embeddings
	// and its norm are frozen) unless its norm trains.
	pcNorm := pc
	pcNorm.ModulesToSave = []string{"input_layernorm"}
	skipped := 3 * (2*512*512 + 2*16*512) * 2048.0
	if got := m.StepFLOPs(pcNorm, 8, 256, false) - lora; got != skipped {
		t.Fatalf("a trainable input norm adds %.4g FLOPs, want block 0's q, k, v input gradients %.4g", got, skipped)
	}
}

// BenchmarkTrainStepGPT2Small times LoRA steps on GPT-2 small shapes (batch
// 4 × 256, r 8, alpha 16 on c_attn).
func BenchmarkTrainStepGPT2Small(b *testing.B) {
	m, err := NewModel(GPT2Small.Model, 1)
	if err != nil {
		b.Fatal(err)
	}
	pc := peft.DefaultConfig("c_attn")
	pc.R, pc.LoraAlpha = 8, 16
	data := benchData(GPT2Small.Model.VocabSize, 4*(b.N+1), 256)
	b.ResetTimer()
	_, res, err := Train(context.Background(), m, pc, TrainConfig{Steps: b.N, BatchSize: 4, SeqLen: 256}, data, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.TokensPerSec, "tokens/s")
	b.ReportMetric(m.StepFLOPs(pc, 4, 256, false)*res.TokensPerSec/1024/1e9, "GFLOP/s")
	b.Logf("BLAS backend: %s", BLASBackend())
}

func TestRunBenchmarkTiny(t *testing.T) {
	w := Workload{Name: "tiny", Model: tinyLlamaConfig(), Batch: 2, SeqLen: 16, Rank: 2, Alpha: 4, Targets: []string{"q_proj"}}
	r, err := RunBenchmark(context.Background(), w, 2, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if r.TokensPerSec <= 0 || r.GFLOPs <= 0 || r.PeakRSSBytes <= 0 || r.BLAS == "" {
		t.Fatalf("%+v", r)
	}
	if g := SgemmGFLOPs(64, 64, 64, 2); g <= 0 {
		t.Fatalf("sgemm %v", g)
	}
}

// TestWeightBytesMatchesModel: the memory check's float32 weight size,
// counted from the config alone, is the size of the model NewModel makes
// (untied and tied heads, grouped key-value heads, attention biases), and
// the real-scale shapes give their published parameter counts.
func TestWeightBytesMatchesModel(t *testing.T) {
	tied := benchTinyLlama(true)
	tied.AttentionBias = true
	for _, c := range []ModelConfig{Llama30M.Model, benchTinyLlama(false), tied} {
		m, err := NewModel(c, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := weightBytes(c), int64(4*m.NumParams()); got != want {
			t.Fatalf("%+v: weightBytes %d, model %d", c, got, want)
		}
	}
	// Published sizes: Llama-3.2-1B 1.236e9 parameters, Qwen2.5-0.5B
	// 0.494e9 (this shape has o_proj's bias too), Llama-3-8B 8.03e9.
	for _, tc := range []struct {
		w      Workload
		params float64
	}{{Llama1B, 1.236e9}, {Qwen05B, 0.494e9}, {Llama8B, 8.03e9}} {
		if got := float64(weightBytes(tc.w.Model)) / 4; math.Abs(got/tc.params-1) > 0.005 {
			t.Fatalf("%s: %.4g parameters, want %.4g", tc.w.Name, got, tc.params)
		}
	}
}

func benchTinyLlama(tied bool) ModelConfig {
	return ModelConfig{ModelType: "llama", VocabSize: 64, Hidden: 32, Layers: 2, Heads: 4, KVHeads: 2,
		Intermediate: 48, MaxPositions: 16, RopeTheta: 10000, TieWordEmbeddings: tied, BosTokenID: -1, EosTokenID: -1}
}

// TestLlama8BRefusedWhereItDoesNotFit: with less memory available than its
// float32 weights, the 8B shape is refused before anything is allocated,
// with the sizes named.
func TestLlama8BRefusedWhereItDoesNotFit(t *testing.T) {
	kb, err := procfs.KBField("/proc/meminfo", "MemAvailable:")
	if err != nil || kb*1024 >= float64(weightBytes(Llama8B.Model)) {
		t.Skip("this machine has the memory for the 8B shape's float32 weights (or no /proc/meminfo)")
	}
	_, err = RunBenchmark(context.Background(), Llama8B, 1, false, false)
	if err == nil || !strings.Contains(err.Error(), "llama8b") || !strings.Contains(err.Error(), "GiB") {
		t.Fatalf("RunBenchmark(llama8b): %v", err)
	}
	if rss, _ := procfs.PeakRSS(); rss > 4<<30 {
		t.Fatalf("peak RSS %d after the refusal", rss)
	}
}

// TestNewModelWithBF16: the BF16 random model holds every 2-D weight in 16
// bits (half the resident bytes of those tensors) with NewModel's values
// rounded to BF16, and trains.
func TestNewModelWithBF16(t *testing.T) {
	c := benchTinyLlama(false)
	m32, err := NewModel(c, 3)
	if err != nil {
		t.Fatal(err)
	}
	m16, err := NewModelWith(c, 3, LoadOptions{Precision: PrecisionBF16})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m16.WeightDTypes()["BF16"], 0; got <= want {
		t.Fatalf("dtypes %v", m16.WeightDTypes())
	}
	if m16.WeightBytes() >= m32.WeightBytes()*6/10 {
		t.Fatalf("bf16 model %d bytes, fp32 %d", m16.WeightBytes(), m32.WeightBytes())
	}
	for _, name := range m32.TensorNames() {
		a, shape, _ := m32.Tensor(name)
		b, _, _ := m16.Tensor(name)
		for i := range a {
			want := a[i]
			if keepsLow(name, shape) {
				want = bf16Round(a[i])
			}
			if b[i] != want {
				t.Fatalf("%s[%d] = %v, want %v (NewModel's %v rounded)", name, i, b[i], want, a[i])
			}
		}
	}
	if _, err := NewModelWith(c, 3, LoadOptions{Precision: "fp8"}); err == nil {
		t.Fatal("precision fp8 accepted")
	}
	w := Workload{Name: "tiny", Model: c, Batch: 2, SeqLen: 8, Rank: 2, Alpha: 4, Targets: []string{"q_proj"}, Precision: PrecisionBF16}
	res, err := RunBenchmark(context.Background(), w, 1, false, false)
	if err != nil || res.Precision != PrecisionBF16 || res.WeightBytes != int64(m16.WeightBytes()) {
		t.Fatalf("RunBenchmark bf16: %+v, %v", res, err)
	}
}

func bf16Round(x float32) float32 {
	b := math.Float32bits(x)
	b += 0x7fff + (b>>16)&1
	return math.Float32frombits(b &^ 0xffff)
}
