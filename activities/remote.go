package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.temporal.io/sdk/activity"

	"github.com/loraflow/loraflow/argo"
	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/spec"
)

// RemoteTrainer runs training outside the worker, on a GPU node
// (argo.Backend implements it).
type RemoteTrainer interface {
	Train(ctx context.Context, job argo.Job, heartbeat func(argo.Status)) (string, error)
}

// trainRemotely hands the run to the remote trainer and checks what comes
// back: a PEFT adapter whose modules and shapes fit the base model.
func (a *Activities) trainRemotely(ctx context.Context, s spec.Spec, snapDir, outDir, work string) (TrainResult, error) {
	specPath := filepath.Join(work, "spec.json")
	b, _ := json.Marshal(s)
	if err := os.WriteFile(specPath, b, 0o644); err != nil {
		return TrainResult{}, err
	}
	// The trainer creates --out itself.
	if err := os.Remove(outDir); err != nil {
		return TrainResult{}, err
	}
	resultFile := filepath.Join(work, "remote_result.json")
	job := argo.Job{
		SnapshotPath: snapDir, BaseModelPath: s.BaseModel, SpecPath: specPath, OutputDir: outDir,
		ProgressFile: filepath.Join(work, "progress.json"),
		ExtraArgs:    []string{"--checkpoints", filepath.Join(work, "checkpoints"), "--result", resultFile},
	}
	_, err := a.RemoteTrainer.Train(ctx, job, func(st argo.Status) {
		p := TrainProgress{}
		if t := st.Trainer; t != nil {
			p = TrainProgress{Step: t.Step, TotalSteps: t.TotalSteps, Loss: t.Loss, TokensPerSec: t.TokensPerSec, CheckpointURI: t.Checkpoint}
		}
		activity.RecordHeartbeat(ctx, p)
	})
	if err != nil {
		var ae *argo.Error
		if errors.As(err, &ae) && !argo.IsRetryable(err) {
			return TrainResult{}, nonRetryable("Argo"+string(ae.Reason), err)
		}
		return TrainResult{}, err
	}
	if err := checkAdapterFitsBase(outDir, s.BaseModel); err != nil {
		return TrainResult{}, err
	}
	var res TrainResult
	if b, err := os.ReadFile(resultFile); err == nil {
		_ = json.Unmarshal(b, &res)
	}
	return res, nil
}

// checkAdapterFitsBase loads the adapter and checks its modules and shapes
// against the base model's linear layers.
func checkAdapterFitsBase(adapterDir, baseDir string) error {
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
