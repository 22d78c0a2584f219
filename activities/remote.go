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
	// The spec holds no credentials (spec.Validate refuses userinfo in
	// registry.uri; keys are named, never inlined), and the file is
	// readable by its owner and the trainer pod's group (fsGroup) only.
	if err := os.WriteFile(specPath, b, 0o640); err != nil {
		return TrainResult{}, err
	}
	if err := os.Chmod(specPath, 0o640); err != nil { // a file an earlier attempt wrote keeps its mode
		return TrainResult{}, err
	}
	// Every path of the job is stable across attempts, so that a retried
	// activity adopts the Workflow its previous attempt started (its name
	// is derived from them) instead of starting a second one.
	remoteOut := filepath.Join(work, "remote-adapter")
	resultFile := filepath.Join(work, "remote_result.json")
	job := argo.Job{
		SnapshotPath: snapDir, BaseModelPath: s.BaseModel, SpecPath: specPath, OutputDir: remoteOut,
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
	if err := checkAdapterFitsBase(remoteOut, s.BaseModel); err != nil {
		return TrainResult{}, err
	}
	var res TrainResult
	b, err = os.ReadFile(resultFile)
	if err == nil {
		err = json.Unmarshal(b, &res)
	}
	if err != nil {
		return TrainResult{}, nonRetryable("ArgoInvalidResult", fmt.Errorf("the trainer succeeded but its result %s is unreadable: %w", resultFile, err))
	}
	if err := copyFiles(remoteOut, outDir); err != nil {
		return TrainResult{}, err
	}
	return res, os.RemoveAll(remoteOut)
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
