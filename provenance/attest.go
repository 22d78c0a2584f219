package provenance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/loraflow/loraflow/internal/atomicfile"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/sign"
)

// Kind is what an artifact is.
type Kind string

const (
	KindAdapter     Kind = "adapter"      // a PEFT LoRA adapter folder
	KindMergedModel Kind = "merged-model" // a Hugging Face checkpoint folder with the adapter merged in
	KindEvalReport  Kind = "eval-report"  // evaluation report file(s)
)

// Role is what a dependency is to the artifact that names it.
type Role string

const (
	RoleBaseModel Role = "base-model" // the base checkpoint (folder digest)
	RoleDataset   Role = "dataset"    // the dataset snapshot
	RoleParent    Role = "parent"     // an attested loraflow artifact (with its attestation digest)
	RoleWorker    Role = "worker"     // the worker binary; added by Attest itself
)

// Bundle kinds, which name the files written beside an artifact.
const (
	BundleProvenance   = "provenance"
	BundleModelSigning = "model-signing"
	BundleEval         = "eval"
	BundleCarbon       = "carbon"
)

// BundleSuffix ends every bundle file name.
const BundleSuffix = ".sigstore.json"

// BundlePath returns where the bundle of the given kind (BundleProvenance,
// ...) for the artifact at artifactPath lives: beside it, never inside, as
// "<artifactPath>.<kind>.sigstore.json". For an artifact made of several
// files, artifactPath is filepath.Join(folder, Artifact.Name).
func BundlePath(artifactPath, kind string) string {
	return filepath.Clean(artifactPath) + "." + kind + BundleSuffix
}

// Artifact describes one output to attest. Set exactly one of Dir and
// Files.
type Artifact struct {
	Kind Kind
	// Dir is the artifact's folder: every regular file in it is a subject.
	Dir string
	// Files are the artifact's files, all in one folder (e.g. an evaluation
	// report). Name is then required when there is more than one.
	Files []string
	// Name names the artifact; default: the base name of Dir or of the single file.
	Name string
	// ExpectSHA256, when set, is the digest (ManifestDigest) the files must
	// hash to: Attest hashes them once, refuses to sign other bytes (a
	// *DigestMismatchError), and signs the digests of the bytes it read, so
	// there is no window between a check and the signature.
	ExpectSHA256 string

	// Dependencies: adapters need a RoleBaseModel and a RoleDataset one,
	// merged models a RoleBaseModel and a RoleParent (the adapter) one.
	Dependencies []Dependency

	// ExternalParameters is the spec as run (hyperparameters, seed, ...); it
	// must encode as a non-empty JSON object.
	ExternalParameters any
	// InvocationID identifies the run: the Temporal workflow ID and run ID.
	InvocationID string
	// WorkerIdentity is the Temporal worker identity that ran the activity.
	WorkerIdentity string
	// BuilderID is the SLSA builder.id; default DefaultBuilderID.
	BuilderID  string
	StartedOn  time.Time
	FinishedOn time.Time

	// Eval and Carbon, when not nil, are attached as their own signed
	// statements (EvalPredicateType, CarbonPredicateType) about the same
	// files, named as byproducts of the provenance statement.
	Eval   any
	Carbon any
}

// Dependency is an input of an artifact.
type Dependency struct {
	Role Role
	Name string
	// URI locates the dependency; Verify re-checks dependencies whose URI is
	// a file:// URI or a path (see WithResolver for other stores).
	URI string
	// SHA256 is the folder digest (see FolderDigest) of a folder, or the
	// sha256 of a single file, in lowercase hex.
	SHA256 string
	// Attestation is the parent's ProvenanceSHA256 (required for RoleParent).
	Attestation string

	// root, in an expected dependency, is model_signing's root digest of
	// the same folder, which statements signed before one digest per
	// artifact name instead (matches).
	root string
}

// matches says whether a dependency the statement names is want: the same
// role and digest (or, for a statement signed before one digest per
// artifact, want's root digest).
func (want Dependency) matches(d Dependency) bool {
	return d.Role == want.Role && (d.SHA256 == want.SHA256 || (want.root != "" && d.SHA256 == want.root))
}

// Attestation is what Attest wrote.
type Attestation struct {
	Path   string // the artifact: Dir, or filepath.Join(folder of Files, Name)
	Kind   Kind
	Name   string
	SHA256 string       // the artifact's digest (ManifestDigest), named by its provenance
	Root   string       // model_signing's root digest: the model-signing bundle's subject
	Files  []FileDigest // its files, sorted
	// ProvenanceSHA256 is the sha256 of the signed SLSA statement. Record it
	// as Dependency.Attestation in artifacts derived from this one.
	ProvenanceSHA256 string
	Bundles          []BundleFile // the provenance bundle first
}

// BundleFile is one written Sigstore bundle.
type BundleFile struct {
	Kind            string // BundleProvenance, BundleModelSigning, ...
	Path            string
	PredicateType   string
	StatementSHA256 string // sha256 of the DSSE payload (the in-toto statement)
}

var hex256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Attest hashes the artifact, then signs and writes its statements as
// Sigstore bundles beside it: model-signing (folders of adapters and
// models), eval and carbon (when given), and last the SLSA provenance
// statement, which names the others as byproducts. Writes are atomic; a
// retried Attest overwrites the bundles of an earlier attempt.
func Attest(ctx context.Context, signer *Signer, a Artifact) (*Attestation, error) {
	if signer == nil {
		return nil, errors.New("provenance: Attest needs a signer")
	}
	info, base, names, err := a.layout()
	if err != nil {
		return nil, err
	}
	if err := a.check(); err != nil {
		return nil, err
	}
	ext, err := rawObject("ExternalParameters", a.ExternalParameters)
	if err != nil {
		return nil, err
	}

	var td *TreeDigest
	if names == nil {
		td, err = HashTree(ctx, base)
	} else {
		td, err = HashFiles(ctx, base, names)
	}
	if err != nil {
		return nil, err
	}
	if len(td.Files) == 0 {
		return nil, fmt.Errorf("provenance: artifact %s has no files", info.Name)
	}
	if a.ExpectSHA256 != "" && td.Manifest != a.ExpectSHA256 {
		return nil, &DigestMismatchError{Path: base, Want: a.ExpectSHA256, Got: td.Manifest}
	}
	info.SHA256 = statedDigest(td)

	artifactPath := base
	if names != nil {
		artifactPath = filepath.Join(base, info.Name)
	}
	att := &Attestation{Path: artifactPath, Kind: a.Kind, Name: info.Name, SHA256: td.Manifest, Root: td.SHA256, Files: td.Files}
	subjects := fileSubjects(td.Files)
	var byproducts []resourceDescriptor

	writeOne := func(kind, predicateType string, st statement) (BundleFile, error) {
		st.PredicateType = predicateType
		payload, err := marshalStatement(st)
		if err != nil {
			return BundleFile{}, err
		}
		bf := BundleFile{Kind: kind, Path: BundlePath(artifactPath, kind), PredicateType: predicateType, StatementSHA256: sha256Hex(payload)}
		if err := signToFile(ctx, signer, payload, bf.Path); err != nil {
			return BundleFile{}, err
		}
		return bf, nil
	}
	addByproduct := func(bf BundleFile) {
		att.Bundles = append(att.Bundles, bf)
		byproducts = append(byproducts, resourceDescriptor{
			Name:        bf.Kind,
			URI:         filepath.Base(bf.Path),
			Digest:      map[string]string{"sha256": bf.StatementSHA256},
			MediaType:   PayloadType,
			Annotations: map[string]any{"predicateType": bf.PredicateType},
		})
	}

	if names == nil && (a.Kind == KindAdapter || a.Kind == KindMergedModel) {
		var p modelSigningPredicate
		p.Serialization.Method = "files"
		p.Serialization.HashType = "sha256"
		p.Serialization.IgnorePaths = []string{}
		for _, f := range td.Files {
			p.Resources = append(p.Resources, modelSigningResource{Name: f.Name, Algorithm: "sha256", Digest: f.SHA256})
		}
		pb, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("provenance: encode model-signing predicate: %w", err)
		}
		bf, err := writeOne(BundleModelSigning, ModelSigningPredicateType, statement{
			Subject:   []resourceDescriptor{{Name: info.Name, Digest: map[string]string{"sha256": td.SHA256}}},
			Predicate: pb,
		})
		if err != nil {
			return nil, err
		}
		addByproduct(bf)
	}
	for _, r := range []struct {
		kind, predicateType string
		value               any
	}{{BundleEval, EvalPredicateType, a.Eval}, {BundleCarbon, CarbonPredicateType, a.Carbon}} {
		if r.value == nil {
			continue
		}
		raw, err := json.Marshal(r.value)
		if err != nil {
			return nil, fmt.Errorf("provenance: encode %s: %w", r.kind, err)
		}
		p := resultPredicate{Artifact: info, InvocationID: a.InvocationID}
		if r.kind == BundleEval {
			p.Results = raw
		} else {
			p.Report = raw
		}
		pb, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("provenance: encode %s predicate: %w", r.kind, err)
		}
		bf, err := writeOne(r.kind, r.predicateType, statement{Subject: subjects, Predicate: pb})
		if err != nil {
			return nil, err
		}
		addByproduct(bf)
	}

	var prov slsaProvenance
	bd := &prov.BuildDefinition
	bd.BuildType = BuildType
	bd.ExternalParameters = ext
	bd.InternalParameters = internalParameters{Artifact: info, WorkerIdentity: a.WorkerIdentity}
	for _, d := range a.Dependencies {
		bd.ResolvedDependencies = append(bd.ResolvedDependencies, d.descriptor())
	}
	w := CurrentWorker()
	bd.ResolvedDependencies = append(bd.ResolvedDependencies, w.descriptor())
	rd := &prov.RunDetails
	rd.Builder.ID = a.BuilderID
	if rd.Builder.ID == "" {
		rd.Builder.ID = DefaultBuilderID
	}
	rd.Builder.Version = map[string]string{"loraflow": w.Version, "go": w.GoVersion}
	rd.Metadata.InvocationID = a.InvocationID
	if !a.StartedOn.IsZero() {
		t := a.StartedOn.UTC()
		rd.Metadata.StartedOn = &t
	}
	if !a.FinishedOn.IsZero() {
		t := a.FinishedOn.UTC()
		rd.Metadata.FinishedOn = &t
	}
	rd.Byproducts = byproducts
	pb, err := json.Marshal(prov)
	if err != nil {
		return nil, fmt.Errorf("provenance: encode SLSA predicate: %w", err)
	}
	bf, err := writeOne(BundleProvenance, SLSAPredicateType, statement{Subject: subjects, Predicate: pb})
	if err != nil {
		return nil, err
	}
	att.ProvenanceSHA256 = bf.StatementSHA256
	att.Bundles = append([]BundleFile{bf}, att.Bundles...)
	return att, nil
}

// statedDigest is the artifact digest a statement names: the files'
// ManifestDigest. (Statements signed before one digest per artifact named
// the root digest; the tests replace this to make one.)
var statedDigest = func(td *TreeDigest) string { return td.Manifest }

// DigestMismatchError is Attest's refusal to sign files that do not hash
// to Artifact.ExpectSHA256.
type DigestMismatchError struct {
	Path      string
	Want, Got string
}

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("provenance: %s hashes to %s, not %s: it changed after it was committed", e.Path, e.Got, e.Want)
}

// layout checks Dir/Files and returns the artifact info, the base folder,
// and the file names (nil for a folder artifact).
func (a Artifact) layout() (artifactInfo, string, []string, error) {
	info := artifactInfo{Kind: a.Kind, Name: a.Name}
	switch {
	case a.Dir != "" && len(a.Files) > 0:
		return info, "", nil, errors.New("provenance: set Artifact.Dir or Artifact.Files, not both")
	case a.Dir != "":
		dir := filepath.Clean(a.Dir)
		if info.Name == "" {
			info.Name = filepath.Base(dir)
		}
		info.Layout = layoutFolder
		return info, dir, nil, nil
	case len(a.Files) > 0:
		base := filepath.Dir(filepath.Clean(a.Files[0]))
		names := make([]string, len(a.Files))
		for i, f := range a.Files {
			f = filepath.Clean(f)
			if filepath.Dir(f) != base {
				return info, "", nil, fmt.Errorf("provenance: artifact files must share one folder: %s is not in %s", f, base)
			}
			names[i] = filepath.Base(f)
		}
		if info.Name == "" {
			if len(names) > 1 {
				return info, "", nil, errors.New("provenance: an artifact of several files needs a Name")
			}
			info.Name = names[0]
		}
		if strings.ContainsAny(info.Name, `/\`) {
			return info, "", nil, fmt.Errorf("provenance: artifact name %q must not contain a path separator", info.Name)
		}
		info.Layout = layoutFiles
		return info, base, names, nil
	default:
		return info, "", nil, errors.New("provenance: Artifact.Dir or Artifact.Files is required")
	}
}

func (a Artifact) check() error {
	switch a.Kind {
	case KindAdapter, KindMergedModel, KindEvalReport:
	default:
		return fmt.Errorf("provenance: unknown artifact kind %q", a.Kind)
	}
	if a.InvocationID == "" {
		return errors.New("provenance: InvocationID (workflow and run ID) is required")
	}
	roles := map[Role]int{}
	for i, d := range a.Dependencies {
		if err := d.check(); err != nil {
			return fmt.Errorf("provenance: dependency %d (%s): %w", i, d.Name, err)
		}
		roles[d.Role]++
	}
	need := map[Kind][]Role{
		KindAdapter:     {RoleBaseModel, RoleDataset},
		KindMergedModel: {RoleBaseModel, RoleParent},
		KindEvalReport:  {RoleParent},
	}
	for _, r := range need[a.Kind] {
		if roles[r] == 0 {
			return fmt.Errorf("provenance: a %s artifact needs a %s dependency", a.Kind, r)
		}
	}
	if roles[RoleBaseModel] > 1 {
		return errors.New("provenance: more than one base-model dependency")
	}
	return nil
}

func (d Dependency) check() error {
	switch d.Role {
	case RoleBaseModel, RoleDataset, RoleParent:
	case RoleWorker:
		return errors.New("the worker dependency is added by Attest itself")
	default:
		return fmt.Errorf("unknown role %q", d.Role)
	}
	if !hex256.MatchString(d.SHA256) {
		return fmt.Errorf("SHA256 %q is not a lowercase hex sha256", d.SHA256)
	}
	if d.Role == RoleParent && !hex256.MatchString(d.Attestation) {
		return fmt.Errorf("a parent needs its Attestation (the parent's ProvenanceSHA256), got %q", d.Attestation)
	}
	if d.Role != RoleParent && d.Attestation != "" && !hex256.MatchString(d.Attestation) {
		return fmt.Errorf("Attestation %q is not a lowercase hex sha256", d.Attestation)
	}
	return nil
}

func (d Dependency) descriptor() resourceDescriptor {
	rd := resourceDescriptor{
		Name:        d.Name,
		URI:         d.URI,
		Digest:      map[string]string{"sha256": d.SHA256},
		Annotations: map[string]any{"role": string(d.Role)},
	}
	if d.Attestation != "" {
		rd.Annotations["attestation"] = map[string]string{"sha256": d.Attestation}
	}
	return rd
}

// signToFile signs payload as a DSSE envelope in a Sigstore bundle v0.3
// and writes it atomically to dst.
func signToFile(ctx context.Context, s *Signer, payload []byte, dst string) error {
	pb, err := sign.Bundle(&sign.DSSEData{Data: payload, PayloadType: PayloadType}, keypair{s}, sign.BundleOptions{Context: ctx})
	if err != nil {
		return fmt.Errorf("provenance: sign %s: %w", filepath.Base(dst), err)
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		return fmt.Errorf("provenance: bundle %s: %w", filepath.Base(dst), err)
	}
	js, err := b.MarshalJSON()
	if err != nil {
		return fmt.Errorf("provenance: encode bundle %s: %w", filepath.Base(dst), err)
	}
	return writeAtomic(dst, js)
}

func writeAtomic(dst string, data []byte) error {
	if err := atomicfile.WriteFile(dst, data); err != nil {
		return fmt.Errorf("provenance: %w", err)
	}
	return nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// cleanName reports whether n is a clean relative slash path.
func cleanName(n string) bool {
	return n != "" && n != "." && !strings.HasPrefix(n, "/") && path.Clean(n) == n && !strings.HasPrefix(n, "../") && n != ".."
}
