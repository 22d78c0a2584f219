package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/loraflow/loraflow/activities"
	"github.com/loraflow/loraflow/artifact"
	"github.com/loraflow/loraflow/carbon"
	"github.com/loraflow/loraflow/spec"
)

type pipelineSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
}

func TestPipeline(t *testing.T) { suite.Run(t, new(pipelineSuite)) }

func (s *pipelineSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.RegisterActivity(&activities.Activities{})
}

func (s *pipelineSuite) AfterTest(_, _ string) { s.env.AssertExpectations(s.T()) }

func ref(c string) artifact.Ref {
	d := strings.Repeat(c, 64)
	return artifact.Ref{URI: "file:///store/objects/" + d, SHA256: d}
}

func testSpec(merge bool) spec.Spec {
	sp, err := spec.Parse([]byte(`
name: demo
base_model: /models/base
dataset: {files: [/data/a.jsonl], format: text}
evaluation: {min_improvement: 0.01}
`), "test.yaml")
	if err != nil {
		panic(err)
	}
	sp.Merge = merge
	return *sp
}

var (
	prepared = activities.PrepareDataOutput{Snapshot: ref("a"), BaseModel: ref("b"), Train: 90, Validation: 10,
		Usage: activities.Usage{Activity: "PrepareData", EnergyKWh: 0.001, EmissionsKg: 0.0005}}
	trained = activities.TrainOutput{Adapter: ref("c"), Steps: 10, FinalLoss: 2.5,
		Usage: activities.Usage{Activity: "TrainLoRA", EnergyKWh: 0.01, EmissionsKg: 0.005}}
	goodEval = activities.EvaluateOutput{Report: ref("d"), Base: activities.Metrics{Loss: 3.0}, Adapter: activities.Metrics{Loss: 2.6}}
)

func (s *pipelineSuite) expectHappyPath(merge bool) {
	var acts *activities.Activities
	s.env.OnActivity(acts.PrepareData, mock.Anything, mock.Anything).Return(prepared, nil).Once()
	s.env.OnActivity(acts.Evaluate, mock.Anything, mock.MatchedBy(func(in activities.EvaluateInput) bool {
		return in.Adapter == trained.Adapter
	})).Return(goodEval, nil).Once()
	s.env.OnActivity(acts.Attest, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AttestInput) (activities.Attestation, error) {
			return activities.Attestation{Kind: in.Kind, Artifact: in.Artifact, Digest: "att-" + in.Kind}, nil
		})
	if merge {
		s.env.OnActivity(acts.Merge, mock.Anything, mock.MatchedBy(func(in activities.MergeInput) bool {
			return in.AdapterAttestation.Digest == "att-adapter"
		})).Return(activities.MergeOutput{Merged: ref("e"), MaxLogitDiff: 1e-6}, nil).Once()
	}
	s.env.OnActivity(acts.Publish, mock.Anything, mock.MatchedBy(func(in activities.PublishInput) bool {
		return in.Promote && len(in.Attestations) == map[bool]int{true: 3, false: 2}[merge]
	})).Return(activities.PublishOutput{Model: "demo", Version: "1", Alias: "champion"}, nil).Once()
}

func (s *pipelineSuite) expectTrain() {
	var acts *activities.Activities
	s.env.OnActivity(acts.TrainLoRA, mock.Anything, mock.MatchedBy(func(in activities.TrainInput) bool {
		return in.Snapshot == prepared.Snapshot && in.BaseModel == prepared.BaseModel
	})).Return(trained, nil).Once()
}

func (s *pipelineSuite) TestHappyPath() {
	s.expectHappyPath(true)
	s.expectTrain()
	s.env.ExecuteWorkflow(LoRAPipeline, testSpec(true))
	s.True(s.env.IsWorkflowCompleted())
	s.NoError(s.env.GetWorkflowError())
	var res Result
	s.NoError(s.env.GetWorkflowResult(&res))
	s.Equal(StatusPublished, res.Status)
	s.Equal("1", res.Publication.Version)
	s.Equal(ref("e"), res.Merge.Merged)
	s.InDelta(0.011, res.Carbon.Total.EnergyKWh, 1e-12)
	s.Len(res.Attestations, 3)
	stages := []string{}
	for _, st := range res.Stages {
		stages = append(stages, st.Stage)
	}
	s.Equal([]string{StagePrepareData, StageTrainLoRA, StageEvaluate, StageGate, StageAttest, StageMerge, StageAttest, StagePublish}, stages)
}

func (s *pipelineSuite) TestProgressQuery() {
	s.expectHappyPath(false)
	var acts *activities.Activities
	// A query while TrainLoRA runs reports that stage, with PrepareData done.
	var during Progress
	s.env.OnActivity(acts.TrainLoRA, mock.Anything, mock.Anything).Return(
		func(_ context.Context, _ activities.TrainInput) (activities.TrainOutput, error) {
			v, err := s.env.QueryWorkflow(ProgressQuery)
			s.NoError(err)
			s.NoError(v.Get(&during))
			return trained, nil
		}).Once()
	s.env.ExecuteWorkflow(LoRAPipeline, testSpec(false))
	s.NoError(s.env.GetWorkflowError())
	v, err := s.env.QueryWorkflow(ProgressQuery)
	s.NoError(err)
	var p Progress
	s.NoError(v.Get(&p))
	s.Equal(StageDone, p.Stage)
	s.Equal(StatusPublished, p.Status)
	s.Equal(StagePrepareData, p.Completed[0].Stage)
	s.Equal(StageTrainLoRA, during.Stage)
	s.Len(during.Completed, 1)
}

func (s *pipelineSuite) TestBadDataStopsTheRunNamingTheRow() {
	var acts *activities.Activities
	bad := temporal.NewNonRetryableApplicationError("PrepareData: 1 bad rows (at most 0 allowed)\n  a.jsonl:7: invalid JSON object", activities.ErrBadData, nil)
	s.env.OnActivity(acts.PrepareData, mock.Anything, mock.Anything).Return(activities.PrepareDataOutput{}, bad).Once()
	s.env.ExecuteWorkflow(LoRAPipeline, testSpec(true))
	err := s.env.GetWorkflowError()
	s.Error(err)
	var appErr *temporal.ApplicationError
	s.True(errors.As(err, &appErr))
	s.Equal(activities.ErrBadData, appErr.Type())
	s.Contains(err.Error(), "a.jsonl:7")
}

func (s *pipelineSuite) TestTransientFailureIsRetried() {
	var acts *activities.Activities
	s.expectHappyPath(false)
	s.env.OnActivity(acts.TrainLoRA, mock.Anything, mock.Anything).Return(activities.TrainOutput{}, errors.New("disk full")).Once()
	s.env.OnActivity(acts.TrainLoRA, mock.Anything, mock.Anything).Return(trained, nil).Once()
	s.env.ExecuteWorkflow(LoRAPipeline, testSpec(false))
	s.NoError(s.env.GetWorkflowError())
	var res Result
	s.NoError(s.env.GetWorkflowResult(&res))
	s.Equal(StatusPublished, res.Status)
}

func (s *pipelineSuite) TestGateRefusalEndsWithoutMergeOrPublish() {
	var acts *activities.Activities
	s.env.OnActivity(acts.PrepareData, mock.Anything, mock.Anything).Return(prepared, nil).Once()
	s.env.OnActivity(acts.TrainLoRA, mock.Anything, mock.Anything).Return(trained, nil).Once()
	worse := goodEval
	worse.Adapter.Loss = 3.1
	s.env.OnActivity(acts.Evaluate, mock.Anything, mock.Anything).Return(worse, nil).Once()
	s.env.ExecuteWorkflow(LoRAPipeline, testSpec(true))
	s.NoError(s.env.GetWorkflowError())
	var res Result
	s.NoError(s.env.GetWorkflowResult(&res))
	s.Equal(StatusRejected, res.Status)
	s.Contains(res.Reason, "below the required")
	s.Nil(res.Merge)
	s.Nil(res.Publication)
	// Merge, Attest and Publish have no expectations: AssertExpectations and
	// the mock's panic on unexpected calls enforce that they never ran.
}

func (s *pipelineSuite) TestUnchangedEndsEarly() {
	var acts *activities.Activities
	sp := testSpec(false)
	sp.SkipIfUnchanged = true
	s.env.OnActivity(acts.PrepareData, mock.Anything, mock.Anything).Return(prepared, nil).Once()
	s.env.OnActivity(acts.FindChampion, mock.Anything, mock.Anything).Return(activities.FindChampionOutput{
		Found: true, Version: "4", SnapshotDigest: prepared.Snapshot.SHA256, BaseDigest: prepared.BaseModel.SHA256}, nil).Once()
	s.env.ExecuteWorkflow(LoRAPipeline, sp)
	var res Result
	s.NoError(s.env.GetWorkflowResult(&res))
	s.Equal(StatusUnchanged, res.Status)
	s.Nil(res.Train)
}

func TestGateChampionComparison(t *testing.T) {
	th := spec.Evaluation{MinImprovement: 0.01, ChampionMargin: 0.02}
	e := goodEval
	e.HasChampion, e.ChampionComparable, e.ChampionVersion, e.Champion.Loss = true, true, "3", 2.62
	if d := Gate(th, e); !d.Passed || d.Promote {
		t.Fatalf("2.60 vs champion 2.62 with 2%% margin should pass without promotion: %+v", d)
	}
	e.Champion.Loss = 2.7
	if d := Gate(th, e); !d.Promote {
		t.Fatalf("2.60 vs champion 2.70 should promote: %+v", d)
	}
	incomparable := e
	incomparable.ChampionComparable, incomparable.ChampionNote = false, "champion v3 was trained on another base model"
	if d := Gate(th, incomparable); !d.Passed || d.Promote || !strings.Contains(d.Reason, "another base model") {
		t.Fatalf("an incomparable champion must not be replaced automatically: %+v", d)
	}
	e.Classification, e.Adapter.Accuracy = true, 0.5
	th.MinAccuracy = 0.6
	if d := Gate(th, e); d.Passed || !strings.Contains(d.Reason, "accuracy") {
		t.Fatalf("accuracy threshold ignored: %+v", d)
	}
}

// TestCancelBetweenTrainingAttemptsStopsRemoteRun: a run cancelled while
// TrainLoRA waits for its next attempt (no activity context to carry the
// cancellation) still tells the remote trainer to stop, with the inputs
// that name its Workflow.
func (s *pipelineSuite) TestCancelBetweenTrainingAttemptsStopsRemoteRun() {
	var acts *activities.Activities
	s.env.OnActivity(acts.PrepareData, mock.Anything, mock.Anything).Return(prepared, nil).Once()
	s.env.OnActivity(acts.TrainLoRA, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.TrainInput) (activities.TrainOutput, error) {
			// Cancel during the retry backoff (InitialInterval 2s).
			s.env.RegisterDelayedCallback(s.env.CancelWorkflow, time.Second)
			return activities.TrainOutput{}, errors.New("worker lost")
		}).Once()
	stopped := 0
	s.env.OnActivity(acts.StopRemoteTraining, mock.Anything, mock.MatchedBy(func(in activities.TrainInput) bool {
		return in.Snapshot == prepared.Snapshot && in.BaseModel == prepared.BaseModel && in.Spec.Name == "demo"
	})).Return(func(context.Context, activities.TrainInput) error { stopped++; return nil }).Once()
	s.env.ExecuteWorkflow(LoRAPipeline, testSpec(false))
	s.True(temporal.IsCanceledError(s.env.GetWorkflowError()), "err = %v", s.env.GetWorkflowError())
	s.Equal(1, stopped)
}

// TestTrainingFailureDoesNotStopRemoteRun: a non-retryable training failure
// (the run not cancelled) runs no cleanup.
func (s *pipelineSuite) TestTrainingFailureDoesNotStopRemoteRun() {
	var acts *activities.Activities
	s.env.OnActivity(acts.PrepareData, mock.Anything, mock.Anything).Return(prepared, nil).Once()
	s.env.OnActivity(acts.TrainLoRA, mock.Anything, mock.Anything).Return(activities.TrainOutput{},
		temporal.NewNonRetryableApplicationError("bad rank", activities.ErrBadSpec, nil)).Once()
	s.env.ExecuteWorkflow(LoRAPipeline, testSpec(false))
	s.Error(s.env.GetWorkflowError())
	// StopRemoteTraining has no expectation: the mock panics if it runs.
}

// Every step that can run for minutes (training, evaluation, hashing and
// signing a whole model, merging, copying it into the registry) runs with
// the spec's heartbeat timeout, so a dead worker is noticed within it.
func (s *pipelineSuite) TestLongStepsHeartbeat() {
	s.expectHappyPath(true)
	s.expectTrain()
	got := map[string]time.Duration{}
	s.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		got[info.ActivityType.Name] = info.HeartbeatTimeout
	})
	sp := testSpec(true)
	s.env.ExecuteWorkflow(LoRAPipeline, sp)
	s.NoError(s.env.GetWorkflowError())
	want, err := time.ParseDuration(sp.Timeouts.Heartbeat)
	s.Require().NoError(err)
	for _, name := range []string{"PrepareData", "TrainLoRA", "Evaluate", "Attest", "Merge", "Publish"} {
		s.Equal(want, got[name], "%s heartbeat timeout", name)
	}
}

// The full fine-tuning counterfactual comes from TrainLoRA, where training
// ends, and goes explicitly into the adapter's and merged model's carbon
// statements, Publish and the result; Attest's output does not carry it.
func (s *pipelineSuite) TestCounterfactualComesFromTraining() {
	var acts *activities.Activities
	cf := &carbon.Counterfactual{LoRAEnergyKWh: 0.01, FullEnergyKWh: 0.2}
	withCF := trained
	withCF.Counterfactual = cf
	s.env.OnActivity(acts.PrepareData, mock.Anything, mock.Anything).Return(prepared, nil).Once()
	s.env.OnActivity(acts.TrainLoRA, mock.Anything, mock.Anything).Return(withCF, nil).Once()
	s.env.OnActivity(acts.Evaluate, mock.Anything, mock.Anything).Return(goodEval, nil).Once()
	attested := map[string]*carbon.Counterfactual{}
	s.env.OnActivity(acts.Attest, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AttestInput) (activities.Attestation, error) {
			if in.Carbon != nil {
				attested[in.Kind] = in.Carbon.Counterfactual
			}
			return activities.Attestation{Kind: in.Kind, Artifact: in.Artifact, Digest: "att-" + in.Kind}, nil
		})
	s.env.OnActivity(acts.Merge, mock.Anything, mock.Anything).Return(activities.MergeOutput{Merged: ref("e")}, nil).Once()
	s.env.OnActivity(acts.Publish, mock.Anything, mock.MatchedBy(func(in activities.PublishInput) bool {
		return in.Carbon.Counterfactual != nil && in.Carbon.Counterfactual.FullEnergyKWh == cf.FullEnergyKWh
	})).Return(activities.PublishOutput{Model: "demo", Version: "1", Alias: "champion"}, nil).Once()
	s.env.ExecuteWorkflow(LoRAPipeline, testSpec(true))
	s.NoError(s.env.GetWorkflowError())
	var res Result
	s.NoError(s.env.GetWorkflowResult(&res))
	s.Equal(cf, attested["adapter"])
	s.Equal(cf, attested["merged-model"])
	s.Equal(cf, res.Carbon.Counterfactual)
}
