package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dlclark/regexp2/v2"
)

// maxNesting bounds Sequence nesting in tokenizer.json; maxPattern bounds a
// Split or Replace regex (the families' patterns are under 300 bytes).
const (
	maxNesting = 8
	maxPattern = 4096
)

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// matcher reports the non-overlapping, non-empty matches of a pattern in s,
// left to right, as byte spans.
type matcher interface {
	matches(s string, emit func(start, end int))
}

// splitterMatcher is a hand-written matcher: every piece is a match.
type splitterMatcher splitter

func (m splitterMatcher) matches(s string, emit func(int, int)) {
	off := 0
	splitter(m)(s, func(p string) {
		emit(off, off+len(p))
		off += len(p)
	})
}

type literalMatcher string

func (m literalMatcher) matches(s string, emit func(int, int)) {
	for off := 0; ; {
		i := strings.Index(s[off:], string(m))
		if i < 0 {
			return
		}
		emit(off+i, off+i+len(m))
		off += i + len(m)
	}
}

// regexpMatcher runs a pattern without a hand-written matcher on regexp2, a
// backtracking engine with the look-around these patterns use (Go's regexp
// has none). Matching is over runes, invalid bytes seen as U+FFFD.
type regexpMatcher struct{ re *regexp2.Regexp }

// RegexpTimeout bounds one regexp2 match. A backtracking engine can take
// exponential time on a hostile pattern (such as (a+)+$); a match that runs
// out of time ends the matching of that piece, whose rest is then left
// unmatched (one piece, for Isolated). The families' patterns take
// microseconds.
var RegexpTimeout = 2 * time.Second

func newRegexpMatcher(pattern string) (regexpMatcher, error) {
	if len(pattern) > maxPattern {
		return regexpMatcher{}, fmt.Errorf("regex of %d bytes (at most %d)", len(pattern), maxPattern)
	}
	re, err := regexp2.Compile(pattern, regexp2.None)
	if err != nil {
		return regexpMatcher{}, fmt.Errorf("regex %q: %w", pattern, err)
	}
	re.MatchTimeout = RegexpTimeout
	return regexpMatcher{re}, nil
}

func (m regexpMatcher) matches(s string, emit func(int, int)) {
	rs, off := decodeRunes(s)
	mt, err := m.re.FindRunesMatch(rs)
	for ; mt != nil && err == nil; mt, err = m.re.FindNextMatch(mt) {
		if mt.RuneLength > 0 {
			emit(off[mt.RuneIndex], off[mt.RuneIndex+mt.RuneLength])
		}
	}
}

// handWritten maps the patterns with hand-written matchers to them.
var handWritten = map[string]splitter{GPT2Pattern: splitGPT2, Llama3Pattern: splitLlama3, Qwen2Pattern: splitQwen2}

func patternMatcher(p *patternJSON) (matcher, error) {
	switch {
	case p != nil && p.String != nil:
		if *p.String == "" {
			return nil, fmt.Errorf("empty pattern")
		}
		return literalMatcher(*p.String), nil
	case p != nil && p.Regex != nil:
		if sp, ok := handWritten[*p.Regex]; ok {
			return splitterMatcher(sp), nil
		}
		return newRegexpMatcher(*p.Regex)
	}
	return nil, fmt.Errorf(`pattern needs "String" or "Regex"`)
}

// preStep cuts one piece into smaller ones (possibly rewriting them, as
// Metaspace does). first is true when the piece starts at offset 0 of the
// whole input, which Metaspace's prepend_scheme "first" looks at.
type preStep func(text string, first bool, emit func(piece string, first bool))

type behavior int

const (
	isolated behavior = iota
	removed
	mergedWithPrevious
	mergedWithNext
	contiguous
)

var behaviors = map[string]behavior{"Isolated": isolated, "Removed": removed, "MergedWithPrevious": mergedWithPrevious,
	"MergedWithNext": mergedWithNext, "Contiguous": contiguous}

type span struct {
	s, e  int
	match bool
}

// splitBy cuts text at the matches of m with a delimiter behavior, after
// NormalizedString::split in tokenizers/src/tokenizer/normalizer.rs (the
// spans between matches are non-matches; invert swaps the two; empty pieces
// are dropped, as PreTokenizedString::split drops them).
func splitBy(m matcher, b behavior, invert bool) preStep {
	return func(text string, first bool, emit func(string, bool)) {
		if b == isolated && !invert { // fast path: no span list
			last := 0
			m.matches(text, func(s, e int) {
				if s > last {
					emit(text[last:s], first && last == 0)
				}
				emit(text[s:e], first && s == 0)
				last = e
			})
			if last < len(text) {
				emit(text[last:], first && last == 0)
			}
			return
		}
		var spans []span
		last := 0
		m.matches(text, func(s, e int) {
			if s > last {
				spans = append(spans, span{last, s, invert})
			}
			spans = append(spans, span{s, e, !invert})
			last = e
		})
		if last < len(text) {
			spans = append(spans, span{last, len(text), invert})
		}
		var out []span // match now means "remove"
		switch b {
		case isolated:
			for _, sp := range spans {
				out = append(out, span{sp.s, sp.e, false})
			}
		case removed:
			out = spans
		case contiguous:
			prev := false
			for _, sp := range spans {
				if len(out) > 0 && sp.match == prev {
					out[len(out)-1].e = sp.e
				} else {
					out = append(out, span{sp.s, sp.e, false})
				}
				prev = sp.match
			}
		case mergedWithPrevious:
			prev := false
			for _, sp := range spans {
				if sp.match && !prev && len(out) > 0 {
					out[len(out)-1].e = sp.e
				} else {
					out = append(out, span{sp.s, sp.e, false})
				}
				prev = sp.match
			}
		case mergedWithNext:
			prev := false
			for i := len(spans) - 1; i >= 0; i-- {
				sp := spans[i]
				if sp.match && !prev && len(out) > 0 {
					out[len(out)-1].s = sp.s
				} else {
					out = append(out, span{sp.s, sp.e, false})
				}
				prev = sp.match
			}
			for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
				out[i], out[j] = out[j], out[i]
			}
		}
		for _, sp := range out {
			if !sp.match && sp.e > sp.s {
				emit(text[sp.s:sp.e], first && sp.s == 0)
			}
		}
	}
}

type preTokJSON struct {
	Type             string       `json:"type"`
	AddPrefixSpace   *bool        `json:"add_prefix_space"`
	UseRegex         *bool        `json:"use_regex"`
	Pretokenizers    []preTokJSON `json:"pretokenizers"`
	Pattern          *patternJSON `json:"pattern"`
	Behavior         string       `json:"behavior"`
	Invert           bool         `json:"invert"`
	Replacement      *string      `json:"replacement"`
	PrependScheme    *string      `json:"prepend_scheme"`
	Split            *bool        `json:"split"`
	IndividualDigits bool         `json:"individual_digits"`
}

// preTokenizer is a parsed pre_tokenizer: its steps, whether it maps bytes
// (ByteLevel), and the name of a known layout.
type preTokenizer struct {
	steps     []preStep
	byteLevel bool
	name      PreTokenizer
}

func parsePreTokenizer(raw json.RawMessage) (preTokenizer, error) {
	var p preTokenizer
	if isNull(raw) {
		p.name = PreTokenizerNone
		return p, nil
	}
	var j preTokJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		return p, fmt.Errorf("pre_tokenizer: %w", err)
	}
	if err := p.add(j, 0); err != nil {
		return p, fmt.Errorf("pre_tokenizer: %w", err)
	}
	p.name = knownLayout(j)
	return p, nil
}

// knownLayout names the byte-level layouts with hand-written matchers.
func knownLayout(j preTokJSON) PreTokenizer {
	regex := func(b preTokJSON) bool { return b.UseRegex == nil || *b.UseRegex }
	if j.Type == "ByteLevel" && regex(j) {
		return PreTokenizerGPT2
	}
	if j.Type == "Sequence" && len(j.Pretokenizers) == 2 {
		s, b := j.Pretokenizers[0], j.Pretokenizers[1]
		if s.Type == "Split" && s.Pattern != nil && s.Pattern.Regex != nil && !s.Invert && s.Behavior == "Isolated" &&
			b.Type == "ByteLevel" && !regex(b) {
			switch *s.Pattern.Regex {
			case GPT2Pattern:
				return PreTokenizerGPT2
			case Llama3Pattern:
				return PreTokenizerLlama3
			case Qwen2Pattern:
				return PreTokenizerQwen2
			}
		}
	}
	return PreTokenizerOther
}

func (p *preTokenizer) add(j preTokJSON, depth int) error {
	if depth > maxNesting {
		return fmt.Errorf("nested deeper than %d", maxNesting)
	}
	switch j.Type {
	case "Sequence":
		for i, c := range j.Pretokenizers {
			if err := p.add(c, depth+1); err != nil {
				return fmt.Errorf("Sequence[%d]: %w", i, err)
			}
		}
		return nil
	case "ByteLevel":
		// tokenizers/src/pre_tokenizers/byte_level.rs: a space is prepended
		// to each piece not starting with one when add_prefix_space; the
		// GPT-2 pattern splits when use_regex (default true); the bytes are
		// mapped to characters (done by the model here).
		p.byteLevel = true
		prefix := j.AddPrefixSpace != nil && *j.AddPrefixSpace
		useRegex := j.UseRegex == nil || *j.UseRegex
		p.steps = append(p.steps, func(text string, first bool, emit func(string, bool)) {
			if prefix && !strings.HasPrefix(text, " ") {
				text = " " + text
			}
			if !useRegex {
				emit(text, first)
				return
			}
			off := 0
			splitGPT2(text, func(s string) {
				emit(s, first && off == 0)
				off += len(s)
			})
		})
		return nil
	case "Split":
		m, err := patternMatcher(j.Pattern)
		if err != nil {
			return fmt.Errorf("Split: %w", err)
		}
		b, ok := behaviors[j.Behavior]
		if !ok {
			return fmt.Errorf("Split behavior %q: %w", j.Behavior, ErrUnsupported)
		}
		p.steps = append(p.steps, splitBy(m, b, j.Invert))
		return nil
	case "Digits":
		// pre_tokenizers/digits.rs: runs of ASCII-or-Unicode numeric
		// characters (char::is_numeric), each digit alone when
		// individual_digits (Isolated), else whole runs (Contiguous).
		b := contiguous
		if j.IndividualDigits {
			b = isolated
		}
		p.steps = append(p.steps, splitBy(runeClass(unicode.IsNumber, j.IndividualDigits), b, false))
		return nil
	case "Punctuation":
		// pre_tokenizers/punctuation.rs: char::is_ascii_punctuation or a
		// Unicode punctuation category, behavior default Isolated.
		b := isolated
		if j.Behavior != "" {
			var ok bool
			if b, ok = behaviors[j.Behavior]; !ok {
				return fmt.Errorf("Punctuation behavior %q: %w", j.Behavior, ErrUnsupported)
			}
		}
		punct := func(r rune) bool { return isASCIIPunct(r) || unicode.IsPunct(r) }
		p.steps = append(p.steps, splitBy(runeClass(punct, true), b, false))
		return nil
	case "Metaspace":
		st, err := metaspace(j)
		if err != nil {
			return err
		}
		p.steps = append(p.steps, st)
		return nil
	}
	return fmt.Errorf("%q: %w (want ByteLevel, Split, Metaspace, Digits, Punctuation or Sequence)", j.Type, ErrUnsupported)
}

func isASCIIPunct(r rune) bool {
	return r < utf8.RuneSelf && (r >= '!' && r <= '/' || r >= ':' && r <= '@' || r >= '[' && r <= '`' || r >= '{' && r <= '~')
}

// runeClass matches each rune of a class alone (single) or runs of them.
type runeClassMatcher struct {
	in     func(rune) bool
	single bool
}

func runeClass(in func(rune) bool, single bool) matcher { return runeClassMatcher{in, single} }

func (m runeClassMatcher) matches(s string, emit func(int, int)) {
	start := -1
	for i, r := range s {
		switch {
		case m.in(r) && m.single:
			emit(i, i+utf8.RuneLen(r))
		case m.in(r) && start < 0:
			start = i
		case !m.in(r) && start >= 0:
			emit(start, i)
			start = -1
		}
	}
	if start >= 0 {
		emit(start, len(s))
	}
}

const metaspaceChar = "▁"

// metaspace follows tokenizers/src/pre_tokenizers/metaspace.rs: spaces
// become the replacement; it is prepended unless the piece starts with it
// (prepend_scheme "always"; "first": only for the piece at offset 0 of the
// input; "never"); with split (default true) the piece is cut before each
// replacement (MergedWithNext). Files older than prepend_scheme carry
// add_prefix_space (true: always).
func metaspace(j preTokJSON) (preStep, error) {
	rep := metaspaceChar
	if j.Replacement != nil {
		if utf8.RuneCountInString(*j.Replacement) != 1 {
			return nil, fmt.Errorf("Metaspace replacement %q: want one character", *j.Replacement)
		}
		rep = *j.Replacement
	}
	scheme := "always"
	switch {
	case j.PrependScheme != nil:
		scheme = *j.PrependScheme
	case j.AddPrefixSpace != nil && !*j.AddPrefixSpace:
		scheme = "never"
	}
	if scheme != "always" && scheme != "first" && scheme != "never" {
		return nil, fmt.Errorf("Metaspace prepend_scheme %q: %w (want always, first or never)", scheme, ErrUnsupported)
	}
	split := j.Split == nil || *j.Split
	cut := splitBy(literalMatcher(rep), mergedWithNext, false)
	return func(text string, first bool, emit func(string, bool)) {
		text = strings.ReplaceAll(text, " ", rep)
		if !strings.HasPrefix(text, rep) && (scheme == "always" || scheme == "first" && first) {
			text = rep + text
		}
		if !split {
			emit(text, first)
			return
		}
		cut(text, first, emit)
	}, nil
}

// run applies the steps to text, emitting the final pieces.
func (p *preTokenizer) run(text string, first bool, emit func(string)) {
	var rec func(i int, s string, f bool)
	rec = func(i int, s string, f bool) {
		if i == len(p.steps) {
			emit(s)
			return
		}
		p.steps[i](s, f, func(piece string, pf bool) { rec(i+1, piece, pf) })
	}
	rec(0, text, first)
}
