package tokenizer

import "sync"

type merge struct {
	rank int
	id   int
}

func pairKey(a, b int) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// bpe is the model part of a byte-level BPE tokenizer.
type bpe struct {
	vocab        map[string]int // byte-level token -> id
	merges       map[uint64]merge
	mergeList    [][2]string // in rank order, for Save
	byteID       [256]int    // id of each single-byte token, -1 when absent
	ignoreMerges bool

	mu    sync.Mutex
	cache map[string][]int
}

const cacheLimit = 1 << 16

func (m *bpe) init() {
	for b := range m.byteID {
		id, ok := m.vocab[byteToStr[b]]
		if !ok {
			id = -1
		}
		m.byteID[b] = id
	}
	m.cache = make(map[string][]int)
}

// encodeWord appends the ids of one pre-token (raw bytes) to dst.
func (m *bpe) encodeWord(dst []int, word string) []int {
	m.mu.Lock()
	ids, ok := m.cache[word]
	m.mu.Unlock()
	if ok {
		return append(dst, ids...)
	}
	ids = m.bpeWord(word)
	m.mu.Lock()
	if len(m.cache) >= cacheLimit {
		m.cache = make(map[string][]int)
	}
	m.cache[word] = ids
	m.mu.Unlock()
	return append(dst, ids...)
}

func (m *bpe) bpeWord(word string) []int {
	if m.ignoreMerges {
		if id, ok := m.vocab[toByteLevel(word)]; ok {
			return []int{id}
		}
	}
	syms := make([]int, 0, len(word))
	for i := 0; i < len(word); i++ {
		if id := m.byteID[word[i]]; id >= 0 {
			syms = append(syms, id) // bytes without a token are dropped, as without unk_token
		}
	}
	for len(syms) > 1 {
		best, bestRank := merge{}, -1
		for i := 0; i+1 < len(syms); i++ {
			if mg, ok := m.merges[pairKey(syms[i], syms[i+1])]; ok && (bestRank < 0 || mg.rank < bestRank) {
				best, bestRank = mg, mg.rank
			}
		}
		if bestRank < 0 {
			break
		}
		// Merge every occurrence of the best pair, left to right.
		a, b := -1, -1
		for i := 0; i+1 < len(syms); i++ {
			if mg, ok := m.merges[pairKey(syms[i], syms[i+1])]; ok && mg.rank == bestRank {
				a, b = syms[i], syms[i+1]
				break
			}
		}
		out := syms[:0]
		for i := 0; i < len(syms); i++ {
			if i+1 < len(syms) && syms[i] == a && syms[i+1] == b {
				out = append(out, best.id)
				i++
				continue
			}
			out = append(out, syms[i])
		}
		syms = out
	}
	return append([]int(nil), syms...)
}
