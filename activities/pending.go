package activities

import (
	"context"
	"errors"
)

var errPending = errors.New("not wired yet")

func (a *Activities) TrainLoRA(ctx context.Context, in TrainInput) (TrainOutput, error) {
	return TrainOutput{}, errPending
}
func (a *Activities) Evaluate(ctx context.Context, in EvaluateInput) (EvaluateOutput, error) {
	return EvaluateOutput{}, errPending
}
func (a *Activities) Attest(ctx context.Context, in AttestInput) (Attestation, error) {
	return Attestation{}, errPending
}
func (a *Activities) Merge(ctx context.Context, in MergeInput) (MergeOutput, error) {
	return MergeOutput{}, errPending
}
func (a *Activities) Publish(ctx context.Context, in PublishInput) (PublishOutput, error) {
	return PublishOutput{}, errPending
}
func (a *Activities) FindChampion(ctx context.Context, in FindChampionInput) (FindChampionOutput, error) {
	return FindChampionOutput{}, errPending
}
