package activities

import (
	"context"
	"errors"
	"fmt"

	"github.com/loraflow/loraflow/provenance"
	"github.com/loraflow/loraflow/spec"
)

func (a *Activities) signer(s spec.Spec) (*provenance.Signer, error) {
	src := s.Signing.Key
	if src == "" {
		src = a.SigningKey
	}
	if src == "" {
		return nil, nonRetryable(ErrBadSpec, errors.New("no signing key: set signing.key in the spec or the worker's --signing-key"))
	}
	sg, err := provenance.LoadSigner(src)
	if err != nil {
		return nil, nonRetryable(ErrBadSpec, err)
	}
	return sg, nil
}

// trustedKeys are the spec's and the worker's trusted keys, or, when
// neither names any, the signing key's own public key.
func (a *Activities) trustedKeys(s spec.Spec) (*provenance.TrustedKeys, error) {
	paths := append(append([]string(nil), s.Signing.TrustedKeys...), a.TrustedKeys...)
	if len(paths) > 0 {
		k, err := provenance.LoadTrustedKeys(paths...)
		if err != nil {
			return nil, nonRetryable(ErrBadSpec, err)
		}
		return k, nil
	}
	sg, err := a.signer(s)
	if err != nil {
		return nil, err
	}
	return provenance.NewTrustedKeys(sg.PublicKey())
}

// verify refuses an artifact whose provenance does not verify: unsigned,
// tampered, signed by an untrusted key, or with a broken chain.
func (a *Activities) verify(ctx context.Context, s spec.Spec, step, path string, kind provenance.Kind) (*provenance.Verdict, error) {
	keys, err := a.trustedKeys(s)
	if err != nil {
		return nil, err
	}
	v, err := provenance.Verify(ctx, path, keys, provenance.WithKind(kind))
	var ve *provenance.VerificationError
	if errors.As(err, &ve) {
		return nil, nonRetryable(ErrVerificationFailed, fmt.Errorf("%s: refusing %s: %w", step, path, err))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: verifying %s: %w", step, path, err)
	}
	return v, nil
}
