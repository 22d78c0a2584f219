package tokenizer

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"
)

// TestRejectsHostileTokenizer: a tokenizer.json without merges, with an id
// or a token over the limits, too large, or not a regular file is refused
// with an error naming the entry or the file.
func TestRejectsHostileTokenizer(t *testing.T) {
	base := strings.Replace(tinyJSON, "MERGES", `["a b"]`, 1)
	huge := strings.Repeat("x", MaxTokenBytes+1)
	for name, c := range map[string]struct {
		json, want string
		limit      bool
	}{
		"no merges":       {strings.Replace(tinyJSON, `"merges": MERGES`, `"ignore_merges": false`, 1), "model.merges is missing", false},
		"null merges":     {strings.Replace(tinyJSON, "MERGES", `null`, 1), "model.merges is missing", false},
		"huge id":         {strings.Replace(base, `"a": 0`, `"a": 4294967296`, 1), `model.vocab["a"] = 4294967296`, true},
		"huge token":      {strings.Replace(base, `"a": 0`, `"a": 0, "`+huge+`": 99`, 1), "a 4097-byte token", true},
		"huge added id":   {strings.Replace(base, `"id": 7`, `"id": 16777216`, 1), "added_tokens[0]", true},
		"huge added text": {strings.Replace(base, `"content": "<eos>"`, `"content": "`+huge+`"`, 1), "added_tokens[0]: a 4097-byte token", true},
	} {
		_, err := Parse([]byte(c.json))
		if err == nil || !strings.Contains(err.Error(), c.want) || errors.Is(err, ErrLimit) != c.limit {
			t.Errorf("%s: %v, want an error saying %q (ErrLimit %v)", name, err, c.want, c.limit)
		}
	}
	dir := t.TempDir()
	big := filepath.Join(dir, "tokenizer.json")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, MaxFileBytes+1); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), big) {
		t.Errorf("huge file: %v", err)
	}
	fifo := filepath.Join(dir, "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if _, err := Load(fifo); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("FIFO: %v", err)
	}
}

// FuzzParseEncode feeds arbitrary tokenizer.json bytes to Parse and, when
// one is accepted, encodes and decodes text with it. Neither may panic; every
// id Encode returns must be below VocabSize and name a token; for a
// byte-level BPE, Decode(Encode(s)) gives s back for valid UTF-8 s. The seeds
// (the tiny test tokenizer, its merge forms and the hostile edits above) run
// as a normal test in CI; fuzz with
//
//	go test ./lora/tokenizer -run '^$' -fuzz FuzzParseEncode -fuzztime 10m
func FuzzParseEncode(f *testing.F) {
	f.Add([]byte(strings.Replace(tinyJSON, "MERGES", `["a b", "Ġ ab", "a a", "aa a"]`, 1)), "ab ab <eos> aaaa")
	f.Add([]byte(strings.Replace(tinyJSON, "MERGES", `[["a","b"], ["Ġ","ab"]]`, 1)), "b a\n\xff")
	f.Add([]byte(strings.Replace(tinyJSON, "MERGES", `null`, 1)), "")
	f.Add([]byte(strings.Replace(tinyJSON, "MERGES", `["a c"]`, 1)), "a")
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{},"merges":[]}}`), "x")
	f.Add([]byte(`{}`), "")
	f.Add(byteComplete(f), "héllo wörld  123\n")
	for _, name := range []string{"llama-spm", "gemma-4", "falcon"} { // SentencePiece-style, Punctuation and Split steps
		if raw, err := os.ReadFile(fixturePath(name)); err == nil {
			f.Add(raw, "Hello wörld  123\n")
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, text string) {
		tok, err := Parse(data)
		if err != nil {
			return
		}
		if len(text) > 1<<12 {
			text = text[:1<<12]
		}
		ids := tok.Encode(text)
		for _, id := range ids {
			if id < 0 || id >= tok.VocabSize() {
				t.Fatalf("Encode(%q) gave id %d outside [0,%d)", text, id, tok.VocabSize())
			}
		}
		got := tok.Decode(ids)
		if utf8.ValidString(text) && complete(tok) && !mentionsAdded(tok, text) && got != text {
			t.Fatalf("Decode(Encode(%q)) = %q", text, got)
		}
	})
}

// mentionsAdded reports whether text holds an added token's content (whose
// lstrip and rstrip options drop the spaces around it).
func mentionsAdded(tok *Tokenizer, text string) bool {
	for _, at := range tok.AddedTokens() {
		if strings.Contains(text, at.Content) {
			return true
		}
	}
	return false
}

// complete reports whether every one of the 256 byte-level symbols is in the
// vocabulary of a byte-level tokenizer with a lossless pipeline (no
// normalizer, a known pre-tokenizer layout: a Split that removes text, or
// Lowercase, is not lossless), the condition for a lossless round trip.
func complete(tok *Tokenizer) bool {
	switch tok.PreTokenizer() {
	case PreTokenizerGPT2, PreTokenizerLlama3, PreTokenizerQwen2:
	default:
		return false
	}
	if !tok.ByteLevel() || tok.normalize != nil {
		return false
	}
	for b := 0; b < 256; b++ {
		if _, ok := tok.TokenID(string(byteToRune[b])); !ok {
			return false
		}
	}
	return true
}

// byteComplete is a tokenizer.json whose vocabulary holds the 256 byte-level
// symbols and one merge, so the round trip is checked.
func byteComplete(f *testing.F) []byte {
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[string(byteToRune[b])] = b
	}
	vocab["he"] = 256
	m := map[string]any{"pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
		"model": map[string]any{"type": "BPE", "vocab": vocab, "merges": []string{"h e"}}}
	b, err := json.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
