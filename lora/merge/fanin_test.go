package merge

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/loraflow/loraflow/lora/safetensors"
)

// PEFT decides fan_in_fan_out per layer: src/peft/tuners/lora/layer.py,
// dispatch_default, resets it to False for a torch.nn.Linear target ("Setting
// fan_in_fan_out to False.") and to True for a transformers Conv1D. A Llama
// adapter whose config says fan_in_fan_out: true therefore merges exactly as
// one that says false, and a GPT-2 adapter whose config says false merges
// through the Conv1D layout.
func TestFanInFanOutIsDecidedPerLayer(t *testing.T) {
	for _, c := range []struct {
		name    string
		l       layout
		flagged bool
	}{
		{"llama-flag-true", llamaLayout(8, 12, 1, 20), true},
		{"gpt2-flag-false", gpt2Layout(12, 1, 30), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			baseDir, outDir := filepath.Join(tmp, "base"), filepath.Join(tmp, "merged")
			writeCheckpoint(t, baseDir, c.l, safetensors.F32, 1, 3)
			a := randomAdapter(c.l, 2, 4, 5)
			a.Config.FanInFanOut = c.flagged
			if _, err := Merge(context.Background(), baseDir, outDir, Options{Adapters: []Weighted{{Name: "a", Adapter: a, Weight: 1}}}); err != nil {
				t.Fatal(err)
			}
			base, merged := readAll(t, baseDir), readAll(t, outDir)
			for _, m := range c.l.targets {
				name := m + ".weight"
				if c.l.fifo {
					name = m[len("transformer."):] + ".weight"
				}
				w0, _ := base.Float32(name)
				w1, _ := merged.Float32(name)
				d := expectedDelta(a, m, 1, c.l.fifo) // the layer's own layout, whatever the flag says
				for i := range w0 {
					want := float64(w0[i]) + d[i]
					if math.Abs(float64(w1[i])-want) > 1e-5*math.Max(1, math.Abs(want)) {
						t.Fatalf("%s[%d] = %g, want %g", name, i, w1[i], want)
					}
				}
			}
		})
	}
}
