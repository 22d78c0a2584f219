package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/loraflow/loraflow/provenance"
)

// Verifier checks an artifact's signed provenance against a policy;
// *provenance.Verifier (built from the worker's trusted keys by
// trust.Policy.Verifier) is the one in use.
type Verifier interface {
	Verify(ctx context.Context, path string, p provenance.Policy) (*provenance.Verdict, error)
}

// verify refuses an artifact whose provenance does not verify (unsigned,
// tampered, signed by an untrusted key, a broken chain) or that is not the
// artifact pol expects, as a non-retryable ErrVerificationFailed.
func verify(ctx context.Context, v Verifier, path string, pol provenance.Policy) (*provenance.Verdict, error) {
	if v == nil {
		return nil, NonRetryable(ErrBadSpec, errors.New("no verifier: the worker trusts no keys"))
	}
	verdict, err := v.Verify(ctx, path, pol)
	var ve *provenance.VerificationError
	if errors.As(err, &ve) {
		return nil, NonRetryable(ErrVerificationFailed, fmt.Errorf("refusing %s: %w", path, err))
	}
	if err != nil {
		return nil, fmt.Errorf("verifying %s: %w", path, err)
	}
	return verdict, nil
}

// expecting is the policy for an artifact this run attested: its folder
// digest and provenance statement as Attest returned them, and its kind.
func expecting(att Attestation, opts ...provenance.PolicyOption) (provenance.Policy, error) {
	kind := provenance.Kind(att.Kind)
	switch kind {
	case provenance.KindAdapter, provenance.KindEvalReport, provenance.KindMergedModel:
	default:
		return provenance.Policy{}, NonRetryable(ErrVerificationFailed, fmt.Errorf("attestation of unknown kind %q", att.Kind))
	}
	pol, err := provenance.NewPolicy(provenance.WithFolderDigest(att.FolderDigest),
		append([]provenance.PolicyOption{provenance.WithProvenanceDigest(att.Digest), provenance.WithKinds(kind)}, opts...)...)
	if err != nil {
		return provenance.Policy{}, NonRetryable(ErrVerificationFailed, fmt.Errorf("the %s attestation names no usable digests: %w", att.Kind, err))
	}
	return pol, nil
}

// progressOf is f, or a no-op.
func progressOf(f func(string)) func(string) {
	if f == nil {
		return func(string) {}
	}
	return f
}

// loggerOf is l, or slog's default.
func loggerOf(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
