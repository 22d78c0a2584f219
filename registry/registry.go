package registry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/loraflow/loraflow/internal/userdata"
)

// Aliases with a meaning to the pipeline.
const (
	AliasChampion         = "champion"
	AliasChallenger       = "challenger"
	AliasPreviousChampion = "previous-champion"
)

// Version tags written by this package. Callers add their own (adapter and
// merged digests, attestation digests, base model, dataset snapshot, spec
// digest, energy, gCO2e, workflow and run ID) through PublishRequest.Tags.
const (
	// TagArtifactDigest carries PublishRequest.ArtifactDigest, the
	// idempotency key. Its name has no dots so that MLflow search filters
	// need no quoting.
	TagArtifactDigest = "loraflow_artifact_digest"
	// TagMetricPrefix prefixes one version tag per metric, so a version's
	// metrics (used by the gate to compare with the champion) can be read
	// back from the registry alone.
	TagMetricPrefix = "loraflow.metric."
	// TagRolledBack is set to "true" on a champion that Rollback replaced.
	TagRolledBack = "loraflow.rolled_back"
)

// ErrNotFound is returned (wrapped) when a model, version or alias does not exist.
var ErrNotFound = errors.New("not found")

// ErrNoPreviousChampion is returned by Rollback when there is nothing to roll back to.
var ErrNoPreviousChampion = errors.New("no previous champion to roll back to")

// MetricPoint is one point of a metric's history, e.g. the training loss at a step.
type MetricPoint struct {
	Step  int64   `json:"step"`
	Value float64 `json:"value"`
	// Timestamp in Unix milliseconds; zero means "when published".
	Timestamp int64 `json:"timestamp,omitempty"`
}

// Dataset describes a dataset the version was trained or evaluated on
// (MLflow's dataset input).
type Dataset struct {
	Name       string `json:"name"`
	Digest     string `json:"digest"`
	SourceType string `json:"source_type"`       // e.g. "local", "s3", "http"
	Source     string `json:"source"`            // URI or JSON describing where it came from
	Context    string `json:"context,omitempty"` // "training", "evaluation", ...
	Schema     string `json:"schema,omitempty"`
	Profile    string `json:"profile,omitempty"`
}

// PublishRequest is what Publish registers.
type PublishRequest struct {
	ModelName string
	// ArtifactDirs maps an artifact name ("adapter", "merged", "eval",
	// "provenance", "carbon") to a local folder (or single file) to copy in.
	ArtifactDirs map[string]string
	// ArtifactDigest identifies the artifacts ("sha256:..."); it is the
	// idempotency key: one version per digest and model.
	ArtifactDigest string
	Tags           map[string]string
	// Metrics are final values (eval loss, perplexity, accuracy, energy, ...).
	Metrics map[string]float64
	// MetricHistory holds curves, e.g. "train_loss" → one point per step.
	MetricHistory map[string][]MetricPoint
	Params        map[string]string
	Datasets      []Dataset
	Description   string
	// Alias to set on the new version: AliasChampion (through Promote, so the
	// replaced champion is remembered), AliasChallenger, any other alias, or
	// "" for none.
	Alias string
	// RunName names the MLflow run (defaults to model name and digest); the
	// local registry ignores it.
	RunName string
}

// Version is one registered version of a model.
type Version struct {
	Model          string             `json:"model"`
	Version        string             `json:"version"`
	ArtifactDigest string             `json:"artifact_digest"`
	Description    string             `json:"description,omitempty"`
	Tags           map[string]string  `json:"tags,omitempty"`
	Metrics        map[string]float64 `json:"metrics,omitempty"`
	Aliases        []string           `json:"aliases,omitempty"`
	// Source is where the artifacts are: a folder for the local registry,
	// the run's artifact URI for MLflow.
	Source string `json:"source"`
	// Artifacts maps artifact names to their location (folder or URI).
	Artifacts map[string]string `json:"artifacts,omitempty"`
	RunID     string            `json:"run_id,omitempty"`
	Status    string            `json:"status,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	// Existed is true when Publish found this version already registered
	// for the request's digest (a retried publish) instead of making it.
	Existed bool `json:"existed,omitempty"`
}

// HasAlias reports whether v carries alias.
func (v Version) HasAlias(alias string) bool {
	for _, a := range v.Aliases {
		if a == alias {
			return true
		}
	}
	return false
}

// PromoteResult says what an alias move did.
type PromoteResult struct {
	Model string `json:"model"`
	// Champion is the version now under AliasChampion.
	Champion string `json:"champion"`
	// Previous is the version that was champion before ("" if none).
	Previous string `json:"previous,omitempty"`
	// Changed is false when nothing had to move.
	Changed bool `json:"changed"`
}

// Registry is a model registry. All methods are safe for concurrent use.
type Registry interface {
	// Publish registers the artifacts as a new version, or returns the
	// version already registered for req.ArtifactDigest.
	Publish(ctx context.Context, req PublishRequest) (Version, error)
	GetVersion(ctx context.Context, model, version string) (Version, error)
	// ListVersions returns a model's versions, oldest first.
	ListVersions(ctx context.Context, model string) ([]Version, error)
	// ListModels returns the registered model names, sorted.
	ListModels(ctx context.Context) ([]string, error)
	// GetByAlias resolves alias; ok is false when the alias is not set.
	GetByAlias(ctx context.Context, model, alias string) (v Version, ok bool, err error)
	SetAlias(ctx context.Context, model, alias, version string) error
	// DeleteAlias removes alias; removing an alias that is not set is not an error.
	DeleteAlias(ctx context.Context, model, alias string) error
	SetVersionTag(ctx context.Context, model, version, key, value string) error
	// Promote moves AliasChampion to version, keeping the replaced champion
	// under AliasPreviousChampion and clearing AliasChallenger if it named version.
	Promote(ctx context.Context, model, version string) (PromoteResult, error)
	// Rollback moves AliasChampion back to AliasPreviousChampion, removes
	// AliasPreviousChampion and tags the demoted version TagRolledBack.
	Rollback(ctx context.Context, model string) (PromoteResult, error)
	// URI names the registry, e.g. for logs and provenance.
	URI() string
	Close() error
}

// EnvRegistryURI names the environment variable that overrides DefaultURI;
// it is the variable the worker and `loraflow run` read too.
const EnvRegistryURI = "LORAFLOW_REGISTRY_URI"

// DefaultURI is $LORAFLOW_REGISTRY_URI, else the embedded default's registry
// under the user's data folder (file://$XDG_DATA_HOME/loraflow/registry,
// else file://~/.local/share/loraflow/registry): where `loraflow run`
// publishes, so `loraflow registry ls` shows it.
func DefaultURI() string {
	if u := os.Getenv(EnvRegistryURI); u != "" {
		return u
	}
	dir, err := userdata.Dir()
	if err != nil {
		dir = filepath.Join(os.TempDir(), "loraflow")
	}
	return "file://" + filepath.Join(dir, "registry")
}

// Open opens the registry that uri names:
//
//	file:///abs/path, file://./rel/path or a plain path   the embedded local registry
//	http(s)://host[:port][/prefix][?experiment=NAME]       an MLflow tracking server
//
// MLflow credentials come from the environment (see MLflowOptionsFromEnv).
func Open(ctx context.Context, uri string) (Registry, error) {
	if uri == "" {
		uri = DefaultURI()
	}
	if !strings.Contains(uri, "://") && !strings.HasPrefix(uri, "file:") {
		return OpenLocal(uri)
	}
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("registry: parse URI %q: %w", uri, err)
	}
	switch u.Scheme {
	case "file":
		path := u.Path
		if u.Opaque != "" {
			path = u.Opaque
		}
		if u.Host != "" && u.Host != "localhost" {
			path = u.Host + path // file://./rel or file://rel/path
		}
		if path == "" {
			return nil, fmt.Errorf("registry: URI %q names no folder", uri)
		}
		return OpenLocal(path)
	case "http", "https":
		opts, err := MLflowOptionsFromEnv()
		if err != nil {
			return nil, err
		}
		if exp := u.Query().Get("experiment"); exp != "" {
			opts.Experiment = exp
		}
		q := u.Query()
		q.Del("experiment")
		u.RawQuery = q.Encode()
		opts.TrackingURI = u.String()
		return NewMLflow(ctx, opts)
	default:
		return nil, fmt.Errorf("registry: URI %q: unsupported scheme %q (want file, http or https)", uri, u.Scheme)
	}
}

// metricsFromTags reads the TagMetricPrefix tags back into a map.
func metricsFromTags(tags map[string]string) map[string]float64 {
	var m map[string]float64
	for k, v := range tags {
		name, ok := strings.CutPrefix(k, TagMetricPrefix)
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			continue
		}
		if m == nil {
			m = make(map[string]float64)
		}
		m[name] = f
	}
	return m
}

// versionTags merges the caller's tags with the digest and metric tags.
func versionTags(req PublishRequest) map[string]string {
	tags := make(map[string]string, len(req.Tags)+len(req.Metrics)+1)
	for k, v := range req.Tags {
		tags[k] = v
	}
	for k, v := range req.Metrics {
		tags[TagMetricPrefix+k] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	tags[TagArtifactDigest] = req.ArtifactDigest
	return tags
}

func validatePublish(req PublishRequest) error {
	if req.ModelName == "" {
		return errors.New("registry: publish: model name is empty")
	}
	if req.ArtifactDigest == "" {
		return fmt.Errorf("registry: publish %s: artifact digest (the idempotency key) is empty", req.ModelName)
	}
	for name, dir := range req.ArtifactDirs {
		if err := validateArtifactName(name); err != nil {
			return fmt.Errorf("registry: publish %s: %w", req.ModelName, err)
		}
		if _, err := os.Stat(dir); err != nil {
			return fmt.Errorf("registry: publish %s: artifact %q: %w", req.ModelName, name, err)
		}
	}
	return nil
}

func validateArtifactName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("artifact name %q must be a single path element", name)
	}
	return nil
}

// versionLess orders version strings numerically when both are numbers.
func versionLess(a, b string) bool {
	ai, errA := strconv.Atoi(a)
	bi, errB := strconv.Atoi(b)
	if errA == nil && errB == nil {
		return ai < bi
	}
	return a < b
}
