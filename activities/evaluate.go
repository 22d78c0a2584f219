package activities

import (
	"context"
	"fmt"

	"github.com/loraflow/loraflow/pipeline"
)

// Files of the eval report artifact (pipeline.Evaluate writes them).
const (
	EvalReportFile  = pipeline.EvalReportFile
	LossCurveFile   = pipeline.LossCurveFile
	RankReportFile  = pipeline.RankReportFile
	RankSpectraFile = pipeline.RankSpectraFile
)

// Evaluate scores the base model, the new adapter and the current champion
// on the snapshot's held-out split, and writes the report as an artifact
// (pipeline.Evaluate); the champion comes from the registry the spec names.
func (a *Activities) Evaluate(ctx context.Context, in EvaluateInput) (out EvaluateOutput, err error) {
	m := a.measure(ctx, in.Spec)
	defer func() { out.Usage = m.stopAll(err) }()
	if err := a.checkSpec("Evaluate", in.Spec); err != nil {
		return EvaluateOutput{}, err
	}
	alive := startKeepAlive(ctx, "loading", m)
	defer alive.close()
	reg, err := a.openRegistry(ctx, in.Spec)
	if err != nil {
		return EvaluateOutput{}, fmt.Errorf("Evaluate: looking up the champion: %w", err)
	}
	defer reg.Close()
	v, err := a.verifier("Evaluate")
	if err != nil {
		return EvaluateOutput{}, err
	}
	champ, err := pipeline.FindChampion(ctx, reg, v, in.Spec, in.BaseModel.SHA256, in.Snapshot.SHA256, a.logger())
	if err != nil {
		return EvaluateOutput{}, fmt.Errorf("Evaluate: looking up the champion: %w", err)
	}
	out, err = pipeline.Evaluate(ctx, a.Store, in, pipeline.EvaluateOptions{
		Champion: champ, ReportSamples: a.Trust.ReportSamples(),
		Progress: func(s string) { alive.set(ctx, s) }, Logger: a.logger(),
	})
	return out, classify("Evaluate", err)
}
