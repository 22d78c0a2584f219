package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loraflow/loraflow/internal/testmodel"
)

// useEmbeddedDefault points every command at a fresh embedded default under
// dir (data and config folders, a free dev-server port) and stops its dev
// server, which outlives `run`, when the test ends.
func useEmbeddedDefault(t *testing.T, dir string) {
	t.Helper()
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("LORAFLOW_TEMPORAL_ADDRESS", "")
	t.Setenv("LORAFLOW_DEV_PORT", fmt.Sprint(freePort(t)))
	t.Cleanup(func() { _, _ = runCLI(t, "dev", "stop") })
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestRunEmbeddedDefault runs `loraflow run` the way a new user does: no
// Temporal configured, so it starts the dev server and an in-process
// worker, follows the run and prints the summary.
func TestRunEmbeddedDefault(t *testing.T) {
	testmodel.RequireTemporalCLI(t)
	ws := testmodel.NewWorkspace(t, 200)
	dir := ws.Dir
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	t.Setenv("LORAFLOW_TEMPORAL_ADDRESS", "")
	specPath := ws.WriteSpec(t, `name: cli
base_model: base
dataset: {files: [data.jsonl], format: text}
lora: {r: 4, target_modules: [q_proj, v_proj]}
training: {steps: 20, batch_size: 8, seq_len: 48, learning_rate: 0.01, seed: 1}
merge: true
`)

	port := freePort(t)
	t.Setenv("LORAFLOW_DEV_PORT", fmt.Sprint(port)) // what every command below reads
	// The dev server outlives `run`; the test stops it.
	t.Cleanup(func() { _, _ = runCLI(t, "dev", "stop") })
	var out bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"run", specPath, "--ui=false"})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"Starting the Temporal dev server", "keeps running after this command", "Pipeline published", "adapter ", "evaluation  held-out loss",
		"merged ", "attested    adapter", "registry    cli version 1 alias champion", "carbon "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// The summary names the HTML report, which exists.
	if _, rest, ok := strings.Cut(out.String(), "              report "); !ok {
		t.Errorf("no report line:\n%s", out.String())
	} else if page, _, _ := strings.Cut(rest, " "); !strings.HasSuffix(page, "report.html") {
		t.Errorf("report line names %q", page)
	} else if _, err := os.Stat(page); err != nil {
		t.Errorf("the HTML report: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "loraflow", "temporal.db")); err != nil {
		t.Errorf("no SQLite database under the data dir: %v", err)
	}
	// `loraflow registry ls`, with no flags, lists what `run` published.
	t.Setenv("LORAFLOW_REGISTRY_URI", "")
	if got, err := runCLI(t, "registry", "ls"); err != nil || !strings.Contains(got, "cli") {
		t.Fatalf("loraflow registry ls after run: %v\n%s", err, got)
	}
	// The summary's verify command works as printed: no --key needed for
	// what the embedded default signed.
	_, line, ok := strings.Cut(out.String(), "  verify      loraflow verify ")
	if !ok {
		t.Fatalf("no verify line in the summary:\n%s", out.String())
	}
	adapter, _, _ := strings.Cut(strings.TrimSpace(line), " ")
	if got, err := runCLI(t, "verify", adapter); err != nil || !strings.Contains(got, "VERIFIED") {
		t.Fatalf("loraflow verify %s: %v\n%s", adapter, err, got)
	}
}

// TestCommandsAfterRun: the embedded default's dev server outlives `run`,
// so `runs ls` and `status` work afterwards with no flags; once it is
// stopped, `status` says so and how to start it, not "connection refused".
func TestCommandsAfterRun(t *testing.T) {
	testmodel.RequireTemporalCLI(t)
	ws := testmodel.NewWorkspace(t, 100)
	useEmbeddedDefault(t, ws.Dir)
	specPath := ws.WriteSpec(t, `name: after
base_model: base
dataset: {files: [data.jsonl], format: text}
lora: {r: 2, target_modules: [q_proj]}
training: {steps: 4, batch_size: 4, seq_len: 32, learning_rate: 0.01, seed: 1}
`)
	if got, err := runCLI(t, "run", specPath, "--ui=false", "--id", "after-1"); err != nil {
		t.Fatalf("run: %v\n%s", err, got)
	}
	// A rerun with the same inputs reuses the finished training, says so,
	// and claims no full-fine-tuning counterfactual for work not done.
	got, err := runCLI(t, "run", specPath, "--ui=false", "--id", "after-2")
	if err != nil || !strings.Contains(got, "training    reused: an earlier run") || strings.Contains(got, "full fine-tuning instead") {
		t.Fatalf("rerun: %v\n%s", err, got)
	}
	got, err = runCLI(t, "runs", "ls")
	if err != nil || !strings.Contains(got, "after-1") || !strings.Contains(got, "completed") {
		t.Fatalf("runs ls after run: %v\n%s", err, got)
	}
	if got, err := runCLI(t, "status", "after-1"); err != nil || !strings.Contains(got, "workflow after-1: completed") {
		t.Fatalf("status after run: %v\n%s", err, got)
	}
	if got, err := runCLI(t, "dev", "status"); err != nil || !strings.Contains(got, "Temporal dev server: 127.0.0.1:") {
		t.Fatalf("dev status: %v\n%s", err, got)
	}
	if got, err := runCLI(t, "dev", "stop"); err != nil || !strings.Contains(got, "Stopped the dev server") {
		t.Fatalf("dev stop: %v\n%s", err, got)
	}
	_, err = runCLI(t, "status", "after-1")
	if err == nil || strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "loraflow dev start") {
		t.Fatalf("status with the dev server gone: %v", err)
	}
	// `dev start` brings it back with the run kept.
	if got, err := runCLI(t, "dev", "start", "--ui=false"); err != nil {
		t.Fatalf("dev start: %v\n%s", err, got)
	}
	if got, err := runCLI(t, "status", "after-1"); err != nil || !strings.Contains(got, "completed") {
		t.Fatalf("status after dev start: %v\n%s", err, got)
	}
}
