package provenance

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
)

// Verifier checks artifacts against trusted material (the keys an operator
// trusts) and, per call, a Policy saying which artifact the caller expects.
// It has the shape of sigstore-go's verify.NewVerifier / verify.NewPolicy
// (sigstore-go pkg/verify/signed_entity.go): built once from trusted
// material, secure by default (every dependency that can be reached is
// re-hashed), lenient behaviour only through options whose names end in
// Unsafe, and conflicting options refused at construction.
type Verifier struct {
	keys        *TrustedKeys
	resolve     func(Dependency) (string, bool)
	requireDeps bool
	shallowDeps bool
}

// VerifierOption configures NewVerifier.
type VerifierOption func(*Verifier) error

// WithDependencyResolver maps a dependency to a local path, for stores whose
// URIs are not file:// URIs or paths.
func WithDependencyResolver(resolve func(Dependency) (path string, ok bool)) VerifierOption {
	return func(v *Verifier) error {
		if resolve == nil {
			return errors.New("WithDependencyResolver: nil resolver")
		}
		v.resolve = resolve
		return nil
	}
}

// WithReachableDependencies makes a dependency that cannot be reached a
// failure (ReasonBrokenChain) instead of a skipped check.
func WithReachableDependencies() VerifierOption {
	return func(v *Verifier) error { v.requireDeps = true; return nil }
}

// WithShallowDependenciesUnsafe skips re-hashing base models and datasets
// (parents are still verified): the statement's word is taken for them.
func WithShallowDependenciesUnsafe() VerifierOption {
	return func(v *Verifier) error { v.shallowDeps = true; return nil }
}

// NewVerifier builds a verifier from trusted keys. It refuses an empty key
// set and options that contradict each other.
func NewVerifier(keys *TrustedKeys, opts ...VerifierOption) (*Verifier, error) {
	if keys.Len() == 0 {
		return nil, errors.New("provenance: NewVerifier: no trusted keys")
	}
	v := &Verifier{keys: keys}
	for _, o := range opts {
		if err := o(v); err != nil {
			return nil, fmt.Errorf("provenance: NewVerifier: %w", err)
		}
	}
	if v.requireDeps && v.shallowDeps {
		return nil, errors.New("provenance: NewVerifier: WithReachableDependencies and WithShallowDependenciesUnsafe conflict (a reachable dependency that is not re-hashed proves nothing)")
	}
	return v, nil
}

// TrustedKeys returns the verifier's key set.
func (v *Verifier) TrustedKeys() *TrustedKeys { return v.keys }

// Policy is what one verification expects of the artifact. Build it with
// NewPolicy; the zero Policy is refused by Verify.
type Policy struct {
	built            bool
	folderDigest     string // "" only with WithoutArtifactDigestUnsafe
	provenanceDigest string
	kinds            []Kind
	deps             []expectedDependency
}

type expectedDependency struct {
	role         Role
	sha256, path string
}

// ArtifactPolicyOption says which artifact is expected; NewPolicy takes
// exactly one, as sigstore-go's NewPolicy takes one ArtifactPolicyOption.
type ArtifactPolicyOption func(*Policy) error

// PolicyOption adds an expectation to a Policy.
type PolicyOption func(*Policy) error

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func checkDigest(what, d string) error {
	if !sha256RE.MatchString(d) {
		return fmt.Errorf("%s: %q is not a lower-case hex sha256", what, d)
	}
	return nil
}

// WithFolderDigest expects the artifact's files to hash to this folder
// digest (Verdict.SHA256, the digest the attestation's subject names).
func WithFolderDigest(sha256 string) ArtifactPolicyOption {
	return func(p *Policy) error {
		if err := checkDigest("WithFolderDigest", sha256); err != nil {
			return err
		}
		p.folderDigest = sha256
		return nil
	}
}

// WithoutArtifactDigestUnsafe accepts any artifact that a trusted key
// signed: "signed by someone trusted", not "the artifact this run made".
// Only for tools that look at an artifact the user points at (loraflow
// verify), never for a pipeline step.
func WithoutArtifactDigestUnsafe() ArtifactPolicyOption {
	return func(p *Policy) error { return nil }
}

// WithProvenanceDigest expects the artifact's signed provenance statement
// to have this sha256 (Attestation.ProvenanceSHA256 of the run that made it).
func WithProvenanceDigest(sha256 string) PolicyOption {
	return func(p *Policy) error {
		if err := checkDigest("WithProvenanceDigest", sha256); err != nil {
			return err
		}
		if p.provenanceDigest != "" && p.provenanceDigest != sha256 {
			return fmt.Errorf("WithProvenanceDigest given twice (%s, %s)", p.provenanceDigest, sha256)
		}
		p.provenanceDigest = sha256
		return nil
	}
}

// WithKinds expects the artifact to be of one of these kinds.
func WithKinds(kinds ...Kind) PolicyOption {
	return func(p *Policy) error {
		if len(kinds) == 0 {
			return errors.New("WithKinds: no kind given")
		}
		if p.kinds != nil {
			return errors.New("WithKinds given twice")
		}
		p.kinds = kinds
		return nil
	}
}

// WithDependency expects the statement to name a dependency of this role
// with this digest.
func WithDependency(role Role, sha256 string) PolicyOption {
	return func(p *Policy) error {
		if err := checkDigest("WithDependency "+string(role), sha256); err != nil {
			return err
		}
		return p.addDependency(expectedDependency{role: role, sha256: sha256})
	}
}

// WithDependencyPath expects the statement to name a dependency of this
// role whose digest is what path hashes to now: Merge passes the base model
// folder it is about to merge into. The path is hashed once per Verify,
// shared with the chain check of the same path.
func WithDependencyPath(role Role, path string) PolicyOption {
	return func(p *Policy) error {
		if path == "" {
			return fmt.Errorf("WithDependencyPath %s: empty path", role)
		}
		return p.addDependency(expectedDependency{role: role, path: path})
	}
}

func (p *Policy) addDependency(d expectedDependency) error {
	for _, e := range p.deps {
		if e.role == d.role {
			return fmt.Errorf("dependency %s expected twice", d.role)
		}
	}
	p.deps = append(p.deps, d)
	return nil
}

// NewPolicy builds a Policy from exactly one artifact option and any number
// of further expectations; contradicting options are refused.
func NewPolicy(artifact ArtifactPolicyOption, opts ...PolicyOption) (Policy, error) {
	if artifact == nil {
		return Policy{}, errors.New("provenance: NewPolicy: an artifact option is required (WithFolderDigest, or WithoutArtifactDigestUnsafe)")
	}
	p := Policy{built: true}
	if err := artifact(&p); err != nil {
		return Policy{}, fmt.Errorf("provenance: NewPolicy: %w", err)
	}
	for _, o := range opts {
		if err := o(&p); err != nil {
			return Policy{}, fmt.Errorf("provenance: NewPolicy: %w", err)
		}
	}
	return p, nil
}

// Verify checks the artifact at path as the package-level Verify does, then
// that it is the artifact p expects. A validly signed artifact that is not
// the expected one fails with ReasonUnexpectedArtifact (its digest or
// provenance statement differs) or ReasonBrokenChain (another dependency).
func (v *Verifier) Verify(ctx context.Context, path string, p Policy) (*Verdict, error) {
	if !p.built {
		return &Verdict{Path: path}, errors.New("provenance: Verifier.Verify: the zero Policy is refused; build one with NewPolicy")
	}
	cfg := verifyConfig{maxDepth: 8, digests: map[string]pathDigests{}, kinds: p.kinds,
		resolve: v.resolve, requireDeps: v.requireDeps, shallowDeps: v.shallowDeps}
	for _, d := range p.deps {
		want := Dependency{Role: d.role, SHA256: d.sha256}
		if d.path != "" {
			got, err := digestsOf(ctx, d.path)
			if err != nil {
				return &Verdict{Path: path}, fmt.Errorf("provenance: hashing the expected %s %s: %w", d.role, d.path, err)
			}
			cfg.digests[d.path] = got
			want.SHA256, want.root = got.digest, got.root
		}
		cfg.expect = append(cfg.expect, want)
	}
	verdict, err := verifyArtifact(ctx, path, v.keys, &cfg, 0)
	if err != nil {
		return verdict, err
	}
	fail := func(detail string) (*Verdict, error) {
		verdict.Err = &VerificationError{Reason: ReasonUnexpectedArtifact, Artifact: verdict.Path, Path: verdict.Path, Detail: detail}
		return verdict, verdict.Err
	}
	// Root: an attestation made before one digest per artifact names
	// model_signing's root digest of the same (recomputed) files.
	if p.folderDigest != "" && verdict.SHA256 != p.folderDigest && verdict.Root != p.folderDigest {
		return fail(fmt.Sprintf("validly signed, but its files hash to %s and this run expects %s", verdict.SHA256, p.folderDigest))
	}
	if p.provenanceDigest != "" && verdict.ProvenanceSHA256 != p.provenanceDigest {
		return fail(fmt.Sprintf("validly signed, but its provenance statement is sha256 %s and this run expects %s", verdict.ProvenanceSHA256, p.provenanceDigest))
	}
	if len(p.kinds) > 0 && !slices.Contains(p.kinds, verdict.Kind) {
		return fail(fmt.Sprintf("a %q, want one of %v", verdict.Kind, p.kinds)) // verifyArtifact already refused this; kept as a guard
	}
	return verdict, nil
}

// JoinTrustedKeys returns one set holding the keys of every set, each once.
func JoinTrustedKeys(sets ...*TrustedKeys) *TrustedKeys {
	out := &TrustedKeys{}
	for _, s := range sets {
		if s == nil {
			continue
		}
		for _, k := range s.keys {
			_ = out.add(k.pub, k.source) // already validated when s was built
		}
	}
	return out
}
