package activities

import (
	"context"

	"github.com/loraflow/loraflow/pipeline"
)

// PrepareData validates, dedupes and splits the dataset files into a
// snapshot artifact, and fingerprints the base model folder
// (pipeline.PrepareData).
func (a *Activities) PrepareData(ctx context.Context, in PrepareDataInput) (out PrepareDataOutput, err error) {
	m := a.measure(ctx, in.Spec)
	defer func() { out.Usage = m.stopAll(err) }()
	if err := a.checkSpec("PrepareData", in.Spec); err != nil {
		return PrepareDataOutput{}, err
	}
	alive := startKeepAlive(ctx, "preparing data", m) // reading the data and hashing the base folder takes minutes
	defer alive.close()
	out, err = pipeline.PrepareData(ctx, a.Store, in, pipeline.StepOptions{Logger: a.logger()})
	return out, classify("PrepareData", err)
}
