package loraflow_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/loraflow/loraflow/internal/testmodel"
	"github.com/loraflow/loraflow/registry"
	"github.com/loraflow/loraflow/workflows"
)

// The kill points of the fault suite, in pipeline order. Each worker
// process carries one (internal/faultworker's --kill-at) and dies with
// SIGKILL there; "TrainLoRA:random" lands at a random moment of a random
// training step (it may hit a checkpoint write).
var (
	shortKillPoints = []string{"TrainLoRA:step=7", "TrainLoRA:random", "Attest:after", "Publish:after"}
	longKillPoints  = []string{"PrepareData:before", "PrepareData:after", "TrainLoRA:step=2", "TrainLoRA:random", "TrainLoRA:step=25", "TrainLoRA:random",
		"Evaluate:before", "Evaluate:after", "Merge:before", "Merge:after",
		"Attest:before", "Attest:after", "Publish:before", "Publish:after"}
)

// TestFaultSuiteKill9 runs the pipeline on a real Temporal dev server twice
// with the same inputs: once without faults, once with its worker process
// killed with SIGKILL at each kill point, a new worker process finishing
// the run each time. The killed run must publish exactly one registry
// version, and its adapter (and merged model) must be byte-equal to the
// uninterrupted run's.
//
// The short form (the kill points above) runs with every `go test`. The
// long form repeats the run with all kill points, in random order of the
// random-moment kills, LORAFLOW_FAULT_SOAK times:
//
//	LORAFLOW_FAULT_SOAK=5 go test -run TestFaultSuiteKill9 -timeout 60m -v .
func TestFaultSuiteKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault suite starts worker processes (-short)")
	}
	srv := testmodel.DevServer(t)
	bin := filepath.Join(t.TempDir(), "faultworker")
	if out, err := exec.Command("go", "build", "-o", bin, "./internal/faultworker").CombinedOutput(); err != nil {
		t.Fatalf("building the fault worker: %v\n%s", err, out)
	}
	rounds, points := 1, shortKillPoints
	if n, err := strconv.Atoi(os.Getenv("LORAFLOW_FAULT_SOAK")); err == nil && n > 0 {
		rounds, points = n, longKillPoints
	}
	start := time.Now()
	f := newFixture(t, 60, "timeouts: {heartbeat: 2s}\n") // one workspace: the adapter config names the base model's path
	want := faultRun(t, srv, bin, f, "baseline", nil)
	tried, hit := 0, 0
	for r := range rounds {
		got := faultRun(t, srv, bin, f, fmt.Sprintf("killed-%d", r), points)
		tried += len(points)
		hit += len(got.hits)
		for _, name := range []string{"adapter/adapter_model.safetensors", "adapter/adapter_config.json", "merged-model/model.safetensors"} {
			if !bytes.Equal(got.files[name], want.files[name]) {
				t.Errorf("round %d: %s differs from the uninterrupted run's (%d vs %d bytes)", r, name, len(got.files[name]), len(want.files[name]))
			}
		}
		t.Logf("round %d: killed at %v (missed %v), resumed training from step %d; adapter bytes equal: %v",
			r, got.hits, got.missed, got.res.Train.ResumedFromStep, bytes.Equal(got.files["adapter/adapter_model.safetensors"], want.files["adapter/adapter_model.safetensors"]))
	}
	t.Logf("kill -9: %d points tried, %d hit, %d runs, %s in all", tried, hit, rounds, time.Since(start).Round(time.Second))
	if hit < tried/2 {
		t.Errorf("only %d of %d kill points were reached; the pipeline outran them", hit, tried)
	}
}

type faultResult struct {
	res          workflows.Result
	files        map[string][]byte
	hits, missed []string
}

// faultRun runs the pipeline once on the workspace of f with its own
// artifact store and registry, on its own task queue, with one worker
// process per kill point and a last one without, and checks the registry
// holds one version.
func faultRun(t *testing.T, srv *testsuite.DevServer, bin string, f fixture, name string, points []string) faultResult {
	t.Helper()
	f.artifacts = filepath.Join(f.dir, "artifacts-"+name)
	f.registry = filepath.Join(f.dir, "registry-"+name)
	sp := f.spec(t)
	sp.Registry.URI = "file://" + f.registry
	queue := "faults-" + name
	logs := t.TempDir()
	type proc struct {
		cmd  *exec.Cmd
		done chan error
	}
	n := 0
	startWorker := func(killAt string) proc {
		n++
		log, err := os.Create(filepath.Join(logs, fmt.Sprintf("worker-%d.log", n)))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "--address", srv.FrontendHostPort(), "--task-queue", queue, "--artifact-root", f.artifacts,
			"--input-root", f.dir, "--signing-key", "e2e="+f.keyPath, "--kill-at", killAt)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p := proc{cmd, make(chan error, 1)}
		go func() { p.done <- cmd.Wait(); log.Close() }()
		return p
	}
	next := func(i int) string {
		if i < len(points) {
			return points[i]
		}
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	idx := 0
	w := startWorker(next(idx))
	defer func() { syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL); <-w.done }()
	c := srv.Client()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "faults-" + name, TaskQueue: queue}, workflows.PipelineName, sp)
	if err != nil {
		t.Fatal(err)
	}
	var out faultResult
	finished := make(chan error, 1)
	go func() { finished <- run.Get(ctx, &out.res) }()
	for {
		select {
		case err := <-finished:
			if err != nil {
				t.Fatalf("%s: the run failed: %v (worker logs in %s)", name, err, logs)
			}
			out.missed = append(out.missed, points[min(idx, len(points)):]...)
			return out.collect(t, ctx, f)
		case err := <-w.done:
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				b, _ := os.ReadFile(filepath.Join(logs, fmt.Sprintf("worker-%d.log", n)))
				t.Fatalf("%s: worker %d ended by itself (%v):\n%s", name, n, err, b)
			}
			out.hits = append(out.hits, next(idx))
			idx++
			w = startWorker(next(idx))
		}
	}
}

// collect reads the published artifacts' bytes and checks that the
// registry holds exactly one version of the model.
func (out faultResult) collect(t *testing.T, ctx context.Context, f fixture) faultResult {
	t.Helper()
	if out.res.Status != workflows.StatusPublished {
		t.Fatalf("status %s: %s", out.res.Status, out.res.Reason)
	}
	out.files = map[string][]byte{}
	for _, att := range out.res.Attestations {
		dir := strings.TrimPrefix(att.Artifact.URI, "file://")
		for _, file := range []string{"adapter_model.safetensors", "adapter_config.json", "model.safetensors"} {
			if b, err := os.ReadFile(filepath.Join(dir, file)); err == nil {
				out.files[att.Kind+"/"+file] = b
			}
		}
	}
	if len(out.files["adapter/adapter_model.safetensors"]) == 0 || len(out.files["merged-model/model.safetensors"]) == 0 {
		t.Fatalf("the run's adapter or merged model is missing: %v", out.res.Attestations)
	}
	reg, err := registry.Open(ctx, "file://"+f.registry)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := reg.ListVersions(ctx, "tiny")
	if err != nil || len(vs) != 1 {
		t.Fatalf("registry holds %d versions of the model (%v), want exactly 1", len(vs), err)
	}
	return out
}
