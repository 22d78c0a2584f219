package lora

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/loraflow/loraflow/lora/peft"
)

// doraNet is a float64 network with DoRA branches on every linear layer
// but the head, B ≠ 0 and magnitudes moved away from the norms (so that
// c = m/‖W0+s·B·A‖ ≠ 1), its norms computed once and then held: PEFT
// detaches the norm from the gradient, so the finite differences must see
// it as a constant.
func doraNet(t *testing.T, cfg ModelConfig, dropout float64) (*net[float64], []trainable[float64]) {
	t.Helper()
	m := newTiny(t, cfg, 4)
	n := netAs[float64](t, m)
	pc := peft.DefaultConfig()
	pc.TargetModules = peft.TargetModules{AllLinear: true}
	pc.R, pc.LoraAlpha, pc.InitLoraWeights, pc.UseDoRA, pc.LoraDropout = 3, 5, "false", true, dropout
	if cfg.ModelType == "gpt2" {
		pc.Bias = "lora_only"
	}
	tr, err := initLoRA(n, pc, 9, 0)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	mags := 0
	for _, x := range tr {
		if x.key[len(x.key)-len("lora_magnitude_vector"):] == "lora_magnitude_vector" {
			mags++
			for i := range x.p.w {
				x.p.w[i] *= 0.5 + rng.Float64()
			}
		}
	}
	if mags == 0 {
		t.Fatal("no magnitude vectors among the trainables")
	}
	n.run(gradBatch(cfg.VocabSize), false, 0, nil, 0) // computes the norms
	for _, l := range n.linears() {
		if l.lora != nil {
			l.lora.dora.hold = true
		}
	}
	return n, tr
}

func TestDoRAGradients(t *testing.T) {
	for _, cfg := range []ModelConfig{tinyLlamaConfig(), tinyGPT2Config()} {
		t.Run(cfg.ModelType, func(t *testing.T) {
			n, tr := doraNet(t, cfg, 0)
			checkGrads(t, n, tr, gradBatch(cfg.VocabSize), 4)
		})
	}
	t.Run("dropout-checkpointing", func(t *testing.T) {
		n, tr := doraNet(t, tinyLlamaConfig(), 0.3)
		n.checkpointing = true
		checkGradsDropout(t, n, tr, gradBatch(32), 4, &dropoutSeed{hi: 1, lo: 2})
	})
	t.Run("dropout-gpt2", func(t *testing.T) {
		n, tr := doraNet(t, tinyGPT2Config(), 0.3)
		checkGradsDropout(t, n, tr, gradBatch(32), 4, &dropoutSeed{hi: 1, lo: 2})
	})
}

// TestDoRALayerMatchesDenseWeight compares one DoRA layer with the dense
// weight W' = m ⊙ (W0 + s·B·A) / ‖W0 + s·B·A‖_row, for both weight layouts.
func TestDoRALayerMatchesDenseWeight(t *testing.T) {
	for _, conv := range []bool{false, true} {
		in, out, r, rows := 7, 5, 2, 3
		rng := rand.New(rand.NewPCG(1, 2))
		randn := func(k int) []float64 {
			v := make([]float64, k)
			for i := range v {
				v[i] = rng.NormFloat64()
			}
			return v
		}
		shape := []int{out, in}
		if conv {
			shape = []int{in, out}
		}
		l := &linear[float64]{module: "m", in: in, out: out, conv1d: conv, w: &param[float64]{name: "m.weight", shape: shape, w: randn(in * out)},
			b: &param[float64]{name: "m.bias", shape: []int{out}, w: randn(out)}}
		l.lora = &loraBranch[float64]{r: r, scale: 1.5, a: &param[float64]{w: randn(r * in)}, b: &param[float64]{w: randn(out * r)}}
		d := newDoRA(l, "m.lora_magnitude_vector")
		W := func(i, j int) float64 {
			if conv {
				return l.w.w[j*out+i]
			}
			return l.w.w[i*in+j]
		}
		// at initialisation m is the row norms of W0 + s·B·A
		dense := make([]float64, out*in)
		for i := 0; i < out; i++ {
			var ss float64
			for j := 0; j < in; j++ {
				v := W(i, j)
				for k := 0; k < r; k++ {
					v += 1.5 * l.lora.b.w[i*r+k] * l.lora.a.w[k*in+j]
				}
				dense[i*in+j] = v
				ss += v * v
			}
			if math.Abs(d.mag.w[i]-math.Sqrt(ss)) > 1e-12 {
				t.Fatalf("conv %v: magnitude[%d] = %v, row norm %v", conv, i, d.mag.w[i], math.Sqrt(ss))
			}
			d.mag.w[i] *= 0.3 + float64(i) // move m away from the norm
			for j := 0; j < in; j++ {
				dense[i*in+j] *= d.mag.w[i] / math.Sqrt(ss)
			}
		}
		x := randn(rows * in)
		y := make([]float64, rows*out)
		l.forward(x, rows, y, nil)
		for q := 0; q < rows; q++ {
			for i := 0; i < out; i++ {
				want := l.b.w[i]
				for j := 0; j < in; j++ {
					want += dense[i*in+j] * x[q*in+j]
				}
				if math.Abs(y[q*out+i]-want) > 1e-12 {
					t.Fatalf("conv %v: y[%d,%d] = %v, dense %v", conv, q, i, y[q*out+i], want)
				}
			}
		}
	}
}

func doraConfig(targets ...string) peft.Config {
	pc := llamaLoRAConfig(targets...)
	pc.UseDoRA = true
	return pc
}

// TestDoRAZeroInitLogitsEqualBase: with B = 0 the magnitude is ‖W0‖ and the
// adapted model computes exactly the base model.
func TestDoRAZeroInitLogitsEqualBase(t *testing.T) {
	for _, cfg := range []ModelConfig{tinyLlamaConfig(), tinyGPT2Config()} {
		m := newTiny(t, cfg, 6)
		pc := peft.DefaultConfig()
		pc.TargetModules = peft.TargetModules{AllLinear: true}
		pc.UseDoRA = true
		n := m.net.clone()
		tr, err := initLoRA(n, pc, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		a := exportAdapter(pc, tr, cfg.ModelType == "gpt2")
		for _, mi := range m.LinearModules() {
			if mi.IsHead {
				continue
			}
			mag, ok := a.Tensors[peft.KeyMagnitude(mi.Name)]
			if !ok || !equalShape(a.Shapes[peft.KeyMagnitude(mi.Name)], []int{mi.Out}) {
				t.Fatalf("%s: no magnitude of shape [%d]: %v", mi.Name, mi.Out, a.Shapes[peft.KeyMagnitude(mi.Name)])
			}
			w, _, _ := m.Tensor(mi.Name + ".weight")
			for i := 0; i < mi.Out; i++ {
				var ss float64
				for j := 0; j < mi.In; j++ {
					v := w[i*mi.In+j]
					if mi.Conv1D {
						v = w[j*mi.Out+i]
					}
					ss += float64(v) * float64(v)
				}
				if math.Abs(float64(mag[i])-math.Sqrt(ss)) > 1e-5*math.Sqrt(ss) {
					t.Fatalf("%s: magnitude[%d] = %v, row norm of W %v", mi.Name, i, mag[i], math.Sqrt(ss))
				}
			}
		}
		toks := []int{1, 4, 9, 16, 25, 3}
		base, err := Logits(context.Background(), m, nil, toks)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Logits(context.Background(), m, a, toks)
		if err != nil {
			t.Fatal(err)
		}
		for i := range base {
			if math.Abs(float64(base[i]-got[i])) > 1e-5 {
				t.Fatalf("%s: logit %d: %v with zero-init DoRA, %v base", cfg.ModelType, i, got[i], base[i])
			}
		}
	}
}

// TestDoRATrainSaveLoad trains DoRA adapters, checks that they lower the
// held-out loss, that save/load keeps PEFT's key names and gives the same
// evaluation, that Generate runs with them, and that a DoRA config without
// magnitudes (or magnitudes without use_dora) is refused.
func TestDoRATrainSaveLoad(t *testing.T) {
	for _, cfg := range []ModelConfig{tinyLlamaConfig(), tinyGPT2Config()} {
		t.Run(cfg.ModelType, func(t *testing.T) {
			ctx := context.Background()
			m := pretrainedTiny(t, cfg)
			data := shiftedData(cfg.VocabSize, 64, 16, 1)
			held := shiftedData(cfg.VocabSize, 16, 16, 2)
			pc := doraConfig("q_proj", "v_proj", "up_proj", "down_proj")
			if cfg.ModelType == "gpt2" {
				pc = doraConfig("c_attn", "c_fc")
			}
			before, err := Evaluate(ctx, m, nil, held, 8)
			if err != nil {
				t.Fatal(err)
			}
			a, res, err := Train(ctx, m, pc, TrainConfig{Steps: 60, BatchSize: 8, LearningRate: 1e-2, Schedule: "cosine", WarmupSteps: 5, Seed: 3}, data, nil)
			if err != nil {
				t.Fatal(err)
			}
			after, err := Evaluate(ctx, m, a, held, 8)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("DoRA %s: held-out loss %.3f → %.3f, train loss %.3f → %.3f", cfg.ModelType, before.Loss, after.Loss, res.Losses[0], res.FinalLoss)
			if !(after.Loss < before.Loss-0.5) {
				t.Fatalf("held-out loss did not drop enough: %.4f → %.4f", before.Loss, after.Loss)
			}
			if !a.Config.UseDoRA {
				t.Fatal("saved config lost use_dora")
			}
			mods := 0
			for _, mi := range m.LinearModules() {
				if !pc.Targets(mi.Name, mi.IsHead) {
					continue
				}
				mods++
				k := peft.KeyMagnitude(mi.Name)
				if !equalShape(a.Shapes[k], []int{mi.Out}) {
					t.Fatalf("%s: shape %v, want [%d]", k, a.Shapes[k], mi.Out)
				}
			}
			if len(a.Tensors) != 3*mods {
				t.Fatalf("%d tensors for %d modules: %v", len(a.Tensors), mods, a.Names())
			}
			dir := filepath.Join(t.TempDir(), "dora")
			if err := a.Save(dir); err != nil {
				t.Fatal(err)
			}
			back, err := peft.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Evaluate(ctx, m, back, held, 8)
			if err != nil {
				t.Fatal(err)
			}
			if again.Loss != after.Loss {
				t.Fatalf("loaded adapter: loss %v, in memory %v", again.Loss, after.Loss)
			}
			// Generate (greedy, KV cache, norms computed once) equals
			// recomputing the full prefix with Logits.
			gen, err := Generate(ctx, m, back, held[0].Tokens[:3], GenerateOptions{MaxTokens: 4})
			if err != nil {
				t.Fatal(err)
			}
			seq := append([]int(nil), held[0].Tokens[:3]...)
			V := cfg.VocabSize
			for i := range gen {
				l, err := Logits(ctx, m, back, seq)
				if err != nil {
					t.Fatal(err)
				}
				last, best := l[(len(seq)-1)*V:], 0
				for j, v := range last {
					if v > last[best] {
						best = j
					}
				}
				if gen[i] != best {
					t.Fatalf("token %d: generate %d, full recompute %d", i, gen[i], best)
				}
				seq = append(seq, best)
			}
			// Without the magnitudes the DoRA config is refused, and so are
			// magnitudes without use_dora.
			var ie *InputError
			noMag := &peft.Adapter{Config: back.Config, Tensors: map[string][]float32{}, Shapes: map[string][]int{}}
			for k, v := range back.Tensors {
				if _, kind, _ := peft.ParseKey(k); kind != "lora_magnitude_vector" {
					noMag.Tensors[k], noMag.Shapes[k] = v, back.Shapes[k]
				}
			}
			if _, err := Evaluate(ctx, m, noMag, held, 8); !asInputErr(err, &ie) || ie.Kind != KindAdapterMismatch {
				t.Fatalf("DoRA adapter without magnitudes: %v", err)
			}
			plain := *back
			plain.Config.UseDoRA = false
			if _, err := Evaluate(ctx, m, &plain, held, 8); !asInputErr(err, &ie) || ie.Kind != KindAdapterMismatch {
				t.Fatalf("magnitudes without use_dora: %v", err)
			}
		})
	}
}

func asInputErr(err error, target **InputError) bool {
	ie, ok := IsInputError(err)
	if ok {
		*target = ie
	}
	return ok
}

// TestDoRAResumeGivesSameAdapter: a DoRA run (dropout, LoRA+, accumulation)
// interrupted after its step-3 checkpoint and resumed ends with the same
// adapter bytes as an uninterrupted run.
func TestDoRAResumeGivesSameAdapter(t *testing.T) {
	ctx := context.Background()
	m := newTiny(t, tinyLlamaConfig(), 8)
	pc, tc, data := resumeSetup()
	pc.UseDoRA = true
	tc.Steps = 6
	a1, _, err := Train(ctx, m, pc, tc, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	interrupted := tc
	interrupted.CheckpointDir = t.TempDir()
	cctx, cancel := context.WithCancel(ctx)
	_, _, err = Train(cctx, m, pc, interrupted, data, func(p Progress) {
		if p.Step == 4 {
			cancel()
		}
	})
	if err == nil {
		t.Fatal("interrupted run finished")
	}
	a2, r2, err := Train(ctx, m, pc, interrupted, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r2.ResumedFromStep != 3 {
		t.Fatalf("resumed from %d", r2.ResumedFromStep)
	}
	if !bytes.Equal(adapterBytes(t, a1), adapterBytes(t, a2)) {
		t.Fatal("resumed DoRA run's adapter differs from the uninterrupted run's")
	}
}

// TestDoRAExactAcrossCheckpointingAndThreads: DoRA adapters (with dropout)
// are bit-identical with and without gradient checkpointing and for any
// GOMAXPROCS (the norms are computed per row, the magnitude gradient with
// reduceRows).
func TestDoRAExactAcrossCheckpointingAndThreads(t *testing.T) {
	for _, cfg := range []ModelConfig{tinyLlamaConfig(), tinyGPT2Config()} {
		cfg.Hidden, cfg.Intermediate = 64, 160
		m := newTiny(t, cfg, 8)
		pc := peft.DefaultConfig()
		pc.TargetModules = peft.TargetModules{AllLinear: true}
		pc.R, pc.LoraDropout, pc.UseDoRA = 4, 0.2, true
		tc := TrainConfig{Steps: 3, BatchSize: 8, LearningRate: 5e-3, Seed: 1, WeightDecay: 0.01}
		data := patternData(32, 16, 24, 2)
		var want []byte
		for i, v := range []struct {
			procs int
			ckpt  bool
		}{{1, false}, {3, false}, {2, true}} {
			if v.procs == 3 && BLASBackend() != "gonum" {
				continue // OpenBLAS's results may depend on its own thread count
			}
			old := runtime.GOMAXPROCS(v.procs)
			tc.GradientCheckpointing = v.ckpt
			a, _, err := Train(context.Background(), m, pc, tc, data, nil)
			runtime.GOMAXPROCS(old)
			if err != nil {
				t.Fatal(err)
			}
			got := adapterBytes(t, a)
			if i == 0 {
				want = got
			} else if !bytes.Equal(got, want) {
				t.Fatalf("%s: GOMAXPROCS=%d checkpointing=%v gave a different adapter", cfg.ModelType, v.procs, v.ckpt)
			}
		}
	}
}
