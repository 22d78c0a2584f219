package lora

import (
	"errors"
	"testing"
)

// A loss mask keeps only the flagged positions as targets, on top of
// PromptLen; the first token is never a target.
func TestLossMaskTargets(t *testing.T) {
	seqs := []Sequence{
		{Tokens: []int{1, 2, 3, 4, 5, 6}, Loss: []bool{true, false, true, true, false, true}},
		{Tokens: []int{7, 8, 9}, PromptLen: 2, Loss: []bool{true, true, false}},
		{Tokens: []int{1, 2, 3}},
	}
	bt := makeBatch(seqs, 0)
	want := []int{
		-1, 3, 4, -1, 6, -1, // predicting positions 2, 3 and 5
		-1, -1, -1, -1, -1, -1, // position 2 is past PromptLen but not flagged
		2, 3, -1, -1, -1, -1, // no mask: every next token
	}
	for i, w := range want {
		if bt.targets[i] != w {
			t.Fatalf("targets %v, want %v", bt.targets, want)
		}
	}
	if bt.countTargets() != 5 {
		t.Errorf("countTargets = %d", bt.countTargets())
	}
}

func TestLossMaskChecked(t *testing.T) {
	cfg := ModelConfig{VocabSize: 10}
	var ie *InputError
	if err := checkData(cfg, []Sequence{{Tokens: []int{1, 2, 3}, Loss: []bool{true}}}); !errors.As(err, &ie) || ie.Kind != KindBadData {
		t.Errorf("short mask: %v", err)
	}
	if err := checkData(cfg, []Sequence{{Tokens: []int{1, 2, 3}, Loss: []bool{true, false, false}}}); !errors.As(err, &ie) {
		t.Errorf("mask with nothing to predict (only position 0 flagged): %v", err)
	}
	if err := checkData(cfg, []Sequence{{Tokens: []int{1, 2, 3}, Loss: []bool{false, false, true}}}); err != nil {
		t.Errorf("valid mask: %v", err)
	}
}
