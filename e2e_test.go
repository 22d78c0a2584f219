package loraflow_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"

	"github.com/loraflow/loraflow"
	"github.com/loraflow/loraflow/activities"
	"github.com/loraflow/loraflow/internal/testmodel"
	"github.com/loraflow/loraflow/provenance"
	"github.com/loraflow/loraflow/registry"
	"github.com/loraflow/loraflow/spec"
	"github.com/loraflow/loraflow/workflows"
)

// fixture is a base model, a dataset, a key and a spec in a temp folder.
type fixture struct {
	dir, specPath, keyPath, pubPath, artifacts, registry string
}

func newFixture(t *testing.T, steps int, extra string) fixture {
	t.Helper()
	ws := testmodel.NewWorkspace(t, 240)
	f := fixture{dir: ws.Dir, keyPath: ws.Key, pubPath: ws.PubKey,
		artifacts: filepath.Join(ws.Dir, "artifacts"), registry: filepath.Join(ws.Dir, "registry")}
	f.specPath = ws.WriteSpec(t, fmt.Sprintf(`name: tiny
base_model: base
dataset: {files: [data.jsonl], format: text, validation_fraction: 0.15, seed: 3}
lora: {r: 4, lora_alpha: 8, target_modules: [q_proj, v_proj, up_proj]}
training: {steps: %d, batch_size: 8, seq_len: 48, learning_rate: 0.01, warmup_steps: 2, seed: 7, checkpoint_every: 5}
evaluation: {min_improvement: 0.01}
merge: true
signing: {key: e2e}
registry: {uri: "file://registry"}
carbon: {region: FRA, pue: 1.2}
%s`, steps, extra))
	return f
}

// config is the worker's: the fixture folder is an input root, and the
// key the spec names ("e2e") is declared.
func (f fixture) config() loraflow.Config {
	return loraflow.Config{ArtifactRoot: f.artifacts, InputRoots: []string{f.dir},
		SigningKeys: map[string]string{"e2e": f.keyPath}, Logger: testmodel.Quiet()}
}

func (f fixture) spec(t *testing.T) spec.Spec {
	s, err := spec.Load(f.specPath)
	if err != nil {
		t.Fatal(err)
	}
	return *s
}

func TestPipelineEndToEndOnDevServer(t *testing.T) {
	srv := testmodel.DevServer(t)
	f := newFixture(t, 30, "")
	plugin, err := loraflow.Plugin(f.config())
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(srv.Client(), "e2e", worker.Options{Plugins: []worker.Plugin{plugin}})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run, err := srv.Client().ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: "e2e"}, workflows.PipelineName, f.spec(t))
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.Result
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	if res.Status != workflows.StatusPublished {
		t.Fatalf("status %s: %s", res.Status, res.Reason)
	}
	t.Logf("trained %d steps, %d tokens at %.0f tokens/s; held-out loss %.4f -> %.4f", res.Train.Steps, res.Train.Tokens, res.Train.TokensPerSec, res.Eval.Base.Loss, res.Eval.Adapter.Loss)
	if !(res.Eval.Adapter.Loss < res.Eval.Base.Loss) {
		t.Fatalf("adapter did not improve held-out loss: %+v", res.Eval)
	}

	// Every artifact verifies, with the chain back to base model and dataset.
	keys, err := provenance.LoadTrustedKeys(f.pubPath)
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{}
	for _, att := range res.Attestations {
		dir := strings.TrimPrefix(att.Artifact.URI, "file://")
		v, err := provenance.Verify(ctx, dir, keys, provenance.WithKind(provenance.Kind(att.Kind)), provenance.WithRequiredDependencies())
		if err != nil {
			t.Fatalf("%s does not verify: %v", att.Kind, err)
		}
		if !v.OK() {
			t.Fatalf("%s: verdict not OK", att.Kind)
		}
		dirs[att.Kind] = dir
	}
	for _, want := range []string{"adapter/adapter_config.json", "adapter/adapter_model.safetensors", "adapter/README.md",
		"eval-report/" + activities.EvalReportFile, "eval-report/" + activities.LossCurveFile, "eval-report/" + activities.RankSpectraFile,
		"eval-report/" + activities.RankReportFile, "merged-model/model.safetensors", "merged-model/config.json"} {
		kind, file, _ := strings.Cut(want, "/")
		if _, err := os.Stat(filepath.Join(dirs[kind], file)); err != nil {
			t.Errorf("missing %s: %v", want, err)
		}
	}
	if res.Merge.MaxLogitDiff > res.Merge.Tolerance || res.Merge.ProbeSetDigest == "" {
		t.Errorf("merge equivalence not recorded: %+v", res.Merge)
	}

	// The registry version names the same digests.
	reg, err := registry.Open(ctx, "file://"+f.registry)
	if err != nil {
		t.Fatal(err)
	}
	v, ok, err := reg.GetByAlias(ctx, "tiny", registry.AliasChampion)
	if err != nil || !ok {
		t.Fatalf("no champion in the registry: %v", err)
	}
	if v.Version != res.Publication.Version {
		t.Fatalf("registry champion %s, run published %s", v.Version, res.Publication.Version)
	}
	adapterAtt := res.Attestations[0]
	if v.Tags[registry.TagAdapterDigest] != adapterAtt.Artifact.SHA256 || v.Tags[registry.TagMergedDigest] != res.Merge.Merged.SHA256 ||
		v.Tags[registry.TagDatasetDigest] != res.Prepare.Snapshot.SHA256 || !strings.Contains(v.Tags[registry.TagAttestationDigest], adapterAtt.Digest) {
		t.Fatalf("registry tags disagree with the run: %v", v.Tags)
	}
	// The registry's copy verifies too (bundles travel beside it).
	if _, err := provenance.Verify(ctx, v.Artifacts["adapter"], keys); err != nil {
		t.Fatalf("registry copy of the adapter does not verify: %v", err)
	}
	// Carbon: a measured or estimated figure per activity, and the CSV.
	if res.Carbon.Total.EnergyKWh <= 0 || res.Carbon.Counterfactual == nil || len(res.Carbon.Activities) < 4 {
		t.Fatalf("carbon summary incomplete: %+v", res.Carbon)
	}
	csv, err := os.ReadFile(filepath.Join(f.artifacts, "emissions", run.GetID()+".csv"))
	if err != nil || !strings.HasPrefix(string(csv), "timestamp,project_name,run_id") {
		t.Fatalf("emissions.csv: %v %.80q", err, csv)
	}

	// A second run with the same inputs publishes no new version, and a
	// tampered adapter is refused by verify.
	run2, err := srv.Client().ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: "e2e"}, workflows.PipelineName, f.spec(t))
	if err != nil {
		t.Fatal(err)
	}
	var res2 workflows.Result
	if err := run2.Get(ctx, &res2); err != nil {
		t.Fatal(err)
	}
	if res2.Publication == nil || !res2.Publication.Existed || res2.Publication.Version != res.Publication.Version {
		t.Fatalf("re-run made a new version: %+v", res2.Publication)
	}
	os.WriteFile(filepath.Join(dirs["adapter"], "adapter_config.json"), []byte("{}"), 0o644)
	if _, err := provenance.Verify(ctx, dirs["adapter"], keys); err == nil {
		t.Fatal("tampered adapter verified")
	}
}

// TestWorkerCrashResumesTraining kills the worker process in the middle of
// TrainLoRA; a new worker resumes from the last checkpoint, not step 0.
func TestWorkerCrashResumesTraining(t *testing.T) {
	srv := testmodel.DevServer(t)
	f := newFixture(t, 400, "timeouts: {heartbeat: 2s}\n")
	f.specPath = rewriteMerge(t, f.specPath)
	bin := filepath.Join(t.TempDir(), "worker")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/worker").CombinedOutput(); err != nil {
		t.Fatalf("building the worker: %v\n%s", err, out)
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "--address", srv.FrontendHostPort(), "--task-queue", "crash", "--artifact-root", f.artifacts,
			"--input-roots", f.dir, "--signing-keys", "e2e="+f.keyPath)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	first := start()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := srv.Client()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: "crash"}, workflows.PipelineName, f.spec(t))
	if err != nil {
		t.Fatal(err)
	}
	// Wait for a heartbeat that names a checkpoint, then kill -9.
	var seen activities.TrainProgress
	for seen.CheckpointURI == "" || seen.Step < 10 {
		if ctx.Err() != nil {
			t.Fatal("no checkpoint heartbeat before the deadline")
		}
		if desc, err := c.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID()); err == nil &&
			desc.GetWorkflowExecutionInfo().GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
			t.Fatalf("the run ended (%v) before a checkpoint heartbeat was seen; make training longer", desc.GetWorkflowExecutionInfo().GetStatus())
		}
		time.Sleep(200 * time.Millisecond)
		desc, err := c.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
		if err != nil {
			continue
		}
		for _, pa := range desc.GetPendingActivities() {
			if pa.GetActivityType().GetName() == "TrainLoRA" && pa.GetHeartbeatDetails() != nil {
				_ = converter.GetDefaultDataConverter().FromPayloads(pa.GetHeartbeatDetails(), &seen)
			}
		}
	}
	syscall.Kill(-first.Process.Pid, syscall.SIGKILL)
	first.Wait()
	second := start()
	defer func() { syscall.Kill(-second.Process.Pid, syscall.SIGTERM); second.Wait() }()

	var res workflows.Result
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	if res.Train.ResumedFromStep < 5 || res.Train.ResumedFromStep > res.Train.Steps {
		t.Fatalf("resumed from step %d (killed after step %d); want a checkpoint after step 0", res.Train.ResumedFromStep, seen.Step)
	}
	if res.Status != workflows.StatusPublished {
		t.Fatalf("status %s: %s", res.Status, res.Reason)
	}
	t.Logf("killed at step %d, resumed from checkpoint step %d of %d", seen.Step, res.Train.ResumedFromStep, res.Train.Steps)
}

func rewriteMerge(t *testing.T, path string) string {
	b, _ := os.ReadFile(path)
	s := strings.Replace(string(b), "merge: true\n", "", 1)
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
