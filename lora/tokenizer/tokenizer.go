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

// PreTokenizer names a supported pre-tokenizer pattern.
type PreTokenizer string

const (
	PreTokenizerGPT2   PreTokenizer = "gpt2"
	PreTokenizerLlama3 PreTokenizer = "llama3"
)

// Tokenizer is a byte-level BPE tokenizer. It is safe for concurrent use.
type Tokenizer struct {
	model          *bpe
	pre            PreTokenizer
	split          splitter
	addPrefixSpace bool
	added          []AddedToken
	addedByContent map[string]int // content -> index in added
	addedByID      map[int]int    // id -> index in added
	addedByFirst   map[byte][]int // first byte -> indexes in added, longest first
	idToToken      map[int]string // byte-level token of each vocab id
	vocabSize      int
	postProcessor  json.RawMessage // kept for Save
	decoder        json.RawMessage
}

// ErrUnsupported is matched (errors.Is) when a tokenizer.json uses a model,
// normalizer or pre-tokenizer this package does not implement.
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
}

type fileJSON struct {
	AddedTokens   []AddedToken    `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         *modelJSON      `json:"model"`
}

type preTokJSON struct {
	Type           string       `json:"type"`
	AddPrefixSpace bool         `json:"add_prefix_space"`
	UseRegex       *bool        `json:"use_regex"`
	Pretokenizers  []preTokJSON `json:"pretokenizers"`
	Pattern        *struct {
		Regex *string `json:"Regex"`
	} `json:"pattern"`
	Behavior string `json:"behavior"`
	Invert   bool   `json:"invert"`
}

// Load reads a Hugging Face tokenizer.json holding a byte-level BPE model
// with the GPT-2 or Llama 3 pre-tokenizer.
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
	if f.Model.ByteFallback {
		return nil, fmt.Errorf("byte_fallback: %w", ErrUnsupported)
	}
	if d := f.Model.Dropout; d != nil && *d != 0 {
		return nil, fmt.Errorf("BPE dropout %v: %w", *d, ErrUnsupported)
	}
	if n := bytes.TrimSpace(f.Normalizer); len(n) > 0 && string(n) != "null" {
		return nil, fmt.Errorf("normalizer %s: %w", truncate(n), ErrUnsupported)
	}
	if err := checkLimits(&f); err != nil {
		return nil, err
	}
	pre, prefix, err := parsePreTokenizer(f.PreTokenizer)
	if err != nil {
		return nil, err
	}
	merges, err := parseMerges(f.Model.Merges)
	if err != nil {
		return nil, err
	}
	t, err := build(f.Model.Vocab, merges, f.Model.IgnoreMerges, f.AddedTokens, pre, prefix)
	if err != nil {
		return nil, err
	}
	t.postProcessor = f.PostProcessor
	t.decoder = f.Decoder
	return t, nil
}

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

func parsePreTokenizer(raw json.RawMessage) (PreTokenizer, bool, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return "", false, fmt.Errorf("no pre_tokenizer: %w (want ByteLevel)", ErrUnsupported)
	}
	var p preTokJSON
	if err := json.Unmarshal(raw, &p); err != nil {
		return "", false, fmt.Errorf("pre_tokenizer: %w", err)
	}
	switch {
	case p.Type == "ByteLevel" && (p.UseRegex == nil || *p.UseRegex):
		return PreTokenizerGPT2, p.AddPrefixSpace, nil
	case p.Type == "Sequence" && len(p.Pretokenizers) == 2:
		s, b := p.Pretokenizers[0], p.Pretokenizers[1]
		if s.Type != "Split" || s.Pattern == nil || s.Pattern.Regex == nil || s.Invert || s.Behavior != "Isolated" ||
			b.Type != "ByteLevel" || (b.UseRegex != nil && *b.UseRegex) {
			break
		}
		switch *s.Pattern.Regex {
		case GPT2Pattern:
			return PreTokenizerGPT2, b.AddPrefixSpace, nil
		case Llama3Pattern:
			return PreTokenizerLlama3, b.AddPrefixSpace, nil
		}
		return "", false, fmt.Errorf("pre_tokenizer split pattern %q: %w (want the GPT-2 or Llama 3 pattern)", *s.Pattern.Regex, ErrUnsupported)
	}
	return "", false, fmt.Errorf("pre_tokenizer %s: %w (want ByteLevel, or Split(GPT-2 or Llama 3 pattern) then ByteLevel)", truncate(raw), ErrUnsupported)
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

func build(vocab map[string]int, merges [][2]string, ignoreMerges bool, added []AddedToken, pre PreTokenizer, prefix bool) (*Tokenizer, error) {
	if len(vocab) == 0 {
		return nil, errors.New("model.vocab is empty")
	}
	m := &bpe{vocab: vocab, merges: make(map[uint64]merge, len(merges)), ignoreMerges: ignoreMerges}
	t := &Tokenizer{model: m, pre: pre, addPrefixSpace: prefix, idToToken: make(map[int]string, len(vocab)),
		addedByContent: map[string]int{}, addedByID: map[int]int{}, addedByFirst: map[byte][]int{}}
	switch pre {
	case PreTokenizerGPT2:
		t.split = splitGPT2
	case PreTokenizerLlama3:
		t.split = splitLlama3
	default:
		return nil, fmt.Errorf("pre-tokenizer %q: %w", pre, ErrUnsupported)
	}
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
	for i, at := range t.added {
		t.addedByFirst[at.Content[0]] = append(t.addedByFirst[at.Content[0]], i)
	}
	for _, idx := range t.addedByFirst {
		sort.Slice(idx, func(a, b int) bool {
			ca, cb := t.added[idx[a]].Content, t.added[idx[b]].Content
			if len(ca) != len(cb) {
				return len(ca) > len(cb)
			}
			return ca < cb
		})
	}
	return t, nil
}

// VocabSize is one more than the largest id, counting added tokens (as
// Hugging Face's get_vocab_size(with_added_tokens=True)).
func (t *Tokenizer) VocabSize() int { return t.vocabSize }

// PreTokenizer returns which pre-tokenizer pattern the tokenizer uses.
func (t *Tokenizer) PreTokenizer() PreTokenizer { return t.pre }

// TokenID returns the id of a token: an added token's content, or a model
// token in its byte-level spelling (e.g. "Ġthe").
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
// (leftmost, longest), then each stretch of other text is pre-tokenized and
// BPE-encoded. No BOS or EOS is added.
func (t *Tokenizer) Encode(text string) []int {
	ids := make([]int, 0, len(text)/3+1)
	start := 0
	for start < len(text) {
		s, e, idx := t.nextAdded(text, start)
		if idx < 0 {
			ids = t.encodePlain(ids, text[start:])
			break
		}
		ids = t.encodePlain(ids, text[start:s])
		ids = append(ids, t.added[idx].ID)
		start = e
	}
	return ids
}

func (t *Tokenizer) encodePlain(ids []int, text string) []int {
	if text == "" {
		return ids
	}
	if t.addPrefixSpace && text[0] != ' ' {
		text = " " + text
	}
	t.split(text, func(piece string) { ids = t.model.encodeWord(ids, piece) })
	return ids
}

// nextAdded finds the leftmost added token at or after from, returning the
// span it consumes (widened by lstrip/rstrip) and its index, or idx -1.
func (t *Tokenizer) nextAdded(text string, from int) (s, e, idx int) {
	if len(t.added) == 0 {
		return 0, 0, -1
	}
	for i := from; i < len(text); i++ {
		cands := t.addedByFirst[text[i]]
		for _, c := range cands {
			at := t.added[c]
			if !strings.HasPrefix(text[i:], at.Content) {
				continue
			}
			end := i + len(at.Content)
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
// content. Byte-level tokens are mapped back to their raw bytes, so
// Decode(Encode(s)) == s for every s; a sequence cut inside a multi-byte
// character yields the raw (invalid UTF-8) bytes. Unknown ids are skipped.
func (t *Tokenizer) Decode(ids []int) string { return t.decode(ids, false) }

// DecodeSkipSpecial is Decode without special tokens.
func (t *Tokenizer) DecodeSkipSpecial(ids []int) string { return t.decode(ids, true) }

func (t *Tokenizer) decode(ids []int, skipSpecial bool) string {
	var buf []byte
	for _, id := range ids {
		if i, ok := t.addedByID[id]; ok {
			if skipSpecial && t.added[i].Special {
				continue
			}
			buf = append(buf, t.added[i].Content...)
			continue
		}
		if s, ok := t.idToToken[id]; ok {
			buf = fromByteLevel(buf, s)
		}
	}
	return string(buf)
}
