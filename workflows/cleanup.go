package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/loraflow/loraflow/activities"
)

// versionStopTrainingOnCancel marks histories whose TrainLoRA waits for its
// cancellation and whose cancellation runs StopRemoteTraining; histories
// recorded before (no marker) replay as they ran.
const versionStopTrainingOnCancel = "stop-training-on-cancel"

// stopsTrainingOnCancel reports whether this run waits for a cancelled
// TrainLoRA attempt to stop (so a remote trainer is told) and cleans up
// after a cancellation that found no attempt running.
func stopsTrainingOnCancel(ctx workflow.Context) bool {
	return workflow.GetVersion(ctx, versionStopTrainingOnCancel, workflow.DefaultVersion, 1) == 1
}

// stopRemoteTraining runs StopRemoteTraining when the run was cancelled
// while TrainLoRA was not running — between two attempts (retry backoff),
// or with the last attempt's worker dead — when no activity context carries
// the cancellation to the remote trainer, whose Workflow would otherwise
// run until its deadline. It runs in a disconnected context (the run's own
// is cancelled) on the training queue, where the remote trainer is
// configured; its failure is logged, not returned: the run ends cancelled
// either way.
func stopRemoteTraining(ctx workflow.Context, queue string, in activities.TrainInput) {
	if ctx.Err() == nil {
		return // TrainLoRA failed on its own: nothing to stop
	}
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	dctx = workflow.WithActivityOptions(dctx, workflow.ActivityOptions{
		TaskQueue:           queue,
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: 5},
	})
	if err := workflow.ExecuteActivity(dctx, a.StopRemoteTraining, in).Get(dctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("stopping the remote training run of a cancelled pipeline failed", "error", err)
	}
}
