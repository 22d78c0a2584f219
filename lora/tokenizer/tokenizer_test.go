package tokenizer

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func pieces(split splitter, s string) []string {
	var out []string
	split(s, func(p string) { out = append(out, p) })
	return out
}

func TestSplitGPT2(t *testing.T) {
	cases := map[string][]string{
		"Hello world":          {"Hello", " world"},
		"I'm here, they'll go": {"I", "'m", " here", ",", " they", "'ll", " go"},
		"it's 'S":              {"it", "'s", " '", "S"},
		"a  b":                 {"a", " ", " b"},
		"a\n\nb":               {"a", "\n", "\n", "b"},
		"a \n b":               {"a", " \n", " b"},
		"x   ":                 {"x", "   "},
		"12345 678":            {"12345", " 678"},
		"hi!!! ?? ok":          {"hi", "!!!", " ??", " ok"},
		" \t":                  {" \t"},
		"\tword":               {"\t", "word"},
		"naïve café ½":         {"naïve", " café", " ½"},
		"\xff\xfeab":           {"\xff\xfe", "ab"},
	}
	for in, want := range cases {
		if got := pieces(splitGPT2, in); !reflect.DeepEqual(got, want) {
			t.Errorf("GPT-2 split %q = %q, want %q", in, got, want)
		}
	}
}

func TestSplitLlama3(t *testing.T) {
	cases := map[string][]string{
		"Hello world":        {"Hello", " world"},
		"I'M here, WE'LL go": {"I", "'M", " here", ",", " WE", "'LL", " go"},
		"12345 678":          {"123", "45", " ", "678"},
		"a\n\nb":             {"a", "\n\n", "b"},
		"a  \n  b":           {"a", "  \n", " ", " b"},
		"x   ":               {"x", "   "},
		"hi!!!\n\nok":        {"hi", "!!!\n\n", "ok"},
		"\tword (x)":         {"\tword", " (", "x", ")"},
		"'hello":             {"'hello"},
		"3.14":               {"3", ".", "14"},
	}
	for in, want := range cases {
		if got := pieces(splitLlama3, in); !reflect.DeepEqual(got, want) {
			t.Errorf("Llama 3 split %q = %q, want %q", in, got, want)
		}
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{"Hello world", "a \n\n b  c\t", "I'm 12345!!", "\xff'S x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, sp := range []splitter{splitGPT2, splitLlama3} {
			p := pieces(sp, s)
			if strings.Join(p, "") != s {
				t.Fatalf("pieces %q do not rebuild %q", p, s)
			}
			for _, x := range p {
				if x == "" {
					t.Fatalf("empty piece in %q", p)
				}
			}
		}
	})
}

func TestGPT2MatchesLlamaCppVectors(t *testing.T) {
	tok := gpt2Tokenizer(t)
	inputs, outputs := llamaCppVectors(t, "gpt-2")
	for i, in := range inputs {
		got := tok.Encode(in)
		if !sameIDs(got, outputs[i]) {
			t.Errorf("Encode(%q)\n got %v\nwant %v", in, got, outputs[i])
		}
		if dec := tok.Decode(got); dec != in {
			t.Errorf("Decode(Encode(%q)) = %q", in, dec)
		}
	}
	if got := tok.Encode("Hello world<|endoftext|> x"); !sameIDs(got, []int{15496, 995, 50256, 2124}) {
		t.Errorf("with <|endoftext|>: %v", got)
	}
	if id, ok := tok.SpecialID("<|endoftext|>"); !ok || id != 50256 || tok.VocabSize() != 50257 {
		t.Errorf("SpecialID = %d %v, VocabSize %d", id, ok, tok.VocabSize())
	}
	if id, ok := tok.TokenID("Ġworld"); !ok || id != 995 {
		t.Errorf("TokenID(Ġworld) = %d %v", id, ok)
	}
	if s := tok.DecodeSkipSpecial([]int{15496, 50256}); s != "Hello" {
		t.Errorf("DecodeSkipSpecial = %q", s)
	}
}

func TestLlama3MatchesLlamaCppVectors(t *testing.T) {
	tok, _ := llama3Tokenizer(t)
	if tok.PreTokenizer() != PreTokenizerLlama3 || tok.VocabSize() != 128256 {
		t.Fatalf("pre %q vocab %d", tok.PreTokenizer(), tok.VocabSize())
	}
	inputs, outputs := llamaCppVectors(t, "llama-bpe")
	for i, in := range inputs {
		got := tok.Encode(in)
		if !sameIDs(got, outputs[i]) {
			t.Errorf("Encode(%q)\n got %v\nwant %v", in, got, outputs[i])
		}
		if dec := tok.Decode(got); dec != in {
			t.Errorf("Decode(Encode(%q)) = %q", in, dec)
		}
	}
	bos, ok := tok.SpecialID("<|begin_of_text|>")
	eot, ok2 := tok.SpecialID("<|eot_id|>")
	if !ok || !ok2 || bos != 128000 || eot != 128009 {
		t.Fatalf("special ids %d %d", bos, eot)
	}
	if got := tok.Encode("<|begin_of_text|>Hello world<|eot_id|>"); !sameIDs(got, []int{128000, 9906, 1917, 128009}) {
		t.Errorf("specials: %v", got)
	}
}

// Saving a loaded tokenizer and loading it again gives the same encodings.
func TestLlama3SaveLoadRoundTrip(t *testing.T) {
	tok, _ := llama3Tokenizer(t)
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := tok.Save(path); err != nil {
		t.Fatal(err)
	}
	again, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	inputs, _ := llamaCppVectors(t, "llama-bpe")
	for _, in := range inputs {
		if a, b := tok.Encode(in), again.Encode(in); !sameIDs(a, b) {
			t.Errorf("%q: %v after Save/Load, %v before", in, b, a)
		}
	}
	if again.VocabSize() != tok.VocabSize() || len(again.AddedTokens()) != 256 {
		t.Errorf("vocab %d added %d", again.VocabSize(), len(again.AddedTokens()))
	}
}

func sameIDs(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

const tinyJSON = `{
 "version": "1.0",
 "added_tokens": [
  {"id": 7, "content": "<eos>", "single_word": false, "lstrip": true, "rstrip": true, "normalized": false, "special": true},
  {"id": 8, "content": "<pad>", "special": true}
 ],
 "normalizer": null,
 "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
 "decoder": {"type": "ByteLevel"},
 "model": {"type": "BPE", "ignore_merges": false,
  "vocab": {"a": 0, "b": 1, "Ġ": 2, "ab": 3, "Ġab": 4, "aa": 5, "aaa": 6},
  "merges": MERGES}
}`

func TestMergeFormsAndAddedTokens(t *testing.T) {
	str, err := Parse([]byte(strings.Replace(tinyJSON, "MERGES", `["a b", "Ġ ab", "a a", "aa a"]`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	pair, err := Parse([]byte(strings.Replace(tinyJSON, "MERGES", `[["a","b"], ["Ġ","ab"], ["a","a"], ["aa","a"]]`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []*Tokenizer{str, pair} {
		// "ab ab" -> ab, Ġab; " <eos> " strips the spaces around <eos>.
		if got := tok.Encode("ab ab <eos> aaaa"); !sameIDs(got, []int{3, 4, 7, 5, 5}) {
			t.Errorf("Encode = %v", got)
		}
		if got := tok.Decode([]int{3, 4, 7, 6}); got != "ab ab<eos>aaa" {
			t.Errorf("Decode = %q", got)
		}
		if tok.VocabSize() != 9 {
			t.Errorf("VocabSize = %d", tok.VocabSize())
		}
		if _, ok := tok.SpecialID("ab"); ok {
			t.Error("SpecialID(ab) found a non-special token")
		}
	}
}

func TestRejectsUnsupported(t *testing.T) {
	base := strings.Replace(tinyJSON, "MERGES", `["a b"]`, 1)
	for name, edit := range map[string][2]string{
		"wordpiece":  {`"type": "BPE"`, `"type": "WordPiece"`},
		"normalizer": {`"normalizer": null`, `"normalizer": {"type": "BertNormalizer"}`},
		"pre-tokenizer": {`{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}`,
			`{"type":"Sequence","pretokenizers":[{"type":"Whitespace"},{"type":"ByteLevel","use_regex":false}]}`},
		"split behavior": {`{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}`,
			`{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\w+"},"behavior":"Sideways","invert":false},{"type":"ByteLevel","use_regex":false}]}`},
		"byte_fallback with ByteLevel": {`"ignore_merges": false`, `"ignore_merges": false, "byte_fallback": true`},
		"decoder":                      {`"decoder": {"type": "ByteLevel"}`, `"decoder": {"type": "CTC"}`},
	} {
		_, err := Parse([]byte(strings.Replace(base, edit[0], edit[1], 1)))
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: %v, want ErrUnsupported", name, err)
		}
	}
	if _, err := Parse([]byte(strings.Replace(tinyJSON, "MERGES", `["a c"]`, 1))); err == nil || !strings.Contains(err.Error(), "not in vocab") {
		t.Errorf("merge of unknown token: %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "absent.json")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}

var trainCorpus = []string{
	"The quick brown fox jumps over the lazy dog. The dog sleeps.",
	"Call me Ishmael. Some years ago—never mind how long precisely—having little or no money in my purse,",
	"and nothing particular to interest me on shore, I thought I would sail about a little and see the watery part of the world.<|endoftext|>",
	"It is a way I have of driving off the spleen, and regulating the circulation. 1851, 2024: numbers 12345!",
}

func TestTrainSaveLoadRoundTrip(t *testing.T) {
	tok, err := Train(trainCorpus, 400, []string{"<|endoftext|>"})
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := tok.SpecialID("<|endoftext|>"); !ok || id != 0 {
		t.Errorf("special id %d %v", id, ok)
	}
	if tok.VocabSize() <= 257 || tok.VocabSize() > 400 {
		t.Errorf("vocab size %d", tok.VocabSize())
	}
	// Merges learned: "Ġthe" style tokens exist and shorten the encoding.
	text := strings.Join(trainCorpus, "\n")
	ids := tok.Encode(text)
	if len(ids) >= len(text)*2/3 {
		t.Errorf("%d tokens for %d bytes: merges barely used", len(ids), len(text))
	}
	if tok.Decode(ids) != text {
		t.Error("Decode(Encode(corpus)) differs")
	}
	again, err := Train(trainCorpus, 400, []string{"<|endoftext|>"})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := tok.MarshalJSON()
	b, _ := again.MarshalJSON()
	if string(a) != string(b) {
		t.Error("training is not deterministic")
	}
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := tok.Save(path); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append(trainCorpus, "unseen wörds ☃ and\n\n  spaces\t", "") {
		if x, y := tok.Encode(s), loaded.Encode(s); !sameIDs(x, y) || loaded.Decode(y) != s {
			t.Errorf("%q: %v vs %v after Save/Load", s, x, y)
		}
	}
	c, _ := loaded.MarshalJSON()
	if string(c) != string(a) {
		t.Error("Save(Load(Save(t))) differs from Save(t)")
	}
	raw, _ := os.ReadFile(path)
	for _, want := range []string{`"type": "BPE"`, `"merges": [`, `"type": "ByteLevel"`, `"special": true`, `"Ġt": `} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("tokenizer.json lacks %s", want)
		}
	}
	if _, err := Train(trainCorpus, 100, nil); err == nil {
		t.Error("vocab below 256 accepted")
	}
}

func TestDecodeArbitraryBytes(t *testing.T) {
	tok, err := Train(trainCorpus, 300, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"\xff\x00\x80 bytes", "日本語テキスト", "emoji 🙂🙃"} {
		ids := tok.Encode(s)
		if got := tok.Decode(ids); got != s {
			t.Errorf("round trip %q -> %q", s, got)
		}
	}
	// Cutting a multi-byte character leaves raw bytes.
	ids := tok.Encode("é")
	if got := tok.Decode(ids[:1]); utf8.ValidString(got) && len(ids) > 1 {
		t.Errorf("partial decode %q is valid UTF-8", got)
	}
}

func BenchmarkEncodeTrained(b *testing.B) {
	tok, err := Train(trainCorpus, 400, nil)
	if err != nil {
		b.Fatal(err)
	}
	text := strings.Repeat(strings.Join(trainCorpus, " "), 50)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.Encode(text)
	}
}
