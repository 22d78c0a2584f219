package merge

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/loraflow/loraflow/lora"
)

// tinyEngineBase saves a tiny random model of modelType under dir/base and
// returns it with 32 training sequences that count up by step (mod 48).
func tinyEngineBase(t *testing.T, dir, modelType string, step int) (*lora.Model, string, []lora.Sequence) {
	t.Helper()
	cfg := lora.ModelConfig{ModelType: modelType, VocabSize: 48, Hidden: 32, Layers: 2, Heads: 4, Intermediate: 48, MaxPositions: 32}
	m, err := lora.NewModel(cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "base")
	if err := m.Save(base); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(4, 4))
	var data []lora.Sequence
	for i := 0; i < 32; i++ {
		toks := make([]int, 12)
		toks[0] = rng.IntN(48)
		for j := 1; j < len(toks); j++ {
			toks[j] = (toks[j-1] + step) % 48
		}
		data = append(data, lora.Sequence{Tokens: toks})
	}
	return m, base, data
}
