package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/loraflow/loraflow/internal/atomicfile"
	"github.com/loraflow/loraflow/internal/fscopy"
)

// Local is the embedded registry kept in a folder:
//
//	ROOT/.lock                       flock taken by every writer
//	ROOT/models/NAME.json            one document per model (versions, tags, aliases), replaced atomically
//	ROOT/artifacts/DIGEST/NAME/...   artifact folders, copied in once per artifact digest
//	ROOT/artifacts/DIGEST/run.json   params, metrics, metric history and datasets of the publish
//	ROOT/tmp/                        staging for copies, renamed into artifacts/ when complete
//
// Readers take no lock: documents are only ever replaced by rename, so a
// reader sees either the old or the new document, never a torn one.
type Local struct {
	root string
}

var _ Registry = (*Local)(nil)

// localModelDoc is ROOT/models/NAME.json.
type localModelDoc struct {
	Name      string            `json:"name"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
	Aliases   map[string]string `json:"aliases"`
	Versions  []localVersionDoc `json:"versions"`
}

type localVersionDoc struct {
	Version        string            `json:"version"`
	ArtifactDigest string            `json:"artifact_digest"`
	Description    string            `json:"description,omitempty"`
	Tags           map[string]string `json:"tags"`
	// Dir is the artifact folder relative to the root.
	Dir       string    `json:"dir"`
	Artifacts []string  `json:"artifacts"`
	CreatedAt time.Time `json:"created_at"`
}

// localRunDoc is ROOT/artifacts/DIGEST/run.json.
type localRunDoc struct {
	Params        map[string]string        `json:"params,omitempty"`
	Metrics       map[string]float64       `json:"metrics,omitempty"`
	MetricHistory map[string][]MetricPoint `json:"metric_history,omitempty"`
	Datasets      []Dataset                `json:"datasets,omitempty"`
}

var (
	localModelNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)
	digestRE         = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9:._-]{0,199}$`)
)

// OpenLocal opens (creating if needed) the local registry in root.
func OpenLocal(root string) (*Local, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("registry: local root %q: %w", root, err)
	}
	for _, d := range []string{abs, filepath.Join(abs, "models"), filepath.Join(abs, "artifacts"), filepath.Join(abs, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("registry: create %s: %w", d, err)
		}
	}
	removeStaleStaging(filepath.Join(abs, "tmp"))
	return &Local{root: abs}, nil
}

// removeStaleStaging deletes staging folders left by publishers that died
// more than a day ago (live ones finish in far less).
func removeStaleStaging(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > 24*time.Hour {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// Root is the registry's folder.
func (l *Local) Root() string { return l.root }

// URI implements Registry.
func (l *Local) URI() string { return "file://" + l.root }

// Close implements Registry; the local registry holds nothing open.
func (l *Local) Close() error { return nil }

func (l *Local) modelPath(model string) string {
	return filepath.Join(l.root, "models", model+".json")
}

func checkLocalModelName(model string) error {
	if !localModelNameRE.MatchString(model) {
		return fmt.Errorf("registry: model name %q: want letters, digits, '.', '_' or '-' (at most 200, not starting with a symbol)", model)
	}
	return nil
}

// readDoc returns the model's document; ok is false if the model does not exist.
func (l *Local) readDoc(model string) (doc localModelDoc, ok bool, err error) {
	if err := checkLocalModelName(model); err != nil {
		return doc, false, err
	}
	path := l.modelPath(model)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return doc, false, nil
	}
	if err != nil {
		return doc, false, fmt.Errorf("registry: read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return doc, false, fmt.Errorf("registry: decode %s: %w", path, err)
	}
	if doc.Aliases == nil {
		doc.Aliases = map[string]string{}
	}
	return doc, true, nil
}

func (l *Local) mustReadDoc(model string) (localModelDoc, error) {
	doc, ok, err := l.readDoc(model)
	if err != nil {
		return doc, err
	}
	if !ok {
		return doc, fmt.Errorf("registry: model %q: %w", model, ErrNotFound)
	}
	return doc, nil
}

func (l *Local) writeDoc(doc *localModelDoc) error {
	doc.UpdatedAt = time.Now().UTC()
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("registry: encode model %q: %w", doc.Name, err)
	}
	return writeFileAtomic(l.modelPath(doc.Name), append(b, '\n'))
}

// update runs fn on the model's document under the registry lock and writes
// the document back when fn returns changed. create allows a missing model.
func (l *Local) update(ctx context.Context, model string, create bool, fn func(doc *localModelDoc) (changed bool, err error)) error {
	if err := checkLocalModelName(model); err != nil {
		return err
	}
	unlock, err := lockFile(ctx, filepath.Join(l.root, ".lock"))
	if err != nil {
		return fmt.Errorf("registry: lock %s: %w", l.root, err)
	}
	defer unlock()
	doc, ok, err := l.readDoc(model)
	if err != nil {
		return err
	}
	if !ok {
		if !create {
			return fmt.Errorf("registry: model %q: %w", model, ErrNotFound)
		}
		now := time.Now().UTC()
		doc = localModelDoc{Name: model, CreatedAt: now, Aliases: map[string]string{}}
	}
	changed, err := fn(&doc)
	if err != nil {
		return err
	}
	if !changed {
		return nil
	}
	return l.writeDoc(&doc)
}

func (doc *localModelDoc) find(version string) (*localVersionDoc, bool) {
	for i := range doc.Versions {
		if doc.Versions[i].Version == version {
			return &doc.Versions[i], true
		}
	}
	return nil, false
}

func (doc *localModelDoc) findDigest(digest string) (*localVersionDoc, bool) {
	for i := range doc.Versions {
		if doc.Versions[i].ArtifactDigest == digest {
			return &doc.Versions[i], true
		}
	}
	return nil, false
}

func (l *Local) toVersion(doc *localModelDoc, v *localVersionDoc) Version {
	out := Version{
		Model:          doc.Name,
		Version:        v.Version,
		ArtifactDigest: v.ArtifactDigest,
		Description:    v.Description,
		Tags:           make(map[string]string, len(v.Tags)),
		Source:         filepath.Join(l.root, v.Dir),
		Status:         "READY",
		CreatedAt:      v.CreatedAt,
	}
	for k, val := range v.Tags {
		out.Tags[k] = val
	}
	out.Metrics = metricsFromTags(v.Tags)
	if len(v.Artifacts) > 0 {
		out.Artifacts = make(map[string]string, len(v.Artifacts))
		for _, a := range v.Artifacts {
			out.Artifacts[a] = filepath.Join(out.Source, a)
		}
	}
	for _, alias := range slices.Sorted(maps.Keys(doc.Aliases)) {
		if doc.Aliases[alias] == v.Version {
			out.Aliases = append(out.Aliases, alias)
		}
	}
	return out
}

// Publish implements Registry. Artifacts are copied into the content store
// before the lock is taken, so a large merged model does not hold up other
// publishers; the version itself is numbered and recorded under the lock.
func (l *Local) Publish(ctx context.Context, req PublishRequest) (Version, error) {
	if err := validatePublish(req); err != nil {
		return Version{}, err
	}
	if err := checkLocalModelName(req.ModelName); err != nil {
		return Version{}, err
	}
	if !digestRE.MatchString(req.ArtifactDigest) {
		return Version{}, fmt.Errorf("registry: publish %s: artifact digest %q has characters other than letters, digits, ':', '.', '_', '-'", req.ModelName, req.ArtifactDigest)
	}
	dirRel := filepath.Join("artifacts", strings.ReplaceAll(req.ArtifactDigest, ":", "-"))
	if err := l.stageArtifacts(ctx, req, filepath.Join(l.root, dirRel)); err != nil {
		return Version{}, err
	}
	var out Version
	err := l.update(ctx, req.ModelName, true, func(doc *localModelDoc) (bool, error) {
		changed := false
		v, existed := doc.findDigest(req.ArtifactDigest)
		if !existed {
			next := 1
			for _, e := range doc.Versions {
				if n, err := strconv.Atoi(e.Version); err == nil && n >= next {
					next = n + 1
				}
			}
			doc.Versions = append(doc.Versions, localVersionDoc{
				Version:        strconv.Itoa(next),
				ArtifactDigest: req.ArtifactDigest,
				Description:    req.Description,
				Tags:           versionTags(req),
				Dir:            dirRel,
				Artifacts:      append([]string{}, slices.Sorted(maps.Keys(req.ArtifactDirs))...), // [] not null when empty
				CreatedAt:      time.Now().UTC(),
			})
			v = &doc.Versions[len(doc.Versions)-1]
			changed = true
		}
		version := v.Version
		switch req.Alias {
		case "":
		case AliasChampion:
			res, err := promoteDoc(doc, version)
			if err != nil {
				return false, err
			}
			changed = changed || res.Changed
		default:
			if doc.Aliases[req.Alias] != version {
				doc.Aliases[req.Alias] = version
				changed = true
			}
		}
		v, _ = doc.find(version)
		out = l.toVersion(doc, v)
		out.Existed = existed
		return changed, nil
	})
	if err != nil {
		return Version{}, err
	}
	return out, nil
}

// stageArtifacts copies the request's artifacts into dst (a folder named
// after the digest), unless a complete copy is already there.
func (l *Local) stageArtifacts(ctx context.Context, req PublishRequest, dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return nil // an earlier publish of the same digest completed the copy
	}
	tmp, err := os.MkdirTemp(filepath.Join(l.root, "tmp"), "stage-")
	if err != nil {
		return fmt.Errorf("registry: stage artifacts: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, name := range slices.Sorted(maps.Keys(req.ArtifactDirs)) {
		if _, err := fscopy.Tree(ctx, req.ArtifactDirs[name], filepath.Join(tmp, name), fscopy.Options{Sync: true, RefuseIrregular: true}); err != nil {
			return fmt.Errorf("registry: copy artifact %q from %s: %w", name, req.ArtifactDirs[name], err)
		}
	}
	run := localRunDoc{Params: req.Params, Metrics: req.Metrics, MetricHistory: req.MetricHistory, Datasets: req.Datasets}
	b, err := json.MarshalIndent(run, "", "  ")
	if err != nil {
		return fmt.Errorf("registry: encode run record: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(tmp, "run.json"), b); err != nil {
		return err
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		if _, statErr := os.Stat(dst); statErr == nil {
			return nil // another publisher of the same digest won the race
		}
		return fmt.Errorf("registry: move staged artifacts to %s: %w", dst, err)
	}
	return syncDir(filepath.Dir(dst))
}

// RunRecord returns the params, metrics, metric history and datasets stored
// with a version.
func (l *Local) RunRecord(ctx context.Context, model, version string) (params map[string]string, metrics map[string]float64, history map[string][]MetricPoint, datasets []Dataset, err error) {
	v, err := l.GetVersion(ctx, model, version)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	path := filepath.Join(v.Source, "run.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("registry: read %s: %w", path, err)
	}
	var run localRunDoc
	if err := json.Unmarshal(b, &run); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("registry: decode %s: %w", path, err)
	}
	return run.Params, run.Metrics, run.MetricHistory, run.Datasets, nil
}

// GetVersion implements Registry.
func (l *Local) GetVersion(ctx context.Context, model, version string) (Version, error) {
	doc, err := l.mustReadDoc(model)
	if err != nil {
		return Version{}, err
	}
	v, ok := doc.find(version)
	if !ok {
		return Version{}, fmt.Errorf("registry: model %q version %q: %w", model, version, ErrNotFound)
	}
	return l.toVersion(&doc, v), nil
}

// ListVersions implements Registry.
func (l *Local) ListVersions(ctx context.Context, model string) ([]Version, error) {
	doc, err := l.mustReadDoc(model)
	if err != nil {
		return nil, err
	}
	out := make([]Version, 0, len(doc.Versions))
	for i := range doc.Versions {
		out = append(out, l.toVersion(&doc, &doc.Versions[i]))
	}
	sort.Slice(out, func(i, j int) bool { return versionLess(out[i].Version, out[j].Version) })
	return out, nil
}

// ListModels implements Registry.
func (l *Local) ListModels(ctx context.Context) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(l.root, "models"))
	if err != nil {
		return nil, fmt.Errorf("registry: list models in %s: %w", l.root, err)
	}
	var names []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if ok && !e.IsDir() && localModelNameRE.MatchString(name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// GetByAlias implements Registry.
func (l *Local) GetByAlias(ctx context.Context, model, alias string) (Version, bool, error) {
	doc, ok, err := l.readDoc(model)
	if err != nil || !ok {
		return Version{}, false, err
	}
	version, ok := doc.Aliases[alias]
	if !ok {
		return Version{}, false, nil
	}
	v, ok := doc.find(version)
	if !ok {
		return Version{}, false, fmt.Errorf("registry: model %q alias %q names missing version %q", model, alias, version)
	}
	return l.toVersion(&doc, v), true, nil
}

// SetAlias implements Registry.
func (l *Local) SetAlias(ctx context.Context, model, alias, version string) error {
	if alias == "" {
		return errors.New("registry: set alias: alias is empty")
	}
	return l.update(ctx, model, false, func(doc *localModelDoc) (bool, error) {
		if _, ok := doc.find(version); !ok {
			return false, fmt.Errorf("registry: model %q version %q: %w", model, version, ErrNotFound)
		}
		if doc.Aliases[alias] == version {
			return false, nil
		}
		doc.Aliases[alias] = version
		return true, nil
	})
}

// DeleteAlias implements Registry.
func (l *Local) DeleteAlias(ctx context.Context, model, alias string) error {
	return l.update(ctx, model, false, func(doc *localModelDoc) (bool, error) {
		if _, ok := doc.Aliases[alias]; !ok {
			return false, nil
		}
		delete(doc.Aliases, alias)
		return true, nil
	})
}

// SetVersionTag implements Registry.
func (l *Local) SetVersionTag(ctx context.Context, model, version, key, value string) error {
	if key == "" {
		return errors.New("registry: set version tag: key is empty")
	}
	return l.update(ctx, model, false, func(doc *localModelDoc) (bool, error) {
		v, ok := doc.find(version)
		if !ok {
			return false, fmt.Errorf("registry: model %q version %q: %w", model, version, ErrNotFound)
		}
		if v.Tags == nil {
			v.Tags = map[string]string{}
		}
		v.Tags[key] = value
		return true, nil
	})
}

// Promote implements Registry; the whole move happens under the lock.
func (l *Local) Promote(ctx context.Context, model, version string) (PromoteResult, error) {
	var res PromoteResult
	err := l.update(ctx, model, false, func(doc *localModelDoc) (bool, error) {
		var err error
		res, err = promoteDoc(doc, version)
		return res.Changed, err
	})
	return res, err
}

func promoteDoc(doc *localModelDoc, version string) (PromoteResult, error) {
	res := PromoteResult{Model: doc.Name, Champion: version}
	if _, ok := doc.find(version); !ok {
		return res, fmt.Errorf("registry: promote model %q version %q: %w", doc.Name, version, ErrNotFound)
	}
	cur, hasCur := doc.Aliases[AliasChampion]
	if hasCur && cur == version {
		res.Previous = doc.Aliases[AliasPreviousChampion]
		return res, nil
	}
	if hasCur {
		doc.Aliases[AliasPreviousChampion] = cur
		res.Previous = cur
	}
	doc.Aliases[AliasChampion] = version
	if doc.Aliases[AliasChallenger] == version {
		delete(doc.Aliases, AliasChallenger)
	}
	res.Changed = true
	return res, nil
}

// Rollback implements Registry; the whole move happens under the lock.
func (l *Local) Rollback(ctx context.Context, model string) (PromoteResult, error) {
	res := PromoteResult{Model: model}
	err := l.update(ctx, model, false, func(doc *localModelDoc) (bool, error) {
		prev, ok := doc.Aliases[AliasPreviousChampion]
		if !ok {
			return false, fmt.Errorf("registry: rollback model %q: %w", model, ErrNoPreviousChampion)
		}
		if _, ok := doc.find(prev); !ok {
			return false, fmt.Errorf("registry: rollback model %q: previous champion version %q: %w", model, prev, ErrNotFound)
		}
		cur := doc.Aliases[AliasChampion]
		doc.Aliases[AliasChampion] = prev
		delete(doc.Aliases, AliasPreviousChampion)
		if v, ok := doc.find(cur); ok && cur != prev {
			if v.Tags == nil {
				v.Tags = map[string]string{}
			}
			v.Tags[TagRolledBack] = "true"
		}
		res.Champion, res.Previous, res.Changed = prev, cur, true
		return true, nil
	})
	return res, err
}

// writeFileAtomic writes data to path through a temporary file in the same
// folder, fsynced and renamed over path.
func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	if err := atomicfile.Sync(dir); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	return nil
}
