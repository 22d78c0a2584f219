package lora

import (
	"os"
	"testing"
)

// FuzzParseModelConfig feeds arbitrary bytes to ParseModelConfig as a
// config.json. It must never panic; whatever it accepts must hold sizes
// within the limits (so the memory estimate is exact), and a model that the
// estimate says fits in 4 MiB (small, so the fuzzer stays fast) must build.
// The seeds (the quickstart base model's config, GPT-2's published form and
// hostile edits) run as a normal test in CI; fuzz with
//
//	go test ./lora -run '^$' -fuzz FuzzParseModelConfig -fuzztime 10m
func FuzzParseModelConfig(f *testing.F) {
	if b, err := os.ReadFile("../examples/base-model/tinyllama-moby/config.json"); err == nil {
		f.Add(b)
	}
	for _, c := range []ModelConfig{tinyLlamaConfig(), tinyGPT2Config()} {
		b, err := c.MarshalHF()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"model_type":"gpt2","n_inner":null,"n_embd":16,"n_head":2,"n_layer":1,"vocab_size":8,"n_positions":8}`))
	f.Add([]byte(`{"model_type":"llama","vocab_size":32,"hidden_size":16,"num_hidden_layers":1000000000,"num_attention_heads":4,"intermediate_size":8}`))
	f.Add([]byte(`{"model_type":"llama","vocab_size":32,"hidden_size":-16,"num_hidden_layers":1,"num_attention_heads":"4","intermediate_size":8}`))
	f.Add([]byte(`{"model_type":"llama","vocab_size":32,"hidden_size":16,"num_hidden_layers":1,"num_attention_heads":4,"intermediate_size":8,"rope_scaling":{"rope_type":"llama3","factor":8}}`))
	f.Add([]byte(`{"model_type":"gpt2","n_embd":1e308}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseModelConfig(data)
		if err != nil {
			if _, ok := IsInputError(err); !ok {
				t.Fatalf("error %v is not an InputError", err)
			}
			return
		}
		for name, v := range map[string]struct{ got, max int }{
			"vocab": {c.VocabSize, maxConfigVocab}, "hidden": {c.Hidden, maxConfigDim}, "layers": {c.Layers, maxConfigLayer},
			"heads": {c.Heads, maxConfigHeads}, "intermediate": {c.Intermediate, maxConfigDim}, "positions": {c.MaxPositions, maxConfigPos},
		} {
			if v.got < 1 || v.got > v.max {
				t.Fatalf("accepted %s %d outside [1,%d]", name, v.got, v.max)
			}
		}
		if estimateModelBytes(c) > 4<<20 {
			return
		}
		if _, err := NewModel(c, 1); err != nil {
			t.Fatalf("NewModel(%+v): %v", c, err)
		}
	})
}
