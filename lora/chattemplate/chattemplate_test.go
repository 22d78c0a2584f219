package chattemplate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loraflow/loraflow/lora/tokenizer"
)

// The templates in testdata are the models' own chat_template, as copied
// into llama.cpp's models/templates (bundled in npm node-llama-cpp 3.21.1;
// see testdata/README.md). Each expected string below is derived by hand from
// the template's text: the comment beside it says which branches produce it.

var (
	system  = Message{"system", "You are terse."}
	user1   = Message{"user", "What is 2+2?"}
	answer1 = Message{"assistant", "4."}
	user2   = Message{"user", "And 3+3?"}
	answer2 = Message{"assistant", "6."}
	chat    = []Message{system, user1, answer1, user2, answer2}
)

func load(t *testing.T, file string, tokens map[string]string, opt Options) *Template {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	tm, err := New(file, string(src), tokens, opt)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

type templateCase struct {
	file      string
	tokens    map[string]string
	msgs      []Message
	want      string   // Render(msgs, false)
	prompt    string   // Render(msgs[:len-1], true): the generation prompt's tail
	assistant []string // the text of the turns Tokenize flags
	specials  []string // the template's special tokens, atomic in the test encoder
}

var llamaTokens = map[string]string{"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}

var templateCases = []templateCase{
	{
		// Llama 3.1: bos; the system header with "Cutting Knowledge Date"
		// and date_string's default "26 Jul 2024"; the system message
		// (trimmed); each message as header + content|trim + <|eot_id|>;
		// add_generation_prompt adds the assistant header.
		file: "meta-llama-Llama-3.1-8B-Instruct.jinja", tokens: llamaTokens, msgs: chat,
		want: "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nYou are terse.<|eot_id|>" +
			"<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n4.<|eot_id|>" +
			"<|start_header_id|>user<|end_header_id|>\n\nAnd 3+3?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n6.<|eot_id|>",
		prompt:    "And 3+3?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
		assistant: []string{"4.<|eot_id|>", "6.<|eot_id|>"},
		specials:  []string{"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"},
	},
	{
		// Llama 3.2: the same layout; without strftime_now the date falls
		// back to "26 Jul 2024" (a system message is always printed).
		file: "meta-llama-Llama-3.2-3B-Instruct.jinja", tokens: llamaTokens, msgs: chat[1:3],
		want: "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>" +
			"<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n4.<|eot_id|>",
		prompt:    "<|start_header_id|>assistant<|end_header_id|>\n\n",
		assistant: []string{"4.<|eot_id|>"},
		specials:  []string{"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"},
	},
	{
		// Qwen2.5 without tools: the system message (else the default
		// "You are Qwen..."), then <|im_start|>role\ncontent<|im_end|>\n.
		file: "Qwen-Qwen2.5-7B-Instruct.jinja", msgs: chat,
		want: "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4.<|im_end|>\n" +
			"<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n6.<|im_end|>\n",
		prompt:    "<|im_start|>assistant\n",
		assistant: []string{"4.<|im_end|>\n", "6.<|im_end|>\n"},
		specials:  []string{"<|im_start|>", "<|im_end|>"},
	},
	{
		file: "Qwen-Qwen2.5-7B-Instruct.jinja", msgs: chat[1:3],
		want:      "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4.<|im_end|>\n",
		prompt:    "<|im_start|>assistant\n",
		assistant: []string{"4.<|im_end|>\n"},
		specials:  []string{"<|im_start|>", "<|im_end|>"},
	},
	{
		// Qwen3: last_query_index is the last user message; an assistant
		// message after it that is loop.last gets "<think>\n\n</think>\n\n"
		// before its content, earlier ones do not.
		file: "Qwen-Qwen3-0.6B.jinja", msgs: chat,
		want: "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4.<|im_end|>\n" +
			"<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n6.<|im_end|>\n",
		prompt:    "<|im_start|>assistant\n",
		assistant: []string{"4.<|im_end|>\n", "<think>\n\n</think>\n\n6.<|im_end|>\n"},
		specials:  []string{"<|im_start|>", "<|im_end|>", "<think>", "</think>"},
	},
	{
		// Gemma 2: bos; roles must alternate from user; assistant is
		// "model"; <start_of_turn>role\ncontent|trim<end_of_turn>\n.
		file: "google-gemma-2-2b-it.jinja", tokens: map[string]string{"bos_token": "<bos>", "eos_token": "<eos>"}, msgs: chat[1:],
		want: "<bos><start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4.<end_of_turn>\n" +
			"<start_of_turn>user\nAnd 3+3?<end_of_turn>\n<start_of_turn>model\n6.<end_of_turn>\n",
		prompt:    "<start_of_turn>model\n",
		assistant: []string{"4.<end_of_turn>\n", "6.<end_of_turn>\n"},
		specials:  []string{"<bos>", "<start_of_turn>", "<end_of_turn>"},
	},
	{
		// Phi-3-mini-4k-instruct (the template in llama.cpp's
		// ggml-vocab-phi-3.gguf): bos; user turns end with the assistant
		// tag whatever add_generation_prompt; system messages are dropped.
		file: "microsoft-Phi-3-mini-4k-instruct.jinja", tokens: map[string]string{"bos_token": "<s>", "eos_token": "<|endoftext|>"}, msgs: chat,
		want:      "<s><|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n4.<|end|>\n<|user|>\nAnd 3+3?<|end|>\n<|assistant|>\n6.<|end|>\n",
		prompt:    "<|assistant|>\n",
		assistant: []string{"4.<|end|>\n", "6.<|end|>\n"},
		specials:  []string{"<s>", "<|user|>", "<|assistant|>", "<|end|>"},
	},
	{
		// Phi-3.5-mini: <|role|>\ncontent<|end|>\n; without a generation
		// prompt the eos token closes the text (the last turn keeps it).
		file: "microsoft-Phi-3.5-mini-instruct.jinja", tokens: map[string]string{"bos_token": "<s>", "eos_token": "<|endoftext|>"}, msgs: chat,
		want: "<|system|>\nYou are terse.<|end|>\n<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n4.<|end|>\n" +
			"<|user|>\nAnd 3+3?<|end|>\n<|assistant|>\n6.<|end|>\n<|endoftext|>",
		prompt:    "<|assistant|>\n",
		assistant: []string{"4.<|end|>\n", "6.<|end|>\n<|endoftext|>"},
		specials:  []string{"<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|endoftext|>"},
	},
	{
		// Mistral-Nemo: bos; [INST]user[/INST]; assistant content + eos;
		// the system message goes into the last user message, so with an
		// assistant reply last it is not printed.
		file: "mistralai-Mistral-Nemo-Instruct-2407.jinja", tokens: map[string]string{"bos_token": "<s>", "eos_token": "</s>"}, msgs: chat,
		want: "<s>[INST]What is 2+2?[/INST]4.</s>[INST]And 3+3?[/INST]6.</s>",
		// ... but with a user message last, it is.
		prompt:    "[INST]You are terse.\n\nAnd 3+3?[/INST]",
		assistant: []string{"4.</s>", "6.</s>"},
		specials:  []string{"<s>", "</s>", "[INST]", "[/INST]"},
	},
}

// atomEncoder is a test double of the tokenizer: the special tokens are
// matched first, leftmost-longest, as tokenizer.Encode matches added
// tokens; every other character is its own token.
type atomEncoder struct {
	specials []string
	ids      map[string]int
	toks     []string
}

func (e *atomEncoder) id(s string) int {
	if e.ids == nil {
		e.ids = map[string]int{}
	}
	if id, ok := e.ids[s]; ok {
		return id
	}
	e.ids[s] = len(e.toks)
	e.toks = append(e.toks, s)
	return e.ids[s]
}

func (e *atomEncoder) Encode(text string) []int {
	var out []int
	for len(text) > 0 {
		best := ""
		for _, s := range e.specials {
			if strings.HasPrefix(text, s) && len(s) > len(best) {
				best = s
			}
		}
		if best == "" {
			_, n := firstRune(text)
			best = text[:n]
		}
		out = append(out, e.id(best))
		text = text[len(best):]
	}
	return out
}

func firstRune(s string) (rune, int) {
	for _, r := range s {
		return r, len(string(r))
	}
	return 0, 0
}

// flagged returns the text of each flagged turn.
func flagged(toks []string, res Tokens) []string {
	var out []string
	for _, ids := range res.Turns() {
		var b strings.Builder
		for _, id := range ids {
			b.WriteString(toks[id])
		}
		out = append(out, b.String())
	}
	return out
}

func TestFamilyTemplates(t *testing.T) {
	for _, c := range templateCases {
		tm := load(t, c.file, c.tokens, Options{})
		got, err := tm.Render(c.msgs, false)
		if err != nil {
			t.Errorf("%s: %v", c.file, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.file, got, c.want)
		}
		p, err := tm.Render(c.msgs[:len(c.msgs)-1], true)
		if err != nil || !strings.HasSuffix(p, c.prompt) {
			t.Errorf("%s: generation prompt %q (%v), want it to end in %q", c.file, p, err, c.prompt)
		}
		enc := &atomEncoder{specials: c.specials}
		res, err := tm.Tokenize(enc, c.msgs)
		if err != nil {
			t.Errorf("%s: Tokenize: %v", c.file, err)
			continue
		}
		if f := flagged(enc.toks, res); strings.Join(f, "|") != strings.Join(c.assistant, "|") {
			t.Errorf("%s: assistant turns %q, want %q", c.file, f, c.assistant)
		}
	}
}

func TestTemplateErrors(t *testing.T) {
	gemma := load(t, "google-gemma-2-2b-it.jinja", nil, Options{})
	if _, err := gemma.Render(chat, false); err == nil || !strings.Contains(err.Error(), "System role not supported") ||
		!strings.Contains(err.Error(), "google-gemma-2-2b-it.jinja") {
		t.Errorf("Gemma with a system message: %v (want raise_exception's message and the file)", err)
	}
	mistral := load(t, "mistralai-Mistral-Nemo-Instruct-2407.jinja", nil, Options{})
	if _, err := mistral.Render([]Message{user1, user2}, false); err == nil || !strings.Contains(err.Error(), "must alternate") {
		t.Errorf("Mistral with two user messages: %v", err)
	}
	if _, err := New("bad.jinja", "{% if %}", nil, Options{}); err == nil || !strings.Contains(err.Error(), "bad.jinja") {
		t.Errorf("syntax error: %v", err)
	}
	if _, err := New("big.jinja", strings.Repeat("x", MaxTemplateSize+1), nil, Options{}); err == nil {
		t.Error("oversized template accepted")
	}
}

func TestStrftimeNow(t *testing.T) {
	tm := load(t, "meta-llama-Llama-3.2-3B-Instruct.jinja", llamaTokens, Options{Now: time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)})
	got, err := tm.Render(chat[1:3], false)
	if err != nil || !strings.Contains(got, "Today Date: 04 Dec 2026\n") {
		t.Errorf("with Now: %q %v", got, err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir, Options{}); !errors.Is(err, ErrNoTemplate) {
		t.Errorf("empty folder: %v", err)
	}
	src, _ := os.ReadFile(filepath.Join("testdata", "Qwen-Qwen2.5-7B-Instruct.jinja"))
	cfg := `{"bos_token": null, "eos_token": {"content": "<|im_end|>", "special": true}, "chat_template": ` + quote(string(src)) + `}`
	os.WriteFile(filepath.Join(dir, ConfigFile), []byte(cfg), 0o644)
	tm, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := tm.Render(chat[:3], false); got != templateCases[2].want[:strings.Index(templateCases[2].want, "<|im_start|>user\nAnd")] {
		t.Errorf("from tokenizer_config.json: %q", got)
	}
	if tm.Name() != filepath.Join(dir, ConfigFile) {
		t.Errorf("Name = %q", tm.Name())
	}
	// A named list takes "default"; chat_template.jinja wins over both.
	os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D{{ eos_token }}"}], "eos_token": "</s>"}`), 0o644)
	if tm, err := Load(dir, Options{}); err != nil {
		t.Fatal(err)
	} else if got, _ := tm.Render(chat, false); got != "D</s>" {
		t.Errorf("named default: %q", got)
	}
	os.WriteFile(filepath.Join(dir, TemplateFile), []byte("J"), 0o644)
	if tm, err := Load(dir, Options{}); err != nil || tm.Name() != filepath.Join(dir, TemplateFile) {
		t.Errorf("chat_template.jinja: %v", err)
	}
	os.WriteFile(filepath.Join(dir, TemplateFile), []byte("{% for %}"), 0o644)
	if _, err := Load(dir, Options{}); err == nil || !strings.Contains(err.Error(), TemplateFile) {
		t.Errorf("bad chat_template.jinja: %v", err)
	}
}

func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// With a real tokenizer (llama.cpp's Llama 3 vocabulary, pruned fixture of
// lora/tokenizer): the flagged tokens decode to the assistant turns.
func TestTokenizeLlama3(t *testing.T) {
	tok, err := tokenizer.Load(filepath.Join("..", "tokenizer", "testdata", "llamacpp", "llama-bpe.json"))
	if err != nil {
		t.Fatal(err)
	}
	tm := load(t, "meta-llama-Llama-3.1-8B-Instruct.jinja", llamaTokens, Options{})
	res, err := tm.Tokenize(tok, chat)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Decode(res.IDs) != templateCases[0].want {
		t.Fatalf("decode %q", tok.Decode(res.IDs))
	}
	var turns []string
	for _, ids := range res.Turns() {
		turns = append(turns, tok.Decode(ids))
	}
	if strings.Join(turns, "|") != "4.<|eot_id|>|6.<|eot_id|>" {
		t.Errorf("assistant tokens decode to %q", turns)
	}
}
