package lora

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/loraflow/loraflow/internal/procfs"
	"github.com/loraflow/loraflow/lora/internal/lowp"
	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/lora/safetensors"
)

// saveAs writes m as a checkpoint folder whose 2-D tensors are of dtype dt
// (the others F32), as real BF16/F16 checkpoints store them.
func saveAs(t testing.TB, m *Model, dir string, dt safetensors.DType) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, name := range m.TensorNames() {
		v, shape, _ := m.Tensor(name)
		d := safetensors.F32
		if len(shape) == 2 {
			d = dt
		}
		b, err := safetensors.EncodeFloat32(d, v)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, safetensors.Tensor{Name: name, DType: d, Shape: shape, Data: b})
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := m.cfg.MarshalHF()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
}

func loadWith(t testing.TB, dir string, o LoadOptions) *Model {
	t.Helper()
	m, err := LoadModelWith(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A BF16 or F16 checkpoint keeps its 2-D weights at 2 bytes a value, and
// in fp32 precision the model computes exactly what the widened float32
// weights compute: the loss, the trained adapter.
func TestHalfCheckpointStaysHalf(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ModelConfig
		dt   safetensors.DType
	}{
		{"llama-bf16", tinyLlamaConfig(), safetensors.BF16},
		{"llama-f16", tinyLlamaConfig(), safetensors.F16},
		{"gpt2-bf16", tinyGPT2Config(), safetensors.BF16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := newTiny(t, tc.cfg, 3)
			half, wide := filepath.Join(t.TempDir(), "half"), filepath.Join(t.TempDir(), "wide")
			saveAs(t, base, half, tc.dt)
			m := loadWith(t, half, LoadOptions{})
			// the same values, widened: an F32 checkpoint of the 16-bit model
			saveAs(t, m, wide, safetensors.F32)
			w := loadWith(t, wide, LoadOptions{})

			var want, lows int
			for _, name := range m.TensorNames() {
				_, shape, _ := m.Tensor(name)
				n := 1
				for _, d := range shape {
					n *= d
				}
				if len(shape) == 2 && name != "transformer.wpe.weight" {
					want += 2 * n
					lows++
				} else {
					want += 4 * n
				}
			}
			if got := m.WeightBytes(); got != want {
				t.Errorf("WeightBytes = %d, want %d (2-D weights at 2 bytes)", got, want)
			}
			if got := m.WeightDTypes()[string(tc.dt)]; got != lows {
				t.Errorf("%d weights kept as %s, want %d (%v)", got, tc.dt, lows, m.WeightDTypes())
			}
			if w.WeightDTypes()["F32"] != len(w.TensorNames()) {
				t.Errorf("F32 checkpoint: %v", w.WeightDTypes())
			}

			data := patternData(tc.cfg.VocabSize, 16, 12, 5)
			ctx := context.Background()
			pc := llamaLoRAConfig("q_proj", "v_proj", "down_proj")
			if tc.cfg.isGPT2() {
				pc = llamaLoRAConfig("c_attn", "c_fc")
			}
			tcfg := TrainConfig{Steps: 3, BatchSize: 4, LearningRate: 1e-2, Seed: 7}
			a1, r1, err := Train(ctx, m, pc, tcfg, data, nil)
			if err != nil {
				t.Fatal(err)
			}
			a2, r2, err := Train(ctx, w, pc, tcfg, data, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range r1.Losses {
				if d := math.Abs(r1.Losses[i] - r2.Losses[i]); d > 1e-6*math.Abs(r2.Losses[i]) {
					t.Errorf("step %d loss %v (16-bit) vs %v (widened)", i+1, r1.Losses[i], r2.Losses[i])
				}
			}
			for k, v := range a2.Tensors {
				g := a1.Tensors[k]
				for i := range v {
					if d := math.Abs(float64(g[i] - v[i])); d > 1e-5*(1+math.Abs(float64(v[i]))) {
						t.Fatalf("%s[%d] = %v (16-bit), %v (widened)", k, i, g[i], v[i])
					}
				}
			}
			if m.WeightBytes() != want {
				t.Errorf("training changed the base model's storage: %d bytes", m.WeightBytes())
			}
			e1, err := Evaluate(ctx, m, a1, data, 4)
			if err != nil {
				t.Fatal(err)
			}
			e2, err := Evaluate(ctx, w, a2, data, 4)
			if err != nil {
				t.Fatal(err)
			}
			if d := math.Abs(e1.Loss - e2.Loss); d > 1e-6*e2.Loss {
				t.Errorf("eval loss %v (16-bit) vs %v (widened)", e1.Loss, e2.Loss)
			}
		})
	}
}

// Full fine-tuning of a 16-bit checkpoint trains float32 weights (widened
// once), and the model then holds the trained values.
func TestHalfCheckpointFullFineTune(t *testing.T) {
	dir := t.TempDir()
	saveAs(t, newTiny(t, tinyLlamaConfig(), 3), dir, safetensors.BF16)
	m := loadWith(t, dir, LoadOptions{})
	before, _, _ := m.Tensor("model.layers.0.mlp.up_proj.weight")
	_, res, err := Train(context.Background(), m, peft.Config{}, TrainConfig{Steps: 2, BatchSize: 4, LearningRate: 1e-2, FullFineTune: true},
		patternData(32, 8, 12, 5), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 2 || m.WeightDTypes()["BF16"] != 0 {
		t.Fatalf("steps %d, storage %v: want 2 steps and every weight float32", res.Steps, m.WeightDTypes())
	}
	after, _, _ := m.Tensor("model.layers.0.mlp.up_proj.weight")
	same := true
	for i := range after {
		same = same && after[i] == before[i]
	}
	if same {
		t.Error("full fine-tuning left the model's up_proj unchanged")
	}
}

// The memory a BF16 checkpoint takes once loaded is its 2-byte weights: the
// peak resident set during LoadModel grows by about the file's size, not
// the 2× of float32 copies (nor 3× with the mapped file on top).
func TestBF16BaseNeverWidened(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 64 MB checkpoint")
	}
	cfg := ModelConfig{ModelType: "llama", VocabSize: 8192, Hidden: 1024, Layers: 2, Heads: 8, KVHeads: 8,
		Intermediate: 2816, MaxPositions: 64, RopeTheta: 10000, NormEps: 1e-5, BosTokenID: -1, EosTokenID: -1}
	dir := t.TempDir()
	{
		m := newTiny(t, cfg, 1)
		saveAs(t, m, dir, safetensors.BF16)
	}
	debug.FreeOSMemory() // the heap pages of the model written are handed back
	st, err := os.Stat(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if err := procfs.ResetPeakRSS(); err != nil {
		t.Skipf("cannot reset the peak RSS here: %v", err)
	}
	rss0, err := procfs.RSS()
	if err != nil {
		t.Skip(err)
	}
	m := loadWith(t, dir, LoadOptions{})
	peak, err := procfs.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	wb := int64(m.WeightBytes())
	if wb > st.Size() {
		t.Errorf("weights hold %d bytes, more than the %d-byte BF16 file", wb, st.Size())
	}
	t.Logf("peak grew %d for %d-byte file", peak-rss0, st.Size())
	if grew := peak - rss0; float64(grew) > 1.4*float64(st.Size()) {
		t.Errorf("peak RSS grew by %d bytes loading a %d-byte BF16 checkpoint (> 1.4×): weights widened or the mapping kept", grew, st.Size())
	}
	runtime.KeepAlive(m)
}

// In bf16 precision an F32 checkpoint's frozen weights are rounded to BF16
// (2 bytes each) and the products run on the BF16 kernel (here forced to
// lowp's Go path, which does the kernel's arithmetic): the loss stays
// within 1% of the fp32 run, and the run repeats bit for bit.
func TestBF16Precision(t *testing.T) {
	if err := lowp.Force(lowp.PathGo); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lowp.Force("") })
	dir := t.TempDir()
	saveAs(t, pretrainedTiny(t, tinyLlamaConfig()), dir, safetensors.F32)
	fp := loadWith(t, dir, LoadOptions{})
	bm := loadWith(t, dir, LoadOptions{Precision: PrecisionBF16})
	if bm.WeightDTypes()["BF16"] == 0 || bm.WeightBytes() >= fp.WeightBytes()*6/10 {
		t.Fatalf("bf16 storage %v, %d bytes (fp32 %d)", bm.WeightDTypes(), bm.WeightBytes(), fp.WeightBytes())
	}
	if _, err := LoadModelWith(dir, LoadOptions{Precision: "fp8"}); err == nil {
		t.Error("precision fp8 accepted")
	}
	data := shiftedData(32, 32, 16, 3)
	ctx := context.Background()
	pc := llamaLoRAConfig("q_proj", "v_proj", "up_proj", "down_proj")
	tcfg := TrainConfig{Steps: 6, BatchSize: 8, LearningRate: 1e-2, Seed: 2}
	a1, _, err := Train(ctx, fp, pc, tcfg, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	a2, _, err := Train(ctx, bm, pc, tcfg, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	a3, _, err := Train(ctx, bm, pc, tcfg, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range a2.Tensors {
		for i := range v {
			if math.Float32bits(v[i]) != math.Float32bits(a3.Tensors[k][i]) {
				t.Fatalf("bf16 runs differ at %s[%d]", k, i)
			}
		}
	}
	e1, err := Evaluate(ctx, fp, a1, data, 8)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := Evaluate(ctx, bm, a2, data, 8)
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(e2.Loss-e1.Loss) / e1.Loss; d > 0.01 {
		t.Errorf("held-out loss bf16 %v vs fp32 %v (%.2f%%)", e2.Loss, e1.Loss, 100*d)
	}
	t.Logf("loss fp32 %.5f bf16 %.5f", e1.Loss, e2.Loss)
}

// lowMul against the dense product of the decoded weight, with tiles small
// enough that both products run over many tiles (rows of W for x·Wᵀ,
// blocks of K for x·W), for float32 and float64 and beta 0 and 1.
func TestLowMulTiles(t *testing.T) {
	defer func(v int) { lowTileElems = v }(lowTileElems)
	lowTileElems = 16 * 24
	rng := rand.New(rand.NewPCG(4, 4))
	const R, C, n = 150, 24, 7
	v := make([]float32, R*C)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	w := newBF16Weight(v, C)
	w.native = false
	p32 := &param[float32]{name: "w", shape: []int{R, C}, lp: w}
	p64 := &param[float64]{name: "w", shape: []int{R, C}, lp: w}
	dense := p32.values()
	for _, nt := range []bool{true, false} {
		k, out := R, C
		if nt {
			k, out = C, R
		}
		x := make([]float32, n*k)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		for _, beta := range []float32{0, 1} {
			y0 := make([]float32, n*out)
			for i := range y0 {
				y0[i] = float32(rng.NormFloat64())
			}
			want := append([]float32(nil), y0...)
			gemm(false, nt, n, out, k, 1, x, k, dense, C, beta, want, out)
			got := append([]float32(nil), y0...)
			lowMul(p32, nt, n, x, k, beta, got, out)
			got64 := fromFloat32[float64](y0)
			lowMul(p64, nt, n, fromFloat32[float64](x), k, float64(beta), got64, out)
			for i := range want {
				if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("nt=%v beta=%v: float32 y[%d] = %v, want %v", nt, beta, i, got[i], want[i])
				}
				if d := math.Abs(got64[i] - float64(want[i])); d > 1e-4*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("nt=%v beta=%v: float64 y[%d] = %v, want %v", nt, beta, i, got64[i], want[i])
				}
			}
		}
	}
}
