package pipeline

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/loraflow/loraflow/dataset"
	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/chattemplate"
	"github.com/loraflow/loraflow/lora/tokenizer"
)

// Base is a loaded base checkpoint with its tokenizer.
type Base struct {
	Model     *lora.Model
	Tokenizer *tokenizer.Tokenizer
	chat      *chattemplate.Template // nil: none
	bos       int                    // -1: none
	eos       int                    // -1: none
}

// LoadBase loads the checkpoint folder dir and its tokenizer.json.
func LoadBase(dir string) (*Base, error) { return LoadBaseWith(dir, lora.LoadOptions{}) }

// LoadBaseWith is LoadBase with the frozen weights held as o says (the
// spec's precision and quantization, for training).
func LoadBaseWith(dir string, o lora.LoadOptions) (*Base, error) {
	m, err := lora.LoadModelWith(dir, o)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return nil, &lora.InputError{Kind: lora.KindCorruptCheckpoint, Msg: "tokenizer.json of " + dir, Err: err}
	}
	// An id past the embedding would index out of its rows in every forward
	// pass (training checks its data; evaluation and generation would not).
	if n, v := tok.VocabSize(), m.Config().VocabSize; n > v {
		return nil, &lora.InputError{Kind: lora.KindCorruptCheckpoint,
			Msg: fmt.Sprintf("tokenizer.json of %s has ids up to %d, past config.json vocab_size %d", dir, n-1, v)}
	}
	chat, err := loadChatTemplate(dir)
	if err != nil {
		return nil, err
	}
	b := &Base{Model: m, Tokenizer: tok, chat: chat, bos: -1, eos: -1}
	for _, name := range []string{"<|begin_of_text|>", "<s>", "<bos>"} { // <bos>, <eos>: Gemma
		if id, ok := tok.SpecialID(name); ok {
			b.bos = id
			break
		}
	}
	for _, name := range []string{"<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>"} {
		if id, ok := tok.SpecialID(name); ok {
			b.eos = id
			break
		}
	}
	return b, nil
}

// Sequence tokenizes one example: [BOS] prompt completion [EOS], with the
// loss on the completion (and EOS) only.
func (b *Base) Sequence(e dataset.Example) lora.Sequence {
	var toks []int
	if b.bos >= 0 {
		toks = append(toks, b.bos)
	}
	toks = append(toks, b.Tokenizer.Encode(e.Prompt)...)
	promptLen := len(toks)
	toks = append(toks, b.Tokenizer.Encode(e.Completion)...)
	if b.eos >= 0 {
		toks = append(toks, b.eos)
	}
	if promptLen == 0 || (b.bos >= 0 && promptLen == 1) {
		promptLen = 0 // plain text: every next-token prediction counts
	}
	return lora.Sequence{Tokens: toks, PromptLen: promptLen}
}

// Sequences tokenizes examples with Sequence, and chat examples with the
// model's chat template when it has one.
func (b *Base) Sequences(ctx context.Context, es []dataset.Example) ([]lora.Sequence, error) {
	out := make([]lora.Sequence, len(es))
	for i, e := range es {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil { // cancellation is seen during tokenization too
				return nil, err
			}
		}
		if e.Messages != nil && b.chat != nil {
			sq, err := b.chatSequence(i, e)
			if err != nil {
				return nil, err
			}
			out[i] = sq
			continue
		}
		out[i] = b.Sequence(e)
	}
	return out, nil
}

// EOS is the end-of-sequence token id that Sequence appends; -1: none.
func (b *Base) EOS() int { return b.eos }
