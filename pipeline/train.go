package pipeline

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/loraflow/loraflow/carbon"
	"github.com/loraflow/loraflow/dataset"
	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/spec"
)

// TrainResult is what a training run reports: the engine's figures and the
// base model's parameter count.
type TrainResult struct {
	lora.TrainResult
	TotalParams int64
	// FLOPs are the run's FLOP counts (TrainingFLOPs), for the
	// full-fine-tuning counterfactual.
	FLOPs carbon.FLOPCounts
	// Usage is the energy a remote trainer measured for its training
	// (Measure); unset when training ran in the worker, which measures it.
	Usage *carbon.Report `json:",omitempty"`
	// HeldOut is the held-out loss during training (evaluation.every_steps),
	// at the steps of this process (a resumed run's earlier points are not
	// re-scored).
	HeldOut []CurvePoint `json:",omitempty"`
}

// CurvePoint is a loss at a training step.
type CurvePoint struct {
	Step int
	Loss float64
}

// TrainAdapter trains the spec's LoRA adapter on the snapshot in snapDir
// and writes it (PEFT format) into outDir, checkpointing into
// checkpointDir and resuming from the latest checkpoint there. The
// TrainLoRA activity runs it in the worker; `loraflow train` runs it in a
// trainer container.
func TrainAdapter(ctx context.Context, s spec.Spec, snapDir, outDir, checkpointDir string, progress func(lora.Progress)) (TrainResult, error) {
	snap, err := dataset.ReadSnapshot(snapDir)
	if err != nil {
		return TrainResult{}, err
	}
	if err := ctx.Err(); err != nil { // cancellation is seen before and after each load
		return TrainResult{}, err
	}
	base, err := LoadBaseWith(s.BaseModel, s.LoadOptions())
	if err != nil {
		return TrainResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return TrainResult{}, err
	}
	cfg, err := s.PEFT(base.Model.Config().ModelType)
	if err != nil {
		return TrainResult{}, err
	}
	seqs, err := base.Sequences(ctx, snap.Train)
	if err != nil {
		return TrainResult{}, err
	}
	tc := s.TrainConfig(checkpointDir)
	var heldOut []CurvePoint
	var evalErr error
	if every := s.Evaluation.EverySteps; every > 0 && checkpointDir != "" {
		// Scored on the adapter each checkpoint holds: checkpoints come at
		// least as often as the evaluations.
		if tc.CheckpointEvery <= 0 || tc.CheckpointEvery > every || every%tc.CheckpointEvery != 0 {
			tc.CheckpointEvery = every
		}
		val, err := base.Sequences(ctx, snap.Validation)
		if err != nil {
			return TrainResult{}, err
		}
		inner := progress
		progress = func(p lora.Progress) {
			if p.Checkpoint != "" && (p.Step%every == 0 || p.Step == p.TotalSteps) && evalErr == nil && len(val) > 0 {
				ad, err := peft.Load(filepath.Join(p.Checkpoint, "adapter"))
				if err == nil {
					var r lora.EvalResult
					if r, err = lora.Evaluate(ctx, base.Model, ad, val, s.Evaluation.BatchSize); err == nil {
						heldOut = append(heldOut, CurvePoint{Step: p.Step, Loss: r.Loss})
					}
				}
				evalErr = err
			}
			if inner != nil {
				inner(p)
			}
		}
	}
	adapter, res, err := lora.Train(ctx, base.Model, cfg, tc, seqs, progress)
	if err != nil {
		return TrainResult{}, err
	}
	if evalErr != nil && ctx.Err() == nil {
		return TrainResult{}, fmt.Errorf("held-out evaluation during training (evaluation.every_steps): %w", evalErr)
	}
	if err := adapter.Save(outDir); err != nil {
		return TrainResult{}, fmt.Errorf("saving adapter: %w", err)
	}
	return TrainResult{TrainResult: res, TotalParams: int64(base.Model.NumParams()),
		FLOPs: TrainingFLOPs(base.Model, cfg, tc, int64(res.TrainableParams)), HeldOut: heldOut}, nil
}

// CheckAdapterFitsBase loads the adapter and checks its modules and shapes
// against the base model's linear layers.
func CheckAdapterFitsBase(adapterDir, baseDir string) error {
	ad, err := peft.Load(adapterDir)
	if err != nil {
		return &lora.InputError{Kind: lora.KindAdapterMismatch, Msg: adapterDir, Err: err}
	}
	m, err := lora.LoadModel(baseDir)
	if err != nil {
		return err
	}
	mods := map[string]lora.ModuleInfo{}
	for _, mi := range m.LinearModules() {
		mods[mi.Name] = mi
	}
	for _, mod := range ad.Modules() {
		mi, ok := mods[mod]
		if !ok {
			return &lora.InputError{Kind: lora.KindAdapterMismatch, Msg: fmt.Sprintf("%s: module %s is not a linear layer of the base model", adapterDir, mod)}
		}
		r := ad.Config.Rank(mod)
		if sh := ad.Shapes[peft.KeyA(mod)]; len(sh) != 2 || sh[0] != r || sh[1] != mi.In {
			return &lora.InputError{Kind: lora.KindAdapterMismatch, Msg: fmt.Sprintf("%s: %s has shape %v, want [%d %d]", adapterDir, peft.KeyA(mod), sh, r, mi.In)}
		}
		if sh := ad.Shapes[peft.KeyB(mod)]; len(sh) != 2 || sh[0] != mi.Out || sh[1] != r {
			return &lora.InputError{Kind: lora.KindAdapterMismatch, Msg: fmt.Sprintf("%s: %s has shape %v, want [%d %d]", adapterDir, peft.KeyB(mod), sh, mi.Out, r)}
		}
	}
	return nil
}
