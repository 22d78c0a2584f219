package trust

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/loraflow/loraflow/provenance"
	"github.com/loraflow/loraflow/registry"
	"github.com/loraflow/loraflow/spec"
)

// DefaultName names the registry and the signing key a spec gets when it
// names none.
const DefaultName = "default"

// Registry is a registry the operator declares.
type Registry struct {
	Name string
	// URI is file:///path or http(s)://host (MLflow). It must carry no
	// credentials: they come from the worker's environment.
	URI string
}

// Config is the worker operator's trust configuration. Nothing in it comes
// from a spec.
type Config struct {
	// ArtifactRoot is the artifact store's folder; it is always an input root.
	ArtifactRoot string
	// InputRoots are further folders from which base models and dataset
	// files may be read.
	InputRoots []string
	// Registries are the registries a spec may name; the one named
	// DefaultName (or else the first) is used when a spec names none. With
	// none declared, registry.DefaultURI() is the default.
	Registries []Registry
	// SigningKey is the default signing key source (PEM path, env:VAR or a
	// mounted secret folder); SigningKeys are further keys a spec may name.
	SigningKey  string
	SigningKeys map[string]string
	// TrustedKeys are public key PEM files (or folders of them). The public
	// keys of the signing keys are trusted too.
	TrustedKeys []string
}

// Option adjusts New. Lenient options end in Unsafe.
type Option func(*Policy)

// WithReportSamplesUnsafe lets Evaluate put generated samples, whose
// prompts are the first words of held-out rows, into the eval report that
// Publish copies into the registry. Off by default: a dataset's text is the
// operator's to publish, not a spec author's.
func WithReportSamplesUnsafe() Option { return func(p *Policy) { p.reportSamples = true } }

// Policy is a Config checked and loaded: roots resolved, keys read.
type Policy struct {
	roots         []string
	registries    []Registry
	defaultReg    string
	signers       map[string]*provenance.Signer
	trustedPaths  []string
	verifier      *provenance.Verifier
	reportSamples bool
}

// New checks cfg and loads its keys. It refuses a registry URI with
// credentials, a duplicate name, roots that do not exist and keys that do
// not load.
func New(cfg Config, opts ...Option) (*Policy, error) {
	p := &Policy{signers: map[string]*provenance.Signer{}}
	for _, o := range opts {
		o(p)
	}
	if cfg.ArtifactRoot == "" {
		return nil, errors.New("trust: the artifact root is required")
	}
	for i, r := range append([]string{cfg.ArtifactRoot}, cfg.InputRoots...) {
		r = strings.TrimPrefix(r, "file://")
		if !filepath.IsAbs(r) {
			abs, err := filepath.Abs(r)
			if err != nil {
				return nil, fmt.Errorf("trust: input root %q: %w", r, err)
			}
			r = abs
		}
		if i == 0 { // the store creates its root; input roots must exist
			if err := os.MkdirAll(r, 0o755); err != nil {
				return nil, fmt.Errorf("trust: artifact root: %w", err)
			}
		}
		real, err := filepath.EvalSymlinks(r)
		if err != nil {
			return nil, fmt.Errorf("trust: input root: %w", err)
		}
		if !slices.Contains(p.roots, real) {
			p.roots = append(p.roots, real)
		}
	}
	regs := cfg.Registries
	if len(regs) == 0 {
		regs = []Registry{{Name: DefaultName, URI: registry.DefaultURI()}}
	}
	for _, r := range regs {
		if r.Name == "" || r.URI == "" {
			return nil, fmt.Errorf("trust: registry %q: both a name and a URI are required", r.Name+r.URI)
		}
		if err := noUserinfo(r.URI); err != nil {
			return nil, fmt.Errorf("trust: registry %q: %w", r.Name, err)
		}
		if slices.ContainsFunc(p.registries, func(x Registry) bool { return x.Name == r.Name }) {
			return nil, fmt.Errorf("trust: registry name %q declared twice", r.Name)
		}
		p.registries = append(p.registries, r)
		if r.Name == DefaultName {
			p.defaultReg = r.Name
		}
	}
	if p.defaultReg == "" {
		p.defaultReg = p.registries[0].Name
	}
	keys := map[string]string{}
	for n, src := range cfg.SigningKeys {
		if n == "" || n == DefaultName {
			return nil, fmt.Errorf("trust: signing key name %q is reserved or empty", n)
		}
		keys[n] = src
	}
	if cfg.SigningKey != "" {
		keys[DefaultName] = cfg.SigningKey
	}
	var pubs []*provenance.TrustedKeys
	for n, src := range keys {
		s, err := provenance.LoadSigner(src)
		if err != nil {
			return nil, fmt.Errorf("trust: signing key %q: %w", n, err)
		}
		p.signers[n] = s
		k, err := provenance.NewTrustedKeys(s.PublicKey())
		if err != nil {
			return nil, fmt.Errorf("trust: signing key %q: %w", n, err)
		}
		pubs = append(pubs, k)
	}
	if len(cfg.TrustedKeys) > 0 {
		k, err := provenance.LoadTrustedKeys(cfg.TrustedKeys...)
		if err != nil {
			return nil, fmt.Errorf("trust: %w", err)
		}
		pubs = append(pubs, k)
		for _, t := range cfg.TrustedKeys {
			p.trustedPaths = append(p.trustedPaths, filepath.Clean(t))
		}
	}
	if all := provenance.JoinTrustedKeys(pubs...); all.Len() > 0 {
		v, err := provenance.NewVerifier(all)
		if err != nil {
			return nil, fmt.Errorf("trust: %w", err)
		}
		p.verifier = v
	}
	return p, nil
}

// SpecError is a spec field the worker's configuration does not allow.
type SpecError struct {
	Field string // e.g. "base_model", "dataset.files[1]", "registry.uri"
	Msg   string
	Err   error
}

func (e *SpecError) Error() string {
	s := fmt.Sprintf("spec field %s: %s", e.Field, e.Msg)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *SpecError) Unwrap() error { return e.Err }

// Roots are the resolved input roots, the artifact root first.
func (p *Policy) Roots() []string { return slices.Clone(p.roots) }

// ReportSamples says whether eval reports may carry held-out text.
func (p *Policy) ReportSamples() bool { return p.reportSamples }

// Verifier verifies with the worker's trusted keys; it is an error when the
// worker trusts no key at all.
func (p *Policy) Verifier() (*provenance.Verifier, error) {
	if p.verifier == nil {
		return nil, errors.New("trust: the worker trusts no key (configure a signing key or trusted keys)")
	}
	return p.verifier, nil
}

// CheckSpec checks every field of s that reaches the worker's files, keys
// or registries; the first violation is returned as a *SpecError.
func (p *Policy) CheckSpec(s spec.Spec) error {
	if _, err := p.InputPath("base_model", s.BaseModel); err != nil {
		return err
	}
	for i, f := range s.Dataset.Files {
		if _, err := p.InputPath(fmt.Sprintf("dataset.files[%d]", i), f); err != nil {
			return err
		}
	}
	if _, err := p.RegistryURI(s); err != nil {
		return err
	}
	if _, err := p.Signer(s); err != nil && !errors.Is(err, errNoSigningKey) {
		return err
	}
	for i, k := range s.Signing.TrustedKeys {
		if !slices.Contains(p.trustedPaths, filepath.Clean(k)) {
			return &SpecError{Field: fmt.Sprintf("signing.trusted_keys[%d]", i),
				Msg: fmt.Sprintf("%q is not among the worker's trusted keys; a spec cannot add trusted keys (the worker's operator configures them)", k)}
		}
	}
	return nil
}

// InputPath checks that p, after symlinks, lies inside an input root, and
// so does everything under it when it is a folder. It returns the resolved
// path.
func (p *Policy) InputPath(field, path string) (string, error) {
	if path == "" {
		return "", &SpecError{Field: field, Msg: "is empty"}
	}
	path = strings.TrimPrefix(path, "file://")
	if !filepath.IsAbs(path) {
		return "", &SpecError{Field: field, Msg: fmt.Sprintf("%q is not an absolute path", path)}
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", &SpecError{Field: field, Msg: fmt.Sprintf("%q cannot be resolved", path), Err: err}
	}
	if !p.inRoots(real) {
		return "", p.outside(field, path, real)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", &SpecError{Field: field, Msg: fmt.Sprintf("%q", path), Err: err}
	}
	if fi.IsDir() {
		// A symlink inside the folder may point anywhere; every entry is
		// resolved (a stat per entry, no reading).
		err := filepath.WalkDir(real, func(q string, d fs.DirEntry, err error) error {
			if err != nil || d.Type()&fs.ModeSymlink == 0 {
				return err
			}
			target, err := filepath.EvalSymlinks(q)
			if err != nil {
				return err
			}
			if !p.inRoots(target) {
				return p.outside(field, q, target)
			}
			return nil
		})
		var se *SpecError
		if errors.As(err, &se) {
			return "", se
		}
		if err != nil {
			return "", &SpecError{Field: field, Msg: fmt.Sprintf("%q", path), Err: err}
		}
	}
	return real, nil
}

func (p *Policy) outside(field, path, real string) error {
	msg := fmt.Sprintf("%q", path)
	if real != path {
		msg += fmt.Sprintf(" (resolves to %q)", real)
	}
	return &SpecError{Field: field, Msg: msg + fmt.Sprintf(" is outside the worker's input roots (%s); the worker's operator lists the folders a spec may read", strings.Join(p.roots, ", "))}
}

func (p *Policy) inRoots(real string) bool {
	for _, r := range p.roots {
		if within(r, real) {
			return true
		}
	}
	return false
}

func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// noUserinfo refuses a URI that carries credentials.
func noUserinfo(uri string) error {
	u, err := url.Parse(uri)
	if err != nil {
		return fmt.Errorf("URI does not parse: %w", err)
	}
	if u.User != nil {
		return errors.New("URI carries credentials (user:password@): they would travel in workflow inputs and provenance; give them to the worker through its environment (MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_USERNAME/PASSWORD, LORAFLOW_MLFLOW_TOKEN_FILE)")
	}
	return nil
}

// RegistryURI is the registry s publishes to: the declared registry it
// names (registry.name, or registry.uri equal to a declared URI), a file://
// folder inside the roots (registry.uri; the local registry sends no
// credentials), or the default registry.
func (p *Policy) RegistryURI(s spec.Spec) (string, error) {
	r := s.Registry
	if r.Name != "" {
		if r.URI != "" {
			return "", &SpecError{Field: "registry", Msg: "give registry.name or registry.uri, not both"}
		}
		for _, d := range p.registries {
			if d.Name == r.Name {
				return d.URI, nil
			}
		}
		return "", &SpecError{Field: "registry.name", Msg: fmt.Sprintf("%q is not a registry this worker declares (%s)", r.Name, strings.Join(p.registryNames(), ", "))}
	}
	if r.URI == "" {
		for _, d := range p.registries {
			if d.Name == p.defaultReg {
				return d.URI, nil
			}
		}
	}
	if err := noUserinfo(r.URI); err != nil {
		return "", &SpecError{Field: "registry.uri", Msg: "refused", Err: err}
	}
	for _, d := range p.registries {
		if strings.TrimRight(d.URI, "/") == strings.TrimRight(r.URI, "/") {
			return d.URI, nil
		}
	}
	if folder, ok := strings.CutPrefix(r.URI, "file://"); ok {
		if !filepath.IsAbs(folder) {
			return "", &SpecError{Field: "registry.uri", Msg: fmt.Sprintf("%q names no absolute folder", r.URI)}
		}
		real, err := resolveExisting(folder)
		if err != nil {
			return "", &SpecError{Field: "registry.uri", Msg: fmt.Sprintf("%q cannot be resolved", r.URI), Err: err}
		}
		if !p.inRoots(real) {
			return "", &SpecError{Field: "registry.uri", Msg: fmt.Sprintf("%q is outside the worker's roots (%s); name a declared registry with registry.name (%s)", r.URI, strings.Join(p.roots, ", "), strings.Join(p.registryNames(), ", "))}
		}
		return r.URI, nil
	}
	return "", &SpecError{Field: "registry.uri", Msg: fmt.Sprintf("%q is not a registry this worker declares; name one with registry.name (%s): the worker's registry credentials go only to registries its operator declared", r.URI, strings.Join(p.registryNames(), ", "))}
}

// resolveExisting resolves the symlinks of the longest existing prefix of
// path and appends the rest (a registry folder may not exist yet).
func resolveExisting(path string) (string, error) {
	path = filepath.Clean(path)
	rest := ""
	for {
		real, err := filepath.EvalSymlinks(path)
		if err == nil {
			return filepath.Join(real, rest), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(path)
		if parent == path {
			return "", err
		}
		rest = filepath.Join(filepath.Base(path), rest)
		path = parent
	}
}

func (p *Policy) registryNames() []string {
	var n []string
	for _, r := range p.registries {
		n = append(n, r.Name)
	}
	return n
}

// OpenRegistry opens the registry s publishes to.
func (p *Policy) OpenRegistry(ctx context.Context, s spec.Spec) (registry.Registry, error) {
	uri, err := p.RegistryURI(s)
	if err != nil {
		return nil, err
	}
	return registry.Open(ctx, uri)
}

var errNoSigningKey = errors.New("trust: the worker has no signing key (configure one: --signing-key or LORAFLOW_SIGNING_KEY)")

// Signer is the key that signs s's attestations: the default signing key,
// or the declared key that signing.key names.
func (p *Policy) Signer(s spec.Spec) (*provenance.Signer, error) {
	name := s.Signing.Key
	if name == "" {
		name = DefaultName
	}
	if sg, ok := p.signers[name]; ok {
		return sg, nil
	}
	if s.Signing.Key == "" {
		return nil, errNoSigningKey
	}
	names := make([]string, 0, len(p.signers))
	for n := range p.signers {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, &SpecError{Field: "signing.key", Msg: fmt.Sprintf("%q is not a signing key this worker declares (%s); a spec names a key, it cannot choose a key file or env: variable", s.Signing.Key, strings.Join(names, ", "))}
}
