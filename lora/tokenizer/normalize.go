package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// normalizer rewrites the text between added tokens before pre-tokenization.
type normalizer func(string) string

type patternJSON struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

type normalizerJSON struct {
	Type        string           `json:"type"`
	Normalizers []normalizerJSON `json:"normalizers"`
	Prepend     *string          `json:"prepend"`
	Pattern     *patternJSON     `json:"pattern"`
	Content     *string          `json:"content"`
}

// parseNormalizer builds the normalizers the supported families use, after
// tokenizers/src/normalizers: NFC/NFD/NFKC/NFKD (unicode.rs), Lowercase,
// Prepend (prepend.rs: only a non-empty string gets the prefix), Replace
// (replace.rs: every non-overlapping match, left to right) and Sequence.
func parseNormalizer(raw json.RawMessage) (normalizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	var n normalizerJSON
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, fmt.Errorf("normalizer: %w", err)
	}
	if g := growth(n, func(n normalizerJSON) (string, *patternJSON, *string, []normalizerJSON) {
		return n.Type, n.Pattern, n.Content, n.Normalizers
	}); g > maxGrowth {
		return nil, fmt.Errorf("normalizer: its Replace steps can grow text %g times: %w (at most %d)", g, ErrLimit, maxGrowth)
	}
	return buildNormalizer(n, 0)
}

// maxGrowth bounds how many times the Replace steps of a normalizer or a
// decoder may lengthen a text (the families' Replace(" ", "▁") triples it):
// a Sequence of Replace("a", "aa") steps would otherwise double it each time.
const maxGrowth = 64

// growth is the product of the Replace steps' worst-case length factors
// over a tree of components (a normalizer's or a decoder's).
func growth[T any](root T, step func(T) (typ string, p *patternJSON, content *string, children []T)) float64 {
	g := 1.0
	var walk func(T)
	walk = func(n T) {
		typ, p, content, children := step(n)
		if typ == "Replace" && content != nil && p != nil {
			min := 1 // a regex match is at least one byte (empty matches are skipped)
			if p.String != nil && len(*p.String) > 0 {
				min = len(*p.String)
			}
			g *= max(1, float64(len(*content))/float64(min))
		}
		for _, c := range children {
			if g <= maxGrowth {
				walk(c)
			}
		}
	}
	walk(root)
	return g
}

func buildNormalizer(n normalizerJSON, depth int) (normalizer, error) {
	if depth > maxNesting {
		return nil, fmt.Errorf("normalizer: nested deeper than %d", maxNesting)
	}
	switch n.Type {
	case "NFC":
		return norm.NFC.String, nil
	case "NFD":
		return norm.NFD.String, nil
	case "NFKC":
		return norm.NFKC.String, nil
	case "NFKD":
		return norm.NFKD.String, nil
	case "Lowercase":
		return strings.ToLower, nil
	case "Prepend":
		if n.Prepend == nil {
			return nil, fmt.Errorf(`normalizer Prepend: no "prepend"`)
		}
		p := *n.Prepend
		return func(s string) string {
			if s == "" {
				return s
			}
			return p + s
		}, nil
	case "Replace":
		if n.Content == nil {
			return nil, fmt.Errorf(`normalizer Replace: no "content"`)
		}
		f, err := replacer(n.Pattern, *n.Content)
		if err != nil {
			return nil, fmt.Errorf("normalizer Replace: %w", err)
		}
		return f, nil
	case "Sequence":
		var steps []normalizer
		for i, c := range n.Normalizers {
			f, err := buildNormalizer(c, depth+1)
			if err != nil {
				return nil, fmt.Errorf("normalizer Sequence[%d]: %w", i, err)
			}
			if f != nil {
				steps = append(steps, f)
			}
		}
		return func(s string) string {
			for _, f := range steps {
				s = f(s)
			}
			return s
		}, nil
	}
	return nil, fmt.Errorf("normalizer %q: %w (want NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace or Sequence)", n.Type, ErrUnsupported)
}

// replacer replaces every match of a String or Regex pattern by content.
func replacer(p *patternJSON, content string) (func(string) string, error) {
	switch {
	case p != nil && p.String != nil:
		if *p.String == "" {
			return nil, fmt.Errorf("empty pattern")
		}
		old := *p.String
		return func(s string) string { return strings.ReplaceAll(s, old, content) }, nil
	case p != nil && p.Regex != nil:
		m, err := newRegexpMatcher(*p.Regex)
		if err != nil {
			return nil, err
		}
		return func(s string) string {
			var b strings.Builder
			last := 0
			m.matches(s, func(st, e int) {
				b.WriteString(s[last:st])
				b.WriteString(content)
				last = e
			})
			b.WriteString(s[last:])
			return b.String()
		}, nil
	}
	return nil, fmt.Errorf(`pattern needs "String" or "Regex"`)
}
