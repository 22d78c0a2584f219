package activities

import (
	"context"

	"github.com/loraflow/loraflow/pipeline"
)

// Files of the merged model (pipeline.Merge writes them).
const (
	MergeReportFile   = pipeline.MergeReportFile
	MergedMetricsFile = pipeline.MergedMetricsFile
)

// Merge verifies that the adapter is the one this run attested, merges it
// into a copy of the base checkpoint and checks the merged model's logits
// (pipeline.Merge).
func (a *Activities) Merge(ctx context.Context, in MergeInput) (out MergeOutput, err error) {
	m := a.measure(ctx, in.Spec)
	defer func() { out.Usage = m.stopAll(err) }()
	if err := a.checkSpec("Merge", in.Spec); err != nil {
		return MergeOutput{}, err
	}
	alive := startKeepAlive(ctx, "starting", m)
	defer alive.close()
	v, err := a.verifier("Merge")
	if err != nil {
		return MergeOutput{}, err
	}
	out, err = pipeline.Merge(ctx, a.Store, v, in, pipeline.StepOptions{Progress: func(s string) { alive.set(ctx, s) }, Logger: a.logger()})
	return out, classify("Merge", err)
}
