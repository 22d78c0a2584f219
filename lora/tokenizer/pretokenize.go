package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// The Split patterns with hand-written matchers, exactly as they appear in
// tokenizer.json files (GPT-2's is also ByteLevel's use_regex pattern,
// tokenizers/src/pre_tokenizers/byte_level.rs). Qwen2's is Llama 3's with
// single digits (\p{N} for \p{N}{1,3}); llama.cpp's src/llama-vocab.cpp
// quotes both "from tokenizer.json". Any other pattern runs on regexp2.
const (
	GPT2Pattern   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	Llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	Qwen2Pattern  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// splitter cuts text into pre-tokens; every byte of the text lands in exactly
// one piece, in order.
type splitter func(text string, emit func(piece string))

func isLetter(r rune) bool {
	return r < utf8.RuneSelf && ('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') || r >= utf8.RuneSelf && unicode.IsLetter(r)
}
func isNumber(r rune) bool { return '0' <= r && r <= '9' || r >= utf8.RuneSelf && unicode.IsNumber(r) }
func isSpace(r rune) bool  { return unicode.IsSpace(r) }
func isOther(r rune) bool  { return !isSpace(r) && !isLetter(r) && !isNumber(r) }

// decodeRunes returns the runes of s (invalid bytes as U+FFFD, one per byte)
// and the byte offset of each, with len(s) appended.
func decodeRunes(s string) ([]rune, []int) {
	rs := make([]rune, 0, len(s))
	off := make([]int, 0, len(s)+1)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		rs = append(rs, r)
		off = append(off, i)
		i += n
	}
	return rs, append(off, len(s))
}

func runSplitter(match func(rs []rune, i int) int) splitter {
	return func(text string, emit func(string)) {
		rs, off := decodeRunes(text)
		for i := 0; i < len(rs); {
			j := match(rs, i)
			emit(text[off[i]:off[j]])
			i = j
		}
	}
}

var (
	splitGPT2   = runSplitter(matchGPT2)
	splitLlama3 = runSplitter(func(rs []rune, i int) int { return matchLlama3(rs, i, 3) })
	splitQwen2  = runSplitter(func(rs []rune, i int) int { return matchLlama3(rs, i, 1) })
)

func runWhile(rs []rune, i int, pred func(rune) bool) int {
	for i < len(rs) && pred(rs[i]) {
		i++
	}
	return i
}

// contraction matches 's 't 're 've 'm 'll 'd at i, folding case when fold.
func contraction(rs []rune, i int, fold bool) int {
	n := len(rs)
	if rs[i] != '\'' || i+1 >= n {
		return 0
	}
	at := func(k int) rune {
		if k >= n {
			return 0
		}
		r := rs[k]
		if fold {
			if r == 'ſ' { // U+017F folds to s
				return 's'
			}
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
		}
		return r
	}
	switch at(i + 1) {
	case 's', 't', 'm', 'd':
		return i + 2
	case 'r', 'v':
		if at(i+2) == 'e' {
			return i + 3
		}
	case 'l':
		if at(i+2) == 'l' {
			return i + 3
		}
	}
	return 0
}

// whitespace implements \s+(?!\S)|\s+ at i (rs[i] is whitespace).
func whitespace(rs []rune, i int) int {
	e := runWhile(rs, i, isSpace)
	if e == len(rs) || e-i == 1 {
		return e
	}
	return e - 1
}

func matchGPT2(rs []rune, i int) int {
	if j := contraction(rs, i, false); j > 0 {
		return j
	}
	j := i
	if rs[i] == ' ' && i+1 < len(rs) && !isSpace(rs[i+1]) {
		j = i + 1
	}
	switch r := rs[j]; {
	case isLetter(r):
		return runWhile(rs, j, isLetter)
	case isNumber(r):
		return runWhile(rs, j, isNumber)
	case !isSpace(r):
		return runWhile(rs, j, isOther)
	}
	return whitespace(rs, i)
}

// matchLlama3 matches Llama 3's pattern at i, or Qwen2's when maxDigits is 1.
func matchLlama3(rs []rune, i, maxDigits int) int {
	n := len(rs)
	if j := contraction(rs, i, true); j > 0 {
		return j
	}
	r := rs[i]
	if isLetter(r) {
		return runWhile(rs, i, isLetter)
	}
	if r != '\r' && r != '\n' && !isNumber(r) && i+1 < n && isLetter(rs[i+1]) {
		return runWhile(rs, i+1, isLetter)
	}
	if isNumber(r) {
		j := i + 1
		for j < n && j < i+maxDigits && isNumber(rs[j]) {
			j++
		}
		return j
	}
	j := i
	if r == ' ' {
		j++
	}
	if j < n && isOther(rs[j]) {
		j = runWhile(rs, j, isOther)
		return runWhile(rs, j, func(r rune) bool { return r == '\r' || r == '\n' })
	}
	// r is whitespace here.
	e := runWhile(rs, i, isSpace)
	for k := e - 1; k >= i; k-- {
		if rs[k] == '\r' || rs[k] == '\n' {
			return k + 1
		}
	}
	return whitespace(rs, i)
}
