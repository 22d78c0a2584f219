package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/loraflow/loraflow/activities"
	"github.com/loraflow/loraflow/carbon"
	"github.com/loraflow/loraflow/spec"
)

// Names under which the pipeline is registered and queried.
const (
	PipelineName  = "LoRAPipeline"
	ProgressQuery = "progress"
)

// Pipeline stages, in order.
const (
	StagePrepareData  = "PrepareData"
	StageFindChampion = "FindChampion"
	StageTrainLoRA    = "TrainLoRA"
	StageEvaluate     = "Evaluate"
	StageGate         = "Gate"
	StageAttest       = "Attest"
	StageMerge        = "Merge"
	StagePublish      = "Publish"
	StageDone         = "Done"
)

// Run outcomes.
const (
	StatusPublished = "published"
	StatusRejected  = "rejected" // the gate refused the adapter
	StatusUnchanged = "unchanged"
)

// Options are the worker-side settings the workflow needs.
type Options struct {
	// TrainTaskQueue, when set, sends TrainLoRA to that queue (GPU workers).
	TrainTaskQueue string
}

// Progress is what the progress query returns.
type Progress struct {
	Stage     string
	Completed []StageTime
	Status    string
}

// StageTime is how long a finished stage took (workflow time).
type StageTime struct {
	Stage   string
	Seconds float64
}

// Result is the pipeline's outcome.
type Result struct {
	Status       string
	Reason       string
	Prepare      activities.PrepareDataOutput
	Train        *activities.TrainOutput    `json:",omitempty"`
	Eval         *activities.EvaluateOutput `json:",omitempty"`
	Gate         *GateDecision              `json:",omitempty"`
	Merge        *activities.MergeOutput    `json:",omitempty"`
	Attestations []activities.Attestation   `json:",omitempty"`
	Publication  *activities.PublishOutput  `json:",omitempty"`
	Carbon       activities.CarbonSummary
	Stages       []StageTime
}

// a is a nil *Activities used only for method references: the workflow
// names activities by their methods, the worker supplies the real struct.
var a *activities.Activities

// LoRAPipeline runs one spec end to end.
func LoRAPipeline(ctx workflow.Context, s spec.Spec) (*Result, error) {
	return runPipeline(ctx, s, Options{})
}

// NewPipeline returns the pipeline workflow bound to worker options (for
// example a separate training task queue).
func NewPipeline(opt Options) func(workflow.Context, spec.Spec) (*Result, error) {
	return func(ctx workflow.Context, s spec.Spec) (*Result, error) { return runPipeline(ctx, s, opt) }
}

func runPipeline(ctx workflow.Context, s spec.Spec, opt Options) (*Result, error) {
	// A spec from any client (a Schedule, another SDK) gets the same
	// defaults and checks as one loaded by the CLI.
	if err := s.Normalize(); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrBadSpec, err)
	}
	info := workflow.GetInfo(ctx)
	invocation := info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID
	started := workflow.Now(ctx)
	heartbeat, trainTimeout, err := timeouts(s)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrBadSpec, err)
	}

	res := &Result{}
	var counterfactual *carbon.Counterfactual
	progress := &Progress{Stage: StagePrepareData}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Progress, error) {
		p := *progress
		p.Completed = append([]StageTime(nil), res.Stages...)
		return p, nil
	}); err != nil {
		return nil, err
	}
	stageStart := workflow.Now(ctx)
	enter := func(stage string) {
		now := workflow.Now(ctx)
		res.Stages = append(res.Stages, StageTime{Stage: progress.Stage, Seconds: now.Sub(stageStart).Seconds()})
		progress.Stage, stageStart = stage, now
	}
	finish := func(status, reason string) (*Result, error) {
		enter(StageDone)
		res.Status, res.Reason, progress.Status = status, reason, status
		res.Carbon = activities.SumUsage(res.usages()...)
		res.Carbon.Counterfactual = counterfactual
		return res, nil
	}

	// 1 PrepareData
	if err := workflow.ExecuteActivity(withOptions(ctx, heartbeating(shortActivity, heartbeat)), a.PrepareData, // it hashes the whole base folder
		activities.PrepareDataInput{Spec: s}).Get(ctx, &res.Prepare); err != nil {
		return nil, err
	}

	if s.SkipIfUnchanged {
		enter(StageFindChampion)
		var champ activities.FindChampionOutput
		if err := workflow.ExecuteActivity(withOptions(ctx, registryActivity), a.FindChampion,
			activities.FindChampionInput{Spec: s}).Get(ctx, &champ); err != nil {
			return nil, err
		}
		if champ.Found && champ.SnapshotDigest == res.Prepare.Snapshot.SHA256 && champ.BaseDigest == res.Prepare.BaseModel.SHA256 {
			return finish(StatusUnchanged, fmt.Sprintf("dataset and base model equal champion version %s", champ.Version))
		}
	}

	// 2 TrainLoRA
	enter(StageTrainLoRA)
	// Worker crashes, deploys and heartbeat timeouts each cost an attempt
	// but no progress (training resumes from its checkpoint), so attempts
	// are unlimited within a bound of three training timeouts; bad input is
	// non-retryable anyway.
	trainOpts := workflow.ActivityOptions{
		StartToCloseTimeout:    trainTimeout,
		ScheduleToCloseTimeout: 3 * trainTimeout,
		HeartbeatTimeout:       heartbeat,
		TaskQueue:              opt.TrainTaskQueue,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
		},
	}
	stopOnCancel := stopsTrainingOnCancel(ctx)
	trainOpts.WaitForCancellation = stopOnCancel
	trainIn := activities.TrainInput{Spec: s, Snapshot: res.Prepare.Snapshot, BaseModel: res.Prepare.BaseModel}
	var train activities.TrainOutput
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, trainOpts), a.TrainLoRA, trainIn).Get(ctx, &train); err != nil {
		if stopOnCancel {
			stopRemoteTraining(ctx, opt.TrainTaskQueue, trainIn)
		}
		return nil, err
	}
	res.Train = &train
	// The full fine-tuning counterfactual, computed where training ended.
	counterfactual = train.Counterfactual

	// 3 Evaluate
	enter(StageEvaluate)
	var eval activities.EvaluateOutput
	if err := workflow.ExecuteActivity(withOptions(ctx, longActivity(heartbeat)), a.Evaluate,
		activities.EvaluateInput{Spec: s, Snapshot: res.Prepare.Snapshot, BaseModel: res.Prepare.BaseModel, Adapter: train.Adapter, TrainLosses: train.Losses, TrainSteps: train.Steps, TrainHeldOut: train.HeldOutCurve}).Get(ctx, &eval); err != nil {
		return nil, err
	}
	res.Eval = &eval

	// 4 Gate
	enter(StageGate)
	gate := Gate(s.Evaluation, eval)
	res.Gate = &gate
	if !gate.Passed {
		return finish(StatusRejected, gate.Reason)
	}

	// 5 Attest the adapter and its eval report (Merge verifies them)
	enter(StageAttest)
	attest := func(kind string, ref activities.AttestInput) (activities.Attestation, error) {
		ref.Spec, ref.Kind, ref.BaseModel, ref.Snapshot = s, kind, res.Prepare.BaseModel, res.Prepare.Snapshot
		ref.InvocationID, ref.StartedOn, ref.FinishedOn = invocation, started.Unix(), workflow.Now(ctx).Unix()
		var out activities.Attestation
		err := workflow.ExecuteActivity(withOptions(ctx, heartbeating(shortActivity, heartbeat)), a.Attest, ref).Get(ctx, &out)
		return out, err
	}
	carbonSoFar := withCounterfactual(activities.SumUsage(res.usages()...), counterfactual)
	adapterAtt, err := attest("adapter", activities.AttestInput{Artifact: train.Adapter, Train: &train, Eval: &eval, Carbon: &carbonSoFar})
	if err != nil {
		return nil, err
	}
	// The attested adapter carries its model card; it is what goes on.
	adapter := adapterAtt.Artifact
	if counterfactual == nil {
		// A run whose training finished before TrainOutput carried the
		// counterfactual: its Attest computed it (a recorded result).
		counterfactual = adapterAtt.Counterfactual
	}
	evalAtt, err := attest("eval-report", activities.AttestInput{Artifact: eval.Report, Eval: &eval, Parents: []activities.Attestation{adapterAtt}})
	if err != nil {
		return nil, err
	}
	res.Attestations = append(res.Attestations, adapterAtt, evalAtt)

	// 6 Merge (optional), then attest the merged model
	if s.Merge {
		enter(StageMerge)
		var merged activities.MergeOutput
		if err := workflow.ExecuteActivity(withOptions(ctx, longActivity(heartbeat)), a.Merge,
			activities.MergeInput{Spec: s, BaseModel: res.Prepare.BaseModel, Snapshot: res.Prepare.Snapshot, Adapter: adapter, AdapterAttestation: adapterAtt}).Get(ctx, &merged); err != nil {
			return nil, err
		}
		res.Merge = &merged
		enter(StageAttest)
		carbonSoFar = withCounterfactual(activities.SumUsage(res.usages()...), counterfactual)
		mergedAtt, err := attest("merged-model", activities.AttestInput{Artifact: merged.Merged, Carbon: &carbonSoFar, Parents: []activities.Attestation{adapterAtt}})
		if err != nil {
			return nil, err
		}
		res.Attestations = append(res.Attestations, mergedAtt)
	}

	// 7 Publish
	enter(StagePublish)
	var pub activities.PublishOutput
	if err := workflow.ExecuteActivity(withOptions(ctx, heartbeating(registryActivity, heartbeat)), a.Publish, activities.PublishInput{
		Spec: s, Snapshot: res.Prepare.Snapshot, BaseModel: res.Prepare.BaseModel, Train: train, Eval: eval, Merge: res.Merge,
		Attestations: res.Attestations, Carbon: withCounterfactual(activities.SumUsage(res.usages()...), counterfactual), Promote: gate.Promote, InvocationID: invocation,
	}).Get(ctx, &pub); err != nil {
		return nil, err
	}
	res.Publication = &pub
	return finish(StatusPublished, "")
}

func withCounterfactual(s activities.CarbonSummary, cf *carbon.Counterfactual) activities.CarbonSummary {
	s.Counterfactual = cf
	return s
}

func (r *Result) usages() []activities.Usage {
	u := []activities.Usage{r.Prepare.Usage}
	if r.Train != nil {
		u = append(u, r.Train.Usage)
	}
	if r.Eval != nil {
		u = append(u, r.Eval.Usage)
	}
	if r.Merge != nil {
		u = append(u, r.Merge.Usage)
	}
	for _, a := range r.Attestations {
		u = append(u, a.Usage)
	}
	if r.Publication != nil {
		u = append(u, r.Publication.Usage)
	}
	return u
}

func timeouts(s spec.Spec) (heartbeat, train time.Duration, err error) {
	if heartbeat, err = time.ParseDuration(s.Timeouts.Heartbeat); err != nil {
		return 0, 0, fmt.Errorf("timeouts.heartbeat: %w", err)
	}
	if train, err = time.ParseDuration(s.Timeouts.Train); err != nil {
		return 0, 0, fmt.Errorf("timeouts.train: %w", err)
	}
	return heartbeat, train, nil
}

var (
	shortActivity = workflow.ActivityOptions{
		StartToCloseTimeout: 15 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: 4,
		},
	}
	registryActivity = workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: 2 * time.Minute, MaximumAttempts: 10,
		},
	}
)

func longActivity(heartbeat time.Duration) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Hour,
		HeartbeatTimeout:    heartbeat,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 5,
		},
	}
}

// heartbeating adds the run's heartbeat timeout to o: Attest hashes and
// Publish copies whole models, which can take minutes, so a worker that
// dies in them is noticed within one heartbeat timeout, not StartToClose.
// (Timeouts are not part of the command that replay compares, so histories
// recorded without it replay unchanged.)
func heartbeating(o workflow.ActivityOptions, heartbeat time.Duration) workflow.ActivityOptions {
	o.HeartbeatTimeout = heartbeat
	return o
}

func withOptions(ctx workflow.Context, o workflow.ActivityOptions) workflow.Context {
	return workflow.WithActivityOptions(ctx, o)
}
