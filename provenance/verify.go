package provenance

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/loraflow/loraflow/internal/digestfmt"
)

// Reason is the stable name of a verification failure.
type Reason string

const (
	ReasonUnsigned       Reason = "Unsigned"        // no provenance bundle beside the artifact
	ReasonMissingBundle  Reason = "MissingBundle"   // a bundle named by the provenance statement is absent
	ReasonMalformed      Reason = "MalformedBundle" // not a Sigstore bundle with an in-toto DSSE statement of the expected type
	ReasonUntrustedKey   Reason = "UntrustedKey"    // signed, but by no trusted key
	ReasonBadSignature   Reason = "BadSignature"    // claims a trusted key, but the signature does not verify
	ReasonBundleMismatch Reason = "BundleMismatch"  // a valid bundle, but for another artifact (swapped)
	ReasonDigestMismatch Reason = "DigestMismatch"  // a file's content changed
	ReasonMissingFile    Reason = "MissingFile"     // an attested file is gone
	ReasonExtraFile      Reason = "ExtraFile"       // a file that was not attested is present
	ReasonRenamedFile    Reason = "RenamedFile"     // an attested file is present under another name
	ReasonBrokenChain    Reason = "BrokenChain"     // a dependency or parent does not match what the statement names
	ReasonUnexpectedKind Reason = "UnexpectedKind"  // the artifact is not of the kind the caller requires
	// ReasonUnexpectedArtifact: validly signed, but not the artifact the
	// caller's Policy expects (another digest or provenance statement).
	ReasonUnexpectedArtifact Reason = "UnexpectedArtifact"
)

// VerificationError is the error Verify returns when an artifact must be
// refused. Reason is stable; Path names the first file, bundle or link that
// failed.
type VerificationError struct {
	Reason   Reason
	Artifact string // the artifact being verified
	Path     string // the file, bundle or dependency that failed
	Detail   string
	Err      error // an underlying error, e.g. the parent's *VerificationError
}

func (e *VerificationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "provenance: verify %s: %s", e.Artifact, e.Reason)
	if e.Path != "" {
		fmt.Fprintf(&b, ": %s", e.Path)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *VerificationError) Unwrap() error { return e.Err }

// Check is one passed or skipped step of a verification, for reports.
type Check struct {
	Name    string // e.g. "signature", "files", "bundle model-signing", "dependency base-model"
	Subject string
	Skipped bool
	Detail  string
}

// Verdict is what Verify found. When Verify returns an error, Err is the
// same *VerificationError (or nil for an I/O or context error) and the
// checks list what passed before the failure.
type Verdict struct {
	Path             string // the artifact
	Kind             Kind
	Name             string
	SHA256           string // the artifact's digest (ManifestDigest), recomputed
	Root             string // model_signing's root digest of the same files, recomputed
	ProvenanceSHA256 string // the sha256 of its signed SLSA statement
	KeyID            string // the trusted key that signed it
	InvocationID     string
	Files            []FileDigest
	Dependencies     []Dependency // as named by the provenance statement
	Checks           []Check
	Parents          []*Verdict // verdicts of parents that were reachable
	// Bundles are the bundle files this verification opened and checked:
	// the provenance bundle first, then its companions. They are the only
	// bundles a publisher should copy beside the artifact.
	Bundles []string
	Err     *VerificationError
}

// OK reports whether the artifact verified.
func (v *Verdict) OK() bool { return v != nil && v.Err == nil && len(v.Files) > 0 }

// Dependency returns the first dependency with the given role.
func (v *Verdict) Dependency(r Role) (Dependency, bool) {
	for _, d := range v.Dependencies {
		if d.Role == r {
			return d, true
		}
	}
	return Dependency{}, false
}

// VerifyOption adjusts Verify.
type VerifyOption func(*verifyConfig)

type verifyConfig struct {
	expect      []Dependency
	kinds       []Kind
	resolve     func(Dependency) (string, bool)
	requireDeps bool
	shallowDeps bool
	maxDepth    int
	digests     map[string]pathDigests // dependency path → digests, shared down the chain
}

// WithExpectedDependency requires the statement to name a dependency of
// this role with this digest: Merge passes the base model it is about to
// merge into, so an adapter trained on another base is refused
// (ReasonBrokenChain).
func WithExpectedDependency(role Role, sha256 string) VerifyOption {
	return func(c *verifyConfig) { c.expect = append(c.expect, Dependency{Role: role, SHA256: sha256}) }
}

// WithKind requires the artifact to be of one of the given kinds.
func WithKind(kinds ...Kind) VerifyOption {
	return func(c *verifyConfig) { c.kinds = append(c.kinds, kinds...) }
}

// WithResolver maps a dependency to a local path, for stores whose URIs are
// not file:// URIs or paths. Return false when it cannot be reached.
func WithResolver(resolve func(Dependency) (path string, ok bool)) VerifyOption {
	return func(c *verifyConfig) { c.resolve = resolve }
}

// WithRequiredDependencies makes an unreachable dependency a failure
// instead of a skipped check.
func WithRequiredDependencies() VerifyOption {
	return func(c *verifyConfig) { c.requireDeps = true }
}

// WithShallowDependencies skips re-hashing the base model and dataset;
// parents are still verified (signatures and files).
func WithShallowDependencies() VerifyOption {
	return func(c *verifyConfig) { c.shallowDeps = true }
}

// Verify checks the artifact at path (a folder, a file, or the artifact's
// provenance bundle): the provenance bundle's signature against keys, every
// file's sha256 against the statement (no file missing, renamed or extra),
// every companion bundle the statement names, and the chain to its
// dependencies: reachable parents are verified recursively and must carry
// the attestation digest the statement names, and reachable base models and
// datasets are re-hashed.
//
// On failure the error is a *VerificationError naming the first file or
// link that failed; other errors (context cancelled, I/O) are returned as
// they are. The Verdict is never nil.
func Verify(ctx context.Context, path string, keys *TrustedKeys, opts ...VerifyOption) (*Verdict, error) {
	cfg := verifyConfig{maxDepth: 8, digests: map[string]pathDigests{}}
	for _, o := range opts {
		o(&cfg)
	}
	return verifyArtifact(ctx, path, keys, &cfg, 0)
}

// located resolves path into the artifact path and its provenance bundle.
func locate(p string) (artifactPath, bundlePath string) {
	p = filepath.Clean(p)
	suffix := "." + BundleProvenance + BundleSuffix
	if strings.HasSuffix(p, suffix) {
		return strings.TrimSuffix(p, suffix), p
	}
	return p, BundlePath(p, BundleProvenance)
}

func verifyArtifact(ctx context.Context, p string, keys *TrustedKeys, cfg *verifyConfig, depth int) (*Verdict, error) {
	artifactPath, bundlePath := locate(p)
	v := &Verdict{Path: artifactPath}
	fail := func(r Reason, at, detail string, err error) (*Verdict, error) {
		v.Err = &VerificationError{Reason: r, Artifact: artifactPath, Path: at, Detail: detail, Err: err}
		return v, v.Err
	}
	if keys.Len() == 0 {
		return v, errors.New("provenance: Verify needs at least one trusted key")
	}

	// 1. The provenance bundle and its signature.
	if _, err := os.Stat(bundlePath); errors.Is(err, os.ErrNotExist) {
		if _, err2 := os.Stat(artifactPath); err2 != nil {
			return v, fmt.Errorf("provenance: verify: %w", err2)
		}
		return fail(ReasonUnsigned, bundlePath, "no provenance bundle beside the artifact", nil)
	}
	sb, reason, err := openBundle(bundlePath, keys)
	if err != nil {
		return fail(reason, bundlePath, "", err)
	}
	if sb.st.PredicateType != SLSAPredicateType {
		return fail(ReasonMalformed, bundlePath, fmt.Sprintf("predicate type %s, want %s", sb.st.PredicateType, SLSAPredicateType), nil)
	}
	v.KeyID = sb.keyID
	v.ProvenanceSHA256 = sb.digest
	v.Bundles = append(v.Bundles, bundlePath)
	v.Checks = append(v.Checks, Check{Name: "signature", Subject: filepath.Base(bundlePath), Detail: "signed by trusted key " + sb.keyID})

	var prov slsaProvenance
	if err := json.Unmarshal(sb.st.Predicate, &prov); err != nil {
		return fail(ReasonMalformed, bundlePath, "SLSA predicate", err)
	}
	info := prov.BuildDefinition.InternalParameters.Artifact
	v.Kind, v.Name, v.InvocationID = info.Kind, info.Name, prov.RunDetails.Metadata.InvocationID
	if len(cfg.kinds) > 0 && !containsKind(cfg.kinds, info.Kind) {
		return fail(ReasonUnexpectedKind, bundlePath, fmt.Sprintf("artifact is a %q, want one of %v", info.Kind, cfg.kinds), nil)
	}
	attested := map[string]string{}
	for _, s := range sb.st.Subject {
		if !cleanName(s.Name) || s.Digest["sha256"] == "" {
			return fail(ReasonMalformed, bundlePath, fmt.Sprintf("bad subject %q", s.Name), nil)
		}
		attested[s.Name] = s.Digest["sha256"]
	}

	// 2. The files.
	var td *TreeDigest
	switch info.Layout {
	case layoutFolder:
		fi, err := os.Stat(artifactPath)
		if err != nil || !fi.IsDir() {
			return fail(ReasonMissingFile, artifactPath, "the attested folder is missing", err)
		}
		td, err = HashTree(ctx, artifactPath)
		if err != nil {
			if ctx.Err() != nil {
				return v, err
			}
			return fail(ReasonExtraFile, artifactPath, "cannot hash folder", err)
		}
	case layoutFiles:
		dir := filepath.Dir(artifactPath)
		var names []string
		for n := range attested {
			if strings.Contains(n, "/") {
				return fail(ReasonMalformed, bundlePath, fmt.Sprintf("subject %q is not a file name", n), nil)
			}
			if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
				names = append(names, n)
			}
		}
		td, err = HashFiles(ctx, dir, names)
		if err != nil {
			if ctx.Err() != nil {
				return v, err
			}
			return fail(ReasonMissingFile, artifactPath, "cannot hash files", err)
		}
	default:
		return fail(ReasonMalformed, bundlePath, fmt.Sprintf("unknown artifact layout %q", info.Layout), nil)
	}
	if r, at, detail := compareFiles(attested, td.Files, info, filepath.Base(artifactPath), info.Layout == layoutFiles); r != "" {
		return fail(r, at, detail, nil)
	}
	// The statement names the files' ManifestDigest; a statement signed
	// before loraflow used one digest per artifact names model_signing's
	// root digest of the same files instead, which is accepted too (both
	// are recomputed here from the files, whose names and digests the
	// statement's subjects list one by one).
	if info.SHA256 != td.Manifest && info.SHA256 != td.SHA256 {
		return fail(ReasonBundleMismatch, bundlePath, fmt.Sprintf("statement names folder digest %s, files hash to %s", info.SHA256, td.Manifest), nil)
	}
	v.SHA256, v.Root, v.Files = td.Manifest, td.SHA256, td.Files
	v.Checks = append(v.Checks, Check{Name: "files", Subject: artifactPath, Detail: fmt.Sprintf("%d files, %d bytes, sha256 %s", len(td.Files), td.Bytes, td.Manifest)})

	// 3. Companion bundles named as byproducts.
	for _, bp := range prov.RunDetails.Byproducts {
		if bp.MediaType != PayloadType {
			continue
		}
		if bp.URI == "" || strings.ContainsAny(bp.URI, `/\`) || !strings.HasSuffix(bp.URI, BundleSuffix) {
			return fail(ReasonMalformed, bundlePath, fmt.Sprintf("byproduct %q has a bad bundle name %q", bp.Name, bp.URI), nil)
		}
		cp := filepath.Join(filepath.Dir(bundlePath), bp.URI)
		if _, err := os.Stat(cp); err != nil && bp.Name != "" && !strings.ContainsAny(bp.Name, `/\`) {
			// A copied or renamed artifact (a registry version, a download)
			// keeps its companions beside it under its new name; the digest
			// check below still binds them to this statement.
			if alt := BundlePath(artifactPath, bp.Name); alt != cp {
				cp = alt
			}
		}
		if _, err := os.Stat(cp); err != nil {
			return fail(ReasonMissingBundle, cp, fmt.Sprintf("the %s bundle named by the provenance statement is absent", bp.Name), nil)
		}
		cb, reason, err := openBundle(cp, keys)
		if err != nil {
			return fail(reason, cp, "", err)
		}
		if cb.digest != bp.Digest["sha256"] {
			return fail(ReasonBundleMismatch, cp, fmt.Sprintf("statement sha256 %s, the provenance statement names %s", cb.digest, bp.Digest["sha256"]), nil)
		}
		if want, _ := bp.Annotations["predicateType"].(string); want != "" && cb.st.PredicateType != want {
			return fail(ReasonMalformed, cp, fmt.Sprintf("predicate type %s, want %s", cb.st.PredicateType, want), nil)
		}
		if cb.st.PredicateType == ModelSigningPredicateType {
			if err := checkModelSigning(cb.st, td); err != nil {
				return fail(ReasonBundleMismatch, cp, err.Error(), nil)
			}
		}
		v.Bundles = append(v.Bundles, cp)
		v.Checks = append(v.Checks, Check{Name: "bundle " + bp.Name, Subject: bp.URI, Detail: cb.st.PredicateType})
	}

	// 4. The chain.
	for _, rd := range prov.BuildDefinition.ResolvedDependencies {
		role, _ := rd.Annotations["role"].(string)
		d := Dependency{Role: Role(role), Name: rd.Name, URI: rd.URI, SHA256: rd.Digest["sha256"]}
		if a, ok := rd.Annotations["attestation"].(map[string]any); ok {
			d.Attestation, _ = a["sha256"].(string)
		}
		v.Dependencies = append(v.Dependencies, d)
	}
	for _, want := range cfg.expect {
		if !hasDependency(v.Dependencies, want) {
			got := "none"
			if d, ok := v.Dependency(want.Role); ok {
				got = d.SHA256
			}
			return fail(ReasonBrokenChain, string(want.Role), fmt.Sprintf("expected %s sha256 %s, the statement names %s", want.Role, want.SHA256, got), nil)
		}
	}
	for _, d := range v.Dependencies {
		if d.Role == RoleWorker {
			continue
		}
		link := fmt.Sprintf("%s %s", d.Role, d.Name)
		local, ok := cfg.resolvePath(d, artifactPath)
		if !ok {
			if cfg.requireDeps {
				return fail(ReasonBrokenChain, link, fmt.Sprintf("cannot reach %q", d.URI), nil)
			}
			v.Checks = append(v.Checks, Check{Name: "dependency " + string(d.Role), Subject: d.Name, Skipped: true, Detail: fmt.Sprintf("not reachable (%q); digest %s not re-checked", d.URI, digestfmt.Short(d.SHA256))})
			continue
		}
		switch d.Role {
		case RoleParent:
			if depth >= cfg.maxDepth {
				return fail(ReasonBrokenChain, link, "chain deeper than the limit", nil)
			}
			pv, err := verifyArtifact(ctx, local, keys, &verifyConfig{resolve: cfg.resolve, requireDeps: cfg.requireDeps, shallowDeps: cfg.shallowDeps, maxDepth: cfg.maxDepth, digests: cfg.digests}, depth+1)
			v.Parents = append(v.Parents, pv)
			if err != nil {
				var ve *VerificationError
				if !errors.As(err, &ve) {
					return v, err
				}
				return fail(ReasonBrokenChain, link, "parent does not verify", err)
			}
			if pv.ProvenanceSHA256 != d.Attestation {
				return fail(ReasonBrokenChain, link, fmt.Sprintf("parent's provenance statement is sha256 %s, this statement names %s", pv.ProvenanceSHA256, d.Attestation), nil)
			}
			if pv.SHA256 != d.SHA256 && pv.Root != d.SHA256 { // Root: named by statements signed before one digest
				return fail(ReasonBrokenChain, link, fmt.Sprintf("parent's files hash to %s, this statement names %s", pv.SHA256, d.SHA256), nil)
			}
			if mine, ok := v.Dependency(RoleBaseModel); ok {
				if theirs, ok := pv.Dependency(RoleBaseModel); ok && theirs.SHA256 != mine.SHA256 {
					return fail(ReasonBrokenChain, link, fmt.Sprintf("parent was built on base model %s, this artifact on %s", theirs.SHA256, mine.SHA256), nil)
				}
			}
			v.Checks = append(v.Checks, Check{Name: "dependency parent", Subject: local, Detail: fmt.Sprintf("%s verified, attestation %s", pv.Kind, digestfmt.Short(pv.ProvenanceSHA256))})
		default:
			if cfg.shallowDeps {
				v.Checks = append(v.Checks, Check{Name: "dependency " + string(d.Role), Subject: local, Skipped: true, Detail: "shallow: not re-hashed"})
				continue
			}
			got, seen := cfg.digests[local]
			if !seen {
				var err error
				got, err = digestsOf(ctx, local)
				if err != nil {
					if ctx.Err() != nil {
						return v, err
					}
					return fail(ReasonBrokenChain, link, "cannot hash "+local, err)
				}
				cfg.digests[local] = got
			}
			if !got.names(d.SHA256) {
				return fail(ReasonBrokenChain, link, fmt.Sprintf("%s hashes to %s, the statement names %s", local, got.digest, d.SHA256), nil)
			}
			v.Checks = append(v.Checks, Check{Name: "dependency " + string(d.Role), Subject: local, Detail: "sha256 " + digestfmt.Short(got.digest)})
		}
	}
	return v, nil
}

// compareFiles compares the attested subjects with the files found and
// returns the first failure in name order.
func compareFiles(attested map[string]string, files []FileDigest, info artifactInfo, actualName string, filesLayout bool) (Reason, string, string) {
	actual := map[string]string{}
	byDigest := map[string][]string{}
	for _, f := range files {
		actual[f.Name] = f.SHA256
		byDigest[f.SHA256] = append(byDigest[f.SHA256], f.Name)
	}
	same := len(actual) == len(attested)
	overlap := false
	for n, d := range attested {
		if actual[n] != d {
			same = false
		}
		if len(byDigest[d]) > 0 {
			overlap = true
		}
	}
	if same {
		return "", "", ""
	}
	// A valid bundle for something else entirely: no common content, or
	// another artifact's name.
	namesOverlap := false
	for n := range attested {
		if _, ok := actual[n]; ok {
			namesOverlap = true
		}
	}
	if info.Name != actualName || (!overlap && !namesOverlap) {
		return ReasonBundleMismatch, actualName, fmt.Sprintf("the bundle describes %s %q (sha256 %s), not this artifact", info.Kind, info.Name, digestfmt.Short(info.SHA256))
	}
	names := make([]string, 0, len(attested)+len(actual))
	for n := range attested {
		names = append(names, n)
	}
	for n := range actual {
		if _, ok := attested[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	renamedTo := map[string]string{}
	for n, d := range attested {
		if _, ok := actual[n]; ok {
			continue
		}
		for _, cand := range byDigest[d] {
			if _, wasAttested := attested[cand]; !wasAttested {
				renamedTo[n] = cand
				break
			}
		}
	}
	renamedFrom := map[string]string{}
	for from, to := range renamedTo {
		renamedFrom[to] = from
	}
	for _, n := range names {
		want, isAttested := attested[n]
		got, isPresent := actual[n]
		switch {
		case isAttested && isPresent && want != got:
			return ReasonDigestMismatch, n, fmt.Sprintf("sha256 %s, attested %s", got, want)
		case isAttested && !isPresent:
			if to, ok := renamedTo[n]; ok {
				return ReasonRenamedFile, n, fmt.Sprintf("attested file is now named %s", to)
			}
			return ReasonMissingFile, n, "attested file is missing"
		case !isAttested && isPresent:
			if from, ok := renamedFrom[n]; ok {
				return ReasonRenamedFile, from, fmt.Sprintf("attested file is now named %s", n)
			}
			if filesLayout {
				continue
			}
			return ReasonExtraFile, n, "file is not in the attestation"
		}
	}
	return ReasonBundleMismatch, actualName, "files do not match the attestation"
}

func checkModelSigning(st *statement, td *TreeDigest) error {
	if len(st.Subject) != 1 {
		return fmt.Errorf("model-signing statement has %d subjects, want 1", len(st.Subject))
	}
	var p modelSigningPredicate
	if err := json.Unmarshal(st.Predicate, &p); err != nil {
		return fmt.Errorf("model-signing predicate: %w", err)
	}
	files := make([]FileDigest, len(p.Resources))
	for i, r := range p.Resources {
		if r.Algorithm != "sha256" {
			return fmt.Errorf("model-signing resource %s uses %s", r.Name, r.Algorithm)
		}
		files[i] = FileDigest{Name: r.Name, SHA256: r.Digest}
	}
	if root := FolderDigest(files); root != st.Subject[0].Digest["sha256"] {
		return fmt.Errorf("model-signing resources hash to %s, its subject says %s", root, st.Subject[0].Digest["sha256"])
	}
	if st.Subject[0].Digest["sha256"] != td.SHA256 {
		return fmt.Errorf("model-signing statement is for folder digest %s, files hash to %s", st.Subject[0].Digest["sha256"], td.SHA256)
	}
	return nil
}

// MaxBundleSize bounds a bundle file read by Verify.
const MaxBundleSize = 16 << 20

// signedStatement is a bundle whose signature verified.
type signedStatement struct {
	st     *statement
	digest string // sha256 of the payload
	keyID  string
}

// openBundle loads a Sigstore bundle, verifies its DSSE signature with
// sigstore-go against each trusted key in turn, and decodes its statement.
func openBundle(path string, keys *TrustedKeys) (*signedStatement, Reason, error) {
	// Bounded before it is read: a bundle is a few kB of JSON.
	if fi, err := os.Stat(path); err != nil {
		return nil, ReasonMissingBundle, err
	} else if !fi.Mode().IsRegular() || fi.Size() > MaxBundleSize {
		return nil, ReasonMalformed, fmt.Errorf("not a regular file of at most %d bytes (%d bytes, mode %s)", MaxBundleSize, fi.Size(), fi.Mode())
	}
	b, err := bundle.LoadJSONFromPath(path)
	if err != nil {
		return nil, ReasonMalformed, fmt.Errorf("not a Sigstore bundle: %w", err)
	}
	content, err := b.SignatureContent()
	if err != nil {
		return nil, ReasonMalformed, err
	}
	env := content.EnvelopeContent()
	if env == nil {
		return nil, ReasonMalformed, errors.New("bundle holds no DSSE envelope")
	}
	raw := env.RawEnvelope()
	if raw.PayloadType != PayloadType {
		return nil, ReasonMalformed, fmt.Errorf("DSSE payload type %q, want %q", raw.PayloadType, PayloadType)
	}
	hint := ""
	if vc, err := b.VerificationContent(); err == nil {
		if pk := vc.PublicKey(); pk != nil {
			hint = pk.Hint()
		}
	}
	var lastErr error
	for _, k := range keys.keys {
		if err := verifyWithKey(b, k.pub); err != nil {
			lastErr = err
			continue
		}
		body, err := raw.DecodeB64Payload()
		if err != nil {
			return nil, ReasonMalformed, fmt.Errorf("DSSE payload: %w", err)
		}
		st, err := validateStatement(body)
		if err != nil {
			return nil, ReasonMalformed, err
		}
		return &signedStatement{st: st, digest: sha256Hex(body), keyID: k.id}, "", nil
	}
	for _, k := range keys.keys {
		if hint != "" && hint == k.id {
			return nil, ReasonBadSignature, fmt.Errorf("signature does not verify with trusted key %s: %w", k.id, lastErr)
		}
	}
	if hint != "" {
		return nil, ReasonUntrustedKey, fmt.Errorf("signed by key %s, which is not among the %d trusted keys", hint, keys.Len())
	}
	return nil, ReasonUntrustedKey, fmt.Errorf("no trusted key verifies the signature: %w", lastErr)
}

func verifyWithKey(b *bundle.Bundle, pub crypto.PublicKey) error {
	hash := crypto.SHA256
	if _, ed := pub.(ed25519.PublicKey); ed {
		hash = crypto.Hash(0)
	}
	sv, err := signature.LoadVerifier(pub, hash)
	if err != nil {
		return err
	}
	tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		return root.NewExpiringKey(sv, time.Time{}, time.Time{}), nil
	})
	verifier, err := verify.NewVerifier(tm, verify.WithNoObserverTimestamps())
	if err != nil {
		return err
	}
	_, err = verifier.Verify(b, verify.NewPolicy(verify.WithoutArtifactUnsafe(), verify.WithKey()))
	return err
}

func (c *verifyConfig) resolvePath(d Dependency, artifactPath string) (string, bool) {
	if c.resolve != nil {
		if p, ok := c.resolve(d); ok {
			return p, true
		}
	}
	if d.URI == "" {
		return "", false
	}
	var p string
	switch {
	case strings.HasPrefix(d.URI, "file://"):
		u, err := url.Parse(d.URI)
		if err != nil {
			return "", false
		}
		p = u.Path
	case strings.Contains(d.URI, "://"):
		return "", false
	case filepath.IsAbs(d.URI):
		p = d.URI
	default:
		p = filepath.Join(filepath.Dir(artifactPath), d.URI)
	}
	if _, err := os.Stat(p); err != nil {
		return "", false
	}
	return p, true
}

func hasDependency(deps []Dependency, want Dependency) bool {
	for _, d := range deps {
		if want.matches(d) {
			return true
		}
	}
	return false
}

func containsKind(ks []Kind, k Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}
