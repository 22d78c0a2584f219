package activities

import "github.com/loraflow/loraflow/pipeline"

// The activities' inputs and outputs are the pipeline steps' own
// (pipeline/types.go); these names keep the activities' API in one place.
type (
	PrepareDataInput   = pipeline.PrepareDataInput
	PrepareDataOutput  = pipeline.PrepareDataOutput
	TrainInput         = pipeline.TrainInput
	TrainOutput        = pipeline.TrainOutput
	EvaluateInput      = pipeline.EvaluateInput
	EvaluateOutput     = pipeline.EvaluateOutput
	Metrics            = pipeline.Metrics
	AttestInput        = pipeline.AttestInput
	Attestation        = pipeline.Attestation
	MergeInput         = pipeline.MergeInput
	MergeOutput        = pipeline.MergeOutput
	PublishInput       = pipeline.PublishInput
	PublishOutput      = pipeline.PublishOutput
	FindChampionInput  = pipeline.FindChampionInput
	FindChampionOutput = pipeline.FindChampionOutput
)

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
	// Usage is the energy of every attempt so far, this one's included: the
	// next attempt adds its own to it, so a crash loses at most what was
	// spent since the last heartbeat.
	Usage *Usage `json:",omitempty"`
}
