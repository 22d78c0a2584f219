package tokenizer

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func preTokenize(t *testing.T, cfg, text string) []string {
	t.Helper()
	p, err := parsePreTokenizer(json.RawMessage(cfg))
	if err != nil {
		t.Fatalf("%s: %v", cfg, err)
	}
	var out []string
	p.run(text, true, func(s string) { out = append(out, s) })
	return out
}

// Expected pieces follow the delimiter behaviors' definitions in
// tokenizers/src/tokenizer/normalizer.rs (split) and its tests.
func TestSplitBehaviors(t *testing.T) {
	split := func(b string, invert bool) string {
		inv := "false"
		if invert {
			inv = "true"
		}
		return `{"type":"Split","pattern":{"String":"-"},"behavior":"` + b + `","invert":` + inv + `}`
	}
	for _, c := range []struct {
		cfg  string
		want []string
	}{
		{split("Isolated", false), []string{"the", "-", "final", "-", "-", "countdown"}},
		{split("Removed", false), []string{"the", "final", "countdown"}},
		{split("MergedWithPrevious", false), []string{"the-", "final-", "-", "countdown"}},
		{split("MergedWithNext", false), []string{"the", "-final", "-", "-countdown"}},
		{split("Contiguous", false), []string{"the", "-", "final", "--", "countdown"}},
		{split("Removed", true), []string{"-", "-", "-"}},
	} {
		if got := preTokenize(t, c.cfg, "the-final--countdown"); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %q, want %q", c.cfg, got, c.want)
		}
	}
	digits := `{"type":"Digits","individual_digits":true}`
	if got := preTokenize(t, digits, "a123b"); !reflect.DeepEqual(got, []string{"a", "1", "2", "3", "b"}) {
		t.Errorf("Digits: %q", got)
	}
	if got := preTokenize(t, `{"type":"Digits","individual_digits":false}`, "a123b"); !reflect.DeepEqual(got, []string{"a", "123", "b"}) {
		t.Errorf("Digits contiguous: %q", got)
	}
	if got := preTokenize(t, `{"type":"Punctuation"}`, "Hey, you!?"); !reflect.DeepEqual(got, []string{"Hey", ",", " you", "!", "?"}) {
		t.Errorf("Punctuation: %q", got)
	}
}

// Metaspace, after tokenizers/src/pre_tokenizers/metaspace.rs and its tests.
func TestMetaspace(t *testing.T) {
	ms := func(scheme string, split bool) string {
		b, _ := json.Marshal(map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": scheme, "split": split})
		return string(b)
	}
	for _, c := range []struct {
		cfg   string
		first bool
		in    string
		want  []string
	}{
		{ms("always", true), true, "Hey friend!", []string{"▁Hey", "▁friend!"}},
		{ms("always", true), true, "Hey   friend!", []string{"▁Hey", "▁", "▁", "▁friend!"}},
		{ms("always", false), true, "Hey friend!", []string{"▁Hey▁friend!"}},
		{ms("always", false), false, "Hey", []string{"▁Hey"}},
		{ms("first", false), true, "Hey", []string{"▁Hey"}},
		{ms("first", false), false, "Hey", []string{"Hey"}},
		{ms("first", false), true, " Hey", []string{"▁Hey"}}, // no second ▁
		{ms("never", true), true, "Hey friend", []string{"Hey", "▁friend"}},
	} {
		p, err := parsePreTokenizer(json.RawMessage(c.cfg))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		p.run(c.in, c.first, func(s string) { got = append(got, s) })
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s first=%v %q: %q, want %q", c.cfg, c.first, c.in, got, c.want)
		}
	}
	if _, err := parsePreTokenizer(json.RawMessage(ms("sometimes", true))); err == nil {
		t.Error("unknown prepend_scheme accepted")
	}
}

// spmJSON is a small SentencePiece-style tokenizer.json: byte fallback, an
// unk token, and the given normalizer, pre-tokenizer and decoder.
const spmJSON = `{
 "added_tokens": [{"id": 0, "content": "<unk>", "special": true}, {"id": 1, "content": "<s>", "special": true},
  {"id": 9, "content": "<|user|>", "rstrip": true, "special": true}],
 "normalizer": NORM, "pre_tokenizer": PRE, "decoder": DEC,
 "model": {"type": "BPE", "byte_fallback": BF, "fuse_unk": true, "unk_token": "<unk>",
  "vocab": {"<unk>": 0, "<s>": 1, "<0xC3>": 2, "<0xA9>": 3, "▁": 4, "h": 5, "i": 6, "hi": 7, "▁hi": 8, "<|user|>": 9, "<0x20>": 10},
  "merges": [["h", "i"], ["▁", "hi"]]}
}`

func spm(t *testing.T, norm, pre, dec string, byteFallback bool) *Tokenizer {
	t.Helper()
	bf := "false"
	if byteFallback {
		bf = "true"
	}
	r := strings.NewReplacer("NORM", norm, "PRE", pre, "DEC", dec, "BF", bf)
	tok, err := Parse([]byte(r.Replace(spmJSON)))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestSentencePieceStyle(t *testing.T) {
	legacy := spm(t, spmLegacyNorm, "null", spmLegacyDec, true)
	for _, c := range []struct {
		in   string
		want []int
	}{
		{"hi hi", []int{8, 8}},
		{"hié", []int{8, 2, 3}},         // é has no token: its bytes
		{" hi", []int{4, 8}},            // Prepend adds a second ▁
		{"<s>hi", []int{1, 8}},          // each stretch gets its own ▁
		{"<|user|>  \nhi", []int{9, 8}}, // rstrip eats the whitespace
		{"hxxi", []int{4, 5, 0, 6}},     // unknown characters fused into one <unk>
	} {
		if got := legacy.Encode(c.in); !sameIDs(got, c.want) {
			t.Errorf("legacy Encode(%q) = %v, want %v", c.in, got, c.want)
		}
	}
	for _, c := range []struct {
		ids  []int
		want string
	}{
		{[]int{8, 8}, "hi hi"},
		{[]int{4, 8}, " hi"},
		{[]int{8, 2, 3}, "hié"},
		{[]int{8, 2}, "hi\uFFFD"}, // a cut character: U+FFFD per byte
		{[]int{1, 8}, "<s> hi"},   // Strip only cuts the first character of the fused text
	} {
		if got := legacy.Decode(c.ids); got != c.want {
			t.Errorf("legacy Decode(%v) = %q, want %q", c.ids, got, c.want)
		}
	}
	if got := legacy.DecodeSkipSpecial([]int{1, 8}); got != "hi" {
		t.Errorf("DecodeSkipSpecial = %q", got)
	}
	noFallback := spm(t, spmLegacyNorm, "null", spmLegacyDec, false)
	if got := noFallback.Encode("hié"); !sameIDs(got, []int{8, 0}) {
		t.Errorf("without byte_fallback: %v", got)
	}
	// Newer files: Metaspace(prepend_scheme first, split false), no normalizer.
	meta := spm(t, "null", `{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":false}`,
		`{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":false}`, true)
	if got := meta.Encode("hi hi"); !sameIDs(got, []int{8, 8}) {
		t.Errorf("Metaspace Encode = %v", got)
	}
	if got := meta.Encode("<s>hi"); !sameIDs(got, []int{1, 7}) {
		t.Errorf("Metaspace after a token = %v (want no ▁: not at offset 0)", got)
	}
	if got := meta.Decode([]int{8, 8}); got != "hi hi" {
		t.Errorf("Metaspace Decode = %q", got)
	}
}

func TestRejectsBadComponents(t *testing.T) {
	for name, c := range map[string][3]string{
		"Prepend without prepend": {`{"type":"Prepend"}`, "null", spmLegacyDec},
		"Replace without pattern": {`{"type":"Replace","content":"x"}`, "null", spmLegacyDec},
		"bad regex":               {"null", `{"type":"Split","pattern":{"Regex":"(("},"behavior":"Isolated"}`, spmLegacyDec},
		"Strip of two chars":      {"null", "null", `{"type":"Strip","content":"ab","start":1,"stop":0}`},
		"deep nesting":            {strings.Repeat(`{"type":"Sequence","normalizers":[`, 12) + `{"type":"NFC"}` + strings.Repeat(`]}`, 12), "null", "null"},
	} {
		r := strings.NewReplacer("NORM", c[0], "PRE", c[1], "DEC", c[2], "BF", "true")
		if _, err := Parse([]byte(r.Replace(spmJSON))); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Hostile components: Replace steps that would grow the text without bound
// are refused; a catastrophic regex runs out of RegexpTimeout instead of
// hanging Encode, and the text is still all there.
func TestHostileComponents(t *testing.T) {
	base := strings.Replace(tinyJSON, "MERGES", `["a b"]`, 1)
	bomb := `{"type":"Sequence","normalizers":[` + strings.TrimSuffix(strings.Repeat(`{"type":"Replace","pattern":{"String":"a"},"content":"aaaa"},`, 30), ",") + `]}`
	if _, err := Parse([]byte(strings.Replace(base, `"normalizer": null`, `"normalizer": `+bomb, 1))); !errors.Is(err, ErrLimit) {
		t.Errorf("Replace bomb in the normalizer: %v", err)
	}
	dec := strings.ReplaceAll(strings.ReplaceAll(bomb, `"normalizers"`, `"decoders"`), "aaaa", "aaaaaaaa")
	if _, err := Parse([]byte(strings.Replace(base, `"decoder": {"type": "ByteLevel"}`, `"decoder": `+dec, 1))); !errors.Is(err, ErrLimit) {
		t.Errorf("Replace bomb in the decoder: %v", err)
	}
	defer func(d time.Duration) { RegexpTimeout = d }(RegexpTimeout)
	RegexpTimeout = 20 * time.Millisecond
	pre := `{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"(a+)+$"},"behavior":"Isolated"},{"type":"ByteLevel","use_regex":false}]}`
	tok, err := Parse([]byte(strings.Replace(base, `{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}`, pre, 1)))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Repeat("a", 64) + "b" // no match: (a+)+ backtracks over every split of the a run
	if got := tok.Decode(tok.Encode(text)); got != text {
		t.Errorf("after a timed-out match: %q", got)
	}
}

// Added tokens with normalized=true are found in the normalized text by
// their normalized content; the others only in the raw text
// (AddedVocabulary in tokenizers/src/tokenizer/added_vocabulary.rs).
func TestNormalizedAddedTokens(t *testing.T) {
	js := strings.NewReplacer("NORM", `{"type":"Lowercase"}`, "PRE", "null", "DEC", "null", "BF", "true").Replace(spmJSON)
	js = strings.Replace(js, `{"id": 9, "content": "<|user|>", "rstrip": true, "special": true}`,
		`{"id": 9, "content": "<|USER|>", "normalized": true, "special": true}, {"id": 11, "content": "HI", "normalized": false}`, 1)
	tok, err := Parse([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string][]int{
		"<|user|>hi": {9, 7}, // "<|USER|>" normalizes to "<|user|>": found after normalization
		"<|UsEr|>":   {9},
		"HI":         {11}, // raw match before normalization
		"Hi":         {7},  // not the raw token: lowercased, then BPE
	} {
		if got := tok.Encode(in); !sameIDs(got, want) {
			t.Errorf("Encode(%q) = %v, want %v", in, got, want)
		}
	}
}
