package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/loraflow/loraflow"
	"github.com/loraflow/loraflow/internal/temporalx"
	"github.com/loraflow/loraflow/provenance"
	"github.com/loraflow/loraflow/registry"
	"github.com/loraflow/loraflow/spec"
	"github.com/loraflow/loraflow/workflows"
)

func init() {
	register(newRunCmd)
	register(newStatusCmd)
	register(newCancelCmd)
}

// quietLogger keeps the SDK's and activities' logs out of the progress bar:
// they go to a log file.
func quietLogger(path string) (*slog.Logger, io.Closer, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo})), f, nil
}

type runFlags struct {
	connFlags
	artifactRoot string
	registryURI  string
	signingKey   string
	id           string
	detach       bool
	ui           bool
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run SPEC",
		Short: "Run a LoRA pipeline spec and follow its progress",
		Long: `Run starts the LoRA pipeline for SPEC on Temporal and draws its progress
until it ends, then prints a summary.

With no Temporal server configured (--address / LORAFLOW_TEMPORAL_ADDRESS), or
none reachable, it uses the embedded default: the Temporal CLI's dev server
(SQLite file under ~/.local/share/loraflow, Web UI on http://127.0.0.1:8233),
started when it is not running and left running afterwards (loraflow dev stop
ends it), and a worker in this process.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSpec(cmd.Context(), cmd.OutOrStdout(), args[0], f)
		},
	}
	f.add(cmd)
	// The in-process worker's settings (used when the spec names none).
	addSettings(cmd.Flags(), "artifact-root", "registry", "signing-key")
	fl := cmd.Flags()
	fl.StringVar(&f.id, "id", "", "workflow ID (default loraflow-NAME-TIMESTAMP)")
	fl.BoolVar(&f.detach, "detach", false, "start the run and return its ID without following it")
	fl.BoolVar(&f.ui, "ui", true, "serve the dev server's Web UI on the port + 1000 (when this command starts it)")
	return cmd
}

func runSpec(ctx context.Context, out io.Writer, specPath string, f runFlags) error {
	s, err := spec.Load(specPath)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	dataDir, err := temporalx.DataDir()
	if err != nil {
		return err
	}
	logger, closer, err := quietLogger(filepath.Join(dataDir, "loraflow.log"))
	if err != nil {
		return err
	}
	defer closer.Close()

	if err := f.resolve(); err != nil {
		return err
	}
	// Only the in-process worker uses these; a server's workers have their own.
	f.artifactRoot, f.signingKey = f.cfg.get("artifact-root"), f.cfg.get("signing-key")
	if f.cfg.sources["registry"] != fromDefault {
		f.registryURI = f.cfg.get("registry") // else the spec's, else the default
	}
	embedded := f.cfg.embedded() || !temporalx.Reachable(f.conn.Address, 2*time.Second)
	if embedded {
		if f.detach {
			return errors.New("--detach needs workers that outlive this command (set --address to a server with loraflow workers); the embedded default's worker runs in this process")
		}
		if !f.cfg.embedded() {
			fmt.Fprintf(out, "Temporal at %s is not reachable; using the embedded default.\n", f.conn.Address)
		}
		port, _ := f.cfg.devPort()
		// The dev server is plaintext and has the default namespace only.
		f.conn = temporalx.ConnOptions{Address: devAddress(port), Namespace: "default"}
		st, started, err := ensureDevServer(ctx, out, dataDir, port, f.ui)
		if err != nil {
			return err
		}
		if started {
			fmt.Fprintln(out, "It keeps running after this command, for status, runs ls and the Web UI (loraflow dev stop ends it).")
		}
		if st.UIPort != 0 {
			fmt.Fprintf(out, "Temporal Web UI: http://127.0.0.1:%d\n", st.UIPort)
		}
	}
	opts, err := f.conn.ClientOptions(logger)
	if err != nil {
		return err
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return fmt.Errorf("dialing temporal at %s: %w", f.conn.Address, err)
	}
	defer c.Close()

	if embedded {
		w, err := startLocalWorker(c, f, dataDir, s, logger)
		if err != nil {
			return err
		}
		defer w.Stop()
	}

	id := f.id
	if id == "" {
		id = fmt.Sprintf("loraflow-%s-%s", s.Name, time.Now().UTC().Format("20060102T150405"))
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: f.taskQueue}, workflows.PipelineName, *s)
	if err != nil {
		return fmt.Errorf("starting the pipeline: %w", err)
	}
	fmt.Fprintf(out, "Pipeline %s started (workflow %s, run %s)\n", s.Name, run.GetID(), run.GetRunID())
	if f.detach {
		return nil
	}
	res, err := follow(ctx, out, c, run)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			if embedded {
				return fmt.Errorf("stopped; run %s is kept in the dev server's database and goes on from its last checkpoint the next time `loraflow run` starts the embedded default", run.GetID())
			}
			return fmt.Errorf("stopped following %s; the run goes on (loraflow status %s, loraflow cancel %s)", run.GetID(), run.GetID(), run.GetID())
		}
		return err
	}
	printSummary(out, res)
	if len(res.Attestations) > 0 {
		// Say how to check what was made, and with which key.
		a := res.Attestations[0]
		key := " --key <the worker's public key>"
		if embedded && f.signingKey == "" && s.Signing.Key == "" {
			key = "   (trusts the embedded key " + embeddedPublicKey(dataDir) + ")"
		}
		fmt.Fprintf(out, "  verify      loraflow verify %s%s\n", strings.TrimPrefix(a.Artifact.URI, "file://"), key)
	}
	return nil
}

// startLocalWorker runs the embedded default's worker in this process.
// Its operator is the local user, who also wrote the spec: the spec's
// folders become input roots, and a registry, signing key or trusted keys
// the spec names become the worker's own (a shared worker, cmd/worker,
// declares them itself and a spec can only name them).
func startLocalWorker(c client.Client, f runFlags, dataDir string, s *spec.Spec, logger *slog.Logger) (worker.Worker, error) {
	cfg := loraflow.Config{
		ArtifactRoot: f.artifactRoot,
		RegistryURI:  f.registryURI,
		SigningKey:   f.signingKey,
		TrustedKeys:  s.Signing.TrustedKeys,
		Logger:       logger,
	}
	for _, p := range append([]string{s.BaseModel}, s.Dataset.Files...) {
		cfg.InputRoots = append(cfg.InputRoots, filepath.Dir(p))
	}
	if cfg.RegistryURI == "" {
		cfg.RegistryURI = s.Registry.URI
	}
	if k := s.Signing.Key; k != "" && k != f.signingKey {
		cfg.SigningKeys = map[string]string{k: k}
	}
	if cfg.ArtifactRoot == "" {
		cfg.ArtifactRoot = filepath.Join(dataDir, "artifacts")
	}
	if cfg.RegistryURI == "" {
		cfg.RegistryURI = registry.DefaultURI() // what `loraflow registry` reads
	}
	if cfg.SigningKey == "" {
		key, err := localSigningKey(embeddedKeyDir(dataDir))
		if err != nil {
			return nil, err
		}
		cfg.SigningKey = key
	}
	plugin, err := loraflow.Plugin(cfg)
	if err != nil {
		return nil, err
	}
	w := worker.New(c, f.taskQueue, worker.Options{Plugins: []worker.Plugin{plugin}})
	if err := w.Start(); err != nil {
		return nil, fmt.Errorf("starting the in-process worker: %w", err)
	}
	return w, nil
}

// embeddedKeyDir is where the embedded default keeps its signing key pair.
func embeddedKeyDir(dataDir string) string { return filepath.Join(dataDir, "keys") }

// embeddedPublicKey is the public half of the embedded default's key, which
// `loraflow verify` trusts when given no --key.
func embeddedPublicKey(dataDir string) string {
	return filepath.Join(embeddedKeyDir(dataDir), provenance.PublicKeyFile)
}

// localSigningKey returns the embedded default's signing key, generating an
// ECDSA P-256 key pair on first use.
func localSigningKey(dir string) (string, error) {
	priv := filepath.Join(dir, provenance.PrivateKeyFile)
	if _, err := os.Stat(priv); err == nil {
		return priv, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	p, _, err := provenance.GenerateKey(dir, provenance.KeyECDSAP256)
	return p, err
}

func newStatusCmd() *cobra.Command {
	var f connFlags
	cmd := &cobra.Command{
		Use:   "status ID",
		Short: "Show a pipeline run's stage and progress",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := f.dial(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				return err
			}
			defer c.Close()
			snap, err := snapshot(ctx, c, args[0], "")
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "workflow %s: %s\nstage: %s\n", args[0], snap.status, snap.progress.Stage)
			if snap.train != nil {
				fmt.Fprintf(out, "training: step %d/%d, loss %.4f, %.0f tokens/s", snap.train.Step, snap.train.TotalSteps, snap.train.Loss, snap.train.TokensPerSec)
				if step, path, ok := checkpointStep(snap.train.CheckpointURI); ok {
					fmt.Fprintf(out, ", last checkpoint step %d (%s)", step, path)
				}
				fmt.Fprintln(out)
			}
			if snap.attempt > 1 {
				fmt.Fprintf(out, "retrying: attempt %d after %s\n", snap.attempt, firstLine(snap.failure))
			}
			for _, st := range snap.progress.Completed {
				fmt.Fprintf(out, "  done %-12s %6.1fs\n", st.Stage, st.Seconds)
			}
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func newCancelCmd() *cobra.Command {
	var (
		f    connFlags
		wait time.Duration
	)
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a pipeline run and say where it stopped (training stops at its next heartbeat)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := f.dial(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				return err
			}
			defer c.Close()
			id := args[0]
			before, err := snapshot(ctx, c, id, "")
			if err != nil {
				return fmt.Errorf("cancel %s: %w", id, err)
			}
			if !before.running {
				return fmt.Errorf("cancel %s: the run is %s already", id, before.status)
			}
			if err := c.CancelWorkflow(ctx, id, ""); err != nil {
				return fmt.Errorf("cancel %s: %w", id, err)
			}
			out := cmd.OutOrStdout()
			last, closed := awaitClose(ctx, c, id, before, wait)
			if !closed {
				fmt.Fprintf(out, "cancellation requested for %s; it has not ended within %s (a worker must be running to stop it: loraflow status %s)\n", id, wait, id)
				return nil
			}
			msg := (&runError{id: id, outcome: last.status, train: last.train}).Error()
			if last.status == "canceled" && last.train == nil && last.progress.Stage != "" {
				msg += " during " + last.progress.Stage
			}
			fmt.Fprintln(out, msg)
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().DurationVar(&wait, "wait", 30*time.Second, "how long to wait for the run to stop (0: request and return)")
	return cmd
}

// awaitClose polls the run until it is no longer running or wait passes,
// keeping the training progress last seen (the pending activity, and its
// heartbeat, go when the cancellation lands).
func awaitClose(ctx context.Context, c client.Client, id string, last runSnapshot, wait time.Duration) (runSnapshot, bool) {
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		s, err := snapshot(ctx, c, id, "")
		if err == nil {
			if s.train != nil {
				last.train = s.train
			}
			last.status, last.running = s.status, s.running
			if s.progress.Stage != "" {
				last.progress = s.progress
			}
			if !s.running {
				return last, true
			}
		}
		select {
		case <-ctx.Done():
			return last, false
		case <-time.After(200 * time.Millisecond):
		}
	}
	return last, false
}
