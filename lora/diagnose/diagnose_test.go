package diagnose

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/lora/safetensors"
)

func TestEffectiveRank(t *testing.T) {
	sv := []float64{3, 1, 1} // energies 9, 1, 1 of 11
	if got := EffectiveRank(sv, 0.9); got != 2 {
		t.Errorf("rank90 = %d, want 2 (9/11 < 0.9 ≤ 10/11)", got)
	}
	if got := EffectiveRank(sv, 0.99); got != 3 {
		t.Errorf("rank99 = %d, want 3", got)
	}
	if got := EffectiveRank([]float64{0, 0}, 0.9); got != 0 {
		t.Errorf("zero spectrum rank = %d", got)
	}
	if got := EnergyKept(sv, 1); math.Abs(got-9.0/11) > 1e-15 {
		t.Errorf("EnergyKept = %g", got)
	}
}

// knownAdapter has one module whose ΔW = diag-like with singular values
// {3·s, 1·s}, s = alpha/r = 2.
func knownAdapter() *peft.Adapter {
	cfg := peft.DefaultConfig("q_proj")
	cfg.R, cfg.LoraAlpha = 2, 4
	m := "model.layers.0.self_attn.q_proj"
	a := &peft.Adapter{Config: cfg, Tensors: map[string][]float32{}, Shapes: map[string][]int{}}
	// A rows: e0 and (e1+e2)/√2 scaled; B columns orthogonal.
	r2 := float32(1 / math.Sqrt2)
	a.Tensors[peft.KeyA(m)], a.Shapes[peft.KeyA(m)] = []float32{1, 0, 0, 0, 0, r2, r2, 0}, []int{2, 4}
	a.Tensors[peft.KeyB(m)], a.Shapes[peft.KeyB(m)] = []float32{0, 1, 3, 0, 0, 0}, []int{3, 2}
	return a
}

func TestAnalyzeKnownSpectrum(t *testing.T) {
	dir := t.TempDir()
	w0 := make([]float32, 12)
	for i := range w0 {
		w0[i] = 2 // ‖W0‖_F = √(12·4)
	}
	data, _ := safetensors.EncodeFloat32(safetensors.BF16, w0)
	emb, _ := safetensors.EncodeFloat32(safetensors.F32, make([]float32, 40))
	path := filepath.Join(dir, "model.safetensors")
	if err := safetensors.WriteFile(path, []safetensors.Tensor{
		{Name: "model.layers.0.self_attn.q_proj.weight", DType: safetensors.BF16, Shape: []int{3, 4}, Data: data},
		{Name: "model.embed_tokens.weight", DType: safetensors.F32, Shape: []int{10, 4}, Data: emb},
	}, nil); err != nil {
		t.Fatal(err)
	}
	base, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	rep, err := Analyze(context.Background(), knownAdapter(), base)
	if err != nil {
		t.Fatal(err)
	}
	l := rep.Layers[0]
	if len(l.SingularValues) != 2 || math.Abs(l.SingularValues[0]-6) > 1e-6 || math.Abs(l.SingularValues[1]-2) > 1e-6 {
		t.Fatalf("singular values %v, want [6 2]", l.SingularValues)
	}
	if l.EffectiveRank90 != 1 || l.EffectiveRank99 != 2 || rep.SuggestedRank != 2 {
		t.Fatalf("ranks 90/99/suggested = %d/%d/%d, want 1/2/2 (36/40 = 0.9)", l.EffectiveRank90, l.EffectiveRank99, rep.SuggestedRank)
	}
	if want := math.Sqrt(40) / math.Sqrt(48); math.Abs(l.NormRatio-want) > 1e-6 {
		t.Fatalf("norm ratio %g, want %g", l.NormRatio, want)
	}
	if rep.TrainableParams != 14 || rep.BaseParams != 52 {
		t.Fatalf("params trainable %d base %d, want 14 and 52", rep.TrainableParams, rep.BaseParams)
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back.SuggestedRank != 2 {
		t.Fatalf("JSON round trip: %v %+v", err, back.SuggestedRank)
	}
	buf.Reset()
	if err := rep.WriteText(&buf); err != nil || !bytes.Contains(buf.Bytes(), []byte("q_proj")) {
		t.Fatalf("text: %v\n%s", err, buf.String())
	}
}

func TestAnalyzeMissingBaseTensor(t *testing.T) {
	dir := t.TempDir()
	data, _ := safetensors.EncodeFloat32(safetensors.F32, make([]float32, 4))
	path := filepath.Join(dir, "model.safetensors")
	if err := safetensors.WriteFile(path, []safetensors.Tensor{{Name: "other.weight", DType: safetensors.F32, Shape: []int{4}, Data: data}}, nil); err != nil {
		t.Fatal(err)
	}
	base, _ := safetensors.Open(path)
	defer base.Close()
	if _, err := Analyze(context.Background(), knownAdapter(), base); err == nil {
		t.Fatal("want an error naming the missing base tensor")
	}
}

func TestPlot(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	cfg := peft.DefaultConfig("q_proj", "v_proj")
	cfg.R, cfg.LoraAlpha = 8, 16
	a := &peft.Adapter{Config: cfg, Tensors: map[string][]float32{}, Shapes: map[string][]int{}}
	for _, m := range []string{"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj"} {
		av, bv := make([]float32, 8*16), make([]float32, 16*8)
		for i := range av {
			av[i], bv[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		}
		a.Tensors[peft.KeyA(m)], a.Shapes[peft.KeyA(m)] = av, []int{8, 16}
		a.Tensors[peft.KeyB(m)], a.Shapes[peft.KeyB(m)] = bv, []int{16, 8}
	}
	rep, err := Analyze(context.Background(), a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.SuggestedRank < 1 || rep.SuggestedRank > 8 {
		t.Fatalf("suggested rank %d", rep.SuggestedRank)
	}
	dir := t.TempDir()
	for _, name := range []string{"s.png", "s.svg"} {
		path := filepath.Join(dir, name)
		if err := rep.Plot(path); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil || len(b) < 100 {
			t.Fatalf("%s: %v, %d bytes", name, err, len(b))
		}
		if name == "s.png" && !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Fatal("not a PNG")
		}
		if name == "s.svg" && !bytes.Contains(b, []byte("<svg")) {
			t.Fatal("not an SVG")
		}
	}
	if err := rep.Plot(filepath.Join(dir, "s.gif")); err == nil {
		t.Fatal("gif accepted")
	}
}

func TestZeroAdapter(t *testing.T) {
	a := knownAdapter()
	b := a.Tensors[peft.KeyB("model.layers.0.self_attn.q_proj")]
	for i := range b {
		b[i] = 0 // a freshly initialised LoRA: B = 0
	}
	rep, err := Analyze(context.Background(), a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.SuggestedRank != 0 || rep.Layers[0].EffectiveRank99 != 0 || rep.Layers[0].DeltaNorm != 0 {
		t.Fatalf("zero adapter: %+v", rep.Layers[0])
	}
	if err := rep.Plot(filepath.Join(t.TempDir(), "z.png")); err != nil {
		t.Fatal(err)
	}
}
