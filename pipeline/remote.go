package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/loraflow/loraflow/artifact"
	"github.com/loraflow/loraflow/spec"
)

// RemoteTrainer runs training outside the worker, on a GPU node;
// argo.RemoteTrainer implements it. It runs job to completion (the
// trainer contract of `loraflow train`: the adapter in job.OutputDir, the
// result file named by job.ExtraArgs' --result), calling progress with the
// trainer's progress as it comes (nil while the trainer has written none:
// pod pending, model loading). A failure that retrying cannot fix is an
// *Error of type ErrRemotePrefix + the trainer's reason.
type RemoteTrainer interface {
	Train(ctx context.Context, job RemoteJob, progress func(*RemoteProgress)) error
}

// RemoteStopper is a RemoteTrainer that can stop the remote run of a job
// when no attempt is running for it.
type RemoteStopper interface {
	Stop(ctx context.Context, job RemoteJob) error
}

// RemoteJob is one remote training run; every path is on the shared
// artifact store.
type RemoteJob struct {
	SnapshotPath  string   // the prepared, validated dataset snapshot
	BaseModelPath string   // the base checkpoint folder
	SpecPath      string   // the pipeline spec as JSON
	OutputDir     string   // where the trainer writes the PEFT adapter folder
	ProgressFile  string   // where the trainer may write its progress as JSON
	ExtraArgs     []string // more trainer arguments (--checkpoints, --result)
}

// RemoteProgress is a remote trainer's latest progress.
type RemoteProgress struct {
	Step, TotalSteps int
	Loss             float64
	TokensPerSec     float64
	Checkpoint       string
}

// RemoteJobFor is the job of a training work folder. Every path is stable
// across attempts, so that a retried activity adopts the run its previous
// attempt started (argo derives the Workflow's name from them) instead of
// starting a second one, and a stop finds it.
func RemoteJobFor(s spec.Spec, snapDir, work string) RemoteJob {
	return RemoteJob{
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

// TrainRemotely hands the spec's training to t, with its job files in the
// work folder (RemoteJobFor), and checks what comes back: a PEFT adapter
// whose modules and shapes fit the base model, copied into outDir, and the
// trainer's result. The remote adapter folder stays until the caller has
// recorded the result (RemoveRemoteOutput), so that a retry after a crash
// in between adopts the finished remote run and finds its adapter.
func TrainRemotely(ctx context.Context, t RemoteTrainer, s spec.Spec, snapDir, outDir, work string, progress func(*RemoteProgress)) (TrainResult, error) {
	job := RemoteJobFor(s, snapDir, work)
	if err := WriteTrainerSpec(job.SpecPath, s); err != nil {
		return TrainResult{}, err
	}
	if err := t.Train(ctx, job, progress); err != nil {
		return TrainResult{}, err
	}
	if err := CheckAdapterFitsBase(job.OutputDir, s.BaseModel); err != nil {
		return TrainResult{}, err
	}
	resultFile := filepath.Join(work, remoteResultFile)
	var res TrainResult
	b, err := os.ReadFile(resultFile)
	if err == nil {
		err = json.Unmarshal(b, &res)
	}
	if err != nil {
		return TrainResult{}, NonRetryable(ErrRemoteInvalidResult, fmt.Errorf("the trainer succeeded but its result %s is unreadable: %w", resultFile, err))
	}
	return res, CopyFiles(job.OutputDir, outDir)
}

// RemoveRemoteOutput removes what a finished remote run left in the work
// folder, once train_result.json records the committed adapter.
func RemoveRemoteOutput(work string) error {
	err := os.Remove(filepath.Join(work, remoteResultFile))
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return errors.Join(os.RemoveAll(filepath.Join(work, remoteAdapterDir)), err)
}

// WriteTrainerSpec writes s as the trainer's spec file, in the form spec.Load
// accepts: the schema refuses the zero values of some fields that mean
// "unset" in Go (registry.uri "", carbon.pue 0), so empty strings, zero
// numbers, and empty objects and lists are left out. That loses nothing for
// a normalised spec: where a zero stands for something else, Normalize has
// already replaced it by that default, so Load gives s back (the round-trip
// test checks it on the quickstart spec). The file is checked with the
// trainer's own parser before it is handed over.
func WriteTrainerSpec(path string, s spec.Spec) error {
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
		return NonRetryable(ErrBadSpec, fmt.Errorf("the spec handed to the remote trainer would be refused: %w", err))
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

// CopyFiles copies the regular files of src (recursively) into dst.
func CopyFiles(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}
