package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loraflow/loraflow/dataset"
	"github.com/loraflow/loraflow/lora/chattemplate"
	"github.com/loraflow/loraflow/lora/tokenizer"
)

// A chat example through the model's own template: Qwen2.5's template with
// the Qwen2 vocabulary (lora/tokenizer's llama.cpp fixture); the loss falls
// on both assistant turns and their <|im_end|>\n, nothing else.
func TestChatSequenceAssistantOnlyLoss(t *testing.T) {
	tok, err := tokenizer.Load(filepath.Join("..", "lora", "tokenizer", "testdata", "llamacpp", "qwen2.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "lora", "chattemplate", "testdata", "Qwen-Qwen2.5-7B-Instruct.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, chattemplate.TemplateFile), src, 0o644); err != nil {
		t.Fatal(err)
	}
	tm, err := loadChatTemplate(dir)
	if err != nil || tm == nil {
		t.Fatalf("loadChatTemplate: %v", err)
	}
	b := &Base{Tokenizer: tok, chat: tm, bos: -1, eos: -1}
	ex := dataset.Example{Messages: []dataset.Message{
		{Role: "user", Content: "Hi there"}, {Role: "assistant", Content: "Hello!"},
		{Role: "user", Content: "Bye"}, {Role: "assistant", Content: "See you."},
	}}
	seqs, err := b.Sequences(context.Background(), []dataset.Example{ex, {Prompt: "plain ", Completion: "text"}})
	if err != nil {
		t.Fatal(err)
	}
	sq := seqs[0]
	if len(sq.Loss) != len(sq.Tokens) || sq.PromptLen != 0 {
		t.Fatalf("%d flags for %d tokens, PromptLen %d", len(sq.Loss), len(sq.Tokens), sq.PromptLen)
	}
	var turns []string
	for _, ids := range (chattemplate.Tokens{IDs: sq.Tokens, Loss: sq.Loss}).Turns() {
		turns = append(turns, tok.Decode(ids))
	}
	if got := strings.Join(turns, "|"); got != "Hello!<|im_end|>\n|See you.<|im_end|>\n" {
		t.Errorf("loss on %q", turns)
	}
	if !strings.HasPrefix(tok.Decode(sq.Tokens), "<|im_start|>system\nYou are Qwen") {
		t.Errorf("rendered %q", tok.Decode(sq.Tokens))
	}
	if seqs[1].Loss != nil {
		t.Error("a non-chat example got a loss mask")
	}
	// A template error names the file and the example.
	bad := dataset.Example{Messages: []dataset.Message{{Role: "user", Content: "x"}}}
	os.WriteFile(filepath.Join(dir, chattemplate.TemplateFile), []byte("{{ raise_exception('no chats today') }}"), 0o644)
	b.chat, _ = loadChatTemplate(dir)
	if _, err := b.Sequences(context.Background(), []dataset.Example{bad}); err == nil ||
		!strings.Contains(err.Error(), "no chats today") || !strings.Contains(err.Error(), chattemplate.TemplateFile) || !strings.Contains(err.Error(), "example 0") {
		t.Errorf("template error: %v", err)
	}
}
