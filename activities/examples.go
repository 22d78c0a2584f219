package activities

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/loraflow/loraflow/dataset"
	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/lora/tokenizer"
	"github.com/loraflow/loraflow/spec"
)

// baseModel is a loaded base checkpoint with its tokenizer.
type baseModel struct {
	model *lora.Model
	tok   *tokenizer.Tokenizer
	bos   int // -1: none
	eos   int // -1: none
}

func loadBase(dir string) (*baseModel, error) {
	m, err := lora.LoadModel(dir)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return nil, &lora.InputError{Kind: lora.KindCorruptCheckpoint, Msg: "tokenizer.json of " + dir, Err: err}
	}
	b := &baseModel{model: m, tok: tok, bos: -1, eos: -1}
	for _, name := range []string{"<|begin_of_text|>", "<s>"} {
		if id, ok := tok.SpecialID(name); ok {
			b.bos = id
			break
		}
	}
	for _, name := range []string{"<|endoftext|>", "<|end_of_text|>", "</s>"} {
		if id, ok := tok.SpecialID(name); ok {
			b.eos = id
			break
		}
	}
	return b, nil
}

// sequence tokenizes one example: [BOS] prompt completion [EOS], with the
// loss on the completion (and EOS) only.
func (b *baseModel) sequence(e dataset.Example) lora.Sequence {
	var toks []int
	if b.bos >= 0 {
		toks = append(toks, b.bos)
	}
	toks = append(toks, b.tok.Encode(e.Prompt)...)
	promptLen := len(toks)
	toks = append(toks, b.tok.Encode(e.Completion)...)
	if b.eos >= 0 {
		toks = append(toks, b.eos)
	}
	if promptLen == 0 || (b.bos >= 0 && promptLen == 1) {
		promptLen = 0 // plain text: every next-token prediction counts
	}
	return lora.Sequence{Tokens: toks, PromptLen: promptLen}
}

func (b *baseModel) sequences(es []dataset.Example) []lora.Sequence {
	out := make([]lora.Sequence, len(es))
	for i, e := range es {
		out[i] = b.sequence(e)
	}
	return out
}

// defaultTargets are PEFT's default target modules by model type.
var defaultTargets = map[string][]string{"llama": {"q_proj", "v_proj"}, "gpt2": {"c_attn"}}

// peftConfig turns the spec's LoRA section (PEFT's own field names) into a
// PEFT adapter config.
func peftConfig(s spec.Spec, modelType string) (peft.Config, error) {
	if s.LoRA.TargetModules == nil {
		s.LoRA.TargetModules = defaultTargets[modelType]
	}
	raw, err := json.Marshal(s.LoRA)
	if err != nil {
		return peft.Config{}, err
	}
	var c peft.Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return peft.Config{}, &lora.InputError{Kind: lora.KindBadConfig, Msg: "spec lora section", Err: err}
	}
	c.PeftType, c.TaskType, c.BaseModelNameOrPath = "LORA", "CAUSAL_LM", s.BaseModel
	c.Normalize()
	if err := c.Validate(); err != nil {
		return peft.Config{}, &lora.InputError{Kind: lora.KindBadConfig, Msg: fmt.Sprintf("spec lora section: %v", err)}
	}
	return c, nil
}
