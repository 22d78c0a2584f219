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
	var out bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"run", specPath, "--dev-port", fmt.Sprint(port), "--ui=false"})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"Starting the Temporal dev server", "Pipeline published", "adapter ", "evaluation  held-out loss",
		"merged ", "attested    adapter", "registry    cli version 1 alias champion", "carbon "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
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
