package pipeline

import (
	"errors"
	"fmt"

	"github.com/loraflow/loraflow/dataset"
	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/chattemplate"
)

// loadChatTemplate reads the checkpoint's own chat template (nil when it has
// none: chat data then keeps the plain role-tagged layout).
func loadChatTemplate(dir string) (*chattemplate.Template, error) {
	tm, err := chattemplate.Load(dir, chattemplate.Options{})
	if errors.Is(err, chattemplate.ErrNoTemplate) {
		return nil, nil
	}
	if err != nil {
		return nil, &lora.InputError{Kind: lora.KindCorruptCheckpoint, Msg: "chat template of " + dir, Err: err}
	}
	return tm, nil
}

// chatSequence renders a chat example with the model's template; the loss
// is on the tokens of every assistant turn (TRL's assistant_only_loss). The
// template writes BOS and the turns' end tokens itself, so none are added.
func (b *Base) chatSequence(i int, e dataset.Example) (lora.Sequence, error) {
	msgs := make([]chattemplate.Message, len(e.Messages))
	for j, m := range e.Messages {
		msgs[j] = chattemplate.Message{Role: m.Role, Content: m.Content}
	}
	res, err := b.chat.Tokenize(b.Tokenizer, msgs)
	if err != nil {
		return lora.Sequence{}, &lora.InputError{Kind: lora.KindBadData, Msg: fmt.Sprintf("example %d", i), Err: err}
	}
	return lora.Sequence{Tokens: res.IDs, Loss: res.Loss}, nil
}
