package activities

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
	Usage      Usage
}

// TrainInput is the input of TrainLoRA.
type TrainInput struct {
	Spec      spec.Spec
	Snapshot  artifact.Ref
	BaseModel artifact.Ref
}

// TrainProgress is what TrainLoRA heartbeats: enough to resume and to draw
// a progress bar.
type TrainProgress struct {
	Step         int
	TotalSteps   int
	Loss         float64
	LearningRate float64
	TokensPerSec float64
	// CheckpointURI is the last durable checkpoint (written before the
	// heartbeat that names it).
	CheckpointURI string
	ResumedFrom   int
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
	Usage Usage
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
	Usage         Usage
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
	Carbon       *CarbonSummary
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
	// Counterfactual is the full fine-tuning estimate attached to an
	// adapter's carbon statement.
	Counterfactual *carbon.Counterfactual `json:",omitempty"`
	Usage          Usage
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
	Usage          Usage
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
	Carbon       CarbonSummary
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
	Usage    Usage
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
