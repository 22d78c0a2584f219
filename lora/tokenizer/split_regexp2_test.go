package tokenizer

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dlclark/regexp2/v2"
)

// The hand-written splitters are checked against a backtracking regex
// engine that supports the lookahead of the original patterns.
var (
	gpt2Regexp   = regexp2.MustCompile(GPT2Pattern, regexp2.None)
	llama3Regexp = regexp2.MustCompile(Llama3Pattern, regexp2.None)
	qwen2Regexp  = regexp2.MustCompile(Qwen2Pattern, regexp2.None)
)

func regexpPieces(t testing.TB, re *regexp2.Regexp, s string) []string {
	var out []string
	m, err := re.FindStringMatch(s)
	for ; m != nil && err == nil; m, err = re.FindNextMatch(m) {
		out = append(out, m.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func checkAgainstRegexp(t testing.TB, s string) {
	if !utf8.ValidString(s) {
		return // the regex engine sees U+FFFD where the splitter keeps raw bytes
	}
	for _, c := range []struct {
		name  string
		split splitter
		re    *regexp2.Regexp
	}{{"GPT-2", splitGPT2, gpt2Regexp}, {"Llama 3", splitLlama3, llama3Regexp}, {"Qwen2", splitQwen2, qwen2Regexp}} {
		want := regexpPieces(t, c.re, s)
		if got := pieces(c.split, s); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s split of %q:\n got %q\nwant %q", c.name, s, got, want)
		}
	}
}

func TestSplittersMatchRegexp(t *testing.T) {
	inputs := []string{
		"Hello world", "I'm here, they'll go. We'VE 'S 'ſ", "a  \n  b\r\n\r\n c", "x   ", "   y",
		"12345 678 3.14 ½ ²³", "hi!!!\n\nok ?? (x) [y]\t\tz", "\u00a0nbsp\u3000ideo\u2028sep",
		"naïve café 日本語 🙂🙃 e\u0301", " \n", "\n", "'", "''s", "'ll've", "a'B'c", "\t\v\f\r",
	}
	for _, in := range inputs {
		checkAgainstRegexp(t, in)
	}
	// The llama.cpp inputs too.
	for _, vocab := range []string{"gpt-2", "llama-bpe"} {
		in, _ := llamaCppVectors(t, vocab)
		for _, s := range in {
			checkAgainstRegexp(t, s)
		}
	}
}

func FuzzSplittersMatchRegexp(f *testing.F) {
	for _, s := range []string{"Hello world", "a \n\n b  c\t", "I'm 12345!!", "'S x\r\n ", "🙂 ½\u00a0x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkAgainstRegexp(t, s) })
}

// Random strings over an alphabet of the characters the patterns treat
// specially (letters, digits, apostrophes and contraction letters in both
// cases, newlines, Unicode spaces, symbols, emoji).
func TestSplittersMatchRegexpRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("ab A1½ \t\n\r'sSlLvVeEdDmMtT!?.,🙂\u00a0\u2028é日\u0301")
	for i := 0; i < 20000; i++ {
		rs := make([]rune, rng.IntN(30))
		for j := range rs {
			rs[j] = alphabet[rng.IntN(len(alphabet))]
		}
		checkAgainstRegexp(t, string(rs))
	}
}

// The hand-written matchers against the regexp2 path the package uses for
// other patterns (regexpMatcher), on the same text: go test -bench Split.
func BenchmarkSplit(b *testing.B) {
	text := strings.Repeat(strings.Join(trainCorpus, "\n")+" I'm 12345 naïve café 日本語 🙂\n\n  x\t", 20)
	for _, c := range []struct {
		name    string
		pattern string
	}{{"gpt2", GPT2Pattern}, {"llama3", Llama3Pattern}, {"qwen2", Qwen2Pattern}} {
		hand := splitterMatcher(handWritten[c.pattern])
		re, err := newRegexpMatcher(c.pattern)
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range []struct {
			kind string
			m    matcher
		}{{"hand", hand}, {"regexp2", re}} {
			b.Run(c.name+"/"+m.kind, func(b *testing.B) {
				b.SetBytes(int64(len(text)))
				for b.Loop() {
					m.m.matches(text, func(int, int) {})
				}
			})
		}
	}
}

// regexpTwin loads a llama.cpp fixture twice: as it is (hand-written
// matcher) and with its Split pattern wrapped in a non-capturing group, the
// same regex that no hand-written matcher claims, so it runs on regexp2.
func regexpTwin(t testing.TB, name, pattern string) (hand, re *Tokenizer) {
	raw, err := os.ReadFile(fixturePath(name))
	if err != nil {
		t.Fatal(err)
	}
	q, _ := json.Marshal(pattern)
	w, _ := json.Marshal("(?:" + pattern + ")")
	alt := strings.Replace(string(raw), string(q), string(w), 1)
	if alt == string(raw) {
		t.Fatalf("%s: pattern not found", name)
	}
	if hand, err = Parse(raw); err != nil {
		t.Fatal(err)
	}
	if re, err = Parse([]byte(alt)); err != nil {
		t.Fatal(err)
	}
	return hand, re
}

// The whole tokenizer gives the same ids with either matcher.
func TestHandWrittenEqualsRegexp2Tokenizer(t *testing.T) {
	for _, c := range []struct{ name, pattern string }{{"llama-bpe", Llama3Pattern}, {"qwen2", Qwen2Pattern}} {
		hand, re := regexpTwin(t, c.name, c.pattern)
		inputs, _ := llamaCppVectors(t, c.name)
		for _, in := range append(inputs, roundTripTexts...) {
			if a, b := hand.Encode(in), re.Encode(in); !sameIDs(a, b) {
				t.Errorf("%s %q: hand-written %v, regexp2 %v", c.name, in, a, b)
			}
		}
	}
}

// Encode speed of the Llama 3 tokenizer with each matcher:
// go test ./lora/tokenizer -run '^$' -bench EncodeMatcher.
func BenchmarkEncodeMatcher(b *testing.B) {
	hand, re := regexpTwin(b, "llama-bpe", Llama3Pattern)
	text := strings.Repeat(strings.Join(roundTripTexts, "\n")+"\n"+strings.Join(trainCorpus, " "), 20)
	for _, c := range []struct {
		name string
		tok  *Tokenizer
	}{{"hand", hand}, {"regexp2", re}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				c.tok.Encode(text)
			}
		})
	}
}
