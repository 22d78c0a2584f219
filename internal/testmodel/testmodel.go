// Package testmodel makes tiny Hugging Face checkpoint folders (a random
// Llama-architecture model with a byte-level BPE tokenizer trained on a
// given corpus) for tests that need a real base model but not a good one.
package testmodel

import (
	"fmt"
	"path/filepath"

	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/tokenizer"
)

// EOS is the tiny model's end-of-text token.
const EOS = "<|endoftext|>"

// Llama writes a tiny Llama checkpoint (hidden 32, 2 layers, GQA 4/2 heads)
// into dir, with a tokenizer of about vocab tokens trained on corpus.
func Llama(dir string, corpus []string, vocab int, seed int64) error {
	return Family(dir, "llama", corpus, vocab, seed)
}

// Family is Llama for any decoder model type (mistral, qwen2, qwen3,
// gemma2, gemma3_text, phi3), with the family's switches at their
// defaults and a sliding window of 8 where the family has one.
func Family(dir, modelType string, corpus []string, vocab int, seed int64) error {
	tok, err := tokenizer.Train(corpus, vocab, []string{EOS})
	if err != nil {
		return fmt.Errorf("testmodel: %w", err)
	}
	eos, _ := tok.SpecialID(EOS)
	cfg := lora.ModelConfig{
		ModelType: modelType, VocabSize: tok.VocabSize(), Hidden: 32, Layers: 2, Heads: 4, KVHeads: 2,
		Intermediate: 64, MaxPositions: 128, RopeTheta: 10000, NormEps: 1e-5, BosTokenID: -1, EosTokenID: eos,
	}
	switch modelType {
	case "mistral", "phi3":
		cfg.SlidingWindow = 8
	case "gemma2", "gemma3_text":
		cfg.SlidingWindow, cfg.LayerSliding, cfg.TieWordEmbeddings = 8, []bool{true, false}, true
		if modelType == "gemma2" {
			cfg.AttnSoftcap, cfg.FinalSoftcap = 50, 30
		}
	}
	m, err := lora.NewModel(cfg, seed)
	if err != nil {
		return fmt.Errorf("testmodel: %w", err)
	}
	if err := m.Save(dir); err != nil {
		return fmt.Errorf("testmodel: %w", err)
	}
	return tok.Save(filepath.Join(dir, "tokenizer.json"))
}

// Corpus returns n short, repetitive English lines that a tiny model
// learns quickly, deterministic in n.
func Corpus(n int) []string {
	subjects := []string{"the cat", "a dog", "the bird", "my friend", "the old man", "a child"}
	verbs := []string{"sat on", "looked at", "walked to", "jumped over", "slept near"}
	objects := []string{"the mat", "the red door", "a green tree", "the river", "the small house"}
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s %s %s, and then %s %s %s.", subjects[i%len(subjects)], verbs[i%len(verbs)], objects[i%len(objects)],
			subjects[(i/7)%len(subjects)], verbs[(i/3)%len(verbs)], objects[(i/11)%len(objects)])
	}
	return out
}
