package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/loraflow/loraflow/argo"
	"github.com/loraflow/loraflow/artifact"
	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/spec"
)

// RemoteTrainer runs training outside the worker, on a GPU node
// (argo.Backend implements it).
type RemoteTrainer interface {
	Train(ctx context.Context, job argo.Job, heartbeat func(argo.Status)) (string, error)
}

// remoteStopper is a RemoteTrainer that can stop the remote run of a job
// when no attempt is running for it (argo.Backend.Stop).
type remoteStopper interface {
	Stop(ctx context.Context, job argo.Job) error
}

// remoteJob is the job of a training work folder. Every path is stable
// across attempts, so that a retried activity adopts the Workflow its
// previous attempt started (its name is derived from them) instead of
// starting a second one, and StopRemoteTraining finds it.
func remoteJob(s spec.Spec, snapDir, work string) argo.Job {
	return argo.Job{
		SnapshotPath: snapDir, BaseModelPath: s.BaseModel, SpecPath: filepath.Join(work, "spec.json"),
		OutputDir:    filepath.Join(work, remoteAdapterDir),
		ProgressFile: filepath.Join(work, "progress.json"),
		ExtraArgs:    []string{"--checkpoints", filepath.Join(work, "checkpoints"), "--result", filepath.Join(work, remoteResultFile)},
	}
}

const (
	remoteAdapterDir = "remote-adapter"
	remoteResultFile = "remote_result.json"
)

// remoteContext is ctx for the remote trainer, which stops its run only
// when ctx ends with context.Canceled (argo.IsCancel): Temporal's
// cancellation (a *temporal.CanceledError cause, set when the server asks
// for it, go.temporal.io/sdk internal/internal_task_handlers.go) becomes
// context.Canceled; a worker shutdown (worker.ErrWorkerShutdown), the
// attempt's deadline, a lost lease (NotFound) or a pause keep their cause,
// so the remote run goes on and the next attempt adopts it.
func remoteContext(ctx context.Context) (context.Context, context.CancelFunc) {
	rctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		cause := context.Cause(ctx)
		switch {
		case temporal.IsCanceledError(cause):
			cause = context.Canceled
		case errors.Is(cause, context.Canceled) && cause != context.Canceled:
			cause = fmt.Errorf("activity context ended: %v", cause) // not a cancellation
		}
		cancel(cause)
	})
	return rctx, func() { stop(); cancel(nil) }
}

// StopRemoteTraining stops the remote training run of in, if one is left:
// the pipeline calls it when it is cancelled while TrainLoRA is not running
// (between two attempts, or after the worker of the last one died), which
// no activity context would tell the remote trainer. A no-op for local
// training and when nothing runs.
func (a *Activities) StopRemoteTraining(ctx context.Context, in TrainInput) error {
	if err := a.checkSpec("StopRemoteTraining", in.Spec); err != nil {
		return err
	}
	st, ok := a.RemoteTrainer.(remoteStopper)
	if !ok {
		return nil
	}
	work, err := a.Store.WorkDir("train", trainKey(in))
	if err != nil {
		return err
	}
	snapDir, err := a.path(in.Snapshot)
	if err != nil {
		return err
	}
	return st.Stop(ctx, remoteJob(in.Spec, snapDir, work))
}

// trainRemotely hands the run to the remote trainer and checks what comes
// back: a PEFT adapter whose modules and shapes fit the base model. The
// remote adapter folder stays until TrainLoRA has recorded its result
// (removeRemoteOutput), so that a retry after a crash in between adopts the
// finished remote run and finds its adapter.
func (a *Activities) trainRemotely(ctx context.Context, s spec.Spec, snapDir, outDir, work string) (TrainResult, error) {
	job := remoteJob(s, snapDir, work)
	if err := writeSpec(job.SpecPath, s); err != nil {
		return TrainResult{}, err
	}
	remoteOut, resultFile := job.OutputDir, filepath.Join(work, remoteResultFile)
	rctx, cancel := remoteContext(ctx)
	defer cancel()
	var last TrainProgress
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &last)
	}
	_, err := a.RemoteTrainer.Train(rctx, job, func(st argo.Status) {
		// Before the trainer writes progress (pod pending, model loading)
		// the heartbeat carries the last progress known, not an empty one.
		if t := st.Trainer; t != nil {
			last = TrainProgress{Step: t.Step, TotalSteps: t.TotalSteps, Loss: t.Loss, TokensPerSec: t.TokensPerSec, CheckpointURI: t.Checkpoint}
		}
		activity.RecordHeartbeat(ctx, last)
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
	b, err := os.ReadFile(resultFile)
	if err == nil {
		err = json.Unmarshal(b, &res)
	}
	if err != nil {
		return TrainResult{}, nonRetryable("ArgoInvalidResult", fmt.Errorf("the trainer succeeded but its result %s is unreadable: %w", resultFile, err))
	}
	if err := copyFiles(remoteOut, outDir); err != nil {
		return TrainResult{}, err
	}
	return res, nil
}

// removeRemoteOutput removes what a finished remote run left in the work
// folder, once train_result.json records the committed adapter.
func removeRemoteOutput(work string) error {
	err := os.Remove(filepath.Join(work, remoteResultFile))
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return errors.Join(os.RemoveAll(filepath.Join(work, remoteAdapterDir)), err)
}

// writeSpec writes s as the trainer's spec file, in the form spec.Load
// accepts: the schema refuses the zero values of some fields that mean
// "unset" in Go (registry.uri "", carbon.pue 0), so empty strings, zero
// numbers, and empty objects and lists are left out. That loses nothing for
// a normalised spec: where a zero stands for something else, Normalize has
// already replaced it by that default, so Load gives s back (the round-trip
// test checks it on the quickstart spec). The file is checked with the
// trainer's own parser before it is handed over.
func writeSpec(path string, s spec.Spec) error {
	raw, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encoding the trainer's spec: %w", err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("encoding the trainer's spec: %w", err)
	}
	b, err := json.MarshalIndent(pruneEmpty(v), "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the trainer's spec: %w", err)
	}
	if _, err := spec.Parse(b, path); err != nil {
		return nonRetryable(ErrBadSpec, fmt.Errorf("the spec handed to the remote trainer would be refused: %w", err))
	}
	// The spec holds no credentials (spec.Validate refuses userinfo in
	// registry.uri; keys are named, never inlined), and the file is
	// readable by its owner and the trainer pod's group (fsGroup) only.
	if err := artifact.WriteFileAtomic(path, b); err != nil {
		return err
	}
	return os.Chmod(path, 0o640)
}

// pruneEmpty drops "", 0, and empty objects and lists from decoded JSON
// (false stays: init_lora_weights false is not its default).
func pruneEmpty(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			e = pruneEmpty(e)
			switch x := e.(type) {
			case string:
				if x == "" {
					delete(t, k)
					continue
				}
			case float64:
				if x == 0 {
					delete(t, k)
					continue
				}
			case map[string]any:
				if len(x) == 0 {
					delete(t, k)
					continue
				}
			case []any:
				if len(x) == 0 {
					delete(t, k)
					continue
				}
			case nil:
				delete(t, k)
				continue
			}
			t[k] = e
		}
		return t
	case []any:
		for i, e := range t {
			t[i] = pruneEmpty(e)
		}
		return t
	}
	return v
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
