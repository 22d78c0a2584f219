package lora

import (
	"context"
	"fmt"
	"math"

	"github.com/loraflow/loraflow/lora/peft"
)

// EvalResult is the loss on held-out data.
type EvalResult struct {
	Loss          float64 // mean cross-entropy per target token (nats)
	Perplexity    float64
	Tokens        int     // target tokens
	Accuracy      float64 // share of examples whose every target token is the argmax prediction (teacher-forced exact match)
	Examples      int
	TokenAccuracy float64 // share of target tokens predicted by argmax
}

// instance returns a network with adapter a applied (nil: the base model).
func (m *Model) instance(a *peft.Adapter) (*net[float32], error) {
	n := m.net.clone()
	if err := applyAdapter(n, a); err != nil {
		return nil, err
	}
	return n, nil
}

// Evaluate computes the loss of the model (with adapter a, or the base model
// when a is nil) on data, batchSize sequences at a time.
func Evaluate(ctx context.Context, m *Model, a *peft.Adapter, data []Sequence, batchSize int) (EvalResult, error) {
	if err := checkData(m.cfg, data); err != nil {
		return EvalResult{}, err
	}
	n, err := m.instance(a)
	if err != nil {
		return EvalResult{}, err
	}
	if batchSize <= 0 {
		batchSize = 8
	}
	var res EvalResult
	var sum float64
	var correctTok, exact int
	for i := 0; i < len(data); i += batchSize {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("lora: evaluation stopped: %w", err)
		}
		seqs := data[i:min(len(data), i+batchSize)]
		bt := makeBatch(seqs, m.cfg.MaxPositions)
		r := n.run(bt, false, 0, nil, 0)
		sum += r.lossSum
		res.Tokens += r.count
		correctTok += r.correct
		for b := range seqs {
			all, any := true, false
			for s := 0; s < bt.S; s++ {
				row := b*bt.S + s
				if bt.targets[row] >= 0 {
					any = true
					all = all && n.ws.rowOK[row]
				}
			}
			if any && all {
				exact++
			}
		}
	}
	res.Examples = len(data)
	if res.Tokens > 0 {
		res.Loss = sum / float64(res.Tokens)
		res.Perplexity = math.Exp(res.Loss)
		res.TokenAccuracy = float64(correctTok) / float64(res.Tokens)
	}
	res.Accuracy = float64(exact) / float64(len(data))
	return res, nil
}

// ClassificationAccuracy scores classification data: data[i] is a prompt
// (Tokens[:PromptLen]) followed by its gold label; each candidate in labels
// is scored by its log-likelihood after the prompt, and an example counts as
// correct when the best candidate equals the gold label.
func ClassificationAccuracy(ctx context.Context, m *Model, a *peft.Adapter, data []Sequence, labels [][]int) (float64, error) {
	if len(data) == 0 || len(labels) == 0 {
		return 0, inputErr(KindBadData, "classification needs examples (%d) and labels (%d)", len(data), len(labels))
	}
	if err := checkData(m.cfg, data); err != nil {
		return 0, err
	}
	for i, l := range labels {
		if len(l) == 0 {
			return 0, inputErr(KindBadData, "label %d has no tokens", i)
		}
	}
	n, err := m.instance(a)
	if err != nil {
		return 0, err
	}
	correct := 0
	per := max(1, 32/len(labels)) // examples per forward pass
	for i0 := 0; i0 < len(data); i0 += per {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("lora: classification stopped: %w", err)
		}
		chunk := data[i0:min(len(data), i0+per)]
		var seqs []Sequence
		for i, ex := range chunk {
			if ex.PromptLen < 1 {
				return 0, inputErr(KindBadData, "example %d has no prompt (PromptLen 0)", i0+i)
			}
			prompt := ex.Tokens[:ex.PromptLen]
			for _, l := range labels {
				toks := append(append([]int(nil), prompt...), l...)
				if len(toks) > m.cfg.MaxPositions {
					toks = toks[len(toks)-m.cfg.MaxPositions:]
				}
				seqs = append(seqs, Sequence{Tokens: toks, PromptLen: len(toks) - len(l)})
			}
		}
		bt := makeBatch(seqs, 0)
		n.run(bt, false, 0, nil, 0)
		for i, ex := range chunk {
			best, bestLL := -1, math.Inf(-1)
			for j := range labels {
				row0 := (i*len(labels) + j) * bt.S
				var ll float64
				for s := 0; s < bt.S; s++ {
					if bt.targets[row0+s] >= 0 {
						ll -= n.ws.rowLoss[row0+s]
					}
				}
				if ll > bestLL {
					best, bestLL = j, ll
				}
			}
			if equalInts(labels[best], ex.Tokens[ex.PromptLen:]) {
				correct++
			}
		}
	}
	return float64(correct) / float64(len(data)), nil
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
