package argo

import (
	"context"
	"errors"

	"github.com/loraflow/loraflow/pipeline"
)

// JobRunner runs one Job to completion; *Backend is one.
type JobRunner interface {
	Train(ctx context.Context, job Job, heartbeat func(Status)) (string, error)
}

// RemoteTrainer returns r as the pipeline's remote trainer: a pipeline job
// becomes an Argo Job, the trainer's progress file reaches progress, and an
// *Error that retrying cannot fix becomes a non-retryable pipeline error of
// type "Argo" + its reason.
func RemoteTrainer(r JobRunner) pipeline.RemoteTrainer { return remoteTrainer{r} }

type remoteTrainer struct{ r JobRunner }

func (t remoteTrainer) Train(ctx context.Context, j pipeline.RemoteJob, progress func(pipeline.RemoteProgress)) error {
	job := Job{
		SnapshotPath: j.SnapshotPath, BaseModelPath: j.BaseModelPath, SpecPath: j.SpecPath, OutputDir: j.OutputDir,
		ProgressFile: j.ProgressFile, ExtraArgs: j.ExtraArgs,
	}
	_, err := t.r.Train(ctx, job, func(st Status) {
		if progress == nil {
			return
		}
		var p pipeline.RemoteProgress
		if tp := st.Trainer; tp != nil {
			p = pipeline.RemoteProgress{Step: tp.Step, TotalSteps: tp.TotalSteps, Loss: tp.Loss, TokensPerSec: tp.TokensPerSec, Checkpoint: tp.Checkpoint}
		}
		progress(p)
	})
	var ae *Error
	if errors.As(err, &ae) && !IsRetryable(err) {
		return pipeline.NonRetryable(pipeline.ErrRemotePrefix+ae.Reason, err)
	}
	return err
}
