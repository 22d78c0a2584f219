package lora

import (
	"context"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/loraflow/loraflow/lora/peft"
)

func tinyLlamaConfig() ModelConfig {
	return ModelConfig{ModelType: "llama", VocabSize: 32, Hidden: 16, Layers: 2, Heads: 4, KVHeads: 2,
		Intermediate: 24, MaxPositions: 32, RopeTheta: 10000, NormEps: 1e-5, BosTokenID: -1, EosTokenID: -1}
}

func tinyGPT2Config() ModelConfig {
	return ModelConfig{ModelType: "gpt2", VocabSize: 32, Hidden: 16, Layers: 2, Heads: 2,
		Intermediate: 32, MaxPositions: 32, NormEps: 1e-5, BosTokenID: -1, EosTokenID: -1}
}

func newTiny(t testing.TB, cfg ModelConfig, seed int64) *Model {
	t.Helper()
	m, err := NewModel(cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// pretrainedTiny is a tiny model fully trained on patternData with steps
// 1–2, as a stand-in for a pretrained base model.
func pretrainedTiny(t testing.TB, cfg ModelConfig) *Model {
	t.Helper()
	m := newTiny(t, cfg, 1)
	_, _, err := Train(context.Background(), m, peft.Config{}, TrainConfig{Steps: 40, BatchSize: 8, LearningRate: 1e-2, Schedule: "constant", FullFineTune: true},
		patternData(cfg.VocabSize, 64, 16, 11), nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// shiftedData is patternData with a step of 3 or 5, a task the pretrained
// tiny model has not seen.
func shiftedData(vocab, count, length int, seed uint64) []Sequence {
	rng := rand.New(rand.NewPCG(seed, 9))
	var out []Sequence
	for i := 0; i < count; i++ {
		step := 3 + 2*rng.IntN(2)
		n := length - rng.IntN(length/2)
		toks := make([]int, n)
		toks[0] = rng.IntN(vocab)
		for j := 1; j < n; j++ {
			toks[j] = (toks[j-1] + step) % vocab
		}
		out = append(out, Sequence{Tokens: toks, PromptLen: 2})
	}
	return out
}

// patternData makes sequences that follow a learnable rule: each token is
// the previous one plus a per-sequence step, modulo the vocabulary.
func patternData(vocab, count, length int, seed uint64) []Sequence {
	rng := rand.New(rand.NewPCG(seed, 7))
	var out []Sequence
	for i := 0; i < count; i++ {
		step := 1 + rng.IntN(2)
		n := length - rng.IntN(length/2) // unequal lengths, so batches are padded
		toks := make([]int, n)
		toks[0] = rng.IntN(vocab)
		for j := 1; j < n; j++ {
			toks[j] = (toks[j-1] + step) % vocab
		}
		out = append(out, Sequence{Tokens: toks, PromptLen: 2})
	}
	return out
}

// netAs rebuilds m's network with element type T.
func netAs[T float](t testing.TB, m *Model) *net[T] {
	t.Helper()
	src := func(name string, shape []int) ([]float32, error) {
		w, _, ok := m.Tensor(name)
		if !ok {
			t.Fatalf("no tensor %s", name)
		}
		return w, nil
	}
	n, err := buildNet[T](m.cfg, src)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func llamaLoRAConfig(targets ...string) peft.Config {
	c := peft.DefaultConfig(targets...)
	c.R, c.LoraAlpha = 4, 8
	return c
}

func equalConfig(a, b ModelConfig) bool {
	return reflect.DeepEqual(a, b)
}
