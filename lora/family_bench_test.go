package lora

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkFamilyLoRAStep trains LoRA (r 16, alpha 32 on the attention
// projections: q,k,v,o or phi3's qkv_proj,o_proj) on one 256-token sequence per
// step at the real width of each family's reference model (the
// real-width fixtures' configs in testdata/reference: every width as
// published, 2 layers; Gemma 3 6), and reports tokens/s of a step. The
// models take 1–3 GB each; run one family at a time under the heavy-run
// lock:
//
//	flock /tmp/heavy.lock go test ./lora -run '^$' -bench 'FamilyLoRAStep/qwen2.5' -benchtime 1x
func BenchmarkFamilyLoRAStep(b *testing.B) {
	files, _ := filepath.Glob("testdata/reference/*.json")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		var fx referenceFixture
		if err := json.Unmarshal(raw, &fx); err != nil {
			b.Fatal(err)
		}
		if !fx.Heavy {
			continue
		}
		b.Run(fx.Name, func(b *testing.B) {
			cfg, err := ParseModelConfig(fx.Config)
			if err != nil {
				b.Fatal(err)
			}
			cfg.MaxPositions = min(cfg.MaxPositions, 256)
			targets := []string{"q_proj", "k_proj", "v_proj", "o_proj"}
			if cfg.Fused {
				targets = []string{"qkv_proj", "o_proj"}
			}
			w := Workload{Name: fx.Name, Model: cfg, Batch: 1, SeqLen: 256, Rank: 16, Alpha: 32, Targets: targets}
			var res BenchResult
			for i := 0; i < b.N; i++ {
				res, err = RunBenchmark(context.Background(), w, 2, false, false)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(res.TokensPerSec, "tokens/s")
			b.ReportMetric(res.GFLOPs, "GFLOP/s")
			b.ReportMetric(float64(res.PeakRSSBytes)/(1<<30), "peakRSS-GiB")
		})
	}
}
