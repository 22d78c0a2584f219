// Package chattemplate renders chat conversations with a model's own Jinja
// chat template (tokenizer_config.json's "chat_template", or the
// chat_template.jinja file beside it), as transformers'
// PreTrainedTokenizerBase.apply_chat_template does, and finds the assistant
// turns in the result so that training can take the loss on them only (what
// TRL's SFTTrainer does with assistant_only_loss).
//
// Templates run on github.com/ardanlabs/jinja, a Jinja engine written for
// these templates. The variables transformers passes are set: messages,
// add_generation_prompt, bos_token, eos_token (and the other special tokens
// of tokenizer_config.json); raise_exception fails the rendering with the
// template's message. strftime_now is left undefined unless Options.Now is
// set, so templates that print today's date (Llama 3.2) take their fixed
// fallback and a dataset renders the same on every day.
package chattemplate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ardanlabs/jinja"
)

// Size bounds, checked before reading.
const (
	MaxConfigSize   = 4 << 20   // tokenizer_config.json (with its added_tokens_decoder)
	MaxTemplateSize = 256 << 10 // one template (the largest here are under 20 KB)
	MaxMessages     = 4096
)

// ConfigFile and TemplateFile are the files Load reads.
const (
	ConfigFile   = "tokenizer_config.json"
	TemplateFile = "chat_template.jinja"
)

// ErrNoTemplate is matched (errors.Is) when a folder has no chat template.
var ErrNoTemplate = errors.New("no chat template")

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Template is a compiled chat template. It is safe for concurrent use.
type Template struct {
	name  string // the file it came from, for errors
	tmpl  *jinja.Template
	vars  map[string]any // special tokens
	now   time.Time
	hasAt bool
}

// Options configure New and Load.
type Options struct {
	// Now is what strftime_now formats; zero leaves strftime_now undefined.
	Now time.Time
}

// New compiles a template. name (a file name) is quoted in errors; tokens
// maps variables such as bos_token and eos_token to their content.
func New(name, source string, tokens map[string]string, opt Options) (*Template, error) {
	if len(source) > MaxTemplateSize {
		return nil, fmt.Errorf("chat template %s: %d bytes (at most %d)", name, len(source), MaxTemplateSize)
	}
	tm, err := jinja.Compile(source)
	if err != nil {
		return nil, fmt.Errorf("chat template %s: %w", name, err)
	}
	vars := map[string]any{}
	for k, v := range tokens {
		vars[k] = v
	}
	return &Template{name: name, tmpl: tm, vars: vars, now: opt.Now, hasAt: !opt.Now.IsZero()}, nil
}

// Name is the file the template came from.
func (t *Template) Name() string { return t.name }

// Load reads the chat template of a checkpoint or tokenizer folder:
// chat_template.jinja when present (transformers writes it there since
// v4.43 and prefers it), else tokenizer_config.json's chat_template (a
// string, or a list of {"name","template"} of which "default" is taken), with
// the special tokens of tokenizer_config.json.
func Load(dir string, opt Options) (*Template, error) {
	cfgPath := filepath.Join(dir, ConfigFile)
	cfg, err := readBounded(cfgPath, MaxConfigSize)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var c struct {
		ChatTemplate json.RawMessage `json:"chat_template"`
	}
	tokens := map[string]string{}
	if cfg != nil {
		if err := json.Unmarshal(cfg, &c); err != nil {
			return nil, fmt.Errorf("chat template: %s: %w", cfgPath, err)
		}
		var all map[string]json.RawMessage
		_ = json.Unmarshal(cfg, &all)
		for _, k := range []string{"bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"} {
			if s, ok := tokenContent(all[k]); ok {
				tokens[k] = s
			}
		}
	}
	tplPath := filepath.Join(dir, TemplateFile)
	src, err := readBounded(tplPath, MaxTemplateSize)
	switch {
	case err == nil:
		return New(tplPath, string(src), tokens, opt)
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	if cfg == nil {
		return nil, fmt.Errorf("chat template: %s: %w (neither %s nor %s)", dir, ErrNoTemplate, ConfigFile, TemplateFile)
	}
	source, err := configTemplate(c.ChatTemplate)
	if err != nil {
		return nil, fmt.Errorf("chat template: %s: %w", cfgPath, err)
	}
	return New(cfgPath, source, tokens, opt)
}

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("chat template: %s: larger than %d bytes", path, limit)
	}
	return b, nil
}

// tokenContent reads a special token given as a string or as an AddedToken
// object ({"content": ...}).
func tokenContent(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if json.Unmarshal(raw, &obj) == nil && obj.Content != nil {
		return *obj.Content, true
	}
	return "", false
}

func configTemplate(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", ErrNoTemplate
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var named []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &named); err != nil {
		return "", fmt.Errorf(`"chat_template": want a string or a list of {"name","template"}: %w`, err)
	}
	for _, n := range named {
		if n.Name == "default" {
			return n.Template, nil
		}
	}
	return "", fmt.Errorf(`"chat_template" has no "default" among %d named templates: %w`, len(named), ErrNoTemplate)
}

// Render renders a conversation, ending with the assistant's generation
// prompt when addGenerationPrompt.
func (t *Template) Render(msgs []Message, addGenerationPrompt bool) (string, error) {
	if len(msgs) > MaxMessages {
		return "", fmt.Errorf("chat template %s: %d messages (at most %d)", t.name, len(msgs), MaxMessages)
	}
	list := make([]any, len(msgs))
	for i, m := range msgs {
		list[i] = map[string]any{"role": m.Role, "content": m.Content}
	}
	data := make(map[string]jinja.Value, len(t.vars)+4)
	for k, v := range t.vars {
		data[k] = jinja.FromGoValue(v)
	}
	data["messages"] = jinja.FromGoValue(list)
	data["add_generation_prompt"] = jinja.NewBool(addGenerationPrompt)
	if t.hasAt {
		now := t.now
		data["strftime_now"] = jinja.NewCallable("strftime_now", func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
			if len(args) != 1 || !args[0].IsString() {
				return jinja.Value{}, errors.New("strftime_now wants one format string")
			}
			return jinja.NewString(strftime(now, args[0].AsString())), nil
		})
	} else {
		data["strftime_now"] = jinja.Undefined()
	}
	out, err := t.tmpl.RenderValues(data)
	if err != nil {
		return "", fmt.Errorf("chat template %s: %w", t.name, err)
	}
	return out, nil
}

// strftime formats the directives the families' templates use (%d %b %Y
// %B %m %H %M %S %y %e %j %A %a %%), as Python's strftime in the C locale.
func strftime(t time.Time, f string) string {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 == len(f) {
			b.WriteByte(f[i])
			continue
		}
		i++
		switch f[i] {
		case 'd':
			fmt.Fprintf(&b, "%02d", t.Day())
		case 'e':
			fmt.Fprintf(&b, "%2d", t.Day())
		case 'm':
			fmt.Fprintf(&b, "%02d", int(t.Month()))
		case 'b':
			b.WriteString(t.Month().String()[:3])
		case 'B':
			b.WriteString(t.Month().String())
		case 'Y':
			fmt.Fprintf(&b, "%d", t.Year())
		case 'y':
			fmt.Fprintf(&b, "%02d", t.Year()%100)
		case 'H':
			fmt.Fprintf(&b, "%02d", t.Hour())
		case 'M':
			fmt.Fprintf(&b, "%02d", t.Minute())
		case 'S':
			fmt.Fprintf(&b, "%02d", t.Second())
		case 'j':
			fmt.Fprintf(&b, "%03d", t.YearDay())
		case 'A':
			b.WriteString(t.Weekday().String())
		case 'a':
			b.WriteString(t.Weekday().String()[:3])
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(f[i])
		}
	}
	return b.String()
}
