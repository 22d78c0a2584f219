package merge

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/lora/safetensors"
)

func TestInitFromBaseResidualPlusAdapterIsBase(t *testing.T) {
	for _, modelType := range []string{"llama", "gpt2", "qwen2", "gemma3_text", "phi3"} {
		for _, method := range []string{"pissa", "olora"} {
			t.Run(modelType+"-"+method, func(t *testing.T) {
				dir := t.TempDir()
				engineCheckpoint(t, dir, modelType, safetensors.F32, 1)
				base, residual := filepath.Join(dir, "base"), filepath.Join(dir, "residual")
				m, err := lora.LoadModel(base)
				if err != nil {
					t.Fatal(err)
				}
				cfg := peft.DefaultConfig()
				cfg.TargetModules = peft.TargetModules{AllLinear: true}
				cfg.R, cfg.LoraAlpha, cfg.InitLoraWeights = 4, 8, peft.InitLoraWeights(method)
				a, _, err := InitFromBase(context.Background(), base, residual, cfg, m.LinearModules(), Options{Logger: quiet})
				if err != nil {
					t.Fatal(err)
				}
				if len(a.Modules()) == 0 {
					t.Fatal("no modules initialised")
				}
				// Tensor check: residual + s·B·A = W0.
				b, r := readAll(t, base), readAll(t, residual)
				has := func(n string) bool { _, ok := b.Info(n); return ok }
				for _, mod := range a.Modules() {
					name, ok := BaseTensorName(has, mod+".weight")
					if !ok {
						t.Fatalf("no base tensor for %s", mod)
					}
					w0, err1 := b.Float32(name)
					wr, err2 := r.Float32(name)
					if err1 != nil || err2 != nil || len(w0) != len(wr) || len(w0) == 0 {
						t.Fatalf("%s: %v %v", name, err1, err2)
					}
					d := expectedDelta(a, mod, 1, a.Config.FanInFanOut)
					moved := 0.0
					for i := range w0 {
						if diff := math.Abs(float64(wr[i]) + d[i] - float64(w0[i])); diff > 1e-5 {
							t.Fatalf("%s[%d]: residual + s·B·A - W0 = %g", name, i, diff)
						}
						moved = math.Max(moved, math.Abs(d[i]))
					}
					if moved == 0 {
						t.Fatalf("%s: initial adapter is zero", name)
					}
				}
				// Model check: residual + initial adapter computes the base model.
				rep, err := EquivalenceAdapters(context.Background(), residual, []Weighted{{Adapter: a, Weight: 1}}, base, nil, 0)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("max |Δlogit| %.3g", rep.MaxAbsLogitDiff)
			})
		}
	}
}
