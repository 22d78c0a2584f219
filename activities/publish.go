package activities

import (
	"context"
	"fmt"

	"github.com/loraflow/loraflow/pipeline"
)

// Publish verifies every attested artifact and registers them as one
// version of the registry the spec names among the worker's
// (pipeline.Publish).
func (a *Activities) Publish(ctx context.Context, in PublishInput) (out PublishOutput, err error) {
	m := a.measure(ctx, in.Spec)
	defer func() { out.Usage = m.stopAll(err) }()
	if err := a.checkSpec("Publish", in.Spec); err != nil {
		return PublishOutput{}, err
	}
	alive := startKeepAlive(ctx, "verifying and publishing", m) // hashing a whole model takes minutes
	defer alive.close()
	v, err := a.verifier("Publish")
	if err != nil {
		return PublishOutput{}, err
	}
	reg, err := a.openRegistry(ctx, in.Spec)
	if err != nil {
		return PublishOutput{}, fmt.Errorf("Publish: %w", err)
	}
	defer reg.Close()
	out, err = pipeline.Publish(ctx, a.Store, v, reg, in, pipeline.StepOptions{Logger: a.logger()})
	if err == nil {
		a.Store.AfterRun(ctx, a.logger()) // the run's last step: bounded automatic gc (artifact/autogc.go)
	}
	return out, classify("Publish", err)
}

// FindChampion reads the current champion's input digests, so that a
// scheduled run can end early when nothing changed.
func (a *Activities) FindChampion(ctx context.Context, in FindChampionInput) (_ FindChampionOutput, err error) {
	m := a.measure(ctx, in.Spec)
	defer func() { m.stop(err) }()
	if err := a.checkSpec("FindChampion", in.Spec); err != nil {
		return FindChampionOutput{}, err
	}
	reg, err := a.openRegistry(ctx, in.Spec)
	if err != nil {
		return FindChampionOutput{}, fmt.Errorf("FindChampion: %w", err)
	}
	defer reg.Close()
	return pipeline.ChampionDigests(ctx, reg, in.Spec.Name)
}
