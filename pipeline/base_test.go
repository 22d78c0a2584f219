package pipeline

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loraflow/loraflow/internal/testmodel"
	"github.com/loraflow/loraflow/lora"
)

// TestLoadBaseRefusesTokenizerPastTheEmbedding: a tokenizer.json with ids
// beyond config.json's vocab_size would index past the embedding in
// evaluation and generation; LoadBase refuses it as CorruptCheckpoint
// naming both numbers.
func TestLoadBaseRefusesTokenizerPastTheEmbedding(t *testing.T) {
	dir := t.TempDir()
	if err := testmodel.Llama(dir, testmodel.Corpus(40), 300, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadBase(dir); err != nil {
		t.Fatalf("the intact base: %v", err)
	}
	path := filepath.Join(dir, "tokenizer.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]any
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	f["added_tokens"] = append(f["added_tokens"].([]any), map[string]any{"id": 5000, "content": "<|extra|>", "special": true})
	if raw, err = json.Marshal(f); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadBase(dir)
	ie, ok := lora.IsInputError(err)
	if !ok || ie.Kind != lora.KindCorruptCheckpoint || !strings.Contains(err.Error(), "ids up to 5000, past config.json vocab_size") {
		t.Fatalf("LoadBase = %v", err)
	}
}
