package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/loraflow/loraflow/internal/atomicfile"
)

// FromGPT2Files builds the GPT-2 tokenizer from OpenAI's encoder.json (token
// -> id, byte-level spelling) and vocab.bpe (one merge "a b" a line after a
// "#version" line). "<|endoftext|>" becomes a special added token when the
// vocabulary has it.
func FromGPT2Files(encoderJSON, vocabBPE []byte) (*Tokenizer, error) {
	var vocab map[string]int
	if err := json.Unmarshal(encoderJSON, &vocab); err != nil {
		return nil, fmt.Errorf("tokenizer: encoder.json: %w", err)
	}
	var merges [][2]string
	sc := bufio.NewScanner(bytes.NewReader(vocabBPE))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimRight(sc.Text(), "\r")
		if s == "" || (line == 1 && strings.HasPrefix(s, "#")) {
			continue
		}
		a, b, ok := strings.Cut(s, " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return nil, fmt.Errorf("tokenizer: vocab.bpe line %d %q: want two tokens separated by one space", line, s)
		}
		merges = append(merges, [2]string{a, b})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokenizer: vocab.bpe: %w", err)
	}
	var added []AddedToken
	if id, ok := vocab["<|endoftext|>"]; ok {
		added = append(added, AddedToken{ID: id, Content: "<|endoftext|>", Normalized: true, Special: true})
	}
	t, err := buildGPT2(vocab, merges, added)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: GPT-2 files: %w", err)
	}
	return t, nil
}

// gpt2PreTokenizer is the pre_tokenizer of GPT-2's tokenizer.json.
const gpt2PreTokenizer = `{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}`

// buildGPT2 builds a byte-level tokenizer with GPT-2's pre-tokenizer and
// decoder, no normalizer.
func buildGPT2(vocab map[string]int, merges [][2]string, added []AddedToken) (*Tokenizer, error) {
	pre, err := parsePreTokenizer(json.RawMessage(gpt2PreTokenizer))
	if err != nil {
		return nil, err
	}
	t, err := build(vocab, merges, added, pre, modelOptions{}, nil)
	if err != nil {
		return nil, err
	}
	t.decode = byteLevelDecode
	return t, nil
}

type orderedVocab map[int]string // id -> token, written in id order

func (v orderedVocab) MarshalJSON() ([]byte, error) {
	ids := make([]int, 0, len(v))
	for id := range v {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, id := range ids {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := marshalNoEscape(v[id])
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		fmt.Fprintf(&buf, ":%d", id)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

type modelOut struct {
	Type                    string       `json:"type"`
	Dropout                 *float64     `json:"dropout"`
	UnkToken                *string      `json:"unk_token"`
	ContinuingSubwordPrefix *string      `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string      `json:"end_of_word_suffix"`
	FuseUnk                 bool         `json:"fuse_unk"`
	ByteFallback            bool         `json:"byte_fallback"`
	IgnoreMerges            bool         `json:"ignore_merges"`
	Vocab                   orderedVocab `json:"vocab"`
	Merges                  []string     `json:"merges"`
}

type fileOut struct {
	Version       string          `json:"version"`
	Truncation    json.RawMessage `json:"truncation"`
	Padding       json.RawMessage `json:"padding"`
	AddedTokens   []AddedToken    `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         modelOut        `json:"model"`
}

const (
	byteLevelDecoder = `{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true}`
	byteLevelPost    = `{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true}`
)

// MarshalJSON returns the tokenizer.json content that Save writes.
func (t *Tokenizer) MarshalJSON() ([]byte, error) {
	null := json.RawMessage("null")
	orNull := func(r json.RawMessage, def string) json.RawMessage {
		if len(bytes.TrimSpace(r)) == 0 {
			return json.RawMessage(def)
		}
		return r
	}
	merges := make([]string, len(t.model.mergeList))
	for i, m := range t.model.mergeList {
		merges[i] = m[0] + " " + m[1]
	}
	added := t.added
	if added == nil {
		added = []AddedToken{}
	}
	out := fileOut{
		Version: "1.0", Truncation: null, Padding: null, AddedTokens: added,
		Normalizer:    orNull(t.raw.Normalizer, "null"),
		PreTokenizer:  orNull(t.raw.PreTokenizer, gpt2PreTokenizer),
		PostProcessor: orNull(t.raw.PostProcessor, byteLevelPost),
		Decoder:       orNull(t.raw.Decoder, byteLevelDecoder),
		Model: modelOut{Type: "BPE", IgnoreMerges: t.model.ignoreMerges, ByteFallback: t.model.byteFallback, FuseUnk: t.model.fuseUnk,
			Vocab: orderedVocab(t.idToToken), Merges: merges},
	}
	if t.model.unkID >= 0 {
		out.Model.UnkToken = &t.model.unkToken
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Save writes the tokenizer as a Hugging Face tokenizer.json, atomically
// (temporary file, fsync, rename). Merges are written in the "a b" string
// form, which every tokenizers version reads.
func (t *Tokenizer) Save(path string) error {
	b, err := t.MarshalJSON()
	if err != nil {
		return fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, b); err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	return nil
}
