package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/loraflow/loraflow/spec"
)

// RemoteTrainer runs training outside the worker, on a GPU node; the
// argo package's Trainer implements it. It runs job to completion (the
// trainer contract of `loraflow train`: the adapter in job.OutputDir, the
// result file named by job.ExtraArgs' --result), calling progress with the
// trainer's progress as it comes. A failure that retrying cannot fix is an
// *Error of type ErrRemotePrefix + the trainer's reason.
type RemoteTrainer interface {
	Train(ctx context.Context, job RemoteJob, progress func(RemoteProgress)) error
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

// TrainRemotely hands the spec's training to t, with its job files in the
// work folder, and checks what comes back: a PEFT adapter whose modules and
// shapes fit the base model, copied into outDir, and the trainer's result.
func TrainRemotely(ctx context.Context, t RemoteTrainer, s spec.Spec, snapDir, outDir, work string, progress func(RemoteProgress)) (TrainResult, error) {
	specPath := filepath.Join(work, "spec.json")
	b, _ := json.Marshal(s)
	if err := os.WriteFile(specPath, b, 0o644); err != nil {
		return TrainResult{}, err
	}
	// Every path of the job is stable across attempts, so that a retried
	// activity adopts the run its previous attempt started (argo derives
	// the Workflow's name from them) instead of starting a second one.
	remoteOut := filepath.Join(work, "remote-adapter")
	resultFile := filepath.Join(work, "remote_result.json")
	job := RemoteJob{
		SnapshotPath: snapDir, BaseModelPath: s.BaseModel, SpecPath: specPath, OutputDir: remoteOut,
		ProgressFile: filepath.Join(work, "progress.json"),
		ExtraArgs:    []string{"--checkpoints", filepath.Join(work, "checkpoints"), "--result", resultFile},
	}
	if err := t.Train(ctx, job, progress); err != nil {
		return TrainResult{}, err
	}
	if err := CheckAdapterFitsBase(remoteOut, s.BaseModel); err != nil {
		return TrainResult{}, err
	}
	var res TrainResult
	b, err := os.ReadFile(resultFile)
	if err == nil {
		err = json.Unmarshal(b, &res)
	}
	if err != nil {
		return TrainResult{}, NonRetryable(ErrRemoteInvalidResult, fmt.Errorf("the trainer succeeded but its result %s is unreadable: %w", resultFile, err))
	}
	if err := CopyFiles(remoteOut, outDir); err != nil {
		return TrainResult{}, err
	}
	return res, os.RemoveAll(remoteOut)
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
