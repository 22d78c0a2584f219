package pipeline

import (
	"github.com/loraflow/loraflow/artifact"
	"github.com/loraflow/loraflow/carbon"
	"github.com/loraflow/loraflow/spec"
)

// PrepareDataInput is the input of PrepareData.
type PrepareDataInput struct {
	Spec spec.Spec
}

// PrepareDataOutput names the snapshot and what went into it.
type PrepareDataOutput struct {
	Snapshot   artifact.Ref
	BaseModel  artifact.Ref // the base checkpoint folder's digest (not copied)
	Train      int
	Validation int
	BadRows    int
	Duplicates int
	Labels     []string
	Usage      carbon.Report
}

// TrainInput is the input of TrainLoRA.
type TrainInput struct {
	Spec      spec.Spec
	Snapshot  artifact.Ref
	BaseModel artifact.Ref
}

// TrainOutput is the trained adapter.
type TrainOutput struct {
	Adapter         artifact.Ref
	Steps           int
	Tokens          int64
	FinalLoss       float64
	Losses          []float64
	TokensPerSec    float64
	ResumedFromStep int
	// Reused says that this run trained nothing: an earlier run (or
	// attempt) with the same inputs finished, and its adapter is returned.
	Reused          bool `json:",omitempty"`
	TrainableParams int64
	TotalParams     int64
	// FLOPs are the run's FLOP counts from the engine's FLOP model, for the
	// full-fine-tuning counterfactual (unset in results recorded before).
	FLOPs carbon.FLOPCounts `json:",omitzero"`
	// Counterfactual is what full fine-tuning of the same run would have
	// cost, computed where training ended from FLOPs and Usage (unset in
	// results recorded before; the workflow then takes Attestation's).
	Counterfactual *carbon.Counterfactual `json:",omitempty"`
	// Usage is the training's energy: every attempt's, summed (a crashed
	// attempt's as its last heartbeat reported it); with a remote trainer,
	// the energy the trainer measured.
	Usage carbon.Report
	// HeldOutCurve is the held-out loss during training
	// (evaluation.every_steps), for the report's loss curve.
	HeldOutCurve []CurvePoint `json:",omitempty"`
}

// EvaluateInput is the input of Evaluate.
type EvaluateInput struct {
	Spec      spec.Spec
	Snapshot  artifact.Ref
	BaseModel artifact.Ref
	Adapter   artifact.Ref
	// TrainLosses, when given, are plotted as the report's loss curve.
	TrainLosses []float64
	TrainSteps  int
	// TrainHeldOut, when given, is plotted over the training curve.
	TrainHeldOut []CurvePoint `json:",omitempty"`
}

// Metrics are one model's held-out scores.
type Metrics struct {
	Loss       float64
	Perplexity float64
	Accuracy   float64 // classification data only
	Tokens     int
	Examples   int
}

// EvaluateOutput compares base, adapter and the current champion on the
// same held-out data; the report is an artifact of its own.
type EvaluateOutput struct {
	Report      artifact.Ref
	Base        Metrics
	Adapter     Metrics
	HasChampion bool
	// ChampionComparable says Champion holds scores on the same held-out
	// data; when false the gate never promotes over the champion.
	ChampionComparable bool
	ChampionNote       string
	Champion           Metrics
	// ChampionVersion is the registry version under the alias champion.
	ChampionVersion string
	Classification  bool
	// SuggestedRank is the rank diagnostics' smallest r keeping 99% energy.
	SuggestedRank int
	Usage         carbon.Report
}

// AttestInput asks for one artifact's signed attestations.
type AttestInput struct {
	Spec         spec.Spec
	Kind         string // "adapter", "eval-report" or "merged-model"
	Artifact     artifact.Ref
	BaseModel    artifact.Ref
	Snapshot     artifact.Ref
	Parents      []Attestation // e.g. the merged model names its adapter's attestation
	Train        *TrainOutput  // for the adapter's model card and carbon counterfactual
	Eval         *EvaluateOutput
	Carbon       *carbon.Summary
	InvocationID string // Temporal workflow and run ID
	StartedOn    int64  // unix seconds of the workflow's start
	FinishedOn   int64  // unix seconds (workflow time), so a retried Attest signs the same statement
}

// Attestation is one artifact's signed provenance bundle.
type Attestation struct {
	Kind     string
	Artifact artifact.Ref
	Bundles  []string // bundle file paths
	Digest   string   // sha256 of the signed provenance statement
	// FolderDigest is the artifact's provenance (model_signing) digest.
	FolderDigest string
	// Counterfactual was the full fine-tuning estimate, computed by Attest
	// in runs started before TrainOutput carried it; Attest no longer sets
	// it, and the workflow reads it only for those runs' histories.
	Counterfactual *carbon.Counterfactual `json:",omitempty"`
	Usage          carbon.Report
}

// MergeInput asks for W' = W0 + scale·B·A.
type MergeInput struct {
	Spec      spec.Spec
	BaseModel artifact.Ref
	// Snapshot is the dataset snapshot the adapter was trained on; the
	// adapter's provenance must name it, and the base model.
	Snapshot           artifact.Ref
	Adapter            artifact.Ref
	AdapterAttestation Attestation
}

// MergeOutput is the merged model and its equivalence figure.
type MergeOutput struct {
	Merged         artifact.Ref
	MaxLogitDiff   float64
	Tolerance      float64
	ProbeSetDigest string
	TensorsMerged  int
	Usage          carbon.Report
}

// PublishInput is everything a registry version records.
type PublishInput struct {
	Spec         spec.Spec
	Snapshot     artifact.Ref
	BaseModel    artifact.Ref
	Train        TrainOutput
	Eval         EvaluateOutput
	Merge        *MergeOutput
	Attestations []Attestation
	Carbon       carbon.Summary
	// Promote moves the champion alias to the new version (the gate decided).
	Promote      bool
	InvocationID string
}

// PublishOutput is the registry version.
type PublishOutput struct {
	Model    string
	Version  string
	Alias    string
	Registry string // the registry's URI
	URI      string // where the version's artifacts are
	Existed  bool   // a retried publish found the version it had already made
	Usage    carbon.Report
}

// FindChampionInput names a registered model.
type FindChampionInput struct {
	Spec spec.Spec
}

// FindChampionOutput describes the current champion, if any.
type FindChampionOutput struct {
	Found          bool
	Version        string
	SnapshotDigest string
	BaseDigest     string
	SpecDigest     string
}

// RunSpec lets the energy interceptor find the spec in an activity's input.
func (in PrepareDataInput) RunSpec() spec.Spec  { return in.Spec }
func (in TrainInput) RunSpec() spec.Spec        { return in.Spec }
func (in EvaluateInput) RunSpec() spec.Spec     { return in.Spec }
func (in AttestInput) RunSpec() spec.Spec       { return in.Spec }
func (in MergeInput) RunSpec() spec.Spec        { return in.Spec }
func (in PublishInput) RunSpec() spec.Spec      { return in.Spec }
func (in FindChampionInput) RunSpec() spec.Spec { return in.Spec }
