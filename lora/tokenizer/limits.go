package tokenizer

import (
	"errors"
	"fmt"
	"strings"
)

// Limits on an untrusted tokenizer.json, checked before the vocabulary and
// merge tables are built. Published tokenizers are far below them: Llama 3's
// tokenizer.json is 9 MB with 128256 ids, Gemma 3's 33 MB with 262144, and
// no vocabulary token is longer than a few hundred bytes.
const (
	MaxFileBytes  = 128 << 20 // the whole tokenizer.json
	MaxVocabID    = 1 << 24   // ids (vocab and added tokens) are below this
	MaxTokenBytes = 4096      // one vocabulary or added token
)

// ErrLimit is matched (errors.Is) when a tokenizer.json exceeds a limit.
var ErrLimit = errors.New("tokenizer limit exceeded")

// checkLimits refuses ids and tokens over the limits, naming the entry, and
// a BPE model without merges: without them every word falls apart into
// single bytes, a tokenizer that trains and publishes but is not the one the
// base model was trained with. (Hugging Face's BPE deserialiser defaults a
// missing "merges" to empty; a real byte-level BPE always has them.)
func checkLimits(f *fileJSON) error {
	for tok, id := range f.Model.Vocab {
		if id >= MaxVocabID {
			return fmt.Errorf("model.vocab[%.40q] = %d: %w: ids must be below %d", tok, id, ErrLimit, MaxVocabID)
		}
		if len(tok) > MaxTokenBytes {
			return fmt.Errorf("model.vocab: a %d-byte token %.40q...: %w (%d bytes)", len(tok), tok, ErrLimit, MaxTokenBytes)
		}
	}
	for i, at := range f.AddedTokens {
		if at.ID >= MaxVocabID {
			return fmt.Errorf("added_tokens[%d] %.40q: id %d: %w: ids must be below %d", i, at.Content, at.ID, ErrLimit, MaxVocabID)
		}
		if len(at.Content) > MaxTokenBytes {
			return fmt.Errorf("added_tokens[%d]: a %d-byte token %.40q...: %w (%d bytes)", i, len(at.Content), at.Content, ErrLimit, MaxTokenBytes)
		}
	}
	if m := strings.TrimSpace(string(f.Model.Merges)); m == "" || m == "null" {
		return errors.New(`model.merges is missing: a byte-level BPE without merges splits every word into single bytes`)
	}
	return nil
}
