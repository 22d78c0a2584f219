package chattemplate

import (
	"fmt"
	"strings"
)

// Encoder turns text into token ids (a *tokenizer.Tokenizer).
type Encoder interface {
	Encode(text string) []int
}

// Tokens is a rendered, tokenized conversation.
type Tokens struct {
	Text string
	IDs  []int
	Loss []bool // per token: inside an assistant turn
}

// Tokenize renders a whole conversation (no generation prompt), encodes it
// and flags the tokens of every assistant turn: from the end of the
// generation prompt before the turn (the messages before it rendered with
// add_generation_prompt) to the end of the turn (where the conversation
// rendered up to and including it stops agreeing with the whole), so a turn
// holds its content and the template's closing tokens (<|eot_id|>,
// <|im_end|>, </s>, <end_of_turn>): the part TRL's {% generation %} blocks
// mark for assistant_only_loss. Boundaries are compared in tokens, so the
// special tokens that open and close turns are never cut.
//
// Some templates render earlier assistant turns differently once the
// conversation goes on (Qwen3 drops the empty <think> block of turns before
// the last user message): there a turn ends after its content (trimmed) and
// as much of the last assistant turn's closing tokens as follow it. Some
// render the prompt differently (Mistral moves the system message into the
// last user message): there a turn starts at its content. A turn found
// neither way is an error naming the template.
func (t *Template) Tokenize(enc Encoder, msgs []Message) (Tokens, error) {
	full, err := t.Render(msgs, false)
	if err != nil {
		return Tokens{}, err
	}
	ids := enc.Encode(full)
	loss := make([]bool, len(ids))
	tokAt := func(s string) int { return commonPrefixIDs(enc.Encode(s), ids) }
	var turns []int
	for i, m := range msgs {
		if m.Role == "assistant" {
			turns = append(turns, i)
		}
	}
	var closing []int
	next, nextC := len(ids), len(full)     // start of the following turn, in tokens and bytes
	for k := len(turns) - 1; k >= 0; k-- { // the last turn first: it gives the closing tokens
		i := turns[k]
		prompt, err := t.Render(msgs[:i], true)
		if err != nil {
			return Tokens{}, err
		}
		through, err := t.Render(msgs[:i+1], false)
		if err != nil {
			return Tokens{}, err
		}
		startC, endC := commonPrefix(prompt, full), commonPrefix(through, full)
		content := strings.TrimSpace(msgs[i].Content)
		start, end := tokAt(prompt), tokAt(through)
		if startC < len(prompt) {
			// The prompt is not rendered as in the whole (Mistral puts the
			// system message into the last user message): the turn starts
			// at its content, the last occurrence before the next turn.
			pos := -1
			if startC <= nextC {
				pos = strings.LastIndex(full[startC:nextC], content)
			}
			if pos < 0 {
				return Tokens{}, fmt.Errorf("chat template %s: message %d (assistant) not found after its generation prompt", t.name, i)
			}
			startC += pos
			start = tokAt(full[:startC])
		}
		endC = max(endC, startC)
		at := strings.Index(full[startC:endC], content)
		switch {
		case at >= 0 && k == len(turns)-1:
			closing = ids[tokAt(full[:startC+at+len(content)]):end]
		case at < 0:
			at = strings.Index(full[startC:], content)
			if at < 0 || k == len(turns)-1 {
				return Tokens{}, fmt.Errorf("chat template %s: message %d (assistant) not found after its generation prompt", t.name, i)
			}
			end = tokAt(full[:startC+at+len(content)])
			end += commonPrefixIDs(closing, ids[end:])
		}
		if end > next || start > end {
			return Tokens{}, fmt.Errorf("chat template %s: assistant message %d overlaps the next turn", t.name, i)
		}
		for j := start; j < end; j++ {
			loss[j] = true
		}
		next, nextC = start, startC
	}
	return Tokens{Text: full, IDs: ids, Loss: loss}, nil
}

// Turns returns the flagged tokens, one slice per run (per assistant turn).
func (r Tokens) Turns() [][]int {
	var out [][]int
	start := -1
	for i := 0; i <= len(r.IDs); i++ {
		in := i < len(r.IDs) && r.Loss[i]
		switch {
		case in && start < 0:
			start = i
		case !in && start >= 0:
			out = append(out, r.IDs[start:i])
			start = -1
		}
	}
	return out
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

func commonPrefixIDs(a, b []int) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
