package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/loraflow/loraflow/internal/safeio"
)

// AddedToken is an entry of tokenizer.json's "added_tokens".
type AddedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// PreTokenizer names the layout of a tokenizer's pre_tokenizer.
type PreTokenizer string

const (
	PreTokenizerGPT2   PreTokenizer = "gpt2"   // ByteLevel with GPT-2's pattern
	PreTokenizerLlama3 PreTokenizer = "llama3" // Split(Llama 3's pattern), ByteLevel
	PreTokenizerQwen2  PreTokenizer = "qwen2"  // Split(Qwen2's pattern), ByteLevel
	PreTokenizerNone   PreTokenizer = "none"   // no pre_tokenizer (Llama 2's and Gemma's files)
	PreTokenizerOther  PreTokenizer = "other"  // any other supported layout
)

// Tokenizer is a BPE tokenizer. It is safe for concurrent use.
type Tokenizer struct {
	model          *bpe
	pre            preTokenizer
	normalize      normalizer // nil: none
	decode         decoder    // nil: tokens joined as they are
	added          []AddedToken
	addedByContent map[string]int // content -> index in added
	addedByID      map[int]int    // id -> index in added
	addedByFirst   byFirst        // first byte -> indexes in added, longest first (raw matching)
	normByFirst    byFirst        // the same for normalized added tokens, by normalized content
	normContent    []string       // normalized content of each added token ("" when not normalized)
	idToToken      map[int]string // token of each vocab id (byte-level spelling when byte-level)
	vocabSize      int
	raw            fileJSON // components kept verbatim for Save
}

// ErrUnsupported is matched (errors.Is) when a tokenizer.json uses a model,
// normalizer, pre-tokenizer or decoder this package does not implement.
var ErrUnsupported = errors.New("unsupported tokenizer")

type modelJSON struct {
	Type                    string          `json:"type"`
	Vocab                   map[string]int  `json:"vocab"`
	Merges                  json.RawMessage `json:"merges"`
	IgnoreMerges            bool            `json:"ignore_merges"`
	ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
	ByteFallback            bool            `json:"byte_fallback"`
	Dropout                 *float64        `json:"dropout"`
	UnkToken                *string         `json:"unk_token"`
	FuseUnk                 bool            `json:"fuse_unk"`
}

type fileJSON struct {
	AddedTokens   []AddedToken    `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         *modelJSON      `json:"model"`
}

// Load reads a Hugging Face tokenizer.json holding a BPE model: byte-level
// (GPT-2, Llama 3, Qwen2) or SentencePiece-style with byte fallback (Llama 2,
// Mistral, Gemma, Phi-3).
func Load(path string) (*Tokenizer, error) {
	raw, err := safeio.ReadFile(path, MaxFileBytes) // limits.go: a FIFO, a device or a huge file is refused unread
	if err != nil {
		if errors.Is(err, safeio.ErrTooLarge) {
			err = fmt.Errorf("%w: %w", ErrLimit, err)
		}
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return t, nil
}

// Parse reads the content of a tokenizer.json (see Load).
func Parse(data []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("tokenizer JSON: %w", err)
	}
	if f.Model == nil {
		return nil, errors.New(`no "model"`)
	}
	if f.Model.Type != "" && f.Model.Type != "BPE" {
		return nil, fmt.Errorf("model type %q: %w (want BPE)", f.Model.Type, ErrUnsupported)
	}
	if s := f.Model.ContinuingSubwordPrefix; s != nil && *s != "" {
		return nil, fmt.Errorf("continuing_subword_prefix %q: %w", *s, ErrUnsupported)
	}
	if s := f.Model.EndOfWordSuffix; s != nil && *s != "" {
		return nil, fmt.Errorf("end_of_word_suffix %q: %w", *s, ErrUnsupported)
	}
	if d := f.Model.Dropout; d != nil && *d != 0 {
		return nil, fmt.Errorf("BPE dropout %v: %w", *d, ErrUnsupported)
	}
	if err := checkLimits(&f); err != nil {
		return nil, err
	}
	norm, err := parseNormalizer(f.Normalizer)
	if err != nil {
		return nil, err
	}
	pre, err := parsePreTokenizer(f.PreTokenizer)
	if err != nil {
		return nil, err
	}
	if pre.byteLevel && f.Model.ByteFallback {
		return nil, fmt.Errorf("byte_fallback with a ByteLevel pre-tokenizer: %w", ErrUnsupported)
	}
	merges, err := parseMerges(f.Model.Merges)
	if err != nil {
		return nil, err
	}
	t, err := build(f.Model.Vocab, merges, f.AddedTokens, pre, modelOptions{
		ignoreMerges: f.Model.IgnoreMerges, byteFallback: f.Model.ByteFallback, unkToken: f.Model.UnkToken, fuseUnk: f.Model.FuseUnk,
	}, norm)
	if err != nil {
		return nil, err
	}
	if t.decode, err = parseDecoder(f.Decoder, pre.byteLevel); err != nil {
		return nil, err
	}
	f.Model = nil
	f.AddedTokens = nil
	t.raw = f
	return t, nil
}

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// parseMerges accepts both forms: ["a b", ...] and [["a","b"], ...].
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	var strs []string
	if err := json.Unmarshal(raw, &strs); err == nil {
		out := make([][2]string, len(strs))
		for i, s := range strs {
			a, b, ok := strings.Cut(s, " ")
			if !ok || a == "" || b == "" || strings.Contains(b, " ") {
				return nil, fmt.Errorf("model.merges[%d] = %q: want two tokens separated by one space", i, s)
			}
			out[i] = [2]string{a, b}
		}
		return out, nil
	}
	var pairs [][]string
	if err := json.Unmarshal(raw, &pairs); err == nil {
		out := make([][2]string, len(pairs))
		for i, p := range pairs {
			if len(p) != 2 {
				return nil, fmt.Errorf("model.merges[%d] has %d tokens, want 2", i, len(p))
			}
			out[i] = [2]string{p[0], p[1]}
		}
		return out, nil
	}
	var items []json.RawMessage // mixed forms
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("model.merges: %w", err)
	}
	out := make([][2]string, len(items))
	for i, it := range items {
		var s string
		if err := json.Unmarshal(it, &s); err == nil {
			a, b, ok := strings.Cut(s, " ")
			if !ok || a == "" || b == "" || strings.Contains(b, " ") {
				return nil, fmt.Errorf("model.merges[%d] = %q: want two tokens separated by one space", i, s)
			}
			out[i] = [2]string{a, b}
			continue
		}
		var pair []string
		if err := json.Unmarshal(it, &pair); err != nil || len(pair) != 2 {
			return nil, fmt.Errorf("model.merges[%d] = %s: want \"a b\" or [\"a\",\"b\"]", i, truncate(it))
		}
		out[i] = [2]string{pair[0], pair[1]}
	}
	return out, nil
}

type modelOptions struct {
	ignoreMerges bool
	byteFallback bool
	unkToken     *string
	fuseUnk      bool
}

func build(vocab map[string]int, merges [][2]string, added []AddedToken, pre preTokenizer, opt modelOptions, norm normalizer) (*Tokenizer, error) {
	if len(vocab) == 0 {
		return nil, errors.New("model.vocab is empty")
	}
	m := &bpe{vocab: vocab, merges: make(map[uint64]merge, len(merges)), ignoreMerges: opt.ignoreMerges,
		byteLevel: pre.byteLevel, byteFallback: opt.byteFallback, fuseUnk: opt.fuseUnk, unkID: -1}
	if opt.unkToken != nil {
		id, ok := vocab[*opt.unkToken]
		if !ok {
			return nil, fmt.Errorf("model.unk_token %q not in vocab", *opt.unkToken)
		}
		m.unkID, m.unkToken = id, *opt.unkToken
	}
	t := &Tokenizer{model: m, pre: pre, normalize: norm, idToToken: make(map[int]string, len(vocab)),
		addedByContent: map[string]int{}, addedByID: map[int]int{}}
	for tok, id := range vocab {
		if id < 0 {
			return nil, fmt.Errorf("model.vocab[%q] = %d: negative id", tok, id)
		}
		if other, dup := t.idToToken[id]; dup {
			return nil, fmt.Errorf("model.vocab: id %d used by both %q and %q", id, other, tok)
		}
		t.idToToken[id] = tok
		t.vocabSize = max(t.vocabSize, id+1)
	}
	for rank, mg := range merges {
		a, okA := vocab[mg[0]]
		b, okB := vocab[mg[1]]
		c, okC := vocab[mg[0]+mg[1]]
		if !okA || !okB || !okC {
			return nil, fmt.Errorf("model.merges[%d] %q %q: token not in vocab", rank, mg[0], mg[1])
		}
		k := pairKey(a, b)
		if _, dup := m.merges[k]; !dup {
			m.merges[k] = merge{rank: rank, id: c}
		}
		m.mergeList = append(m.mergeList, mg)
	}
	m.init()
	for _, at := range added {
		if at.Content == "" {
			return nil, fmt.Errorf("added_tokens: id %d has empty content", at.ID)
		}
		if at.ID < 0 {
			return nil, fmt.Errorf("added_tokens %q: negative id %d", at.Content, at.ID)
		}
		if _, dup := t.addedByContent[at.Content]; dup {
			return nil, fmt.Errorf("added_tokens: %q listed twice", at.Content)
		}
		t.addedByContent[at.Content] = len(t.added)
		t.addedByID[at.ID] = len(t.added)
		t.added = append(t.added, at)
		t.vocabSize = max(t.vocabSize, at.ID+1)
	}
	// As AddedVocabulary in tokenizers/src/tokenizer/added_vocabulary.rs:
	// tokens with normalized=false (or all, without a normalizer) are found
	// in the raw text; the others in each normalized stretch between those,
	// by their own normalized content.
	t.normContent = make([]string, len(t.added))
	for i, at := range t.added {
		if at.Normalized && norm != nil {
			c := norm(at.Content)
			if c == "" {
				return nil, fmt.Errorf("added_tokens %q: empty after normalization", at.Content)
			}
			t.normContent[i] = c
			t.normByFirst.add(c[0], i)
			continue
		}
		t.addedByFirst.add(at.Content[0], i)
	}
	for _, tbl := range []struct {
		idx     *byFirst
		content func(int) string
	}{{&t.addedByFirst, func(i int) string { return t.added[i].Content }}, {&t.normByFirst, func(i int) string { return t.normContent[i] }}} {
		for _, idx := range tbl.idx.lists {
			sort.Slice(idx, func(a, b int) bool {
				ca, cb := tbl.content(idx[a]), tbl.content(idx[b])
				if len(ca) != len(cb) {
					return len(ca) > len(cb)
				}
				return ca < cb
			})
		}
	}
	return t, nil
}

// VocabSize is one more than the largest id, counting added tokens (as
// Hugging Face's get_vocab_size(with_added_tokens=True)).
func (t *Tokenizer) VocabSize() int { return t.vocabSize }

// PreTokenizer returns the layout of the tokenizer's pre_tokenizer.
func (t *Tokenizer) PreTokenizer() PreTokenizer { return t.pre.name }

// ByteLevel reports whether the model's tokens spell bytes with GPT-2's
// byte-to-unicode table.
func (t *Tokenizer) ByteLevel() bool { return t.model.byteLevel }

// TokenID returns the id of a token: an added token's content, or a model
// token as the vocabulary spells it (e.g. "Ġthe" byte-level, "▁the"
// SentencePiece-style).
func (t *Tokenizer) TokenID(token string) (int, bool) {
	if i, ok := t.addedByContent[token]; ok {
		return t.added[i].ID, true
	}
	id, ok := t.model.vocab[token]
	return id, ok
}

// IDToken returns the token of an id, as TokenID spells it.
func (t *Tokenizer) IDToken(id int) (string, bool) {
	if i, ok := t.addedByID[id]; ok {
		return t.added[i].Content, true
	}
	s, ok := t.idToToken[id]
	return s, ok
}

// SpecialID returns the id of a special added token such as "<|endoftext|>".
func (t *Tokenizer) SpecialID(name string) (int, bool) {
	if i, ok := t.addedByContent[name]; ok && t.added[i].Special {
		return t.added[i].ID, true
	}
	return 0, false
}

// AddedTokens returns the added tokens, in file order.
func (t *Tokenizer) AddedTokens() []AddedToken { return append([]AddedToken(nil), t.added...) }

// IsSpecial reports whether id is a special added token.
func (t *Tokenizer) IsSpecial(id int) bool {
	i, ok := t.addedByID[id]
	return ok && t.added[i].Special
}

// Encode returns the token ids of text. Added tokens are matched first
// (leftmost, longest), then each stretch of other text is normalized,
// pre-tokenized and BPE-encoded. No BOS or EOS is added (the
// post-processor's template is not applied).
func (t *Tokenizer) Encode(text string) []int {
	ids := make([]int, 0, len(text)/3+1)
	t.eachAdded(text, &t.addedByFirst, func(i int) string { return t.added[i].Content }, func(seg string, at int, idx int) {
		if idx >= 0 {
			ids = append(ids, t.added[idx].ID)
			return
		}
		ids = t.encodeSegment(ids, seg, at == 0)
	})
	return ids
}

// eachAdded cuts text at the added tokens of table, calling f with each
// stretch of other text (idx -1) or each token (its index), in order; at is
// the byte offset of the stretch.
func (t *Tokenizer) eachAdded(text string, table *byFirst, content func(int) string, f func(seg string, at, idx int)) {
	start := 0
	for start < len(text) {
		s, e, idx := nextAdded(text, start, table, content, t.added)
		if idx < 0 {
			f(text[start:], start, -1)
			return
		}
		if s > start {
			f(text[start:s], start, -1)
		}
		f("", s, idx)
		start = e
	}
}

func (t *Tokenizer) encodeSegment(ids []int, seg string, first bool) []int {
	if seg == "" {
		return ids
	}
	if t.normalize == nil {
		return t.encodeNormalized(ids, seg, first)
	}
	seg = t.normalize(seg)
	if t.normByFirst.n == 0 {
		return t.encodeNormalized(ids, seg, first)
	}
	t.eachAdded(seg, &t.normByFirst, func(i int) string { return t.normContent[i] }, func(s string, at, idx int) {
		if idx >= 0 {
			ids = append(ids, t.added[idx].ID)
			return
		}
		ids = t.encodeNormalized(ids, s, first && at == 0)
	})
	return ids
}

func (t *Tokenizer) encodeNormalized(ids []int, text string, first bool) []int {
	if text == "" {
		return ids
	}
	t.pre.run(text, first, func(piece string) { ids = t.model.encodeWord(ids, piece) })
	return ids
}

// nextAdded finds the leftmost added token of table at or after from,
// returning the span it consumes (widened by lstrip/rstrip) and its index,
// or idx -1.
func nextAdded(text string, from int, table *byFirst, content func(int) string, added []AddedToken) (s, e, idx int) {
	if table.n == 0 {
		return 0, 0, -1
	}
	for i := from; i < len(text); i++ {
		cands := table.lists[text[i]]
		for _, c := range cands {
			at := added[c]
			tok := content(c)
			if !strings.HasPrefix(text[i:], tok) {
				continue
			}
			end := i + len(tok)
			if at.SingleWord && !wordBoundary(text, i, end) {
				continue
			}
			s, e = i, end
			if at.LStrip {
				for s > from {
					r, n := utf8.DecodeLastRuneInString(text[from:s])
					if !unicode.IsSpace(r) {
						break
					}
					s -= n
				}
			}
			if at.RStrip {
				for e < len(text) {
					r, n := utf8.DecodeRuneInString(text[e:])
					if !unicode.IsSpace(r) {
						break
					}
					e += n
				}
			}
			return s, e, c
		}
	}
	return 0, 0, -1
}

// byFirst indexes added tokens by their first byte.
type byFirst struct {
	lists [256][]int
	n     int
}

func (b *byFirst) add(c byte, i int) { b.lists[c] = append(b.lists[c], i); b.n++ }

func isWordRune(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

func wordBoundary(text string, s, e int) bool {
	if s > 0 {
		if r, _ := utf8.DecodeLastRuneInString(text[:s]); isWordRune(r) {
			return false
		}
	}
	if e < len(text) {
		if r, _ := utf8.DecodeRuneInString(text[e:]); isWordRune(r) {
			return false
		}
	}
	return true
}

// Decode turns ids back into text, including added and special tokens'
// content, through the tokenizer's decoder (ByteLevel: raw bytes back, so
// Decode(Encode(s)) == s for every s, a sequence cut inside a multi-byte
// character yielding the raw, invalid UTF-8 bytes; SentencePiece-style:
// Replace, ByteFallback, Fuse, Strip). Unknown ids are skipped.
func (t *Tokenizer) Decode(ids []int) string { return t.decodeIDs(ids, false) }

// DecodeSkipSpecial is Decode without special tokens.
func (t *Tokenizer) DecodeSkipSpecial(ids []int) string { return t.decodeIDs(ids, true) }

func (t *Tokenizer) decodeIDs(ids []int, skipSpecial bool) string {
	toks := make([]decTok, 0, len(ids))
	for _, id := range ids {
		if i, ok := t.addedByID[id]; ok {
			if skipSpecial && t.added[i].Special {
				continue
			}
			toks = append(toks, decTok{s: t.added[i].Content, added: true})
			continue
		}
		if s, ok := t.idToToken[id]; ok {
			toks = append(toks, decTok{s: s})
		}
	}
	if t.decode != nil {
		toks = t.decode(toks)
	}
	var b strings.Builder
	for _, tk := range toks {
		b.WriteString(tk.s)
	}
	return b.String()
}
