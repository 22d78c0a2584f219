package activities

import (
	"context"

	"go.temporal.io/sdk/activity"

	"github.com/loraflow/loraflow/pipeline"
)

// Attest signs an artifact's provenance, model-signing manifest, eval and
// carbon statements with the signing key the spec names among the
// worker's (pipeline.Attest).
func (a *Activities) Attest(ctx context.Context, in AttestInput) (out Attestation, err error) {
	m := a.measure(ctx, in.Spec)
	defer func() { out.Usage = m.stopAll(err) }()
	if err := a.checkSpec("Attest", in.Spec); err != nil {
		return Attestation{}, err
	}
	alive := startKeepAlive(ctx, "hashing and signing", m) // hashing a whole model takes minutes
	defer alive.close()
	signer, err := a.signer(in.Spec)
	if err != nil {
		return Attestation{}, err
	}
	out, err = pipeline.Attest(ctx, a.Store, signer, in, pipeline.AttestOptions{
		WorkerIdentity: activity.GetInfo(ctx).WorkflowExecution.ID, Logger: a.logger(),
	})
	return out, classify("Attest", err)
}
