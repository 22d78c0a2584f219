package tokenizer

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// llama.cpp's tokenizer test vectors (models/ggml-vocab-NAME.gguf.inp/.out,
// written by its convert_hf_to_gguf_update.py with Hugging Face's
// tokenizer.encode(text, add_special_tokens=False)) are checked against
// tokenizer.json files built from the same GGUF vocab files, each with the
// normalizer, pre-tokenizer and decoder of that family's Hugging Face
// tokenizer.json. The committed fixtures (testdata/llamacpp/NAME.json) keep
// only the vocabulary and merges the vectors reach: every merge that was ever
// a candidate while encoding the inputs with the full vocabulary, every token
// those produce or start from, the byte tokens and the added tokens. Merges
// keep their relative order, so BPE takes the same steps with the pruned file
// as with the full one.
//
// Regenerate with scripts/tokenizer-vectors.sh (npm pack node-llama-cpp, the
// vocab files from its llama.cpp bundle) and
//
//	go test ./lora/tokenizer -run TestLlamaCppVectors -update-llamacpp DIR
//
// where DIR holds the ggml-vocab-*.gguf files and their vectors.
var updateLlamaCpp = flag.String("update-llamacpp", "", "folder of llama.cpp ggml-vocab-*.gguf files: rebuild testdata/llamacpp from them")

const (
	byteLevelDec = `{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true}`
	// Llama 2's and Phi-3's tokenizer.json (transformers' LlamaConverter,
	// legacy): "▁" prepended and spaces replaced; no pre-tokenizer.
	spmLegacyNorm = `{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]}`
	spmLegacyDec  = `{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]}`
	// Gemma's (transformers' GemmaConverter): spaces replaced, nothing
	// prepended, no Strip.
	gemmaNorm = `{"type":"Replace","pattern":{"String":" "},"content":"▁"}`
	gemmaDec  = `{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"}]}`
	nfc       = `{"type":"NFC"}`
)

func splitThenByteLevel(pattern string) string {
	p, _ := json.Marshal(pattern)
	return `{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":` + string(p) + `},"behavior":"Isolated","invert":false},` +
		`{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}]}`
}

// Qwen3.5's pattern (llama.cpp's src/llama-vocab.cpp quotes it "from
// tokenizer.json"): marks (\p{M}) join letters.
const qwen35Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

type vocabFamily struct {
	name         string // ggml-vocab-NAME.gguf
	normalizer   string
	preTokenizer string
	decoder      string
	ignoreMerges bool
	spm          bool // SentencePiece-style: byte_fallback, unk_token, fuse_unk
	nfc          bool // decode(encode(s)) gives NFC(s)
}

var vocabFamilies = []vocabFamily{
	{name: "gpt-2", normalizer: "null", preTokenizer: gpt2PreTokenizer, decoder: byteLevelDec},
	{name: "llama-bpe", normalizer: "null", preTokenizer: splitThenByteLevel(Llama3Pattern), decoder: byteLevelDec, ignoreMerges: true},
	{name: "qwen2", normalizer: nfc, preTokenizer: splitThenByteLevel(Qwen2Pattern), decoder: byteLevelDec, nfc: true},
	{name: "qwen35", normalizer: "null", preTokenizer: splitThenByteLevel(qwen35Pattern), decoder: byteLevelDec},
	{name: "llama-spm", normalizer: spmLegacyNorm, preTokenizer: "null", decoder: spmLegacyDec, spm: true},
	{name: "phi-3", normalizer: spmLegacyNorm, preTokenizer: "null", decoder: spmLegacyDec, spm: true},
	{name: "gemma-4", normalizer: gemmaNorm, preTokenizer: "null", decoder: gemmaDec, spm: true},
	// StarCoder's and Refact's: single digits, then GPT-2's ByteLevel.
	{name: "starcoder", normalizer: "null", preTokenizer: digitsThenByteLevel, decoder: byteLevelDec},
	{name: "refact", normalizer: "null", preTokenizer: digitsThenByteLevel, decoder: byteLevelDec},
	{name: "command-r", normalizer: nfc, preTokenizer: digitsThenByteLevel, decoder: byteLevelDec, nfc: true},
	{name: "mpt", normalizer: nfc, preTokenizer: gpt2PreTokenizer, decoder: byteLevelDec, nfc: true},
	// Falcon's: punctuation runs, GPT-2's ByteLevel, then three-digit groups.
	{name: "falcon", normalizer: "null", preTokenizer: `{"type":"Sequence","pretokenizers":[{"type":"Punctuation","behavior":"Contiguous"},` +
		`{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},` +
		`{"type":"Split","pattern":{"Regex":"[0-9][0-9][0-9]"},"behavior":"Isolated","invert":false}]}`, decoder: byteLevelDec},
	{name: "deepseek-llm", normalizer: "null", preTokenizer: splits(`[\r\n]`,
		`\s?`+"[A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af\u0370-\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1\u03a3-\u03f5\u03f7-\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5\u13f8-\u13fd\u1c90-\u1cba\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45\u1f48-\u1f4d\u1f50-\u1f57\u1f59\u1f5b\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc\u2102\u2107\u210a-\u2113\u2115\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139\u213c-\u213f\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf\ufb00-\ufb06\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a\U00010400-\U0001044f\U000104b0-\U000104d3\U000104d8-\U000104fb\U00010c80-\U00010cb2\U00010cc0-\U00010cf2\U000118a0-\U000118df\U0001e900-\U0001e943]+",
		`\s?[!-/:-~！-／：-～‘-‟　-。]+`, `\s+$`, `[一-龥ࠀ-一가-퟿]+`, `\p{N}+`), decoder: byteLevelDec},
	{name: "deepseek-coder", normalizer: "null", preTokenizer: splits(`[\r\n]`, `\s?\p{L}+`, `\s?\p{P}+`, `[一-龥ࠀ-一가-퟿]+`, `\p{N}`), decoder: byteLevelDec},
}

const digitsThenByteLevel = `{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},` +
	`{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}]}`

// splits is DeepSeek's layout: Isolated Splits in turn, then ByteLevel
// without its own regex (llama.cpp's src/llama-vocab.cpp lists the same
// patterns for these pre-tokenizer types).
func splits(patterns ...string) string {
	var parts []string
	for _, p := range patterns {
		q, _ := json.Marshal(p)
		parts = append(parts, `{"type":"Split","pattern":{"Regex":`+string(q)+`},"behavior":"Isolated","invert":false}`)
	}
	parts = append(parts, `{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}`)
	return `{"type":"Sequence","pretokenizers":[` + strings.Join(parts, ",") + `]}`
}

// GGUF token types (llama.cpp's include/llama.h, llama_token_type).
const (
	ggufNormal      = 1
	ggufUnknown     = 2
	ggufControl     = 3
	ggufUserDefined = 4
	ggufByte        = 6
)

// ggufTokenizerJSON builds a family's tokenizer.json from a GGUF vocab file.
func ggufTokenizerJSON(fam vocabFamily, path string) ([]byte, error) {
	kv, err := readGGUFMetadata(path)
	if err != nil {
		return nil, err
	}
	tokens := ggufStrings(kv, "tokenizer.ggml.tokens")
	types := ggufNumbers(kv, "tokenizer.ggml.token_type")
	if len(tokens) == 0 || len(types) != len(tokens) {
		return nil, fmt.Errorf("%s: %d tokens, %d types", path, len(tokens), len(types))
	}
	vocab := make(map[string]int, len(tokens))
	var added []AddedToken
	for id, tok := range tokens {
		vocab[tok] = id
		switch types[id] {
		case ggufUnknown, ggufControl, ggufUserDefined:
			added = append(added, AddedToken{ID: id, Content: tok, Special: types[id] != ggufUserDefined})
		}
	}
	var merges [][2]string
	if raw := ggufStrings(kv, "tokenizer.ggml.merges"); len(raw) > 0 {
		for i, m := range raw {
			// llama.cpp (llama_vocab::impl::load) cuts at the first space
			// after the first byte.
			k := strings.IndexByte(m[min(1, len(m)):], ' ')
			if k < 0 {
				return nil, fmt.Errorf("%s: merge %d %q has no space", path, i, m)
			}
			k++
			merges = append(merges, [2]string{m[:k], m[k+1:]})
		}
	} else {
		merges = spmMerges(tokens, types, ggufNumbers(kv, "tokenizer.ggml.scores"), vocab)
	}
	model := map[string]any{"type": "BPE", "dropout": nil, "continuing_subword_prefix": nil, "end_of_word_suffix": nil,
		"fuse_unk": fam.spm, "byte_fallback": fam.spm, "ignore_merges": fam.ignoreMerges, "vocab": vocab, "merges": merges, "unk_token": nil}
	if fam.spm {
		id, _ := kv["tokenizer.ggml.unknown_token_id"].(int64)
		model["unk_token"] = tokens[id]
	}
	file := map[string]any{"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": added,
		"normalizer": json.RawMessage(fam.normalizer), "pre_tokenizer": json.RawMessage(fam.preTokenizer),
		"post_processor": nil, "decoder": json.RawMessage(fam.decoder), "model": model}
	return marshalNoEscape(file)
}

// spmMerges derives BPE merges from a SentencePiece vocabulary as
// transformers' SentencePieceExtractor does (convert_slow_tokenizer.py):
// every split of a piece into two pieces of the vocabulary, ranked by the
// merged piece's score, highest first (ties: vocabulary order, then the
// left and right pieces' ids).
func spmMerges(tokens []string, types, scores []float64, vocab map[string]int) [][2]string {
	type cand struct {
		l, r   string
		score  float64
		id     int
		li, ri int
	}
	var cs []cand
	for id, tok := range tokens {
		if types[id] != ggufNormal {
			continue
		}
		for k := range tok {
			if k == 0 {
				continue
			}
			l, r := tok[:k], tok[k:]
			li, okL := vocab[l]
			ri, okR := vocab[r]
			if okL && okR {
				cs = append(cs, cand{l, r, scores[id], id, li, ri})
			}
		}
	}
	sort.SliceStable(cs, func(a, b int) bool {
		x, y := cs[a], cs[b]
		if x.score != y.score {
			return x.score > y.score
		}
		if x.id != y.id {
			return x.id < y.id
		}
		if x.li != y.li {
			return x.li < y.li
		}
		return x.ri < y.ri
	})
	out := make([][2]string, len(cs))
	for i, c := range cs {
		out[i] = [2]string{c.l, c.r}
	}
	return out
}

// prune keeps what encoding inputs with t reaches (see the file comment).
func prune(t *Tokenizer, full []byte, inputs []string) ([]byte, error) {
	keepTok := map[int]bool{}
	keepMerge := map[uint64]bool{}
	m := t.model
	for _, id := range m.byteID {
		if id >= 0 {
			keepTok[id] = true
		}
	}
	if m.unkID >= 0 {
		keepTok[m.unkID] = true
	}
	record := func(piece string) {
		if m.ignoreMerges {
			w := piece
			if m.byteLevel {
				w = toByteLevel(piece)
			}
			if id, ok := m.vocab[w]; ok {
				keepTok[id] = true
				return
			}
		}
		syms := m.symbols(piece)
		for _, s := range syms {
			keepTok[s] = true
		}
		for len(syms) > 1 { // naive BPE: lowest rank, leftmost first
			best, bestRank := -1, -1
			for i := 0; i+1 < len(syms); i++ {
				k := pairKey(syms[i], syms[i+1])
				if mg, ok := m.merges[k]; ok {
					keepMerge[k] = true
					if bestRank < 0 || mg.rank < bestRank {
						best, bestRank = i, mg.rank
					}
				}
			}
			if best < 0 {
				break
			}
			id := m.merges[pairKey(syms[best], syms[best+1])].id
			keepTok[id] = true
			syms = append(syms[:best+1], syms[best+2:]...)
			syms[best] = id
		}
	}
	for _, in := range inputs {
		t.eachAdded(in, &t.addedByFirst, func(i int) string { return t.added[i].Content }, func(seg string, at, idx int) {
			if idx >= 0 || seg == "" {
				return
			}
			if t.normalize != nil {
				seg = t.normalize(seg)
			}
			t.pre.run(seg, at == 0, record)
		})
	}
	var f map[string]json.RawMessage
	if err := json.Unmarshal(full, &f); err != nil {
		return nil, err
	}
	var model map[string]any
	if err := json.Unmarshal(f["model"], &model); err != nil {
		return nil, err
	}
	vocab := map[string]int{}
	for tok, id := range m.vocab {
		if keepTok[id] {
			vocab[tok] = id
		}
	}
	var merges [][2]string
	for _, mg := range m.mergeList {
		a, b := m.vocab[mg[0]], m.vocab[mg[1]]
		if keepMerge[pairKey(a, b)] {
			merges = append(merges, mg)
			vocab[mg[0]], vocab[mg[1]], vocab[mg[0]+mg[1]] = a, b, m.vocab[mg[0]+mg[1]]
		}
	}
	// Added tokens: the special ones, and the others the inputs contain.
	var added []AddedToken
	for _, at := range t.added {
		used := at.Special
		for _, in := range inputs {
			used = used || strings.Contains(in, at.Content)
		}
		if !used {
			continue
		}
		added = append(added, at)
		if _, ok := m.vocab[at.Content]; ok {
			vocab[at.Content] = m.vocab[at.Content]
		}
	}
	ab, err := marshalNoEscape(added)
	if err != nil {
		return nil, err
	}
	f["added_tokens"] = ab
	model["vocab"], model["merges"] = vocab, merges
	mb, err := marshalNoEscape(model)
	if err != nil {
		return nil, err
	}
	f["model"] = mb
	return marshalNoEscape(f)
}

func fixturePath(name string) string { return filepath.Join("testdata", "llamacpp", name+".json") }

func TestLlamaCppVectors(t *testing.T) {
	if dir := *updateLlamaCpp; dir != "" {
		for _, fam := range vocabFamilies {
			updateFixture(t, dir, fam)
		}
	}
	total := 0
	for _, fam := range vocabFamilies {
		t.Run(fam.name, func(t *testing.T) {
			raw, err := os.ReadFile(fixturePath(fam.name))
			if err != nil {
				t.Fatal(err)
			}
			tok, err := Parse(raw)
			if err != nil {
				t.Fatalf("Parse(%s): %v", fixturePath(fam.name), err)
			}
			inputs, outputs := llamaCppVectors(t, fam.name)
			pass := 0
			for i, in := range inputs {
				got := tok.Encode(in)
				if !sameIDs(got, outputs[i]) {
					t.Errorf("Encode(%q)\n got %v\nwant %v", in, got, outputs[i])
					continue
				}
				pass++
				want := in
				if fam.nfc {
					want = norm.NFC.String(in)
				}
				if dec := tok.Decode(got); dec != want {
					t.Errorf("Decode(Encode(%q)) = %q", in, dec)
				}
			}
			total += pass
			t.Logf("%s: %d/%d vectors", fam.name, pass, len(inputs))
		})
	}
	t.Logf("%d vectors pass in %d families", total, len(vocabFamilies))
}

func updateFixture(t *testing.T, dir string, fam vocabFamily) {
	gguf := filepath.Join(dir, "ggml-vocab-"+fam.name+".gguf")
	full, err := ggufTokenizerJSON(fam, gguf)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Parse(full)
	if err != nil {
		t.Fatalf("%s: %v", fam.name, err)
	}
	dst := filepath.Join("testdata", "llamacpp")
	for _, ext := range []string{".inp", ".out"} {
		b, err := os.ReadFile(gguf + ext)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, "ggml-vocab-"+fam.name+".gguf"+ext), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	inputs, _ := llamaCppVectors(t, fam.name)
	small, err := prune(tok, full, append(inputs, roundTripTexts...))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fixturePath(fam.name), append(small, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	// The pruned file encodes like the full one.
	again, err := Parse(small)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range append(inputs, roundTripTexts...) {
		if a, b := tok.Encode(in), again.Encode(in); !sameIDs(a, b) {
			t.Errorf("%s: pruned file encodes %q as %v, full %v", fam.name, in, b, a)
		}
	}
	t.Logf("%s: %d bytes from %d", fam.name, len(small), len(full))
}

// roundTripTexts are encoded and decoded by every family besides the
// llama.cpp inputs (and reach the fixtures' vocabularies).
var roundTripTexts = []string{
	"The quick brown fox jumps over the lazy dog.",
	"  leading spaces, trailing ones  ",
	"Tabs\tand\nnewlines\r\n\r\nand more\n\n\n",
	"naïve café, Straße,日本語のテキスト, 한국어, Ελληνικά, русский",
	"emoji 🙂🙃👍🏽 and symbols ∑∫√ ½ ²³",
	"code: func main() { fmt.Println(\"hi\") } // x += 1;",
	"numbers 1234567890 3.14159 1e-9 -42",
	"I'm sure they'll've DON'T 'S",
}

func TestRoundTripEveryFamily(t *testing.T) {
	for _, fam := range vocabFamilies {
		raw, err := os.ReadFile(fixturePath(fam.name))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range roundTripTexts {
			want := s
			if fam.nfc {
				want = norm.NFC.String(s)
			}
			if got := tok.Decode(tok.Encode(s)); got != want {
				t.Errorf("%s: Decode(Encode(%q)) = %q", fam.name, s, got)
			}
		}
		// Save and Load keep every component.
		path := filepath.Join(t.TempDir(), "tokenizer.json")
		if err := tok.Save(path); err != nil {
			t.Fatal(err)
		}
		again, err := Load(path)
		if err != nil {
			t.Fatalf("%s: Load after Save: %v", fam.name, err)
		}
		for _, s := range roundTripTexts {
			if a, b := tok.Encode(s), again.Encode(s); !sameIDs(a, b) || again.Decode(b) != tok.Decode(a) {
				t.Errorf("%s: %q encodes as %v after Save/Load, %v before", fam.name, s, b, a)
			}
		}
		// Text outside the pruned vocabulary still round-trips through
		// byte tokens (byte-level, or SentencePiece byte fallback).
		for _, s := range []string{"zqxjv ǅ ꙮ 𝔘𝔫𝔦", "\x01\x7f"} {
			if !utf8.ValidString(s) {
				continue
			}
			if got := tok.Decode(tok.Encode(s)); got != s {
				t.Errorf("%s: Decode(Encode(%q)) = %q", fam.name, s, got)
			}
		}
	}
}
