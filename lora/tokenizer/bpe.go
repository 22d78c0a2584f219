package tokenizer

import (
	"container/heap"
	"fmt"
	"sync"
	"unicode/utf8"
)

type merge struct {
	rank int
	id   int
}

func pairKey(a, b int) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// bpe is the model part of a BPE tokenizer: byte-level (GPT-2, Llama 3,
// Qwen2: every byte is a symbol, spelled with GPT-2's byte-to-unicode table)
// or character-level with optional byte fallback (SentencePiece-style:
// Llama 2, Mistral, Gemma, Phi-3).
type bpe struct {
	vocab        map[string]int // token (byte-level spelling when byteLevel) -> id
	merges       map[uint64]merge
	mergeList    [][2]string // in rank order, for Save
	byteLevel    bool
	byteID       [256]int // byteLevel: id of each byte's token; byteFallback: id of <0xNN>; -1 when absent
	byteFallback bool
	unkID        int // -1: no unk_token
	unkToken     string
	fuseUnk      bool
	ignoreMerges bool

	mu    sync.Mutex
	cache map[string][]int
}

const cacheLimit = 1 << 16

// maxCachedWord bounds the pieces kept in the cache (Hugging Face's
// MAX_LENGTH in models/bpe/model.rs is 256 too).
const maxCachedWord = 256

func (m *bpe) init() {
	for b := range m.byteID {
		tok := byteToStr[b]
		if !m.byteLevel {
			tok = fmt.Sprintf("<0x%02X>", b)
		}
		id, ok := m.vocab[tok]
		if !ok {
			id = -1
		}
		m.byteID[b] = id
	}
	m.cache = make(map[string][]int)
}

// encodeWord appends the ids of one pre-token to dst: raw bytes when
// byteLevel, else the (normalized) text itself.
func (m *bpe) encodeWord(dst []int, word string) []int {
	if word == "" {
		return dst
	}
	cacheable := len(word) < maxCachedWord
	if cacheable {
		m.mu.Lock()
		ids, ok := m.cache[word]
		m.mu.Unlock()
		if ok {
			return append(dst, ids...)
		}
	}
	ids := m.bpeWord(word)
	if cacheable {
		m.mu.Lock()
		if len(m.cache) >= cacheLimit {
			m.cache = make(map[string][]int)
		}
		m.cache[word] = ids
		m.mu.Unlock()
	}
	return append(dst, ids...)
}

// symbols returns the initial symbols of word, following merge_word in
// tokenizers/src/models/bpe/model.rs: one symbol per character found in the
// vocabulary; otherwise, with byte_fallback, one <0xNN> symbol per byte when
// all of them exist; otherwise unk_token (consecutive ones fused when
// fuse_unk); otherwise the character is dropped.
func (m *bpe) symbols(word string) []int {
	syms := make([]int, 0, len(word))
	if m.byteLevel {
		for i := 0; i < len(word); i++ {
			if id := m.byteID[word[i]]; id >= 0 {
				syms = append(syms, id) // bytes without a token are dropped, as without unk_token
			}
		}
		return syms
	}
	lastUnk := false
	for i := 0; i < len(word); {
		_, n := utf8.DecodeRuneInString(word[i:])
		ch := word[i : i+n]
		i += n
		if id, ok := m.vocab[ch]; ok {
			syms = append(syms, id)
			lastUnk = false
			continue
		}
		if m.byteFallback {
			all := true
			for j := 0; j < len(ch); j++ {
				all = all && m.byteID[ch[j]] >= 0
			}
			if all {
				for j := 0; j < len(ch); j++ {
					syms = append(syms, m.byteID[ch[j]])
				}
				lastUnk = false
				continue
			}
		}
		if m.unkID >= 0 {
			if !(lastUnk && m.fuseUnk) {
				syms = append(syms, m.unkID)
			}
			lastUnk = true
		}
	}
	return syms
}

func (m *bpe) bpeWord(word string) []int {
	if m.ignoreMerges {
		w := word
		if m.byteLevel {
			w = toByteLevel(word)
		}
		if id, ok := m.vocab[w]; ok {
			return []int{id}
		}
	}
	return m.mergeAll(m.symbols(word))
}

// mergeAll applies the merges by rank, the leftmost first among equal ranks,
// as Word::merge_all in tokenizers/src/models/bpe/word.rs does (a min-heap of
// candidate pairs over a linked list of symbols; stale entries are skipped).
func (m *bpe) mergeAll(syms []int) []int {
	if len(syms) < 2 {
		return syms
	}
	n := len(syms)
	prev := make([]int, n)
	next := make([]int, n)
	alive := make([]bool, n)
	for i := range syms {
		prev[i], next[i], alive[i] = i-1, i+1, true
	}
	next[n-1] = -1
	q := make(mergeHeap, 0, n)
	for i := 0; i+1 < n; i++ {
		if mg, ok := m.merges[pairKey(syms[i], syms[i+1])]; ok {
			q = append(q, candidate{pos: i, rank: mg.rank, id: mg.id})
		}
	}
	heap.Init(&q)
	for q.Len() > 0 {
		top := heap.Pop(&q).(candidate)
		if !alive[top.pos] || next[top.pos] < 0 {
			continue
		}
		right := next[top.pos]
		if mg, ok := m.merges[pairKey(syms[top.pos], syms[right])]; !ok || mg.id != top.id {
			continue // stale
		}
		syms[top.pos] = top.id
		alive[right] = false
		next[top.pos] = next[right]
		if next[right] >= 0 {
			prev[next[right]] = top.pos
		}
		if p := prev[top.pos]; p >= 0 {
			if mg, ok := m.merges[pairKey(syms[p], syms[top.pos])]; ok {
				heap.Push(&q, candidate{pos: p, rank: mg.rank, id: mg.id})
			}
		}
		if nx := next[top.pos]; nx >= 0 {
			if mg, ok := m.merges[pairKey(syms[top.pos], syms[nx])]; ok {
				heap.Push(&q, candidate{pos: top.pos, rank: mg.rank, id: mg.id})
			}
		}
	}
	out := make([]int, 0, n)
	for i := 0; i >= 0; i = next[i] {
		out = append(out, syms[i])
	}
	return out
}

type candidate struct{ pos, rank, id int }

type mergeHeap []candidate

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(candidate)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
