package registry

import (
	"context"
	"errors"
	"fmt"
)

// ErrUnverified is returned (wrapped) by a verifying registry's Publish when
// the artifacts' provenance does not verify; nothing is published. It is
// not worth retrying.
var ErrUnverified = errors.New("artifacts failed provenance verification")

// Verifier checks what a publish is about to register, e.g. that every
// artifact folder matches its signed provenance. The registry package
// imports no verifier; the caller adapts its own (the provenance package).
type Verifier interface {
	VerifyPublish(ctx context.Context, req PublishRequest) error
}

// VerifierFunc adapts a function to Verifier.
type VerifierFunc func(ctx context.Context, req PublishRequest) error

// VerifyPublish implements Verifier.
func (f VerifierFunc) VerifyPublish(ctx context.Context, req PublishRequest) error {
	return f(ctx, req)
}

// WithVerifier returns a Registry whose Publish runs v first and refuses,
// with an error wrapping ErrUnverified and v's error, what fails. A retried
// publish whose version already exists is verified again too: the check is
// about the artifacts, not the registry.
func WithVerifier(r Registry, v Verifier) Registry {
	return &verifyingRegistry{Registry: r, v: v}
}

type verifyingRegistry struct {
	Registry
	v Verifier
}

func (r *verifyingRegistry) Publish(ctx context.Context, req PublishRequest) (Version, error) {
	if err := r.v.VerifyPublish(ctx, req); err != nil {
		return Version{}, fmt.Errorf("registry: refusing to publish %s (%s): %w: %w", req.ModelName, req.ArtifactDigest, ErrUnverified, err)
	}
	return r.Registry.Publish(ctx, req)
}
