// Package mlflowtest is an in-memory MLflow tracking and registry server
// for tests. It speaks the subset of MLflow's REST API (/api/2.0/mlflow/...)
// and proxied artifact API (/api/2.0/mlflow-artifacts/artifacts/...) that
// the registry package uses, and it is strict: every request body is decoded
// with unknown fields refused and the fields MLflow marks
// validate_required checked, so a client that drifts from MLflow's
// documented request messages fails the test (tb.Errorf) and gets a 400
// INVALID_PARAMETER_VALUE. It keeps state (experiments, runs, artifacts,
// registered models, versions, tags, aliases) and can inject faults: error
// answers, connection resets, and answers lost after the request was carried out.
package mlflowtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// FaultKind says how a fault is delivered.
type FaultKind int

const (
	// FailBefore answers with an error status without carrying the request out.
	FailBefore FaultKind = iota
	// ResetBefore closes the connection without carrying the request out.
	ResetBefore
	// FailAfter carries the request out, then answers with an error status
	// instead of the real answer (a lost answer).
	FailAfter
	// ResetAfter carries the request out, then closes the connection.
	ResetAfter
)

type fault struct {
	method, path string
	kind         FaultKind
	status       int
	remaining    int
}

// Metric is a logged metric point.
type Metric struct {
	Key       string
	Value     float64
	Timestamp int64
	Step      int64
}

// Run is the server's record of a run.
type Run struct {
	ID, ExperimentID, Name, Status, ArtifactURI string
	StartTime, EndTime                          int64
	Params, Tags                                map[string]string
	Metrics                                     []Metric
	// Datasets holds "name@digest (context)" per logged dataset input.
	Datasets []string
	// DatasetTags holds each dataset input's tags, in Datasets' order.
	DatasetTags []map[string]string
}

// ModelVersion is the server's record of a model version.
type ModelVersion struct {
	Name, Version, Source, RunID, Description, Status string
	Tags                                              map[string]string
	Created                                           int64
	polls                                             int
}

type registeredModel struct {
	name        string
	description string
	tags        map[string]string
	aliases     map[string]string
	versions    []*ModelVersion
	created     int64
}

// Server is the test server. Its exported fields may be set before the first request.
type Server struct {
	*httptest.Server

	// Token, when set, is required as "Authorization: Bearer <Token>".
	Token string
	// Username and Password, when set, are required as basic auth.
	Username, Password string
	// AlreadyExistsStatus is the HTTP status of RESOURCE_ALREADY_EXISTS
	// answers: 400 like MLflow's own server by default; set 409 to test
	// servers and proxies that use Conflict.
	AlreadyExistsStatus int
	// PendingPolls is how many model-versions/get answers say
	// PENDING_REGISTRATION before READY.
	PendingPolls int
	// RejectTagFilters makes model-versions/search refuse filters on tags,
	// like MLflow servers older than tag search.
	RejectTagFilters bool
	// TruncateLongValues is the server's MLFLOW_TRUNCATE_LONG_VALUES: on,
	// param values over MAX_PARAM_VAL_LENGTH and run tag values over
	// MAX_TAG_VAL_LENGTH logged with runs/log-batch or runs/set-tag are
	// stored cut to the limit (MLflow's default); off (the zero value, the
	// stricter server) they are refused with INVALID_PARAMETER_VALUE. Either
	// way every other length limit refuses. Truncated() lists the cuts.
	TruncateLongValues bool

	tb         testing.TB
	mu         sync.Mutex
	faults     []*fault
	requests   []string
	violations []string
	truncated  []string

	nextExp     int
	nextRun     int
	experiments map[string]string // name → id
	runs        map[string]*Run
	artifacts   map[string][]byte
	models      map[string]*registeredModel
}

// NewServer starts a server; it is closed when the test ends.
func NewServer(tb testing.TB) *Server {
	s := &Server{
		tb:                  tb,
		AlreadyExistsStatus: http.StatusBadRequest,
		experiments:         map[string]string{"Default": "0"},
		runs:                map[string]*Run{},
		artifacts:           map[string][]byte{},
		models:              map[string]*registeredModel{},
		nextExp:             1,
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.Server.Close)
	return s
}

// Fault makes the next n requests to method and path (e.g. "POST",
// "/api/2.0/mlflow/model-versions/create"; a path ending in "*" matches
// every path with that prefix) fail as kind says; status is used by
// FailBefore and FailAfter.
func (s *Server) Fault(method, path string, kind FaultKind, status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{method: method, path: path, kind: kind, status: status, remaining: n})
}

// PendingFaults returns the faults not yet delivered, as "METHOD path (n left)".
func (s *Server) PendingFaults() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, f := range s.faults {
		if f.remaining > 0 {
			out = append(out, fmt.Sprintf("%s %s (%d left)", f.method, f.path, f.remaining))
		}
	}
	return out
}

// Requests returns "METHOD path" of every request received, in order.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// Count returns how many requests to method and path were received.
func (s *Server) Count(method, path string) int {
	n := 0
	for _, r := range s.Requests() {
		if r == method+" "+path {
			n++
		}
	}
	return n
}

// Violations returns the protocol violations seen (each was also reported to tb).
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

// Versions returns copies of a model's versions.
func (s *Server) Versions(model string) []ModelVersion {
	s.mu.Lock()
	defer s.mu.Unlock()
	rm := s.models[model]
	if rm == nil {
		return nil
	}
	out := make([]ModelVersion, 0, len(rm.versions))
	for _, v := range rm.versions {
		c := *v
		c.Tags = cloneMap(v.Tags)
		out = append(out, c)
	}
	return out
}

// Alias returns the version an alias names.
func (s *Server) Alias(model, alias string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rm := s.models[model]
	if rm == nil {
		return "", false
	}
	v, ok := rm.aliases[alias]
	return v, ok
}

// Runs returns copies of all runs.
func (s *Server) Runs() []Run {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Run, 0, len(s.runs))
	for _, r := range s.runs {
		c := *r
		c.Params, c.Tags = cloneMap(r.Params), cloneMap(r.Tags)
		c.Metrics = append([]Metric(nil), r.Metrics...)
		c.Datasets = append([]string(nil), r.Datasets...)
		c.DatasetTags = nil
		for _, t := range r.DatasetTags {
			c.DatasetTags = append(c.DatasetTags, cloneMap(t))
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Artifact returns an uploaded artifact by its path below the artifact
// root, e.g. "1/<run>/artifacts/adapter/adapter_config.json".
func (s *Server) Artifact(path string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.artifacts[path]
	return b, ok
}

// ArtifactPaths lists uploaded artifact paths, sorted.
func (s *Server) ArtifactPaths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.artifacts))
	for p := range s.artifacts {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// apiError is an MLflow error answer.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func invalid(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *apiError {
	return &apiError{http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf(format, args...)}
}

func (s *Server) alreadyExists(format string, args ...any) *apiError {
	return &apiError{s.AlreadyExistsStatus, "RESOURCE_ALREADY_EXISTS", fmt.Sprintf(format, args...)}
}

// violation records a protocol violation by the client.
// noteTruncated records a value cut by TruncateLongValues, and logs it as
// MLflow's _validate_length_limit warns (called with s.mu held).
func (s *Server) noteTruncated(what string) {
	s.truncated = append(s.truncated, what)
	s.tb.Logf("mlflowtest: %s truncated to its length limit (MLFLOW_TRUNCATE_LONG_VALUES)", what)
}

// Truncated lists the values the server cut (TruncateLongValues), as
// "runs/log-batch param KEY", "runs/log-batch tag KEY" or "runs/set-tag KEY".
func (s *Server) Truncated() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.truncated...)
}

func (s *Server) violation(format string, args ...any) *apiError {
	msg := fmt.Sprintf(format, args...)
	s.violations = append(s.violations, msg)
	s.tb.Errorf("mlflowtest: protocol violation: %s", msg)
	return invalid("%s", msg)
}

func (s *Server) takeFault(method, path string) *fault {
	for _, f := range s.faults {
		pathOK := f.path == path
		if prefix, ok := strings.CutSuffix(f.path, "*"); ok {
			pathOK = strings.HasPrefix(path, prefix)
		}
		if f.remaining > 0 && f.method == method && pathOK {
			f.remaining--
			return f
		}
	}
	return nil
}

func (s *Server) authorized(r *http.Request) bool {
	got := r.Header.Get("Authorization")
	switch {
	case s.Token != "":
		return got == "Bearer "+s.Token
	case s.Username != "":
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(s.Username+":"+s.Password))
		return got == want
	}
	return true
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+r.URL.Path)
	f := s.takeFault(r.Method, r.URL.Path)
	s.mu.Unlock()

	if f != nil && (f.kind == FailBefore || f.kind == ResetBefore) {
		io.Copy(io.Discard, r.Body)
		deliverFault(w, f)
		return
	}
	rec := httptest.NewRecorder()
	s.handle(rec, r)
	if f != nil {
		deliverFault(w, f)
		return
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

func deliverFault(w http.ResponseWriter, f *fault) {
	switch f.kind {
	case ResetBefore, ResetAfter:
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic("mlflowtest: response writer cannot be hijacked")
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
		}
	default:
		writeJSON(w, f.status, map[string]string{"error_code": "INTERNAL_ERROR", "message": "injected fault"})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="mlflow"`)
		http.Error(w, "You are not authenticated. Please see https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow on how to authenticate.", http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var resp any
	var err *apiError
	if p, ok := strings.CutPrefix(r.URL.Path, "/api/2.0/mlflow-artifacts/artifacts/"); ok {
		resp, err = s.artifact(r, p)
	} else if ep, ok := strings.CutPrefix(r.URL.Path, "/api/2.0/mlflow/"); ok {
		resp, err = s.endpoint(r, ep)
	} else {
		err = s.violation("%s %s: no such MLflow endpoint", r.Method, r.URL.Path)
		err.status, err.code = http.StatusNotFound, "ENDPOINT_NOT_FOUND"
	}
	if err != nil {
		writeJSON(w, err.status, map[string]string{"error_code": err.code, "message": err.message})
		return
	}
	if raw, ok := resp.([]byte); ok {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(raw)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// decode reads a JSON body strictly into dst.
func (s *Server) decode(r *http.Request, dst any) *apiError {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return s.violation("%s %s: Content-Type %q, want application/json", r.Method, r.URL.Path, ct)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return invalid("read body: %v", err)
	}
	if strings.HasSuffix(r.URL.Path, "/runs/log-batch") {
		if err := batchRequestSize(body); err != nil {
			return err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return s.violation("%s %s: body %s does not match the request message: %v", r.Method, r.URL.Path, body, err)
	}
	if dec.More() {
		return s.violation("%s %s: trailing data after the JSON body", r.Method, r.URL.Path)
	}
	return nil
}

// query checks GET parameters against the allowed names and the required ones.
func (s *Server) query(r *http.Request, allowed []string, required ...string) (url.Values, *apiError) {
	q := r.URL.Query()
	for k := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || a == k
		}
		if !ok {
			return nil, s.violation("GET %s: unknown query parameter %q", r.URL.Path, k)
		}
	}
	for _, k := range required {
		if q.Get(k) == "" {
			return nil, s.violation("GET %s: required query parameter %q missing", r.URL.Path, k)
		}
	}
	return q, nil
}

func (s *Server) require(r *http.Request, fields map[string]bool) *apiError {
	for _, name := range sortedNames(fields) {
		if !fields[name] {
			return s.violation("%s %s: required field %q missing", r.Method, r.URL.Path, name)
		}
	}
	return nil
}

func sortedNames(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Request messages, field for field from MLflow's service.proto and
// model_registry.proto. Pointers tell a missing field from an empty one.

type tag struct {
	Key   *string `json:"key"`
	Value *string `json:"value"`
}

type metricMsg struct {
	Key           *string  `json:"key"`
	Value         *float64 `json:"value"`
	Timestamp     *int64   `json:"timestamp"`
	Step          *int64   `json:"step"`
	DatasetName   *string  `json:"dataset_name"`
	DatasetDigest *string  `json:"dataset_digest"`
	ModelID       *string  `json:"model_id"`
	RunID         *string  `json:"run_id"`
}

type datasetMsg struct {
	Name       *string `json:"name"`
	Digest     *string `json:"digest"`
	SourceType *string `json:"source_type"`
	Source     *string `json:"source"`
	Schema     *string `json:"schema"`
	Profile    *string `json:"profile"`
}

type datasetInputMsg struct {
	Tags    []tag       `json:"tags"`
	Dataset *datasetMsg `json:"dataset"`
}

type modelInputMsg struct {
	ModelID *string `json:"model_id"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// tagsOK records a tag without a key as a protocol violation, then applies
// MLflow's rule for the kind of tag (validation.go).
func (s *Server) tagsOK(r *http.Request, field string, tags []tag, rule func(tag) *apiError) *apiError {
	for i, t := range tags {
		if t.Key == nil || *t.Key == "" {
			return s.violation("%s %s: %s[%d] has no key", r.Method, r.URL.Path, field, i)
		}
	}
	return tagsWith(tags, rule)
}

func tagMap(tags []tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[str(t.Key)] = str(t.Value)
	}
	return m
}

func (s *Server) endpoint(r *http.Request, ep string) (any, *apiError) {
	route := r.Method + " " + ep
	switch route {
	case "GET experiments/get-by-name":
		q, err := s.query(r, []string{"experiment_name"}, "experiment_name")
		if err != nil {
			return nil, err
		}
		id, ok := s.experiments[q.Get("experiment_name")]
		if !ok {
			return nil, notFound("Could not find experiment with name '%s'", q.Get("experiment_name"))
		}
		return map[string]any{"experiment": map[string]any{
			"experiment_id": id, "name": q.Get("experiment_name"), "artifact_location": "mlflow-artifacts:/" + id,
			"lifecycle_stage": "active", "creation_time": 1, "last_update_time": 1,
		}}, nil

	case "POST experiments/create":
		var req struct {
			Name             *string `json:"name"`
			ArtifactLocation *string `json:"artifact_location"`
			Tags             []tag   `json:"tags"`
		}
		if err := s.decode(r, &req); err != nil {
			return nil, err
		}
		if err := s.require(r, map[string]bool{"name": str(req.Name) != ""}); err != nil {
			return nil, err
		}
		if err := experimentName(*req.Name); err != nil {
			return nil, err
		}
		if err := s.tagsOK(r, "tags", req.Tags, experimentTag); err != nil {
			return nil, err
		}
		if _, ok := s.experiments[*req.Name]; ok {
			return nil, s.alreadyExists("Experiment '%s' already exists.", *req.Name)
		}
		id := strconv.Itoa(s.nextExp)
		s.nextExp++
		s.experiments[*req.Name] = id
		return map[string]any{"experiment_id": id}, nil

	case "POST runs/create":
		var req struct {
			ExperimentID *string `json:"experiment_id"`
			UserID       *string `json:"user_id"`
			RunName      *string `json:"run_name"`
			StartTime    *int64  `json:"start_time"`
			Tags         []tag   `json:"tags"`
		}
		if err := s.decode(r, &req); err != nil {
			return nil, err
		}
		if err := s.tagsOK(r, "tags", req.Tags, runTag); err != nil {
			return nil, err
		}
		expID := str(req.ExperimentID)
		if expID == "" {
			expID = "0"
		}
		if err := experimentID(expID); err != nil {
			return nil, err
		}
		known := false
		for _, id := range s.experiments {
			known = known || id == expID
		}
		if !known {
			return nil, notFound("No Experiment with id=%s exists", expID)
		}
		s.nextRun++
		id := fmt.Sprintf("run%04d", s.nextRun)
		run := &Run{ID: id, ExperimentID: expID, Name: str(req.RunName), Status: "RUNNING",
			ArtifactURI: "mlflow-artifacts:/" + expID + "/" + id + "/artifacts",
			Params:      map[string]string{}, Tags: tagMap(req.Tags)}
		if req.StartTime != nil {
			run.StartTime = *req.StartTime
		}
		s.runs[id] = run
		return map[string]any{"run": s.runJSON(run)}, nil

	case "POST runs/update":
		var req struct {
			RunID   *string `json:"run_id"`
			RunUUID *string `json:"run_uuid"`
			Status  *string `json:"status"`
			EndTime *int64  `json:"end_time"`
			RunName *string `json:"run_name"`
		}
		if err := s.decode(r, &req); err != nil {
			return nil, err
		}
		id := str(req.RunID)
		if id == "" {
			id = str(req.RunUUID)
		}
		if err := s.require(r, map[string]bool{"run_id": id != ""}); err != nil {
			return nil, err
		}
		if err := runID(id); err != nil {
			return nil, err
		}
		run, ok := s.runs[id]
		if !ok {
			return nil, notFound("Run '%s' not found", id)
		}
		if req.Status != nil {
			switch *req.Status {
			case "RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED":
				run.Status = *req.Status
			default:
				return nil, s.violation("runs/update: status %q is not a RunStatus", *req.Status)
			}
		}
		if req.EndTime != nil {
			run.EndTime = *req.EndTime
		}
		if req.RunName != nil {
			run.Name = *req.RunName
		}
		return map[string]any{"run_info": s.runJSON(run)["info"]}, nil

	case "POST runs/log-batch":
		var req struct {
			RunID   *string     `json:"run_id"`
			Metrics []metricMsg `json:"metrics"`
			Params  []tag       `json:"params"`
			Tags    []tag       `json:"tags"`
		}
		if err := s.decode(r, &req); err != nil {
			return nil, err
		}
		if err := s.require(r, map[string]bool{"run_id": str(req.RunID) != ""}); err != nil {
			return nil, err
		}
		if err := runID(*req.RunID); err != nil {
			return nil, err
		}
		// The client promises to chunk, so an over-long batch is both
		// MLflow's answer and a protocol violation.
		if err := batchLimits(len(req.Metrics), len(req.Params), len(req.Tags)); err != nil {
			return nil, s.violation("runs/log-batch: %s", err.message)
		}
		if err := paramKeysUnique(req.Params); err != nil {
			return nil, err
		}
		run, ok := s.runs[*req.RunID]
		if !ok {
			return nil, notFound("Run '%s' not found", *req.RunID)
		}
		for i, m := range req.Metrics {
			if m.Key == nil || m.Value == nil || m.Timestamp == nil {
				return nil, s.violation("runs/log-batch: metrics[%d] needs key, value and timestamp", i)
			}
			if err := metric(m); err != nil {
				return nil, err
			}
		}
		for i, p := range req.Params {
			if p.Key == nil || p.Value == nil {
				return nil, s.violation("runs/log-batch: params[%d] needs key and value", i)
			}
			if cut, err := paramTruncating(p, s.TruncateLongValues); err != nil {
				return nil, err
			} else if cut {
				s.noteTruncated("runs/log-batch param " + *p.Key)
			}
			if old, ok := run.Params[*p.Key]; ok && old != *p.Value {
				return nil, invalid("Changing param values is not allowed. Param with key='%s' was already logged with value='%s' for run ID='%s'. Attempted logging new value '%s'.", *p.Key, old, run.ID, *p.Value)
			}
		}
		for i, t := range req.Tags {
			if t.Key == nil || *t.Key == "" {
				return nil, s.violation("%s %s: tags[%d] has no key", r.Method, r.URL.Path, i)
			}
			if cut, err := runTagTruncating(t, s.TruncateLongValues); err != nil {
				return nil, err
			} else if cut {
				s.noteTruncated("runs/log-batch tag " + *t.Key)
			}
		}
		for _, m := range req.Metrics {
			step := int64(0)
			if m.Step != nil {
				step = *m.Step
			}
			run.Metrics = append(run.Metrics, Metric{Key: *m.Key, Value: *m.Value, Timestamp: *m.Timestamp, Step: step})
		}
		for _, p := range req.Params {
			run.Params[*p.Key] = *p.Value
		}
		for _, t := range req.Tags {
			run.Tags[*t.Key] = str(t.Value)
		}
		return map[string]any{}, nil

	case "POST runs/log-inputs":
		var req struct {
			RunID    *string           `json:"run_id"`
			Datasets []datasetInputMsg `json:"datasets"`
			Models   []modelInputMsg   `json:"models"`
		}
		if err := s.decode(r, &req); err != nil {
			return nil, err
		}
		if err := s.require(r, map[string]bool{"run_id": str(req.RunID) != ""}); err != nil {
			return nil, err
		}
		if err := runID(*req.RunID); err != nil {
			return nil, err
		}
		run, ok := s.runs[*req.RunID]
		if !ok {
			return nil, notFound("Run '%s' not found", *req.RunID)
		}
		for i, d := range req.Datasets {
			if d.Dataset == nil {
				return nil, s.violation("runs/log-inputs: datasets[%d].dataset missing", i)
			}
			ds := d.Dataset
			if err := s.require(r, map[string]bool{
				fmt.Sprintf("datasets[%d].dataset.name", i):        str(ds.Name) != "",
				fmt.Sprintf("datasets[%d].dataset.digest", i):      str(ds.Digest) != "",
				fmt.Sprintf("datasets[%d].dataset.source_type", i): str(ds.SourceType) != "",
				fmt.Sprintf("datasets[%d].dataset.source", i):      str(ds.Source) != "",
			}); err != nil {
				return nil, err
			}
			for j, t := range d.Tags {
				if t.Key == nil || t.Value == nil {
					return nil, s.violation("runs/log-inputs: datasets[%d].tags[%d] needs key and value", i, j)
				}
			}
			if err := datasetInput(i, d); err != nil {
				return nil, err
			}
			entry := *ds.Name + "@" + *ds.Digest
			if c := tagMap(d.Tags)["mlflow.data.context"]; c != "" {
				entry += " (" + c + ")"
			}
			run.Datasets = append(run.Datasets, entry)
			run.DatasetTags = append(run.DatasetTags, tagMap(d.Tags))
		}
		return map[string]any{}, nil

	case "POST runs/set-tag":
		var req struct {
			RunID   *string `json:"run_id"`
			RunUUID *string `json:"run_uuid"`
			Key     *string `json:"key"`
			Value   *string `json:"value"`
		}
		if err := s.decode(r, &req); err != nil {
			return nil, err
		}
		id := str(req.RunID)
		if id == "" {
			id = str(req.RunUUID)
		}
		if err := s.require(r, map[string]bool{"run_id": id != "", "key": req.Key != nil, "value": req.Value != nil}); err != nil {
			return nil, err
		}
		if err := runID(id); err != nil {
			return nil, err
		}
		if cut, err := runTagTruncating(tag{Key: req.Key, Value: req.Value}, s.TruncateLongValues); err != nil {
			return nil, err
		} else if cut {
			s.noteTruncated("runs/set-tag " + *req.Key)
		}
		run, ok := s.runs[id]
		if !ok {
			return nil, notFound("Run '%s' not found", id)
		}
		run.Tags[*req.Key] = *req.Value
		return map[string]any{}, nil

	case "GET runs/get":
		q, err := s.query(r, []string{"run_id", "run_uuid"})
		if err != nil {
			return nil, err
		}
		id := q.Get("run_id")
		if id == "" {
			id = q.Get("run_uuid")
		}
		run, ok := s.runs[id]
		if !ok {
			return nil, notFound("Run '%s' not found", id)
		}
		return map[string]any{"run": s.runJSON(run)}, nil

	case "POST runs/search":
		var req struct {
			ExperimentIDs []string `json:"experiment_ids"`
			Filter        *string  `json:"filter"`
			RunViewType   *string  `json:"run_view_type"`
			MaxResults    *int     `json:"max_results"`
			OrderBy       []string `json:"order_by"`
			PageToken     *string  `json:"page_token"`
		}
		if err := s.decode(r, &req); err != nil {
			return nil, err
		}
		conds, err := s.parseFilter(r, str(req.Filter), false)
		if err != nil {
			return nil, err
		}
		var out []map[string]any
		for _, id := range sortedRunIDs(s.runs) {
			run := s.runs[id]
			in := false
			for _, e := range req.ExperimentIDs {
				in = in || e == run.ExperimentID
			}
			if !in {
				continue
			}
			if matches(conds, "", run.Tags) {
				out = append(out, s.runJSON(run))
			}
		}
		return map[string]any{"runs": out}, nil

	case "POST registered-models/create":
		var req struct {
			Name        *string `json:"name"`
			Tags        []tag   `json:"tags"`
			Description *string `json:"description"`
		}
		if err := s.decode(r, &req); err != nil {
			return nil, err
		}
		if err := s.require(r, map[string]bool{"name": str(req.Name) != ""}); err != nil {
			return nil, err
		}
		if err := s.tagsOK(r, "tags", req.Tags, registeredModelTag); err != nil {
			return nil, err
		}
		if _, ok := s.models[*req.Name]; ok {
			return nil, s.alreadyExists("Registered Model (name=%s) already exists.", *req.Name)
		}
		rm := &registeredModel{name: *req.Name, description: str(req.Description), tags: tagMap(req.Tags), aliases: map[string]string{}, created: now()}
		s.models[*req.Name] = rm
		return map[string]any{"registered_model": s.modelJSON(rm)}, nil

	case "GET registered-models/get":
		q, err := s.query(r, []string{"name"}, "name")
		if err != nil {
			return nil, err
		}
		rm, ok := s.models[q.Get("name")]
		if !ok {
			return nil, notFound("Registered Model with name=%s not found", q.Get("name"))
		}
		return map[string]any{"registered_model": s.modelJSON(rm)}, nil

	case "GET registered-models/search":
		q, err := s.query(r, []string{"filter", "max_results", "order_by", "page_token"})
		if err != nil {
			return nil, err
		}
		if q.Get("filter") != "" {
			return nil, s.violation("registered-models/search: the test server supports no filter, got %q", q.Get("filter"))
		}
		names := make([]string, 0, len(s.models))
		for n := range s.models {
			names = append(names, n)
		}
		sort.Strings(names)
		page, next, perr := s.page(q, len(names), 1000)
		if perr != nil {
			return nil, perr
		}
		var out []map[string]any
		for _, n := range names[page[0]:page[1]] {
			out = append(out, s.modelJSON(s.models[n]))
		}
		resp := map[string]any{"registered_models": out}
		if next != "" {
			resp["next_page_token"] = next
		}
		return resp, nil

	case "POST model-versions/create":
		var req struct {
			Name        *string `json:"name"`
			Source      *string `json:"source"`
			RunID       *string `json:"run_id"`
			Tags        []tag   `json:"tags"`
			RunLink     *string `json:"run_link"`
			Description *string `json:"description"`
		}
		if err := s.decode(r, &req); err != nil {
			return nil, err
		}
		if err := s.require(r, map[string]bool{"name": str(req.Name) != "", "source": str(req.Source) != ""}); err != nil {
			return nil, err
		}
		if err := s.tagsOK(r, "tags", req.Tags, modelVersionTag); err != nil {
			return nil, err
		}
		if id := str(req.RunID); id != "" {
			if err := runID(id); err != nil {
				return nil, err
			}
		}
		rm, ok := s.models[*req.Name]
		if !ok {
			return nil, notFound("Registered Model with name=%s not found", *req.Name)
		}
		if id := str(req.RunID); id != "" {
			run, ok := s.runs[id]
			if !ok {
				return nil, notFound("Run '%s' not found", id)
			}
			if *req.Source != run.ArtifactURI && !strings.HasPrefix(*req.Source, run.ArtifactURI+"/") {
				return nil, invalid("Invalid model version source: '%s'. To use a local path as a model version source, the run_id request parameter has to be specified and the local path has to be contained within the artifact directory of the run specified by the run_id.", *req.Source)
			}
		}
		mv := &ModelVersion{Name: rm.name, Version: strconv.Itoa(len(rm.versions) + 1), Source: *req.Source, RunID: str(req.RunID),
			Description: str(req.Description), Status: "PENDING_REGISTRATION", Tags: tagMap(req.Tags), Created: now()}
		if s.PendingPolls == 0 {
			mv.Status = "READY"
		}
		rm.versions = append(rm.versions, mv)
		return map[string]any{"model_version": s.versionJSON(rm, mv)}, nil

	case "GET model-versions/get":
		q, err := s.query(r, []string{"name", "version"}, "name", "version")
		if err != nil {
			return nil, err
		}
		if err := modelVersion(q.Get("version")); err != nil {
			return nil, err
		}
		rm, mv, aerr := s.findVersion(q.Get("name"), q.Get("version"))
		if aerr != nil {
			return nil, aerr
		}
		if mv.Status == "PENDING_REGISTRATION" {
			mv.polls++
			if mv.polls > s.PendingPolls {
				mv.Status = "READY"
			}
		}
		return map[string]any{"model_version": s.versionJSON(rm, mv)}, nil

	case "GET model-versions/search":
		q, err := s.query(r, []string{"filter", "max_results", "order_by", "page_token"})
		if err != nil {
			return nil, err
		}
		conds, err := s.parseFilter(r, q.Get("filter"), true)
		if err != nil {
			return nil, err
		}
		type hit struct {
			rm *registeredModel
			mv *ModelVersion
		}
		var hits []hit
		for _, n := range sortedModelNames(s.models) {
			rm := s.models[n]
			for _, mv := range rm.versions {
				if matches(conds, rm.name, mv.Tags) {
					hits = append(hits, hit{rm, mv})
				}
			}
		}
		page, next, perr := s.page(q, len(hits), 200000)
		if perr != nil {
			return nil, perr
		}
		var out []map[string]any
		for _, h := range hits[page[0]:page[1]] {
			out = append(out, s.versionJSON(h.rm, h.mv))
		}
		resp := map[string]any{"model_versions": out}
		if next != "" {
			resp["next_page_token"] = next
		}
		return resp, nil

	case "POST model-versions/set-tag":
		var req struct {
			Name    *string `json:"name"`
			Version *string `json:"version"`
			Key     *string `json:"key"`
			Value   *string `json:"value"`
		}
		if err := s.decode(r, &req); err != nil {
			return nil, err
		}
		if err := s.require(r, map[string]bool{"name": str(req.Name) != "", "version": str(req.Version) != "", "key": str(req.Key) != "", "value": req.Value != nil}); err != nil {
			return nil, err
		}
		if err := modelVersion(*req.Version); err != nil {
			return nil, err
		}
		if err := modelVersionTag(tag{Key: req.Key, Value: req.Value}); err != nil {
			return nil, err
		}
		_, mv, aerr := s.findVersion(*req.Name, *req.Version)
		if aerr != nil {
			return nil, aerr
		}
		mv.Tags[*req.Key] = *req.Value
		return map[string]any{}, nil

	case "POST registered-models/alias":
		var req struct {
			Name    *string `json:"name"`
			Alias   *string `json:"alias"`
			Version *string `json:"version"`
		}
		if err := s.decode(r, &req); err != nil {
			return nil, err
		}
		if err := s.require(r, map[string]bool{"name": str(req.Name) != "", "alias": str(req.Alias) != "", "version": str(req.Version) != ""}); err != nil {
			return nil, err
		}
		if err := aliasName(*req.Alias); err != nil {
			return nil, err
		}
		if err := modelVersion(*req.Version); err != nil {
			return nil, err
		}
		rm, _, aerr := s.findVersion(*req.Name, *req.Version)
		if aerr != nil {
			return nil, aerr
		}
		rm.aliases[*req.Alias] = *req.Version
		return map[string]any{}, nil

	case "DELETE registered-models/alias":
		var req struct {
			Name  *string `json:"name"`
			Alias *string `json:"alias"`
		}
		if err := s.decode(r, &req); err != nil {
			return nil, err
		}
		if err := s.require(r, map[string]bool{"name": str(req.Name) != "", "alias": str(req.Alias) != ""}); err != nil {
			return nil, err
		}
		rm, ok := s.models[*req.Name]
		if !ok {
			return nil, notFound("Registered Model with name=%s not found", *req.Name)
		}
		delete(rm.aliases, *req.Alias)
		return map[string]any{}, nil

	case "GET registered-models/alias":
		q, err := s.query(r, []string{"name", "alias"}, "name", "alias")
		if err != nil {
			return nil, err
		}
		rm, ok := s.models[q.Get("name")]
		if !ok {
			return nil, notFound("Registered Model with name=%s not found", q.Get("name"))
		}
		v, ok := rm.aliases[q.Get("alias")]
		if !ok {
			// What MLflow's SQL and file stores answer.
			return nil, invalid("Registered model alias %s not found.", q.Get("alias"))
		}
		_, mv, aerr := s.findVersion(rm.name, v)
		if aerr != nil {
			return nil, aerr
		}
		return map[string]any{"model_version": s.versionJSON(rm, mv)}, nil
	}
	e := s.violation("%s /api/2.0/mlflow/%s: no such endpoint (or wrong method)", r.Method, ep)
	e.status, e.code = http.StatusNotFound, "ENDPOINT_NOT_FOUND"
	return nil, e
}

func (s *Server) artifact(r *http.Request, p string) (any, *apiError) {
	if strings.Contains(p, "..") || p == "" {
		return nil, invalid("Invalid path %q", p)
	}
	switch r.Method {
	case http.MethodPut:
		// Uploads go below a run's artifact root.
		ok := false
		for _, run := range s.runs {
			root := strings.TrimPrefix(run.ArtifactURI, "mlflow-artifacts:/") + "/"
			ok = ok || strings.HasPrefix(p, root)
		}
		if !ok {
			return nil, s.violation("PUT artifact %q is not below any run's artifact root", p)
		}
		if r.ContentLength < 0 {
			return nil, s.violation("PUT artifact %q without Content-Length (streamed files have a known size)", p)
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, invalid("read body: %v", err)
		}
		s.artifacts[p] = b
		return map[string]any{}, nil
	case http.MethodGet:
		b, ok := s.artifacts[p]
		if !ok {
			return nil, notFound("artifact %s not found", p)
		}
		return b, nil
	}
	return nil, s.violation("%s on the artifact API", r.Method)
}

func (s *Server) findVersion(name, version string) (*registeredModel, *ModelVersion, *apiError) {
	rm, ok := s.models[name]
	if !ok {
		return nil, nil, notFound("Registered Model with name=%s not found", name)
	}
	for _, mv := range rm.versions {
		if mv.Version == version {
			return rm, mv, nil
		}
	}
	return nil, nil, notFound("Model Version (name=%s, version=%s) not found", name, version)
}

func (s *Server) page(q url.Values, n, maxAllowed int) ([2]int, string, *apiError) {
	size := maxAllowed
	if v := q.Get("max_results"); v != "" {
		m, err := strconv.Atoi(v)
		if err != nil || m <= 0 || m > maxAllowed {
			return [2]int{}, "", invalid("Invalid value for max_results: %q", v)
		}
		size = m
	}
	start := 0
	if t := q.Get("page_token"); t != "" {
		v, err := strconv.Atoi(t)
		if err != nil || v < 0 || v > n {
			return [2]int{}, "", invalid("Invalid page token %q", t)
		}
		start = v
	}
	end := min(start+size, n)
	next := ""
	if end < n {
		next = strconv.Itoa(end)
	}
	return [2]int{start, end}, next, nil
}

type cond struct{ tag, value string } // tag "" means the model name

var condRE = regexp.MustCompile("^\\s*(name|tags\\.(`[^`]+`|\"[^\"]+\"|[A-Za-z0-9_.]+))\\s*=\\s*'([^']*)'\\s*$")

// parseFilter understands "name = 'x'", "tags.k = 'v'" and their AND.
func (s *Server) parseFilter(r *http.Request, filter string, allowName bool) ([]cond, *apiError) {
	if strings.TrimSpace(filter) == "" {
		return nil, nil
	}
	var out []cond
	for _, part := range regexp.MustCompile(`(?i)\s+and\s+`).Split(filter, -1) {
		m := condRE.FindStringSubmatch(part)
		if m == nil {
			return nil, s.violation("%s: filter clause %q is not name = '...' or tags.KEY = '...'", r.URL.Path, part)
		}
		if m[1] == "name" {
			if !allowName {
				return nil, s.violation("%s: filter on name", r.URL.Path)
			}
			out = append(out, cond{"", m[3]})
			continue
		}
		if s.RejectTagFilters && allowName {
			return nil, invalid("Invalid attribute key '%s' specified. Valid keys are '{'name', 'run_id', 'source_path'}'", m[1])
		}
		out = append(out, cond{strings.Trim(m[2], "`\""), m[3]})
	}
	return out, nil
}

func matches(conds []cond, name string, tags map[string]string) bool {
	for _, c := range conds {
		if c.tag == "" {
			if name != c.value {
				return false
			}
		} else if v, ok := tags[c.tag]; !ok || v != c.value {
			return false
		}
	}
	return true
}

func sortedRunIDs(m map[string]*Run) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedModelNames(m map[string]*registeredModel) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func tagList(m map[string]string) []map[string]string {
	keys := slices.Sorted(maps.Keys(m))
	out := make([]map[string]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, map[string]string{"key": k, "value": m[k]})
	}
	return out
}

func (s *Server) runJSON(run *Run) map[string]any {
	info := map[string]any{
		"run_id": run.ID, "run_uuid": run.ID, "run_name": run.Name, "experiment_id": run.ExperimentID,
		"status": run.Status, "start_time": run.StartTime, "artifact_uri": run.ArtifactURI, "lifecycle_stage": "active",
	}
	if run.EndTime != 0 {
		info["end_time"] = run.EndTime
	}
	return map[string]any{"info": info, "data": map[string]any{"tags": tagList(run.Tags)}}
}

func (s *Server) modelJSON(rm *registeredModel) map[string]any {
	var aliases []map[string]string
	for _, a := range slices.Sorted(maps.Keys(rm.aliases)) {
		aliases = append(aliases, map[string]string{"alias": a, "version": rm.aliases[a]})
	}
	return map[string]any{"name": rm.name, "creation_timestamp": rm.created, "last_updated_timestamp": rm.created,
		"description": rm.description, "tags": tagList(rm.tags), "aliases": aliases}
}

func (s *Server) versionJSON(rm *registeredModel, mv *ModelVersion) map[string]any {
	var aliases []string
	for _, a := range slices.Sorted(maps.Keys(rm.aliases)) {
		if rm.aliases[a] == mv.Version {
			aliases = append(aliases, a)
		}
	}
	return map[string]any{
		"name": mv.Name, "version": mv.Version, "creation_timestamp": mv.Created, "last_updated_timestamp": mv.Created,
		"current_stage": "None", "description": mv.Description, "source": mv.Source, "run_id": mv.RunID,
		"status": mv.Status, "tags": tagList(mv.Tags), "aliases": aliases,
	}
}

func now() int64 { return time.Now().UnixMilli() }
