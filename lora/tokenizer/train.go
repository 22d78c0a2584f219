package tokenizer

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
)

// Train learns a byte-level BPE tokenizer from corpus, deterministically:
// the same input always gives the same vocabulary and merges. Ids are the
// special tokens first (in the order given, also registered as special added
// tokens), then the 256 byte-level characters in byte order, then one token
// per merge. Text is pre-tokenized with GPT-2's pattern. Each step merges the
// most frequent adjacent pair (ties: smallest ids first, as Hugging Face's
// BpeTrainer); training stops at vocabSize tokens or when no pair occurs
// twice.
func Train(corpus []string, vocabSize int, specialTokens []string) (*Tokenizer, error) {
	if vocabSize < 256+len(specialTokens) {
		return nil, fmt.Errorf("tokenizer: vocab size %d is below the 256 byte tokens plus %d special tokens", vocabSize, len(specialTokens))
	}
	vocab := make(map[string]int, vocabSize)
	tokens := make([]string, 0, vocabSize)
	var added []AddedToken
	for _, s := range specialTokens {
		if s == "" {
			return nil, errors.New("tokenizer: empty special token")
		}
		if _, dup := vocab[s]; dup {
			return nil, fmt.Errorf("tokenizer: special token %q listed twice", s)
		}
		vocab[s] = len(tokens)
		added = append(added, AddedToken{ID: len(tokens), Content: s, Special: true})
		tokens = append(tokens, s)
	}
	for b := 0; b < 256; b++ {
		if _, clash := vocab[byteToStr[b]]; clash {
			return nil, fmt.Errorf("tokenizer: special token %q collides with a byte token", byteToStr[b])
		}
		vocab[byteToStr[b]] = len(tokens)
		tokens = append(tokens, byteToStr[b])
	}

	// Count pre-tokens; special tokens in the corpus are cut out, as Encode does.
	specials := &Tokenizer{addedByContent: map[string]int{}}
	for i, at := range added {
		specials.added = append(specials.added, at)
		specials.addedByContent[at.Content] = i
		specials.addedByFirst.add(at.Content[0], i)
	}
	counts := make(map[string]int)
	for _, doc := range corpus {
		for start := 0; start < len(doc); {
			s, e, idx := nextAdded(doc, start, &specials.addedByFirst, func(i int) string { return specials.added[i].Content }, specials.added)
			if idx < 0 {
				s, e = len(doc), len(doc)
			}
			splitGPT2(doc[start:s], func(p string) { counts[p]++ })
			start = e
		}
	}
	keys := slices.Sorted(maps.Keys(counts))
	type word struct {
		syms []int
		freq int
	}
	words := make([]word, len(keys))
	for i, k := range keys {
		syms := make([]int, len(k))
		for j := 0; j < len(k); j++ {
			syms[j] = vocab[byteToStr[k[j]]]
		}
		words[i] = word{syms: syms, freq: counts[k]}
	}

	pairCount := make(map[uint64]int)
	where := make(map[uint64]map[int]struct{})
	addPairs := func(w int, sign int) {
		s := words[w].syms
		for j := 0; j+1 < len(s); j++ {
			k := pairKey(s[j], s[j+1])
			pairCount[k] += sign * words[w].freq
			if sign > 0 {
				set := where[k]
				if set == nil {
					set = make(map[int]struct{})
					where[k] = set
				}
				set[w] = struct{}{}
			}
		}
	}
	for w := range words {
		addPairs(w, +1)
	}

	var merges [][2]string
	for len(tokens) < vocabSize {
		var best uint64
		bestCount := 0
		for k, c := range pairCount {
			if c > bestCount || (c == bestCount && c > 0 && k < best) {
				best, bestCount = k, c
			}
		}
		if bestCount < 2 {
			break
		}
		a, b := int(best>>32), int(uint32(best))
		merged := tokens[a] + tokens[b]
		id, exists := vocab[merged]
		if !exists {
			id = len(tokens)
			vocab[merged] = id
			tokens = append(tokens, merged)
		}
		merges = append(merges, [2]string{tokens[a], tokens[b]})
		affected := make([]int, 0, len(where[best]))
		for w := range where[best] {
			affected = append(affected, w)
		}
		sort.Ints(affected)
		for _, w := range affected {
			s := words[w].syms
			hit := false
			for j := 0; j+1 < len(s); j++ {
				if s[j] == a && s[j+1] == b {
					hit = true
					break
				}
			}
			if !hit {
				continue
			}
			addPairs(w, -1)
			out := s[:0]
			for j := 0; j < len(s); j++ {
				if j+1 < len(s) && s[j] == a && s[j+1] == b {
					out = append(out, id)
					j++
					continue
				}
				out = append(out, s[j])
			}
			words[w].syms = out
			addPairs(w, +1)
		}
		delete(where, best)
		for k, c := range pairCount {
			if c == 0 {
				delete(pairCount, k)
			}
		}
	}
	t, err := buildGPT2(vocab, merges, added)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: train: %w", err)
	}
	return t, nil
}
