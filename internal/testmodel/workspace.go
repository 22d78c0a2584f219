package testmodel

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/loraflow/loraflow/internal/temporalx"
	"github.com/loraflow/loraflow/provenance"
)

// Workspace is a folder holding what a pipeline spec needs: a tiny base
// model (base/), a text dataset (data.jsonl) and a signing key (keys/).
type Workspace struct {
	Dir     string
	Base    string // the base model folder
	Data    string // data.jsonl, format text
	Key     string // private signing key (PEM)
	PubKey  string
	KeyRel  string // Key relative to Dir, for specs
	Corpus  []string
	Started time.Time
}

// NewWorkspace writes a workspace into a fresh temporary folder; the model
// and the dataset come from Corpus(lines).
func NewWorkspace(t testing.TB, lines int) Workspace {
	t.Helper()
	w := Workspace{Dir: t.TempDir(), Corpus: Corpus(lines), Started: time.Now()}
	w.Base, w.Data = filepath.Join(w.Dir, "base"), filepath.Join(w.Dir, "data.jsonl")
	if err := Llama(w.Base, w.Corpus, 300, 1); err != nil {
		t.Fatal(err)
	}
	if err := WriteTextJSONL(w.Data, w.Corpus); err != nil {
		t.Fatal(err)
	}
	var err error
	if w.Key, w.PubKey, err = provenance.GenerateKey(filepath.Join(w.Dir, "keys"), provenance.KeyECDSAP256); err != nil {
		t.Fatal(err)
	}
	w.KeyRel = filepath.Join("keys", filepath.Base(w.Key))
	return w
}

// WriteSpec writes doc as spec.yaml in the workspace and returns its path.
func (w Workspace) WriteSpec(t testing.TB, doc string) string {
	t.Helper()
	p := filepath.Join(w.Dir, "spec.yaml")
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// WriteTextJSONL writes lines as a dataset of format text.
func WriteTextJSONL(path string, lines []string) error {
	var rows strings.Builder
	for _, l := range lines {
		b, err := json.Marshal(map[string]string{"text": l})
		if err != nil {
			return err
		}
		rows.Write(append(b, '\n'))
	}
	return os.WriteFile(path, []byte(rows.String()), 0o644)
}

// Quiet is a logger that drops everything, for workers and clients in tests.
func Quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// RequireTemporalCLI returns the Temporal CLI's path. Without the CLI the
// test fails in CI (where .ci/run installs it) and is skipped elsewhere.
func RequireTemporalCLI(t testing.TB) string {
	t.Helper()
	bin, err := temporalx.FindTemporalCLI()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return bin
}

// DevServer starts the Temporal CLI's dev server (installed, never
// downloaded) for the test and stops it at cleanup.
func DevServer(t testing.TB) *testsuite.DevServer {
	t.Helper()
	bin := RequireTemporalCLI(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:  bin,
		LogLevel:      "error",
		ClientOptions: &client.Options{Logger: sdklog.NewStructuredLogger(Quiet())},
		Stdout:        io.Discard, Stderr: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	return srv
}
