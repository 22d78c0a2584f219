// Package tokenizer implements the byte-level BPE tokenizers of GPT-2 and
// Llama 3 from Hugging Face tokenizer.json files, and a deterministic
// byte-level BPE trainer that writes such files.
//
// Encoding follows the Hugging Face `tokenizers` pipeline: added tokens
// (special or not) are matched first, leftmost-longest, in the raw text; the
// text between them is split by the pre-tokenizer's pattern, each piece's
// bytes are mapped to printable characters (GPT-2's byte-to-unicode table),
// and BPE merges are applied by rank. The two pre-tokenizer patterns in use,
// GPT-2's
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// and Llama 3's
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// need a lookahead that Go's regexp lacks, so both are hand-written matchers
// with the same leftmost-first semantics. Other patterns, normalizers and
// model types are rejected with a clear error.
//
// Encode adds no BOS/EOS (the post-processor's template is not applied);
// prepend SpecialID("<|begin_of_text|>") where a model expects it.
package tokenizer
