package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/tokenizer"
)

const modelDir = "../tinyllama-moby"

// The committed model folder is complete, its files match metrics.json, it
// loads in the engine and the tokenizer, and greedy generation reproduces the
// sample the recipe recorded.
func TestCommittedModel(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(modelDir, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	var met metrics
	if err := json.Unmarshal(raw, &met); err != nil {
		t.Fatal(err)
	}
	for _, f := range met.Files {
		got, err := describe(filepath.Join(modelDir, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		if got != f {
			t.Errorf("%s: %+v, metrics.json says %+v", f.Name, got, f)
		}
	}
	for _, n := range []string{"README.md", "NOTICE"} {
		if _, err := os.Stat(filepath.Join(modelDir, n)); err != nil {
			t.Error(err)
		}
	}
	m, err := lora.LoadModel(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := m.Config()
	if cfg.ModelType != "llama" || cfg.Hidden != 128 || cfg.Layers != 4 || cfg.Heads != 4 || cfg.KVHeads != 2 || cfg.Intermediate != 344 || cfg.TieWordEmbeddings {
		t.Errorf("config %+v", cfg)
	}
	tok, err := tokenizer.Load(filepath.Join(modelDir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != cfg.VocabSize {
		t.Errorf("tokenizer has %d tokens, config %d", tok.VocabSize(), cfg.VocabSize)
	}
	eot, ok := tok.SpecialID(endOfText)
	if !ok || eot != cfg.EosTokenID || eot != cfg.BosTokenID {
		t.Errorf("<|endoftext|> = %d %v, config bos %d eos %d", eot, ok, cfg.BosTokenID, cfg.EosTokenID)
	}
	if met.HeldOutLoss >= met.InitialHeldOutLoss-2 {
		t.Errorf("held-out loss %v barely below the untrained %v", met.HeldOutLoss, met.InitialHeldOutLoss)
	}
	prompt := tok.Encode("Call me Ishmael.")
	gen, err := lora.Generate(context.Background(), m, nil, prompt, lora.GenerateOptions{MaxTokens: 60, StopTokens: []int{eot}})
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Decode(append(prompt, gen...)); got != met.GreedySample {
		t.Errorf("greedy sample\n got %q\nwant %q", got, met.GreedySample)
	}
}

func TestReadBookAndWindows(t *testing.T) {
	dir := t.TempDir()
	var names []string
	for i := 0; i < 25; i++ {
		n := "chapter_" + string(rune('a'+i)) + ".txt"
		names = append(names, n)
		if err := os.WriteFile(filepath.Join(dir, n), []byte("The whale, the sea.\r\nThe ship "+n+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := json.Marshal(names)
	if err := os.WriteFile(filepath.Join(dir, "file_list.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	docs, err := readBook(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 25 || strings.Contains(docs[0].text, "\r") {
		t.Fatalf("%d docs, first %q", len(docs), docs[0].text)
	}
	corpus := make([]string, len(docs))
	for i, d := range docs {
		corpus[i] = d.text
	}
	tok, err := tokenizer.Train(corpus, 300, []string{endOfText})
	if err != nil {
		t.Fatal(err)
	}
	seqs, total := windows(tok, docs, 8)
	if len(seqs) != total/8 {
		t.Errorf("%d windows of 8 from %d tokens", len(seqs), total)
	}
	eot, _ := tok.SpecialID(endOfText)
	n := 0
	for _, s := range seqs {
		for _, id := range s.Tokens {
			if id == eot {
				n++
			}
		}
	}
	if n < 20 {
		t.Errorf("%d document separators in the windows", n)
	}
	if _, err := readBook(t.TempDir()); err == nil {
		t.Error("readBook of an empty folder succeeded")
	}
}
