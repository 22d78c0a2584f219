package lora

import (
	"testing"

	"github.com/loraflow/loraflow/lora/peft"
)

// BenchmarkDoRAOverhead times one training step (forward, backward, AdamW)
// of plain LoRA, DoRA and PiSSA-initialised LoRA on a small Llama (hidden
// 256, 4 layers, batch 4 × 128, r 16 on q,k,v,o,gate,up,down).
func BenchmarkDoRAOverhead(b *testing.B) {
	cfg := ModelConfig{ModelType: "llama", VocabSize: 2048, Hidden: 256, Layers: 4, Heads: 4, KVHeads: 4,
		Intermediate: 704, MaxPositions: 128, RopeTheta: 10000, NormEps: 1e-5, BosTokenID: -1, EosTokenID: -1}
	m := newTiny(b, cfg, 1)
	data := patternData(cfg.VocabSize, 16, 128, 1)
	for _, v := range []struct {
		name string
		dora bool
		init string
	}{{"lora", false, "true"}, {"dora", true, "true"}, {"pissa", false, "pissa"}, {"pissa+dora", true, "pissa"}} {
		b.Run(v.name, func(b *testing.B) {
			pc := llamaLoRAConfig("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
			pc.R, pc.LoraAlpha, pc.UseDoRA, pc.InitLoraWeights = 16, 32, v.dora, peft.InitLoraWeights(v.init)
			n := m.net.clone()
			tr, err := initLoRA(n, pc, 1, 0)
			if err != nil {
				b.Fatal(err)
			}
			tc := TrainConfig{Steps: 1 << 30, BatchSize: 4, SeqLen: 128, LearningRate: 1e-4}.withDefaults(cfg)
			t := newTrainRun(n, tr, tc, data)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t.lossAndGrad(i)
				t.opt.step(i+1, 1e-4, 0)
			}
			b.ReportMetric(float64(4*128*b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
