package workflows

import (
	"fmt"
	"strings"

	"github.com/loraflow/loraflow/activities"
	"github.com/loraflow/loraflow/spec"
)

// GateDecision says whether the adapter goes on to merge and publish, and
// whether it takes the champion alias.
type GateDecision struct {
	Passed bool
	// Promote is true when the adapter beats the current champion (or there
	// is none) by the spec's margin.
	Promote bool
	Reason  string
	// Improvement is the relative drop in held-out loss versus the base model.
	Improvement float64
}

// Gate applies the spec's thresholds to an evaluation. It is deterministic
// workflow code.
func Gate(th spec.Evaluation, e activities.EvaluateOutput) GateDecision {
	d := GateDecision{Passed: true}
	if e.Base.Loss > 0 {
		d.Improvement = (e.Base.Loss - e.Adapter.Loss) / e.Base.Loss
	}
	var why []string
	if d.Improvement < th.MinImprovement {
		why = append(why, fmt.Sprintf("held-out loss %.4f improves on the base model's %.4f by %.2f%%, below the required %.2f%%",
			e.Adapter.Loss, e.Base.Loss, 100*d.Improvement, 100*th.MinImprovement))
	}
	if th.MaxValLoss > 0 && e.Adapter.Loss > th.MaxValLoss {
		why = append(why, fmt.Sprintf("held-out loss %.4f above max_val_loss %.4f", e.Adapter.Loss, th.MaxValLoss))
	}
	if e.Classification && th.MinAccuracy > 0 && e.Adapter.Accuracy < th.MinAccuracy {
		why = append(why, fmt.Sprintf("accuracy %.4f below min_accuracy %.4f", e.Adapter.Accuracy, th.MinAccuracy))
	}
	if len(why) > 0 {
		d.Passed, d.Reason = false, strings.Join(why, "; ")
		return d
	}
	switch {
	case !e.HasChampion:
		d.Promote, d.Reason = true, "no champion yet"
	case !e.ChampionComparable:
		d.Reason = e.ChampionNote + "; published as challenger (promote it with `loraflow registry promote`)"
	case e.Adapter.Loss < e.Champion.Loss*(1-th.ChampionMargin):
		d.Promote = true
		d.Reason = fmt.Sprintf("beats champion %s: held-out loss %.4f < %.4f (margin %.2f%%)", e.ChampionVersion, e.Adapter.Loss, e.Champion.Loss, 100*th.ChampionMargin)
	default:
		d.Reason = fmt.Sprintf("does not beat champion %s by the margin: held-out loss %.4f vs %.4f; published as challenger", e.ChampionVersion, e.Adapter.Loss, e.Champion.Loss)
	}
	return d
}
