package provenance

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNewVerifierRefusesEmptyKeysAndConflicts(t *testing.T) {
	if _, err := NewVerifier(nil); err == nil {
		t.Fatal("a verifier without keys was built")
	}
	f := newFixture(t, KeyEd25519)
	if _, err := NewVerifier(f.keys, WithReachableDependencies(), WithShallowDependenciesUnsafe()); err == nil || !strings.Contains(err.Error(), "conflict") {
		t.Fatalf("conflicting options accepted: %v", err)
	}
	if _, err := NewVerifier(f.keys); err != nil {
		t.Fatal(err)
	}
}

func TestNewPolicyRefusesMissingOrConflictingOptions(t *testing.T) {
	d := strings.Repeat("ab", 32)
	e := strings.Repeat("cd", 32)
	cases := map[string]func() (Policy, error){
		"no artifact option": func() (Policy, error) { return NewPolicy(nil) },
		"short digest":       func() (Policy, error) { return NewPolicy(WithFolderDigest("abc")) },
		"two provenance digests": func() (Policy, error) {
			return NewPolicy(WithFolderDigest(d), WithProvenanceDigest(d), WithProvenanceDigest(e))
		},
		"dependency twice": func() (Policy, error) {
			return NewPolicy(WithFolderDigest(d), WithDependency(RoleBaseModel, d), WithDependencyPath(RoleBaseModel, "/x"))
		},
		"kinds twice": func() (Policy, error) {
			return NewPolicy(WithFolderDigest(d), WithKinds(KindAdapter), WithKinds(KindEvalReport))
		},
	}
	for name, build := range cases {
		if _, err := build(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	f := newFixture(t, KeyEd25519)
	v, _ := NewVerifier(f.keys)
	if _, err := v.Verify(context.Background(), f.adapter, Policy{}); err == nil {
		t.Fatal("the zero Policy was accepted")
	}
}

// The substituted-adapter attack: a second, validly signed adapter placed
// where the run's adapter was passes "signed by a trusted key" but not
// "the artifact this run expects".
func TestVerifierRefusesSubstitutedArtifact(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, KeyECDSAP256)
	first := f.attestAdapter(t)
	other := filepath.Join(f.root, "other", "adapter")
	makeAdapter(t, other, 8)
	if _, err := Attest(ctx, f.signer, f.adapterArtifact(other)); err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(f.keys)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPolicy(WithFolderDigest(first.SHA256), WithProvenanceDigest(first.ProvenanceSHA256), WithKinds(KindAdapter),
		WithDependencyPath(RoleBaseModel, f.base), WithDependency(RoleDataset, f.dataDigest))
	if err != nil {
		t.Fatal(err)
	}
	verdict, err := v.Verify(ctx, f.adapter, p)
	if err != nil {
		t.Fatalf("the expected adapter is refused: %v", err)
	}
	if len(verdict.Bundles) < 2 || verdict.Bundles[0] != BundlePath(f.adapter, BundleProvenance) {
		t.Fatalf("verdict bundles %v", verdict.Bundles)
	}
	// The attacker's swap: the other adapter (with its bundles) under the first's path.
	for _, p := range []string{f.adapter} {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
		mustRename(t, other, p)
		matches, _ := filepath.Glob(other + ".*" + BundleSuffix)
		for _, m := range matches {
			mustRename(t, m, p+strings.TrimPrefix(m, other))
		}
	}
	if _, err := Verify(ctx, f.adapter, f.keys); err != nil {
		t.Fatalf("precondition: the substitute is validly signed, so plain Verify accepts it: %v", err)
	}
	verdict, err = v.Verify(ctx, f.adapter, p)
	wantReason(t, verdict, err, ReasonUnexpectedArtifact, "adapter")

	// An adapter built on another base model is refused by the dependency expectation.
	otherBase := filepath.Join(f.root, "base2")
	writeFile(t, filepath.Join(otherBase, "config.json"), []byte(`{"model_type":"gpt2"}`))
	p2, _ := NewPolicy(WithoutArtifactDigestUnsafe(), WithDependencyPath(RoleBaseModel, otherBase))
	verdict, err = v.Verify(ctx, f.adapter, p2)
	wantReason(t, verdict, err, ReasonBrokenChain, string(RoleBaseModel))
}
