package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"go.temporal.io/sdk/activity"

	"github.com/loraflow/loraflow/artifact"
	"github.com/loraflow/loraflow/internal/metrics"
	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/pipeline"
)

const trainResultFile = "train_result.json"

// TrainLoRA trains a PEFT LoRA adapter on the snapshot's training split.
//
// Checkpoints go to a work folder keyed by the inputs, so a retry after a
// worker crash resumes from the last one (named in the heartbeat) instead
// of step 0, and produces the same adapter bytes as an uninterrupted run.
// A retry after success returns the adapter already made.
//
// The output's Usage is the training's energy over every attempt: each
// heartbeat carries the attempts' total so far, which the next attempt
// adds its own to; with a remote trainer it is the energy the trainer
// measured, not the worker's waiting. The full fine-tuning counterfactual
// is computed here, where training ends.
func (a *Activities) TrainLoRA(ctx context.Context, in TrainInput) (_ TrainOutput, err error) {
	m := a.measure(ctx, in.Spec)
	defer func() { m.stop(err) }() // a no-op once stopped below
	if err := a.checkSpec("TrainLoRA", in.Spec); err != nil {
		return TrainOutput{}, err
	}
	// One holder per work folder: a second run with the same inputs, or
	// the successor of an attempt still running on a worker cut off from
	// Temporal, waits (a retryable error) instead of sharing checkpoints.
	lock, err := a.Store.LockWorkDir("train", trainKey(in), "TrainLoRA of "+activity.GetInfo(ctx).WorkflowExecution.ID)
	if err != nil {
		return TrainOutput{}, workDirError(err)
	}
	defer lock.Unlock()
	work := lock.Dir
	if out, ok := a.finishedTraining(ctx, work); ok {
		a.logger().Info("TrainLoRA already done for these inputs", "adapter", out.Adapter.SHA256)
		_ = pipeline.RemoveRemoteOutput(work) // left by a crash right after the result was recorded
		// Nothing was trained now: this attempt's energy is its own (the
		// lookup), and no full fine-tuning is counterfactual to it.
		out.Reused, out.Usage, out.Counterfactual = true, m.stop(nil), nil
		return out, nil
	}
	// The last progress an earlier attempt reported: heartbeats repeat it
	// until this attempt reports its own.
	var last TrainProgress
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &last); err == nil {
			a.logger().Info("TrainLoRA resuming after a retry", "step", last.Step, "checkpoint", last.CheckpointURI)
		} else {
			last = TrainProgress{}
		}
	}

	snapDir, err := a.path(in.Snapshot)
	if err != nil {
		return TrainOutput{}, err
	}
	// Train on exactly the base model PrepareData fingerprinted, which is
	// what the attestations will name.
	if d, err := artifact.DigestDir(ctx, in.Spec.BaseModel); err != nil {
		return TrainOutput{}, fmt.Errorf("TrainLoRA: %w", err)
	} else if d != in.BaseModel.SHA256 {
		return TrainOutput{}, nonRetryable(ErrBadSpec, fmt.Errorf("TrainLoRA: base model %s changed since PrepareData (sha256 %s, now %s)", in.Spec.BaseModel, in.BaseModel.SHA256, d))
	}
	// Heartbeats go on while the model loads; then each step updates them.
	// The SDK throttles them; the checkpoint named is durable (Train writes
	// it atomically before reporting it).
	alive := startKeepAlive(ctx, last, m) // every heartbeat carries the energy of every attempt so far
	defer alive.close()
	if a.RemoteTrainer == nil {
		alive.watchSteps() // each step sets it: a wedged step stops the heartbeats
	}
	var lastCheckpoint string
	heartbeat := func(p lora.Progress) {
		if p.Checkpoint != "" {
			lastCheckpoint = "file://" + p.Checkpoint
		}
		alive.set(ctx, TrainProgress{
			Step: p.Step, TotalSteps: p.TotalSteps, Loss: p.Loss, LearningRate: p.LearningRate,
			TokensPerSec: p.TokensPerSec, CheckpointURI: lastCheckpoint,
		})
	}
	dir, err := a.Store.ScratchDir("adapter")
	if err != nil {
		return TrainOutput{}, err
	}
	defer os.RemoveAll(dir) // a no-op once committed (moved into the store)
	var res pipeline.TrainResult
	if a.RemoteTrainer != nil {
		res, err = a.trainRemotely(ctx, alive, in.Spec, snapDir, dir, work)
	} else {
		res, err = pipeline.TrainAdapter(ctx, in.Spec, snapDir, dir, filepath.Join(work, "checkpoints"), heartbeat)
	}
	if err != nil {
		if ctx.Err() != nil {
			return TrainOutput{}, ctx.Err()
		}
		return TrainOutput{}, classify("TrainLoRA", err)
	}
	if err := injectFault("train:trained"); err != nil {
		return TrainOutput{}, err
	}
	metrics.TrainTokensPerSecond.Set(res.TokensPerSec)

	ref, err := a.Store.Commit(ctx, dir)
	if err != nil {
		return TrainOutput{}, err
	}
	out := TrainOutput{
		Adapter: ref, Steps: res.Steps, Tokens: res.Tokens, FinalLoss: res.FinalLoss, Losses: pipeline.Downsample(res.Losses, pipeline.MaxCurvePoints),
		TokensPerSec: res.TokensPerSec, ResumedFromStep: res.ResumedFromStep,
		TrainableParams: int64(res.TrainableParams), TotalParams: res.TotalParams, FLOPs: res.FLOPs, HeldOutCurve: res.HeldOut,
	}
	// This attempt ends here (its row goes to emissions.csv); what the
	// training used is every attempt's, or the remote trainer's report.
	out.Usage = m.stopAll(nil)
	if res.Usage != nil {
		out.Usage = *res.Usage
		out.Usage.Activity = m.name
	} else if a.RemoteTrainer != nil {
		out.Usage.Notes = append(out.Usage.Notes, "the remote trainer reported no energy: this is the worker's, waiting for it")
	}
	if cf, err := pipeline.Counterfactual(in.Spec.BaseModel, in.Spec, out, out.Usage); err != nil {
		a.logger().Warn("no full fine-tuning counterfactual", "err", err)
	} else {
		out.Counterfactual = cf
	}
	if err := injectFault("train:committed"); err != nil {
		return TrainOutput{}, err
	}
	b, _ := json.Marshal(out)
	if err := artifact.WriteFileAtomic(filepath.Join(work, trainResultFile), b); err != nil {
		return TrainOutput{}, err
	}
	if err := injectFault("train:recorded"); err != nil {
		return TrainOutput{}, err
	}
	// Only now may the remote run's output go: until train_result.json is
	// durable a retry needs it (it adopts the finished remote run).
	if err := pipeline.RemoveRemoteOutput(work); err != nil {
		a.logger().Warn("removing the remote trainer's output", "work", work, "err", err)
	}
	a.logger().Info("trained adapter", "adapter", ref.SHA256, "steps", res.Steps, "final_loss", res.FinalLoss,
		"tokens_per_sec", res.TokensPerSec, "resumed_from", res.ResumedFromStep)
	return out, nil
}

// trainKey is the key of TrainLoRA's work folder: its inputs.
func trainKey(in TrainInput) string {
	return artifact.KeyOf("TrainLoRA/v1", in.Snapshot.SHA256, in.BaseModel.SHA256, in.Spec.LoRA, in.Spec.Training)
}

// finishedTraining returns the output of an earlier attempt that completed,
// if its adapter is still intact in the store.
func (a *Activities) finishedTraining(ctx context.Context, work string) (TrainOutput, bool) {
	b, err := os.ReadFile(filepath.Join(work, trainResultFile))
	if err != nil {
		return TrainOutput{}, false
	}
	var out TrainOutput
	if json.Unmarshal(b, &out) != nil {
		return TrainOutput{}, false
	}
	p, err := a.path(out.Adapter)
	if err != nil {
		return TrainOutput{}, false
	}
	if d, err := artifact.DigestDir(ctx, p); err != nil || d != out.Adapter.SHA256 {
		return TrainOutput{}, false
	}
	return out, true
}
