package activities

import (
	"context"
	"errors"
	"fmt"

	"github.com/loraflow/loraflow/pipeline"
	"github.com/loraflow/loraflow/provenance"
	"github.com/loraflow/loraflow/registry"
	"github.com/loraflow/loraflow/spec"
	"github.com/loraflow/loraflow/trust"
)

// policy is the worker's trust policy; without one nothing runs.
func (a *Activities) policy() (*trust.Policy, error) {
	if a.Trust == nil {
		return nil, nonRetryable(ErrBadSpec, errors.New("activities: the worker has no trust policy (Activities.Trust)"))
	}
	return a.Trust, nil
}

// checkSpec refuses a spec that names paths, registries or keys the
// worker's operator did not allow, as a non-retryable BadSpec error naming
// the field. Every activity that takes a spec calls it first: an activity
// can be scheduled with any input by anyone who can start workflows.
func (a *Activities) checkSpec(step string, s spec.Spec) error {
	p, err := a.policy()
	if err != nil {
		return err
	}
	if err := p.CheckSpec(s); err != nil {
		return nonRetryable(ErrBadSpec, fmt.Errorf("%s: %w", step, err))
	}
	return nil
}

func (a *Activities) signer(s spec.Spec) (*provenance.Signer, error) {
	p, err := a.policy()
	if err != nil {
		return nil, err
	}
	sg, err := p.Signer(s)
	if err != nil {
		return nil, nonRetryable(ErrBadSpec, err)
	}
	return sg, nil
}

// verifier is the worker's verifier: its trusted keys, nothing from the spec.
func (a *Activities) verifier(step string) (pipeline.Verifier, error) {
	p, err := a.policy()
	if err != nil {
		return nil, err
	}
	v, err := p.Verifier()
	if err != nil {
		return nil, nonRetryable(ErrBadSpec, fmt.Errorf("%s: %w", step, err))
	}
	return v, nil
}

// openRegistry opens the registry the spec names among the worker's
// declared ones (see trust.Policy.RegistryURI).
func (a *Activities) openRegistry(ctx context.Context, s spec.Spec) (registry.Registry, error) {
	p, err := a.policy()
	if err != nil {
		return nil, err
	}
	reg, err := p.OpenRegistry(ctx, s)
	var se *trust.SpecError
	if errors.As(err, &se) {
		return nil, nonRetryable(ErrBadSpec, err)
	}
	return reg, err
}
