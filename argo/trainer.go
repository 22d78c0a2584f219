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
// When r can also stop a job's run (*Backend.Stop), so can the result
// (pipeline.RemoteStopper).
func RemoteTrainer(r JobRunner) pipeline.RemoteTrainer {
	if s, ok := r.(jobStopper); ok {
		return stoppableTrainer{remoteTrainer{r}, s}
	}
	return remoteTrainer{r}
}

type jobStopper interface {
	Stop(ctx context.Context, job Job) error
}

type remoteTrainer struct{ r JobRunner }

type stoppableTrainer struct {
	remoteTrainer
	s jobStopper
}

func (t stoppableTrainer) Stop(ctx context.Context, j pipeline.RemoteJob) error {
	return t.s.Stop(ctx, argoJob(j))
}

func argoJob(j pipeline.RemoteJob) Job {
	return Job{
		SnapshotPath: j.SnapshotPath, BaseModelPath: j.BaseModelPath, SpecPath: j.SpecPath, OutputDir: j.OutputDir,
		ProgressFile: j.ProgressFile, ExtraArgs: j.ExtraArgs,
	}
}

func (t remoteTrainer) Train(ctx context.Context, j pipeline.RemoteJob, progress func(*pipeline.RemoteProgress)) error {
	_, err := t.r.Train(ctx, argoJob(j), func(st Status) {
		if progress == nil {
			return
		}
		var p *pipeline.RemoteProgress
		if tp := st.Trainer; tp != nil {
			p = &pipeline.RemoteProgress{Step: tp.Step, TotalSteps: tp.TotalSteps, Loss: tp.Loss, TokensPerSec: tp.TokensPerSec, Checkpoint: tp.Checkpoint}
		}
		progress(p)
	})
	var ae *Error
	if errors.As(err, &ae) && !IsRetryable(err) {
		return pipeline.NonRetryable(pipeline.ErrRemotePrefix+ae.Reason, err)
	}
	return err
}
