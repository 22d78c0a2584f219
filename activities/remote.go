package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/loraflow/loraflow/pipeline"
	"github.com/loraflow/loraflow/spec"
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
func (a *Activities) StopRemoteTraining(ctx context.Context, in TrainInput) (err error) {
	m := a.measure(ctx, in.Spec)
	defer func() { m.stop(err) }()
	if err := a.checkSpec("StopRemoteTraining", in.Spec); err != nil {
		return err
	}
	st, ok := a.RemoteTrainer.(pipeline.RemoteStopper)
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
	return st.Stop(ctx, pipeline.RemoteJobFor(in.Spec, snapDir, work))
}

// trainRemotely runs pipeline.TrainRemotely under the activity: the remote
// run stops only on Temporal's cancellation (remoteContext), and each
// status the trainer reports becomes the keep-alive's heartbeat, which it
// repeats until the next one (so its ticks never send an older progress).
func (a *Activities) trainRemotely(ctx context.Context, alive *keepAlive, s spec.Spec, snapDir, outDir, work string) (pipeline.TrainResult, error) {
	rctx, cancel := remoteContext(ctx)
	defer cancel()
	var last TrainProgress
	if activity.HasHeartbeatDetails(ctx) && activity.GetHeartbeatDetails(ctx, &last) != nil {
		last = TrainProgress{}
	}
	return pipeline.TrainRemotely(rctx, a.RemoteTrainer, s, snapDir, outDir, work, func(p *pipeline.RemoteProgress) {
		// Before the trainer writes progress (pod pending, model loading)
		// the heartbeat carries the last progress known, not an empty one.
		if p != nil {
			last = TrainProgress{Step: p.Step, TotalSteps: p.TotalSteps, Loss: p.Loss, TokensPerSec: p.TokensPerSec, CheckpointURI: p.Checkpoint}
		}
		alive.set(ctx, last)
	})
}
