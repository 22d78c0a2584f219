package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MLflow is a Registry backed by an MLflow tracking server's REST API.
type MLflow struct {
	c          *httpClient
	experiment string
}

var _ Registry = (*MLflow)(nil)

// LogBatch limits of MLflow's runs/log-batch.
const (
	mlflowMaxMetricsPerBatch = 1000
	mlflowMaxParamsPerBatch  = 100
	mlflowMaxTagsPerBatch    = 100
	mlflowMaxItemsPerBatch   = 1000
	mlflowSearchPageSize     = 200
)

// NewMLflow returns a client for the server at opts.TrackingURI. It makes no
// request; the first call shows whether the server answers and accepts the
// credentials.
func NewMLflow(ctx context.Context, opts MLflowOptions) (*MLflow, error) {
	if opts.Experiment == "" {
		opts.Experiment = "loraflow"
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 10 * time.Minute
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	c, err := newHTTPClient(opts)
	if err != nil {
		return nil, err
	}
	return &MLflow{c: c, experiment: opts.Experiment}, nil
}

// URI implements Registry.
func (m *MLflow) URI() string { return m.c.base.String() }

// Close implements Registry.
func (m *MLflow) Close() error {
	m.c.hc.CloseIdleConnections()
	return nil
}

// Wire types: MLflow's JSON field names (protobuf names, preserved).

type mlTag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type mlMetric struct {
	Key       string  `json:"key"`
	Value     float64 `json:"value"`
	Timestamp int64   `json:"timestamp"`
	Step      int64   `json:"step"`
}

// flexInt64 accepts an int64 written as a JSON number or a string (proto3 JSON).
type flexInt64 int64

func (f *flexInt64) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("int64 field %s: %w", b, err)
	}
	*f = flexInt64(n)
	return nil
}

type mlModelVersion struct {
	Name                 string    `json:"name"`
	Version              string    `json:"version"`
	CreationTimestamp    flexInt64 `json:"creation_timestamp"`
	LastUpdatedTimestamp flexInt64 `json:"last_updated_timestamp"`
	Description          string    `json:"description"`
	Source               string    `json:"source"`
	RunID                string    `json:"run_id"`
	Status               string    `json:"status"`
	StatusMessage        string    `json:"status_message"`
	Tags                 []mlTag   `json:"tags"`
	Aliases              []string  `json:"aliases"`
}

type mlRunInfo struct {
	RunID          string `json:"run_id"`
	ExperimentID   string `json:"experiment_id"`
	Status         string `json:"status"`
	ArtifactURI    string `json:"artifact_uri"`
	LifecycleStage string `json:"lifecycle_stage"`
}

type mlRun struct {
	Info mlRunInfo `json:"info"`
	Data struct {
		Tags []mlTag `json:"tags"`
	} `json:"data"`
}

func (mv mlModelVersion) toVersion() Version {
	v := Version{
		Model:       mv.Name,
		Version:     mv.Version,
		Description: mv.Description,
		Source:      mv.Source,
		RunID:       mv.RunID,
		Status:      mv.Status,
		Aliases:     append([]string(nil), mv.Aliases...),
	}
	sort.Strings(v.Aliases)
	if mv.CreationTimestamp != 0 {
		v.CreatedAt = time.UnixMilli(int64(mv.CreationTimestamp)).UTC()
	}
	if len(mv.Tags) > 0 {
		v.Tags = make(map[string]string, len(mv.Tags))
		for _, t := range mv.Tags {
			v.Tags[t.Key] = t.Value
		}
	}
	v.ArtifactDigest = v.Tags[TagArtifactDigest]
	v.Metrics = metricsFromTags(v.Tags)
	if names := v.Tags[tagArtifactNames]; names != "" && v.Source != "" {
		v.Artifacts = make(map[string]string)
		for _, n := range strings.Split(names, ",") {
			v.Artifacts[n] = strings.TrimRight(v.Source, "/") + "/" + n
		}
	}
	return v
}

// tagArtifactNames lists the artifact folders of a version (comma-separated).
const tagArtifactNames = "loraflow.artifacts"

func quoteFilter(s string) (string, error) {
	if strings.ContainsAny(s, `'\`) {
		return "", fmt.Errorf("registry: %q: quotes and backslashes cannot be used in an MLflow search filter", s)
	}
	return "'" + s + "'", nil
}

// Publish implements Registry:
//
//  1. model-versions/search by name and digest tag: a version already there is returned (after the alias step).
//  2. experiments/get-by-name, or experiments/create.
//  3. runs/search for a FINISHED run with the digest tag, else runs/create, runs/log-batch (chunked),
//     runs/log-inputs, PUT of every artifact file, runs/update to FINISHED.
//  4. registered-models/create (RESOURCE_ALREADY_EXISTS is fine).
//  5. model-versions/create with source = the run's artifact URI; a failed create is never
//     repeated blindly: the search of step 1 runs again first.
//  6. model-versions/get until READY; then the alias (champion through Promote).
func (m *MLflow) Publish(ctx context.Context, req PublishRequest) (Version, error) {
	if err := validatePublish(req); err != nil {
		return Version{}, err
	}
	if _, err := quoteFilter(req.ModelName); err != nil {
		return Version{}, err
	}
	if _, err := quoteFilter(req.ArtifactDigest); err != nil {
		return Version{}, err
	}
	for _, d := range req.Datasets {
		if _, _, err := mlflowDatasetDigest(d.Digest); err != nil {
			return Version{}, fmt.Errorf("registry: publish %s: dataset %s: %w", req.ModelName, d.Name, err)
		}
	}
	mv, found, err := m.findByDigest(ctx, req.ModelName, req.ArtifactDigest)
	if err != nil {
		return Version{}, err
	}
	if !found {
		run, err := m.ensureRun(ctx, req)
		if err != nil {
			return Version{}, err
		}
		if err := m.ensureRegisteredModel(ctx, req.ModelName); err != nil {
			return Version{}, err
		}
		mv, err = m.createVersionOnce(ctx, req, run)
		if err != nil {
			return Version{}, err
		}
	}
	mv, err = m.waitReady(ctx, mv)
	if err != nil {
		return Version{}, err
	}
	switch req.Alias {
	case "":
	case AliasChampion:
		if _, err := m.Promote(ctx, req.ModelName, mv.Version); err != nil {
			return Version{}, err
		}
	default:
		if err := m.SetAlias(ctx, req.ModelName, req.Alias, mv.Version); err != nil {
			return Version{}, err
		}
	}
	out := mv.toVersion()
	if req.Alias != "" {
		if out, err = m.GetVersion(ctx, req.ModelName, mv.Version); err != nil {
			return Version{}, err
		}
	}
	out.Existed = found
	return out, nil
}

// findByDigest searches the model's versions for the digest tag. Servers
// whose search does not take tag filters get a name-only search, filtered here.
func (m *MLflow) findByDigest(ctx context.Context, model, digest string) (mlModelVersion, bool, error) {
	qm, _ := quoteFilter(model)
	qd, _ := quoteFilter(digest)
	list, err := m.searchVersions(ctx, fmt.Sprintf("name = %s AND tags.%s = %s", qm, TagArtifactDigest, qd))
	if HasErrorCode(err, "INVALID_PARAMETER_VALUE") {
		list, err = m.searchVersions(ctx, "name = "+qm)
	}
	if err != nil {
		return mlModelVersion{}, false, fmt.Errorf("registry: find %s version with digest %s: %w", model, digest, err)
	}
	var best mlModelVersion
	found := false
	for _, mv := range list {
		if mv.Name != model || mv.Status == "FAILED_REGISTRATION" {
			continue
		}
		for _, t := range mv.Tags {
			if t.Key == TagArtifactDigest && t.Value == digest {
				if !found || versionLess(mv.Version, best.Version) {
					best, found = mv, true // the oldest, should a race ever have made two
				}
			}
		}
	}
	return best, found, nil
}

func (m *MLflow) searchVersions(ctx context.Context, filter string) ([]mlModelVersion, error) {
	var all []mlModelVersion
	token := ""
	for {
		q := url.Values{"filter": {filter}, "max_results": {strconv.Itoa(mlflowSearchPageSize)}}
		if token != "" {
			q.Set("page_token", token)
		}
		var resp struct {
			ModelVersions []mlModelVersion `json:"model_versions"`
			NextPageToken string           `json:"next_page_token"`
		}
		if err := m.c.get(ctx, "model-versions/search", q, &resp); err != nil {
			return nil, err
		}
		all = append(all, resp.ModelVersions...)
		if resp.NextPageToken == "" {
			return all, nil
		}
		token = resp.NextPageToken
	}
}

func (m *MLflow) experimentID(ctx context.Context) (string, error) {
	var got struct {
		Experiment struct {
			ExperimentID   string `json:"experiment_id"`
			LifecycleStage string `json:"lifecycle_stage"`
		} `json:"experiment"`
	}
	err := m.c.get(ctx, "experiments/get-by-name", url.Values{"experiment_name": {m.experiment}}, &got)
	if err == nil {
		if got.Experiment.LifecycleStage == "deleted" {
			return "", fmt.Errorf("registry: MLflow experiment %q is deleted; restore it or choose another", m.experiment)
		}
		return got.Experiment.ExperimentID, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("registry: get MLflow experiment %q: %w", m.experiment, err)
	}
	var created struct {
		ExperimentID string `json:"experiment_id"`
	}
	err = m.c.callJSON(ctx, http.MethodPost, "experiments/create", map[string]any{"name": m.experiment}, &created, true)
	if HasErrorCode(err, "RESOURCE_ALREADY_EXISTS") {
		// Another publisher created it meanwhile (or a retried create had succeeded).
		if err := m.c.get(ctx, "experiments/get-by-name", url.Values{"experiment_name": {m.experiment}}, &got); err != nil {
			return "", fmt.Errorf("registry: get MLflow experiment %q: %w", m.experiment, err)
		}
		return got.Experiment.ExperimentID, nil
	}
	if err != nil {
		return "", fmt.Errorf("registry: create MLflow experiment %q: %w", m.experiment, err)
	}
	return created.ExperimentID, nil
}

// ensureRun returns a FINISHED run holding the request's data and artifacts:
// one made by an earlier attempt of the same publish, or a new one.
func (m *MLflow) ensureRun(ctx context.Context, req PublishRequest) (mlRunInfo, error) {
	expID, err := m.experimentID(ctx)
	if err != nil {
		return mlRunInfo{}, err
	}
	qd, _ := quoteFilter(req.ArtifactDigest)
	var found struct {
		Runs []mlRun `json:"runs"`
	}
	err = m.c.callJSON(ctx, http.MethodPost, "runs/search", map[string]any{
		"experiment_ids": []string{expID},
		"filter":         fmt.Sprintf("tags.%s = %s", TagArtifactDigest, qd),
		"max_results":    100,
	}, &found, true)
	if err != nil {
		return mlRunInfo{}, fmt.Errorf("registry: search MLflow runs for digest %s: %w", req.ArtifactDigest, err)
	}
	for _, r := range found.Runs {
		if r.Info.Status == "FINISHED" && r.Info.LifecycleStage != "deleted" {
			m.c.log.InfoContext(ctx, "reusing MLflow run of an earlier publish attempt", "run_id", r.Info.RunID, "digest", req.ArtifactDigest)
			return r.Info, nil
		}
	}

	runName := req.RunName
	if runName == "" {
		d := strings.TrimPrefix(req.ArtifactDigest, "sha256:")
		if len(d) > 12 {
			d = d[:12]
		}
		runName = req.ModelName + "-" + d
	}
	now := time.Now().UnixMilli()
	var created struct {
		Run mlRun `json:"run"`
	}
	// A retried runs/create may leave an unfinished orphan run; it is never reused.
	err = m.c.callJSON(ctx, http.MethodPost, "runs/create", map[string]any{
		"experiment_id": expID,
		"run_name":      runName,
		"start_time":    now,
		"tags": []mlTag{
			{Key: TagArtifactDigest, Value: req.ArtifactDigest},
			{Key: "mlflow.source.name", Value: "loraflow"},
			{Key: "mlflow.source.type", Value: "JOB"},
		},
	}, &created, true)
	if err != nil {
		return mlRunInfo{}, fmt.Errorf("registry: create MLflow run in experiment %s: %w", expID, err)
	}
	run := created.Run.Info
	if run.RunID == "" {
		return mlRunInfo{}, errors.New("registry: MLflow runs/create answered without a run_id")
	}
	if err := m.logRunData(ctx, run.RunID, req, now); err != nil {
		return mlRunInfo{}, err
	}
	if err := m.uploadArtifacts(ctx, run, req.ArtifactDirs); err != nil {
		return mlRunInfo{}, err
	}
	end := time.Now().UnixMilli()
	if err := m.c.callJSON(ctx, http.MethodPost, "runs/update", map[string]any{
		"run_id": run.RunID, "status": "FINISHED", "end_time": end,
	}, nil, true); err != nil {
		return mlRunInfo{}, fmt.Errorf("registry: finish MLflow run %s: %w", run.RunID, err)
	}
	run.Status = "FINISHED"
	return run, nil
}

func (m *MLflow) logRunData(ctx context.Context, runID string, req PublishRequest, now int64) error {
	params := make([]mlTag, 0, len(req.Params))
	for _, k := range sortedKeys(req.Params) {
		params = append(params, mlTag{Key: k, Value: req.Params[k]})
	}
	tags := make([]mlTag, 0, len(req.Tags))
	for _, k := range sortedKeys(req.Tags) {
		tags = append(tags, mlTag{Key: k, Value: req.Tags[k]})
	}
	var metrics []mlMetric
	for _, k := range sortedKeys(req.MetricHistory) {
		for _, p := range req.MetricHistory[k] {
			if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
				continue // JSON cannot carry them
			}
			ts := p.Timestamp
			if ts == 0 {
				ts = now
			}
			metrics = append(metrics, mlMetric{Key: k, Value: p.Value, Timestamp: ts, Step: p.Step})
		}
	}
	for _, k := range sortedKeys(req.Metrics) {
		v := req.Metrics[k]
		if math.IsNaN(v) || math.IsInf(v, 0) {
			m.c.log.WarnContext(ctx, "metric is not finite; not logged to MLflow", "metric", k, "value", v)
			continue
		}
		metrics = append(metrics, mlMetric{Key: k, Value: v, Timestamp: now, Step: 0})
	}
	for len(params) > 0 || len(tags) > 0 || len(metrics) > 0 {
		np := min(len(params), mlflowMaxParamsPerBatch)
		nt := min(len(tags), mlflowMaxTagsPerBatch)
		nm := min(len(metrics), mlflowMaxMetricsPerBatch, mlflowMaxItemsPerBatch-np-nt)
		body := map[string]any{"run_id": runID}
		if np > 0 {
			body["params"] = params[:np]
		}
		if nt > 0 {
			body["tags"] = tags[:nt]
		}
		if nm > 0 {
			body["metrics"] = metrics[:nm]
		}
		// Logging the same params, tags and metric points again is harmless,
		// so log-batch is retried.
		if err := m.c.callJSON(ctx, http.MethodPost, "runs/log-batch", body, nil, true); err != nil {
			return fmt.Errorf("registry: log params, tags and metrics to MLflow run %s: %w", runID, err)
		}
		params, tags, metrics = params[np:], tags[nt:], metrics[nm:]
	}
	if len(req.Datasets) == 0 {
		return nil
	}
	type mlDataset struct {
		Name       string `json:"name"`
		Digest     string `json:"digest"`
		SourceType string `json:"source_type"`
		Source     string `json:"source"`
		Schema     string `json:"schema,omitempty"`
		Profile    string `json:"profile,omitempty"`
	}
	type mlDatasetInput struct {
		Tags    []mlTag   `json:"tags,omitempty"`
		Dataset mlDataset `json:"dataset"`
	}
	inputs := make([]mlDatasetInput, 0, len(req.Datasets))
	for _, d := range req.Datasets {
		if d.Name == "" || d.Digest == "" {
			return fmt.Errorf("registry: dataset input %+v needs a name and a digest", d)
		}
		short, full, err := mlflowDatasetDigest(d.Digest)
		if err != nil {
			return fmt.Errorf("registry: dataset input %s: %w", d.Name, err)
		}
		in := mlDatasetInput{Dataset: mlDataset{Name: d.Name, Digest: short, SourceType: d.SourceType, Source: d.Source, Schema: d.Schema, Profile: d.Profile}}
		if full != "" {
			in.Tags = append(in.Tags, mlTag{Key: TagDatasetSHA256, Value: full})
		}
		if in.Dataset.SourceType == "" {
			in.Dataset.SourceType = "local"
		}
		if in.Dataset.Source == "" {
			b, _ := json.Marshal(map[string]string{"uri": d.Name})
			in.Dataset.Source = string(b)
		}
		if d.Context != "" {
			in.Tags = append(in.Tags, mlTag{Key: "mlflow.data.context", Value: d.Context})
		}
		inputs = append(inputs, in)
	}
	if err := m.c.callJSON(ctx, http.MethodPost, "runs/log-inputs", map[string]any{"run_id": runID, "datasets": inputs}, nil, true); err != nil {
		return fmt.Errorf("registry: log dataset inputs to MLflow run %s: %w", runID, err)
	}
	return nil
}

// mlflowShortDigestLen is the length of the digests MLflow computes for its
// own datasets: mlflow/data/digest_utils.py, get_normalized_md5_digest,
// "An 8-character, truncated md5 digest" (md5.hexdigest()[:8]).
const mlflowShortDigestLen = 8

// mlflowMaxDatasetDigest is MAX_DATASET_DIGEST_SIZE in
// mlflow/utils/validation.py: _validate_dataset refuses a longer digest
// with 400 INVALID_PARAMETER_VALUE.
const mlflowMaxDatasetDigest = 36

// mlflowDatasetDigest maps a dataset digest onto MLflow's convention. A
// sha256 (64 hex characters, with or without "sha256:") is sent as its first
// 8 hex characters, as MLflow truncates its own digests, and returned in
// full ("sha256:<hex>") for the TagDatasetSHA256 input tag, so that the
// dataset stays identifiable. Any other digest goes unchanged if it fits
// MLflow's limit and is refused here otherwise (before any run is made).
func mlflowDatasetDigest(d string) (short, full string, err error) {
	hex := strings.TrimPrefix(d, "sha256:")
	if len(hex) == 64 && strings.Trim(hex, "0123456789abcdef") == "" {
		return hex[:mlflowShortDigestLen], "sha256:" + hex, nil
	}
	if utf8.RuneCountInString(d) > mlflowMaxDatasetDigest {
		return "", "", fmt.Errorf("digest %q is neither a sha256 nor at most %d characters (MLflow's MAX_DATASET_DIGEST_SIZE)", d, mlflowMaxDatasetDigest)
	}
	return d, "", nil
}

// artifactRootPath turns a run's artifact URI into the path below the
// proxied artifact API: mlflow-artifacts:/1/abc/artifacts → 1/abc/artifacts.
func artifactRootPath(artifactURI string) (string, error) {
	rest, ok := strings.CutPrefix(artifactURI, "mlflow-artifacts:")
	if !ok {
		return "", fmt.Errorf("registry: MLflow run artifact URI %q is not served by the tracking server (want mlflow-artifacts:/...); start the server with artifact proxying (mlflow server --serve-artifacts, the default since MLflow 2.0)", artifactURI)
	}
	if strings.HasPrefix(rest, "//") { // mlflow-artifacts://host:port/path
		rest = rest[2:]
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			return "", fmt.Errorf("registry: MLflow artifact URI %q has no path", artifactURI)
		}
		rest = rest[i:]
	}
	return strings.Trim(rest, "/"), nil
}

func (m *MLflow) uploadArtifacts(ctx context.Context, run mlRunInfo, dirs map[string]string) error {
	root, err := artifactRootPath(run.ArtifactURI)
	if err != nil {
		return err
	}
	for _, name := range sortedKeys(dirs) {
		src := dirs[name]
		info, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("registry: artifact %q: %w", name, err)
		}
		if !info.IsDir() {
			if err := m.c.putFile(ctx, path.Join(root, name, filepath.Base(src)), src); err != nil {
				return fmt.Errorf("registry: upload artifact %q (%s): %w", name, src, err)
			}
			continue
		}
		err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			if !fi.Mode().IsRegular() {
				return fmt.Errorf("%s is not a regular file", p)
			}
			rel, err := filepath.Rel(src, p)
			if err != nil {
				return err
			}
			if err := m.c.putFile(ctx, path.Join(root, name, filepath.ToSlash(rel)), p); err != nil {
				return fmt.Errorf("upload %s: %w", p, err)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("registry: upload artifact %q to MLflow run %s: %w", name, run.RunID, err)
		}
	}
	return nil
}

func (m *MLflow) ensureRegisteredModel(ctx context.Context, model string) error {
	err := m.c.callJSON(ctx, http.MethodPost, "registered-models/create", map[string]any{
		"name": model,
		"tags": []mlTag{{Key: "loraflow.managed", Value: "true"}},
	}, nil, true)
	if err == nil || HasErrorCode(err, "RESOURCE_ALREADY_EXISTS") {
		return nil
	}
	return fmt.Errorf("registry: create MLflow registered model %q: %w", model, err)
}

// createVersionOnce creates the model version. Because a create whose answer
// was lost may still have happened, each retry first searches for the
// digest, so a publish never makes two versions of one artifact.
func (m *MLflow) createVersionOnce(ctx context.Context, req PublishRequest, run mlRunInfo) (mlModelVersion, error) {
	tags := versionTags(req)
	tags[tagArtifactNames] = strings.Join(sortedKeys(req.ArtifactDirs), ",")
	body := map[string]any{
		"name":   req.ModelName,
		"source": run.ArtifactURI,
		"run_id": run.RunID,
		"tags":   toTagList(tags),
	}
	if req.Description != "" {
		body["description"] = req.Description
	}
	backoff := m.c.opts.InitialBackoff
	for attempt := 1; ; attempt++ {
		var resp struct {
			ModelVersion mlModelVersion `json:"model_version"`
		}
		err := m.c.callJSON(ctx, http.MethodPost, "model-versions/create", body, &resp, false)
		if err == nil {
			return resp.ModelVersion, nil
		}
		if attempt >= m.c.opts.MaxAttempts || !isRetryable(ctx, err) {
			return mlModelVersion{}, fmt.Errorf("registry: create MLflow model version of %q: %w", req.ModelName, err)
		}
		m.c.log.WarnContext(ctx, "model-versions/create failed; checking whether it happened before retrying", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return mlModelVersion{}, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, m.c.opts.MaxBackoff)
		mv, found, ferr := m.findByDigest(ctx, req.ModelName, req.ArtifactDigest)
		if ferr != nil {
			return mlModelVersion{}, ferr
		}
		if found {
			return mv, nil
		}
	}
}

func toTagList(tags map[string]string) []mlTag {
	out := make([]mlTag, 0, len(tags))
	for _, k := range sortedKeys(tags) {
		out = append(out, mlTag{Key: k, Value: tags[k]})
	}
	return out
}

func (m *MLflow) getVersion(ctx context.Context, model, version string) (mlModelVersion, error) {
	var resp struct {
		ModelVersion mlModelVersion `json:"model_version"`
	}
	if err := m.c.get(ctx, "model-versions/get", url.Values{"name": {model}, "version": {version}}, &resp); err != nil {
		return mlModelVersion{}, fmt.Errorf("registry: get MLflow model %q version %q: %w", model, version, err)
	}
	return resp.ModelVersion, nil
}

func (m *MLflow) waitReady(ctx context.Context, mv mlModelVersion) (mlModelVersion, error) {
	deadline := time.Now().Add(m.c.opts.ReadyTimeout)
	for {
		switch mv.Status {
		case "READY", "":
			return mv, nil
		case "FAILED_REGISTRATION":
			return mv, fmt.Errorf("registry: MLflow model %q version %s failed registration: %s", mv.Name, mv.Version, mv.StatusMessage)
		}
		if time.Now().After(deadline) {
			return mv, fmt.Errorf("registry: MLflow model %q version %s still %s after %s", mv.Name, mv.Version, mv.Status, m.c.opts.ReadyTimeout)
		}
		select {
		case <-ctx.Done():
			return mv, ctx.Err()
		case <-time.After(m.c.opts.PollInterval):
		}
		var err error
		if mv, err = m.getVersion(ctx, mv.Name, mv.Version); err != nil {
			return mv, err
		}
	}
}

// GetVersion implements Registry.
func (m *MLflow) GetVersion(ctx context.Context, model, version string) (Version, error) {
	mv, err := m.getVersion(ctx, model, version)
	if err != nil {
		return Version{}, err
	}
	return mv.toVersion(), nil
}

// ListVersions implements Registry.
func (m *MLflow) ListVersions(ctx context.Context, model string) ([]Version, error) {
	qm, err := quoteFilter(model)
	if err != nil {
		return nil, err
	}
	list, err := m.searchVersions(ctx, "name = "+qm)
	if err != nil {
		return nil, fmt.Errorf("registry: list MLflow versions of %q: %w", model, err)
	}
	out := make([]Version, 0, len(list))
	for _, mv := range list {
		if mv.Name == model {
			out = append(out, mv.toVersion())
		}
	}
	if len(out) == 0 {
		// Tell an unknown model from one without versions.
		if err := m.c.get(ctx, "registered-models/get", url.Values{"name": {model}}, nil); err != nil {
			return nil, fmt.Errorf("registry: MLflow model %q: %w", model, err)
		}
	}
	sort.Slice(out, func(i, j int) bool { return versionLess(out[i].Version, out[j].Version) })
	return out, nil
}

// ListModels implements Registry.
func (m *MLflow) ListModels(ctx context.Context) ([]string, error) {
	var names []string
	token := ""
	for {
		q := url.Values{"max_results": {"1000"}}
		if token != "" {
			q.Set("page_token", token)
		}
		var resp struct {
			RegisteredModels []struct {
				Name string `json:"name"`
			} `json:"registered_models"`
			NextPageToken string `json:"next_page_token"`
		}
		if err := m.c.get(ctx, "registered-models/search", q, &resp); err != nil {
			return nil, fmt.Errorf("registry: list MLflow registered models: %w", err)
		}
		for _, rm := range resp.RegisteredModels {
			names = append(names, rm.Name)
		}
		if resp.NextPageToken == "" {
			break
		}
		token = resp.NextPageToken
	}
	sort.Strings(names)
	return names, nil
}

// isAliasMissing: MLflow answers a missing alias with INVALID_PARAMETER_VALUE
// "Registered model alias X not found." (SQL and file stores); other
// backends use RESOURCE_DOES_NOT_EXIST.
func isAliasMissing(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	if ae.ErrorCode == "RESOURCE_DOES_NOT_EXIST" {
		return true
	}
	return ae.ErrorCode == "INVALID_PARAMETER_VALUE" && strings.Contains(ae.Message, "alias") && strings.Contains(ae.Message, "not found")
}

// GetByAlias implements Registry.
func (m *MLflow) GetByAlias(ctx context.Context, model, alias string) (Version, bool, error) {
	var resp struct {
		ModelVersion mlModelVersion `json:"model_version"`
	}
	err := m.c.get(ctx, "registered-models/alias", url.Values{"name": {model}, "alias": {alias}}, &resp)
	if isAliasMissing(err) {
		return Version{}, false, nil
	}
	if err != nil {
		return Version{}, false, fmt.Errorf("registry: resolve MLflow alias %s@%s: %w", model, alias, err)
	}
	return resp.ModelVersion.toVersion(), true, nil
}

// SetAlias implements Registry.
func (m *MLflow) SetAlias(ctx context.Context, model, alias, version string) error {
	if alias == "" {
		return errors.New("registry: set alias: alias is empty")
	}
	err := m.c.callJSON(ctx, http.MethodPost, "registered-models/alias", map[string]any{"name": model, "alias": alias, "version": version}, nil, true)
	if err != nil {
		return fmt.Errorf("registry: set MLflow alias %s@%s to version %s: %w", model, alias, version, err)
	}
	return nil
}

// DeleteAlias implements Registry.
func (m *MLflow) DeleteAlias(ctx context.Context, model, alias string) error {
	err := m.c.callJSON(ctx, http.MethodDelete, "registered-models/alias", map[string]any{"name": model, "alias": alias}, nil, true)
	if err != nil && !isAliasMissing(err) {
		return fmt.Errorf("registry: delete MLflow alias %s@%s: %w", model, alias, err)
	}
	return nil
}

// SetVersionTag implements Registry.
func (m *MLflow) SetVersionTag(ctx context.Context, model, version, key, value string) error {
	err := m.c.callJSON(ctx, http.MethodPost, "model-versions/set-tag", map[string]any{"name": model, "version": version, "key": key, "value": value}, nil, true)
	if err != nil {
		return fmt.Errorf("registry: tag MLflow model %q version %s: %w", model, version, err)
	}
	return nil
}

// Promote implements Registry. MLflow has no transactions, so the alias
// moves are ordered to be safe to repeat: previous-champion is written
// before champion moves.
func (m *MLflow) Promote(ctx context.Context, model, version string) (PromoteResult, error) {
	res := PromoteResult{Model: model, Champion: version}
	target, err := m.GetVersion(ctx, model, version)
	if err != nil {
		return res, fmt.Errorf("registry: promote: %w", err)
	}
	cur, hasCur, err := m.GetByAlias(ctx, model, AliasChampion)
	if err != nil {
		return res, err
	}
	if hasCur && cur.Version == version {
		if prev, ok, err := m.GetByAlias(ctx, model, AliasPreviousChampion); err == nil && ok {
			res.Previous = prev.Version
		}
		return res, nil
	}
	if hasCur {
		if err := m.SetAlias(ctx, model, AliasPreviousChampion, cur.Version); err != nil {
			return res, err
		}
		res.Previous = cur.Version
	}
	if err := m.SetAlias(ctx, model, AliasChampion, version); err != nil {
		return res, err
	}
	if target.HasAlias(AliasChallenger) {
		if err := m.DeleteAlias(ctx, model, AliasChallenger); err != nil {
			return res, err
		}
	}
	res.Changed = true
	return res, nil
}

// Rollback implements Registry.
func (m *MLflow) Rollback(ctx context.Context, model string) (PromoteResult, error) {
	res := PromoteResult{Model: model}
	prev, ok, err := m.GetByAlias(ctx, model, AliasPreviousChampion)
	if err != nil {
		return res, err
	}
	if !ok {
		return res, fmt.Errorf("registry: rollback MLflow model %q: %w", model, ErrNoPreviousChampion)
	}
	cur, hasCur, err := m.GetByAlias(ctx, model, AliasChampion)
	if err != nil {
		return res, err
	}
	if err := m.SetAlias(ctx, model, AliasChampion, prev.Version); err != nil {
		return res, err
	}
	if err := m.DeleteAlias(ctx, model, AliasPreviousChampion); err != nil {
		return res, err
	}
	if hasCur && cur.Version != prev.Version {
		if err := m.SetVersionTag(ctx, model, cur.Version, TagRolledBack, "true"); err != nil {
			return res, err
		}
		res.Previous = cur.Version
	}
	res.Champion, res.Changed = prev.Version, true
	return res, nil
}
