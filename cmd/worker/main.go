// Command worker is a Temporal worker with the loraflow plugin: it runs the
// LoRA pipeline workflow and its activities for one task queue. Every flag
// has a LORAFLOW_* environment variable (the Helm chart sets those).
//
//	worker                 run until SIGTERM/SIGINT, then drain and stop
//	worker check           exit 0 when Temporal is reachable (probes, helm test)
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/loraflow/loraflow"
	"github.com/loraflow/loraflow/argo"
	_ "github.com/loraflow/loraflow/carbon/nvml" // a GPU worker measures its GPUs' energy (NVML)
	"github.com/loraflow/loraflow/internal/temporalx"
	"github.com/loraflow/loraflow/trust"
)

type options struct {
	conn        temporalx.ConnOptions
	taskQueue   string
	trainQueue  string
	role        string
	plugin      loraflow.Config
	trustedKeys string
	inputRoots  string
	registries  string
	signingKeys string
	metricsAddr string
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var o options
	pue, _ := strconv.ParseFloat(env("LORAFLOW_PUE", "1.0"), 64)
	root := &cobra.Command{
		Use:           "worker",
		Short:         "Run a loraflow Temporal worker",
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), o, logger)
		},
	}
	f := root.PersistentFlags()
	f.StringVar(&o.conn.Address, "address", env("LORAFLOW_TEMPORAL_ADDRESS", "127.0.0.1:7233"), "Temporal frontend host:port")
	f.StringVar(&o.conn.Namespace, "namespace", env("LORAFLOW_NAMESPACE", "default"), "Temporal namespace")
	f.StringVar(&o.conn.TLSCert, "tls-cert", os.Getenv("LORAFLOW_TLS_CERT"), "client certificate PEM (mTLS)")
	f.StringVar(&o.conn.TLSKey, "tls-key", os.Getenv("LORAFLOW_TLS_KEY"), "client key PEM (mTLS)")
	f.StringVar(&o.conn.TLSCA, "tls-ca", os.Getenv("LORAFLOW_TLS_CA"), "server CA PEM")
	rf := root.Flags()
	rf.StringVar(&o.taskQueue, "task-queue", env("LORAFLOW_TASK_QUEUE", "loraflow"), "task queue to poll")
	rf.StringVar(&o.trainQueue, "train-task-queue", os.Getenv("LORAFLOW_TRAIN_TASK_QUEUE"), "task queue that TrainLoRA is sent to (GPU workers)")
	rf.StringVar(&o.role, "role", env("LORAFLOW_WORKER_ROLE", loraflow.RoleAll), "all, or train (TrainLoRA only)")
	rf.StringVar(&o.plugin.ArtifactRoot, "artifact-root", env("LORAFLOW_ARTIFACT_ROOT", "/var/lib/loraflow/artifacts"), "artifact store folder (shared by all workers)")
	rf.StringVar(&o.plugin.RegistryURI, "registry", os.Getenv("LORAFLOW_REGISTRY_URI"), "registry URI: file:///path or http(s):// MLflow")
	rf.StringVar(&o.plugin.SigningKey, "signing-key", os.Getenv("LORAFLOW_SIGNING_KEY"), "signing key: PEM path, env:VAR or secret folder")
	rf.StringVar(&o.trustedKeys, "trusted-keys", os.Getenv("LORAFLOW_TRUSTED_KEYS"), "comma-separated public key PEM paths trusted for verification")
	rf.StringVar(&o.inputRoots, "input-roots", os.Getenv("LORAFLOW_INPUT_ROOTS"), "comma-separated folders (besides the artifact root) from which specs may read base models and datasets")
	rf.StringVar(&o.registries, "registries", os.Getenv("LORAFLOW_REGISTRIES"), "comma-separated NAME=URI registries a spec may name (registry.name); credentials come from the environment")
	rf.StringVar(&o.signingKeys, "signing-keys", os.Getenv("LORAFLOW_SIGNING_KEYS"), "comma-separated NAME=SOURCE signing keys a spec may name (signing.key)")
	samples, _ := strconv.ParseBool(os.Getenv("LORAFLOW_REPORT_SAMPLES_UNSAFE"))
	rf.BoolVar(&o.plugin.ReportSamplesUnsafe, "report-samples-unsafe", samples, "let published eval reports quote the first words of held-out rows")
	rf.StringVar(&o.plugin.Region, "region", os.Getenv("LORAFLOW_REGION"), "carbon region: ISO country code or provider:region")
	rf.Float64Var(&o.plugin.PUE, "pue", pue, "data centre power usage effectiveness")
	rf.StringVar(&o.plugin.TrainerBackend, "trainer-backend", env("LORAFLOW_TRAINER_BACKEND", "local"), "local, or argo (training as Argo Workflows; LORAFLOW_ARGO_* configure it)")
	rf.StringVar(&o.metricsAddr, "metrics-addr", os.Getenv("LORAFLOW_METRICS_ADDR"), "Prometheus /metrics listen address (empty: off)")
	gcAge, _ := time.ParseDuration(os.Getenv("LORAFLOW_GC_OLDER_THAN"))
	rf.DurationVar(&o.plugin.GC.OlderThan, "gc-older-than", gcAge, "after each published run, remove work folders and unreferenced objects untouched this long (0: 168h; at most hourly, 30 s at most)")
	gcOff, _ := strconv.ParseBool(os.Getenv("LORAFLOW_GC_DISABLED"))
	rf.BoolVar(&o.plugin.GC.Disabled, "no-gc", gcOff, "no automatic gc after a run (loraflow gc still works)")

	root.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Exit 0 when Temporal is reachable",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			if err := temporalx.Check(ctx, o.conn, logger); err != nil {
				return err
			}
			fmt.Println("temporal reachable at", o.conn.Address)
			return nil
		},
	})
	if err := root.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

// list splits a comma-separated flag value.
func list(v string) []string {
	var out []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// pairs splits a comma-separated NAME=VALUE flag value.
func pairs(flag, v string) ([][2]string, error) {
	var out [][2]string
	for _, e := range list(v) {
		name, value, ok := strings.Cut(e, "=")
		if !ok || name == "" || value == "" {
			return nil, fmt.Errorf("%s: %q is not NAME=VALUE", flag, e)
		}
		out = append(out, [2]string{name, value})
	}
	return out, nil
}

func run(ctx context.Context, o options, logger *slog.Logger) error {
	if o.role == loraflow.RoleTrain && o.trainQueue == "" {
		return fmt.Errorf("--role train needs --train-task-queue (LORAFLOW_TRAIN_TASK_QUEUE): a train-only worker on the main queue would fail every other activity")
	}
	o.plugin.Role, o.plugin.TrainTaskQueue, o.plugin.Logger = o.role, o.trainQueue, logger
	o.plugin.TrustedKeys = list(o.trustedKeys)
	o.plugin.InputRoots = list(o.inputRoots)
	regs, err := pairs("--registries", o.registries)
	if err != nil {
		return err
	}
	for _, r := range regs {
		o.plugin.Registries = append(o.plugin.Registries, trust.Registry{Name: r[0], URI: r[1]})
	}
	keys, err := pairs("--signing-keys", o.signingKeys)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if o.plugin.SigningKeys == nil {
			o.plugin.SigningKeys = map[string]string{}
		}
		o.plugin.SigningKeys[k[0]] = k[1]
	}
	if o.plugin.TrainerBackend == "argo" {
		ac, err := argo.ConfigFromEnv(os.Getenv)
		if err != nil {
			return fmt.Errorf("argo trainer backend: %w", err)
		}
		b, err := argo.NewInCluster(ac)
		if err != nil {
			return fmt.Errorf("argo trainer backend: %w", err)
		}
		o.plugin.RemoteTrainer = argo.RemoteTrainer(b)
	}
	plugin, err := loraflow.Plugin(o.plugin)
	if err != nil {
		return err
	}
	copts, err := o.conn.ClientOptions(logger)
	if err != nil {
		return err
	}
	if o.metricsAddr != "" {
		stop, handler, err := serveMetrics(o.metricsAddr, logger)
		if err != nil {
			return err
		}
		defer stop()
		copts.MetricsHandler = handler
	}
	c, err := client.DialContext(ctx, copts)
	if err != nil {
		return fmt.Errorf("dialing temporal at %s: %w", o.conn.Address, err)
	}
	defer c.Close()
	queue := o.taskQueue
	if o.role == loraflow.RoleTrain && o.trainQueue != "" {
		queue = o.trainQueue
	}
	w := worker.New(c, queue, worker.Options{Plugins: []worker.Plugin{plugin}, WorkerStopTimeout: 30 * time.Second})
	logger.Info("loraflow worker starting", "address", o.conn.Address, "namespace", o.conn.Namespace, "task_queue", queue, "role", o.role)
	// worker.InterruptCh closes on SIGINT and SIGTERM; Run then stops
	// polling and waits for running activities up to WorkerStopTimeout.
	return w.Run(worker.InterruptCh())
}
