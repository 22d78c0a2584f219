// Package tokenizer implements the BPE tokenizers of Hugging Face
// tokenizer.json files used by GPT-2, Llama 2/3, Qwen2/2.5/3, Mistral,
// Gemma, Phi-3, SmolLM and others, and a deterministic byte-level BPE
// trainer that writes such files.
//
// Encoding follows the Hugging Face `tokenizers` pipeline
// (tokenizers/src/tokenizer/mod.rs):
//
//  1. Added tokens (special or not) are matched first, leftmost-longest, in
//     the raw text (those with normalized=true: in the normalized text).
//  2. Each stretch between them is normalized: NFC/NFD/NFKC/NFKD, Lowercase,
//     Prepend, Replace, Sequence.
//  3. The pre-tokenizer cuts it: ByteLevel, Split (any String or Regex
//     pattern, with its delimiter behavior and invert), Metaspace
//     (prepend_scheme always/first/never, split), Digits, Punctuation,
//     Sequence.
//  4. The BPE model applies merges by rank, lowest first and leftmost among
//     equals: on bytes spelled with GPT-2's byte-to-unicode table
//     (byte-level), or on characters with byte_fallback to <0xNN> tokens and
//     unk_token (fuse_unk) for the rest (SentencePiece-style); ignore_merges
//     takes a whole piece found in the vocabulary as one token (Llama 3).
//
// Decode runs the decoder: ByteLevel, Replace, ByteFallback, Fuse, Strip,
// Metaspace, Sequence.
//
// Split regexes need look-ahead, which Go's regexp lacks. GPT-2's, Llama 3's
// and Qwen2's patterns have hand-written matchers (tested equal to the
// regex on a corpus and by fuzzing); any other pattern runs on
// github.com/dlclark/regexp2, a backtracking engine with .NET semantics.
//
// Other model types (WordPiece, Unigram), normalizers, pre-tokenizers and
// decoders are refused with ErrUnsupported. Encode adds no BOS/EOS (the
// post-processor's template is not applied); prepend SpecialID("<s>") or
// SpecialID("<|begin_of_text|>") where a model expects it.
package tokenizer
