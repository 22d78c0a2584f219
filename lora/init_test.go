package lora

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/loraflow/loraflow/lora/peft"
)

func initConfig(method string, dora bool) peft.Config {
	pc := peft.DefaultConfig()
	pc.TargetModules = peft.TargetModules{AllLinear: true}
	pc.R, pc.LoraAlpha, pc.InitLoraWeights, pc.UseDoRA = 3, 5, peft.InitLoraWeights(method), dora
	return pc
}

// TestPiSSAOLoRAResidualPlusBAEqualsW0 checks, for both weight layouts,
// that the residual the layer trains against plus s·B·A is the base weight,
// that the factors have PiSSA's / OLoRA's structure (PiSSA: B's columns
// orthogonal, B's column norms² = A's row norms² = σ_k/s in decreasing order;
// OLoRA: B orthonormal), that the model's own weights are untouched, and
// that the adapted network computes the base model's loss at initialisation.
func TestPiSSAOLoRAResidualPlusBAEqualsW0(t *testing.T) {
	for _, cfg := range []ModelConfig{tinyLlamaConfig(), tinyGPT2Config()} {
		for _, method := range []string{"pissa", "pissa_niter_4", "olora"} {
			t.Run(cfg.ModelType+"-"+method, func(t *testing.T) {
				m := newTiny(t, cfg, 3)
				n := netAs[float64](t, m)
				baseLoss := n.run(gradBatch(cfg.VocabSize), false, 0, nil, 0)
				pc := initConfig(method, false)
				if _, err := initLoRA(n, pc, 1, 0); err != nil {
					t.Fatal(err)
				}
				checked := 0
				for _, l := range n.linears() {
					if l.lora == nil {
						continue
					}
					checked++
					lb, r, s := l.lora, l.lora.r, float64(l.lora.scale)
					w0, _, _ := m.Tensor(l.module + ".weight")
					for i := 0; i < l.out; i++ {
						for j := 0; j < l.in; j++ {
							var ba float64
							for k := 0; k < r; k++ {
								ba += lb.b.w[i*r+k] * lb.a.w[k*l.in+j]
							}
							idx := i*l.in + j
							if l.conv1d {
								idx = j*l.out + i
							}
							if got, want := l.w.w[idx]+s*ba, float64(w0[idx]); math.Abs(got-want) > 1e-5*(1+math.Abs(want)) {
								t.Fatalf("%s [%d,%d]: residual + s·B·A = %v, W0 = %v", l.module, i, j, got, want)
							}
							if l.w.w[idx] == float64(w0[idx]) && ba != 0 {
								t.Fatalf("%s: the layer still trains against W0", l.module)
							}
						}
					}
					// Bᵀ·B
					for p := 0; p < r; p++ {
						for q := 0; q < r; q++ {
							var bb, aa float64
							for i := 0; i < l.out; i++ {
								bb += lb.b.w[i*r+p] * lb.b.w[i*r+q]
							}
							for j := 0; j < l.in; j++ {
								aa += lb.a.w[p*l.in+j] * lb.a.w[q*l.in+j]
							}
							switch {
							case method == "olora" && math.Abs(bb-b2f(p == q)) > 1e-5:
								t.Fatalf("%s: OLoRA B is not orthonormal: (BᵀB)[%d,%d] = %v", l.module, p, q, bb)
							case method != "olora" && p != q && (math.Abs(bb) > 1e-4 || math.Abs(aa) > 1e-4):
								t.Fatalf("%s: PiSSA factors not orthogonal: (BᵀB)[%d,%d] = %v, (AAᵀ) = %v", l.module, p, q, bb, aa)
							case method != "olora" && p == q && math.Abs(bb-aa) > 1e-4*aa:
								t.Fatalf("%s: PiSSA component %d: |B_k|² %v ≠ |A_k|² %v", l.module, p, bb, aa)
							}
						}
					}
				}
				if checked == 0 {
					t.Fatal("no layer initialised")
				}
				// the model itself keeps W0
				if fresh := netAs[float64](t, m); fresh.run(gradBatch(cfg.VocabSize), false, 0, nil, 0).lossSum != baseLoss.lossSum {
					t.Fatal("initialisation changed the model's weights")
				}
				got := n.run(gradBatch(cfg.VocabSize), false, 0, nil, 0)
				if math.Abs(got.lossSum-baseLoss.lossSum) > 1e-4*math.Abs(baseLoss.lossSum) {
					t.Fatalf("loss at initialisation %v, base %v", got.lossSum, baseLoss.lossSum)
				}
			})
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// TestMutatedInitExportMatchesResidualModel perturbs the factors of a
// PiSSA/OLoRA network (as training would), exports the adapter — converted
// to a plain rank-2r LoRA for the original base — and checks that the
// original model with it computes what the residual model with the trained
// factors computes, with and without DoRA.
func TestMutatedInitExportMatchesResidualModel(t *testing.T) {
	for _, cfg := range []ModelConfig{tinyLlamaConfig(), tinyGPT2Config()} {
		for _, method := range []string{"pissa", "pissa_niter_2", "olora"} {
			for _, dora := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s-%s-dora=%v", cfg.ModelType, method, dora), func(t *testing.T) {
					m := newTiny(t, cfg, 3)
					n := netAs[float64](t, m)
					pc := initConfig(method, dora)
					tr, err := initLoRA(n, pc, 1, 0)
					if err != nil {
						t.Fatal(err)
					}
					rng := rand.New(rand.NewPCG(8, 8))
					for _, x := range tr {
						for i := range x.p.w {
							x.p.w[i] += 0.3 * rng.NormFloat64() * (math.Abs(x.p.w[i]) + 0.1)
						}
					}
					bt := gradBatch(cfg.VocabSize)
					want := n.run(bt, false, 0, nil, 0)
					a, err := exportTrained(context.Background(), n, pc, tr)
					if err != nil {
						t.Fatal(err)
					}
					if a.Config.R != 2*pc.R || a.Config.LoraAlpha != 2*pc.LoraAlpha || a.Config.InitLoraWeights != "true" || a.Config.UseDoRA != dora {
						t.Fatalf("converted config r %d alpha %v init %q dora %v", a.Config.R, a.Config.LoraAlpha, a.Config.InitLoraWeights, a.Config.UseDoRA)
					}
					orig := netAs[float64](t, m)
					if err := applyAdapter(orig, a); err != nil {
						t.Fatal(err)
					}
					got := orig.run(bt, false, 0, nil, 0)
					base := netAs[float64](t, m).run(bt, false, 0, nil, 0)
					t.Logf("loss sum: residual model %.6f, original + converted %.6f, base %.6f", want.lossSum, got.lossSum, base.lossSum)
					const tol = 1e-5 // float32 storage of the adapter
					if math.Abs(got.lossSum-want.lossSum) > tol {
						t.Fatalf("original + converted adapter: loss sum %v, residual model: %v", got.lossSum, want.lossSum)
					}
					if math.Abs(base.lossSum-want.lossSum) < 100*tol {
						t.Fatal("the perturbation did not change the model; the check is vacuous")
					}
				})
			}
		}
	}
}

// TestPiSSAOLoRATrainingLowersLoss trains from PiSSA and OLoRA (with DoRA
// once) through Train, which returns the converted adapter for the
// original base model, and checks the held-out loss drops; the checkpoint's
// adapter is the converted form too.
func TestPiSSAOLoRATrainingLowersLoss(t *testing.T) {
	cases := []struct {
		cfg    ModelConfig
		method string
		dora   bool
	}{{tinyLlamaConfig(), "pissa", false}, {tinyGPT2Config(), "pissa", true}, {tinyLlamaConfig(), "olora", true}, {tinyGPT2Config(), "olora", false}, {tinyLlamaConfig(), "pissa_niter_2", false}}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s-%s-dora=%v", c.cfg.ModelType, c.method, c.dora), func(t *testing.T) {
			ctx := context.Background()
			m := pretrainedTiny(t, c.cfg)
			data := shiftedData(c.cfg.VocabSize, 64, 16, 1)
			held := shiftedData(c.cfg.VocabSize, 16, 16, 2)
			pc := doraConfig("q_proj", "v_proj", "up_proj", "down_proj")
			if c.cfg.ModelType == "gpt2" {
				pc = doraConfig("c_attn", "c_fc")
			}
			pc.UseDoRA, pc.InitLoraWeights = c.dora, peft.InitLoraWeights(c.method)
			before, err := Evaluate(ctx, m, nil, held, 8)
			if err != nil {
				t.Fatal(err)
			}
			ckdir := t.TempDir()
			a, res, err := Train(ctx, m, pc, TrainConfig{Steps: 60, BatchSize: 8, LearningRate: 5e-3, Schedule: "cosine", WarmupSteps: 5, Seed: 3, CheckpointDir: ckdir}, data, nil)
			if err != nil {
				t.Fatal(err)
			}
			after, err := Evaluate(ctx, m, a, held, 8)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("held-out loss %.3f → %.3f, train loss %.3f → %.3f", before.Loss, after.Loss, res.Losses[0], res.FinalLoss)
			if !(after.Loss < before.Loss-0.5) {
				t.Fatalf("held-out loss did not drop enough: %.4f → %.4f", before.Loss, after.Loss)
			}
			// same seed, same adapter (the randomized SVD of pissa_niter_K included)
			again, _, err := Train(ctx, m, pc, TrainConfig{Steps: 2, BatchSize: 8, LearningRate: 5e-3, Seed: 3}, data, nil)
			if err != nil {
				t.Fatal(err)
			}
			if again2, _, _ := Train(ctx, m, pc, TrainConfig{Steps: 2, BatchSize: 8, LearningRate: 5e-3, Seed: 3}, data, nil); !bytes.Equal(adapterBytes(t, again), adapterBytes(t, again2)) {
				t.Fatal("same seed gave different adapters")
			}
			if a.Config.R != 2*pc.R || a.Config.InitLoraWeights != "true" {
				t.Fatalf("saved adapter r %d init %q, want the converted rank-%d plain LoRA", a.Config.R, a.Config.InitLoraWeights, 2*pc.R)
			}
			latest, err := LatestCheckpoint(ckdir)
			if err != nil {
				t.Fatal(err)
			}
			ck, err := peft.Load(filepath.Join(latest, "adapter"))
			if err != nil {
				t.Fatal(err)
			}
			if ck.Config.R != 2*pc.R || !equalShape(ck.Shapes[ck.Names()[0]], a.Shapes[a.Names()[0]]) {
				t.Fatalf("checkpoint adapter r %d, shapes %v", ck.Config.R, ck.Shapes)
			}
		})
	}
}

func TestInitMethods(t *testing.T) {
	for in, want := range map[string]string{"": "kaiming", "true": "kaiming", "false": "false", "gaussian": "gaussian", "PiSSA": "pissa", "pissa_niter_16": "pissa", "olora": "olora"} {
		if got, err := initMethod(peft.InitLoraWeights(in)); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"loftq", "pissa_niter_", "pissa_niter_0", "eva", "corda"} {
		var ie *InputError
		if _, err := initMethod(peft.InitLoraWeights(bad)); !asInputErr(err, &ie) || ie.Kind != KindBadConfig {
			t.Errorf("%q: %v, want a BadConfig error", bad, err)
		}
	}
	// a tied head cannot take a data-driven init (its residual would change the embeddings)
	cfg := tinyLlamaConfig()
	cfg.TieWordEmbeddings = true
	m := newTiny(t, cfg, 1)
	pc := initConfig("pissa", false)
	pc.TargetModules = peft.TargetModules{List: []string{"lm_head"}}
	var ie *InputError
	if _, err := initLoRA(m.net.clone(), pc, 1, 0); !asInputErr(err, &ie) || ie.Kind != KindBadConfig {
		t.Fatalf("pissa on a tied head: %v", err)
	}
}
