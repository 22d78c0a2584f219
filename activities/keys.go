package activities

import (
	"context"
	"errors"
	"fmt"

	"github.com/loraflow/loraflow/artifact"
	"github.com/loraflow/loraflow/provenance"
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

// verify refuses an artifact whose provenance does not verify (unsigned,
// tampered, signed by an untrusted key, a broken chain) or that is not the
// artifact pol expects.
func (a *Activities) verify(ctx context.Context, step, path string, pol provenance.Policy) (*provenance.Verdict, error) {
	p, err := a.policy()
	if err != nil {
		return nil, err
	}
	verifier, err := p.Verifier()
	if err != nil {
		return nil, nonRetryable(ErrBadSpec, fmt.Errorf("%s: %w", step, err))
	}
	v, err := verifier.Verify(ctx, path, pol)
	var ve *provenance.VerificationError
	if errors.As(err, &ve) {
		return nil, nonRetryable(ErrVerificationFailed, fmt.Errorf("%s: refusing %s: %w", step, path, err))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: verifying %s: %w", step, path, err)
	}
	return v, nil
}

// expecting is the policy for an artifact this run attested: its folder
// digest and provenance statement as Attest returned them, and its kind.
func expecting(att Attestation, opts ...provenance.PolicyOption) (provenance.Policy, error) {
	kind := provenance.Kind(att.Kind)
	switch kind {
	case provenance.KindAdapter, provenance.KindEvalReport, provenance.KindMergedModel:
	default:
		return provenance.Policy{}, nonRetryable(ErrVerificationFailed, fmt.Errorf("attestation of unknown kind %q", att.Kind))
	}
	pol, err := provenance.NewPolicy(provenance.WithFolderDigest(att.FolderDigest),
		append([]provenance.PolicyOption{provenance.WithProvenanceDigest(att.Digest), provenance.WithKinds(kind)}, opts...)...)
	if err != nil {
		return provenance.Policy{}, nonRetryable(ErrVerificationFailed, fmt.Errorf("the %s attestation names no usable digests: %w", att.Kind, err))
	}
	return pol, nil
}

// storedPath is a.path after re-hashing the object: what lies under
// objects/<digest> must still hash to the digest before it is signed.
func (a *Activities) storedPath(ctx context.Context, step string, ref artifact.Ref) (string, error) {
	dir, err := a.path(ref)
	if err != nil {
		return "", err
	}
	got, err := artifact.DigestDir(ctx, dir)
	if err != nil {
		return "", fmt.Errorf("%s: %w", step, err)
	}
	if got != ref.SHA256 {
		return "", nonRetryable(ErrVerificationFailed, fmt.Errorf("%s: store object %s now hashes to %s: it changed after it was committed", step, ref.SHA256, got))
	}
	return dir, nil
}
