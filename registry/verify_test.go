package registry

import (
	"context"
	"errors"
	"testing"
)

func TestWithVerifierRefusesWhatFails(t *testing.T) {
	ctx := context.Background()
	local, _ := OpenLocal(t.TempDir())
	bad := errors.New("signature does not match adapter_model.safetensors")
	reg := WithVerifier(local, VerifierFunc(func(ctx context.Context, req PublishRequest) error {
		if req.ArtifactDigest == "sha256:tampered" {
			return bad
		}
		return nil
	}))
	_, err := reg.Publish(ctx, samplePublish(t, "m", "sha256:tampered"))
	if !errors.Is(err, ErrUnverified) || !errors.Is(err, bad) {
		t.Fatalf("err = %v, want ErrUnverified wrapping the verifier's error", err)
	}
	if _, err := local.ListVersions(ctx, "m"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused publish registered something: %v", err)
	}
	if v, err := reg.Publish(ctx, samplePublish(t, "m", "sha256:good")); err != nil || v.Version != "1" {
		t.Fatalf("verified publish = %+v, %v", v, err)
	}
}
