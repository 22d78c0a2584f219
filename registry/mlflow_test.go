package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loraflow/loraflow/registry/mlflowtest"
)

const (
	apiBase      = "/api/2.0/mlflow/"
	pathMVCreate = apiBase + "model-versions/create"
	pathRunsNew  = apiBase + "runs/create"
	pathLogBatch = apiBase + "runs/log-batch"
	pathRMCreate = apiBase + "registered-models/create"
)

func newTestMLflow(t *testing.T, srv *mlflowtest.Server, mod func(*MLflowOptions)) *MLflow {
	t.Helper()
	opts := MLflowOptions{
		TrackingURI:    srv.URL,
		Experiment:     "loraflow-test",
		MaxAttempts:    4,
		InitialBackoff: time.Millisecond,
		MaxBackoff:     5 * time.Millisecond,
		PollInterval:   time.Millisecond,
		ReadyTimeout:   5 * time.Second,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&opts)
	}
	m, err := NewMLflow(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestMLflowPublishPerformsTheDocumentedCalls(t *testing.T) {
	ctx := context.Background()
	srv := mlflowtest.NewServer(t)
	srv.PendingPolls = 2
	m := newTestMLflow(t, srv, nil)

	req := samplePublish(t, "tiny-lora", "sha256:abc123")
	// A long training curve and many params and tags, so log-batch must chunk.
	var curve []MetricPoint
	for i := range 2500 {
		curve = append(curve, MetricPoint{Step: int64(i), Value: 3 - float64(i)/1000})
	}
	req.MetricHistory["train_loss"] = curve
	for i := range 150 {
		req.Params[fmt.Sprintf("p%03d", i)] = "v"
		req.Tags[fmt.Sprintf("t%03d", i)] = "v"
	}
	v, err := m.Publish(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != "1" || v.Status != "READY" || v.ArtifactDigest != "sha256:abc123" {
		t.Fatalf("version = %+v", v)
	}
	if v.Metrics["perplexity"] != 4.48 || v.Tags["loraflow.base_model"] != "tiny-llama" {
		t.Errorf("version metrics %v tags %v", v.Metrics, v.Tags)
	}
	runs := srv.Runs()
	if len(runs) != 1 {
		t.Fatalf("%d runs, want 1", len(runs))
	}
	run := runs[0]
	if run.Status != "FINISHED" || run.EndTime == 0 {
		t.Errorf("run status %s end %d", run.Status, run.EndTime)
	}
	if v.RunID != run.ID || v.Source != run.ArtifactURI {
		t.Errorf("version source %q run %q, want %q %q", v.Source, v.RunID, run.ArtifactURI, run.ID)
	}
	if len(run.Params) != 152 || run.Params["lora_alpha"] != "16" {
		t.Errorf("run has %d params", len(run.Params))
	}
	if run.Tags["t149"] != "v" || run.Tags[TagArtifactDigest] != "sha256:abc123" {
		t.Errorf("run tags incomplete")
	}
	losses := 0
	for _, mt := range run.Metrics {
		if mt.Key == "train_loss" {
			losses++
		}
	}
	if losses != 2500 {
		t.Errorf("%d train_loss points logged, want 2500", losses)
	}
	if n := srv.Count("POST", pathLogBatch); n < 3 {
		t.Errorf("%d log-batch calls; 2504 metrics need at least 3", n)
	}
	if len(run.Datasets) != 1 || run.Datasets[0] != "train@sha256:d1 (training)" {
		t.Errorf("datasets = %v", run.Datasets)
	}
	root := strings.TrimPrefix(run.ArtifactURI, "mlflow-artifacts:/")
	b, ok := srv.Artifact(root + "/adapter/sub/nested.txt")
	if !ok || string(b) != "nested sha256:abc123" {
		t.Errorf("uploaded artifact = %q %v; have %v", b, ok, srv.ArtifactPaths())
	}
	if len(srv.ArtifactPaths()) != 4 {
		t.Errorf("artifacts = %v", srv.ArtifactPaths())
	}
	if n := srv.Count("GET", apiBase+"model-versions/get"); n < 2 {
		t.Errorf("%d model-versions/get polls, want >= 2 (PENDING_REGISTRATION twice)", n)
	}
	if v.Artifacts["adapter"] != run.ArtifactURI+"/adapter" {
		t.Errorf("artifacts = %v", v.Artifacts)
	}
	if len(srv.Violations()) > 0 {
		t.Fatalf("violations: %v", srv.Violations())
	}

	// A retried publish finds the version and makes no run and no version.
	before := len(srv.Requests())
	again, err := m.Publish(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if v.Existed || !again.Existed {
		t.Errorf("Existed: first %v, retry %v", v.Existed, again.Existed)
	}
	if again.Version != "1" || len(srv.Versions("tiny-lora")) != 1 || len(srv.Runs()) != 1 {
		t.Fatalf("retry made version %s; %d versions, %d runs", again.Version, len(srv.Versions("tiny-lora")), len(srv.Runs()))
	}
	for _, r := range srv.Requests()[before:] {
		if strings.HasPrefix(r, "POST") || strings.HasPrefix(r, "PUT") {
			t.Errorf("retried publish sent %s", r)
		}
	}
}

func TestMLflowFaults(t *testing.T) {
	type faultSpec struct {
		method, path string
		kind         mlflowtest.FaultKind
		status, n    int
	}
	cases := []struct {
		name   string
		faults []faultSpec
		// alreadyExists409 makes RESOURCE_ALREADY_EXISTS answers 409.
		alreadyExists409 bool
		precreateModel   bool
	}{
		{name: "500 then success on every write", faults: []faultSpec{
			{"POST", apiBase + "experiments/create", mlflowtest.FailBefore, 500, 1},
			{"POST", pathRunsNew, mlflowtest.FailBefore, 503, 2},
			{"POST", pathLogBatch, mlflowtest.FailBefore, 500, 1},
			{"POST", apiBase + "runs/log-inputs", mlflowtest.FailBefore, 502, 1},
			{"POST", apiBase + "runs/update", mlflowtest.FailBefore, 500, 1},
			{"POST", pathRMCreate, mlflowtest.FailBefore, 500, 1},
			{"POST", pathMVCreate, mlflowtest.FailBefore, 500, 2},
			{"GET", apiBase + "model-versions/search", mlflowtest.FailBefore, 500, 1},
			{"PUT", "/api/2.0/mlflow-artifacts/artifacts/*", mlflowtest.FailBefore, 500, 2},
		}},
		{name: "connection reset", faults: []faultSpec{
			{"GET", apiBase + "experiments/get-by-name", mlflowtest.ResetBefore, 0, 1},
			{"POST", pathRunsNew, mlflowtest.ResetBefore, 0, 1},
			{"POST", pathLogBatch, mlflowtest.ResetAfter, 0, 1},
			{"POST", pathMVCreate, mlflowtest.ResetBefore, 0, 1},
			{"PUT", "/api/2.0/mlflow-artifacts/artifacts/*", mlflowtest.ResetAfter, 0, 1},
		}},
		{name: "answers lost after the write happened", faults: []faultSpec{
			{"POST", apiBase + "experiments/create", mlflowtest.FailAfter, 500, 1},
			{"POST", pathRMCreate, mlflowtest.ResetAfter, 0, 1},
			{"POST", pathMVCreate, mlflowtest.FailAfter, 500, 1},
		}},
		{name: "version create reset after it happened", faults: []faultSpec{
			{"POST", pathMVCreate, mlflowtest.ResetAfter, 0, 1},
		}},
		{name: "409 RESOURCE_ALREADY_EXISTS for the registered model", alreadyExists409: true, precreateModel: true},
		{name: "400 RESOURCE_ALREADY_EXISTS for the registered model", precreateModel: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			srv := mlflowtest.NewServer(t)
			if tc.alreadyExists409 {
				srv.AlreadyExistsStatus = 409
			}
			m := newTestMLflow(t, srv, nil)
			if tc.precreateModel {
				if _, err := m.Publish(ctx, samplePublish(t, "m", "sha256:first")); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range tc.faults {
				srv.Fault(f.method, f.path, f.kind, f.status, f.n)
			}
			v, err := m.Publish(ctx, samplePublish(t, "m", "sha256:target"))
			if err != nil {
				t.Fatalf("publish: %v\nrequests: %v", err, srv.Requests())
			}
			var mine []mlflowtest.ModelVersion
			for _, mv := range srv.Versions("m") {
				if mv.Tags[TagArtifactDigest] == "sha256:target" {
					mine = append(mine, mv)
				}
			}
			if len(mine) != 1 || mine[0].Version != v.Version {
				t.Fatalf("%d versions for the digest (%+v), want exactly 1 = %s", len(mine), mine, v.Version)
			}
			if v.Status != "READY" {
				t.Errorf("status %s", v.Status)
			}
			if left := srv.PendingFaults(); len(left) > 0 {
				t.Errorf("faults never triggered: %v", left)
			}
			for _, p := range srv.ArtifactPaths() {
				if b, _ := srv.Artifact(p); len(b) == 0 {
					t.Errorf("artifact %s is empty", p)
				}
			}
			if tc.precreateModel && srv.Count("POST", pathRMCreate) != 2 {
				t.Errorf("registered-models/create sent %d times", srv.Count("POST", pathRMCreate))
			}
		})
	}
}

func TestMLflowDoesNotRetry4xx(t *testing.T) {
	ctx := context.Background()
	srv := mlflowtest.NewServer(t)
	m := newTestMLflow(t, srv, nil)
	srv.Fault("POST", pathRunsNew, mlflowtest.FailBefore, 400, 5)
	_, err := m.Publish(ctx, samplePublish(t, "m", "sha256:x"))
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 400 {
		t.Fatalf("err = %v, want an APIError 400", err)
	}
	if n := srv.Count("POST", pathRunsNew); n != 1 {
		t.Errorf("runs/create sent %d times after a 400, want 1", n)
	}
	// Server errors are retried only MaxAttempts times.
	srv2 := mlflowtest.NewServer(t)
	m2 := newTestMLflow(t, srv2, nil)
	srv2.Fault("POST", pathRunsNew, mlflowtest.FailBefore, 500, 100)
	_, err = m2.Publish(ctx, samplePublish(t, "m", "sha256:x"))
	if err == nil {
		t.Fatal("publish succeeded against a server that always fails")
	}
	if n := srv2.Count("POST", pathRunsNew); n != 4 {
		t.Errorf("runs/create sent %d times, want MaxAttempts = 4", n)
	}
	if !strings.Contains(err.Error(), "INTERNAL_ERROR") || !strings.Contains(err.Error(), "HTTP 500") {
		t.Errorf("error does not carry the error_code: %v", err)
	}
}

func TestMLflowAuth(t *testing.T) {
	ctx := context.Background()
	t.Run("bearer missing is 401, not retried", func(t *testing.T) {
		srv := mlflowtest.NewServer(t)
		srv.Token = "s3cret"
		m := newTestMLflow(t, srv, nil)
		_, err := m.Publish(ctx, samplePublish(t, "m", "sha256:x"))
		var ae *APIError
		if !errors.As(err, &ae) || ae.StatusCode != 401 || ae.ErrorCode != "UNAUTHENTICATED" {
			t.Fatalf("err = %v", err)
		}
		if n := len(srv.Requests()); n != 1 {
			t.Errorf("%d requests after a 401, want 1", n)
		}
	})
	t.Run("bearer from env", func(t *testing.T) {
		srv := mlflowtest.NewServer(t)
		srv.Token = "s3cret"
		t.Setenv(EnvMLflowToken, "s3cret")
		opts, err := MLflowOptionsFromEnv()
		if err != nil {
			t.Fatal(err)
		}
		m := newTestMLflow(t, srv, func(o *MLflowOptions) { o.Token = opts.Token })
		if _, err := m.Publish(ctx, samplePublish(t, "m", "sha256:x")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("bearer from a mounted token file", func(t *testing.T) {
		srv := mlflowtest.NewServer(t)
		srv.Token = "from-file"
		file := filepath.Join(t.TempDir(), "token")
		os.WriteFile(file, []byte("from-file\n"), 0o600)
		t.Setenv(EnvMLflowTokenFile, file)
		opts, err := MLflowOptionsFromEnv()
		if err != nil {
			t.Fatal(err)
		}
		m := newTestMLflow(t, srv, func(o *MLflowOptions) { o.TokenFile = opts.TokenFile })
		if _, err := m.Publish(ctx, samplePublish(t, "m", "sha256:x")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("basic", func(t *testing.T) {
		srv := mlflowtest.NewServer(t)
		srv.Username, srv.Password = "alice", "pw"
		t.Setenv(EnvMLflowUsername, "alice")
		t.Setenv(EnvMLflowPassword, "pw")
		t.Setenv(EnvMLflowToken, "")
		r, err := Open(ctx, srv.URL+"?experiment=e2")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Publish(ctx, samplePublish(t, "m", "sha256:x")); err != nil {
			t.Fatal(err)
		}
		if _, err := newTestMLflow(t, srv, nil).ListModels(ctx); err == nil {
			t.Error("no credentials: ListModels succeeded")
		}
	})
}

func TestMLflowPromoteRollback(t *testing.T) {
	srv := mlflowtest.NewServer(t)
	m := newTestMLflow(t, srv, nil)
	testPromoteRollback(t, m)
	if c, _ := srv.Alias("m", AliasChampion); c != "1" {
		t.Errorf("server champion = %q", c)
	}
	models, err := m.ListModels(context.Background())
	if err != nil || len(models) != 1 || models[0] != "m" {
		t.Errorf("ListModels = %v %v", models, err)
	}
	if _, err := m.ListVersions(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ListVersions(missing) err = %v", err)
	}
	if len(srv.Violations()) > 0 {
		t.Fatalf("violations: %v", srv.Violations())
	}
}

func TestMLflowSearchWithoutTagFilters(t *testing.T) {
	ctx := context.Background()
	srv := mlflowtest.NewServer(t)
	srv.RejectTagFilters = true
	m := newTestMLflow(t, srv, nil)
	for range 2 {
		if _, err := m.Publish(ctx, samplePublish(t, "m", "sha256:same")); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(srv.Versions("m")); n != 1 {
		t.Errorf("%d versions, want 1", n)
	}
}

func TestArtifactRootPath(t *testing.T) {
	for in, want := range map[string]string{
		"mlflow-artifacts:/1/abc/artifacts":            "1/abc/artifacts",
		"mlflow-artifacts://host:5000/1/abc/artifacts": "1/abc/artifacts",
	} {
		got, err := artifactRootPath(in)
		if err != nil || got != want {
			t.Errorf("artifactRootPath(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := artifactRootPath("s3://bucket/1/abc/artifacts"); err == nil {
		t.Error("s3 artifact URI accepted")
	}
}

func TestMLflowRetriedPublishReusesTheFinishedRun(t *testing.T) {
	ctx := context.Background()
	srv := mlflowtest.NewServer(t)
	m := newTestMLflow(t, srv, nil)
	srv.Fault("POST", pathMVCreate, mlflowtest.FailBefore, 403, 1)
	req := samplePublish(t, "m", "sha256:r")
	if _, err := m.Publish(ctx, req); err == nil {
		t.Fatal("publish succeeded through a 403")
	}
	v, err := m.Publish(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.Count("POST", pathRunsNew); n != 1 {
		t.Errorf("runs/create sent %d times, want 1 (the finished run is reused)", n)
	}
	if len(srv.Versions("m")) != 1 || v.RunID != srv.Runs()[0].ID {
		t.Errorf("versions %v, run %s", srv.Versions("m"), v.RunID)
	}
}

// TestMLflowDatasetDigestFollowsMLflowsConvention publishes the digest the
// pipeline has, a sha256 snapshot digest of 64 hex characters. MLflow's
// _validate_dataset (mlflow/utils/validation.py) refuses a digest longer
// than MAX_DATASET_DIGEST_SIZE = 36, and MLflow's own datasets carry
// "An 8-character, truncated md5 digest" (mlflow/data/digest_utils.py,
// get_normalized_md5_digest: md5.hexdigest()[:8]); the dataset input gets
// the first 8 hex characters and keeps the full digest as an input tag.
func TestMLflowDatasetDigestFollowsMLflowsConvention(t *testing.T) {
	srv := mlflowtest.NewServer(t)
	m := newTestMLflow(t, srv, nil)
	const hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	req := samplePublish(t, "tiny-lora", "sha256:abc123")
	req.Datasets = []Dataset{{Name: "snap", Digest: hex, Context: "training"}}
	if _, err := m.Publish(context.Background(), req); err != nil {
		t.Fatalf("publish with a sha256 dataset digest: %v", err)
	}
	run := srv.Runs()[0]
	if len(run.Datasets) != 1 || run.Datasets[0] != "snap@9f86d081 (training)" {
		t.Errorf("datasets = %v, want the 8-character digest", run.Datasets)
	}
	if got := run.DatasetTags[0][TagDatasetSHA256]; got != "sha256:"+hex {
		t.Errorf("input tag %s = %q, want the full digest", TagDatasetSHA256, got)
	}

	// A digest that is no sha256 and longer than MLflow allows is refused
	// before any run is made.
	req = samplePublish(t, "tiny-lora", "sha256:def456")
	req.Datasets = []Dataset{{Name: "snap", Digest: strings.Repeat("z", 37)}}
	before := len(srv.Runs())
	if _, err := m.Publish(context.Background(), req); err == nil || !strings.Contains(err.Error(), "MAX_DATASET_DIGEST_SIZE") {
		t.Errorf("37-character digest: err = %v", err)
	}
	if len(srv.Runs()) != before {
		t.Errorf("a run was made for a publish that cannot succeed")
	}
}
