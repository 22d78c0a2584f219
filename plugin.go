// Package loraflow is a Temporal plugin that adds durable, auditable LoRA
// fine-tuning pipelines to any Temporal worker:
//
//	p, err := loraflow.Plugin(loraflow.Config{ArtifactRoot: "/data/artifacts"})
//	w := worker.New(c, "loraflow", worker.Options{Plugins: []worker.Plugin{p}})
//
// The plugin registers the LoRAPipeline workflow and its activities (see
// packages workflows and activities); each activity measures its own energy
// and emissions.
package loraflow

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/loraflow/loraflow/activities"
	"github.com/loraflow/loraflow/artifact"
	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/pipeline"
	"github.com/loraflow/loraflow/trust"
	"github.com/loraflow/loraflow/workflows"
)

// Version is the plugin's version, reported in worker heartbeats.
var Version = "0.1.0"

// heartbeatThrottle bounds how long the SDK holds back activity heartbeats.
const heartbeatThrottle = 2 * time.Second

// Worker roles.
const (
	RoleAll   = "all"   // the pipeline workflow and every activity
	RoleTrain = "train" // TrainLoRA only (GPU workers on their own task queue)
)

// Config is the plugin's configuration: where artifacts live, which key
// signs, which registry receives versions, and the carbon context.
type Config struct {
	// ArtifactRoot is the artifact store's folder (or file:// URI); shared
	// by all workers of a deployment.
	ArtifactRoot string
	// SigningKey signs attestations: a PEM file, env:VAR, or a mounted
	// Kubernetes secret folder. SigningKeys are further keys by name; a
	// spec's signing.key may only name one of them.
	SigningKey  string
	SigningKeys map[string]string
	// TrustedKeys are public key PEM files trusted when verifying provenance
	// (the signing keys' public keys are trusted too). A spec cannot add any.
	TrustedKeys []string
	// RegistryURI is the default registry: file:///path or http(s):// (MLflow),
	// without credentials (they come from the worker's environment).
	// Registries are further registries a spec may name (registry.name).
	RegistryURI string
	Registries  []trust.Registry
	// InputRoots are the folders, besides ArtifactRoot, from which a spec's
	// base model and dataset files may be read.
	InputRoots []string
	// ReportSamplesUnsafe lets eval reports (published with the version)
	// quote the first words of held-out rows.
	ReportSamplesUnsafe bool
	// Region (ISO country code or provider:region) and PUE are the carbon
	// defaults; a spec may override them.
	Region string
	PUE    float64
	// TrainTaskQueue, when set, routes TrainLoRA to that queue.
	TrainTaskQueue string
	// Role is RoleAll (default) or RoleTrain.
	Role string
	// TrainerBackend is "local" (default: train in the worker) or "argo"
	// (hand training to RemoteTrainer, which must then be set).
	TrainerBackend string
	// ActivityMemoryBytes is the memory one activity may use (default
	// DefaultActivityMemory); the worker runs at most
	// max(1, 0.8 × memory limit / ActivityMemoryBytes) activities at once
	// unless its options set MaxConcurrentActivityExecutionSize. When set,
	// it is also the engine's memory limit (lora.SetMemoryLimit): a model or
	// a batch estimated above it is refused before anything is allocated.
	ActivityMemoryBytes int64
	// RemoteTrainer runs training off the worker when TrainerBackend is
	// "argo" (cmd/worker builds it with argo.RemoteTrainer from its
	// LORAFLOW_ARGO_* settings). Setting it with the local backend is
	// refused.
	RemoteTrainer pipeline.RemoteTrainer
	// GC configures the bounded garbage collection of the artifact store
	// after each published run (on by default; GC.Disabled turns it off).
	GC     artifact.AutoGCOptions
	Logger *slog.Logger
}

// Plugin returns the loraflow plugin for client.Options.Plugins or
// worker.Options.Plugins.
func Plugin(cfg Config) (*temporal.SimplePlugin, error) {
	acts, err := NewActivities(cfg)
	if err != nil {
		return nil, err
	}
	return temporal.NewSimplePlugin(temporal.SimplePluginOptions{
		Name:    "loraflow",
		Version: Version,
		ConfigureWorker: func(ctx context.Context, o worker.PluginConfigureWorkerOptions) error {
			// Training progress (step, loss, checkpoint) reaches the server,
			// and so `loraflow run`'s progress bar, every few seconds rather
			// than at 80% of the heartbeat timeout. Options a team set win.
			if o.WorkerOptions.MaxHeartbeatThrottleInterval == 0 {
				o.WorkerOptions.MaxHeartbeatThrottleInterval = heartbeatThrottle
			}
			if o.WorkerOptions.DefaultHeartbeatThrottleInterval == 0 {
				o.WorkerOptions.DefaultHeartbeatThrottleInterval = heartbeatThrottle
			}
			if o.WorkerOptions.MaxConcurrentActivityExecutionSize == 0 {
				if limit := memoryLimit(); limit > 0 {
					o.WorkerOptions.MaxConcurrentActivityExecutionSize = activitySlots(limit, cfg.ActivityMemoryBytes)
				}
			}
			return nil
		},
		RunContextBefore: func(ctx context.Context, o temporal.SimplePluginRunContextBeforeOptions) error {
			Register(o.Registry, acts, cfg)
			return nil
		},
	})
}

// NewActivities builds the activities' dependencies from cfg.
func NewActivities(cfg Config) (*activities.Activities, error) {
	if cfg.ArtifactRoot == "" {
		return nil, fmt.Errorf("loraflow: Config.ArtifactRoot is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	store, err := artifact.Open(cfg.ArtifactRoot)
	if err != nil {
		return nil, err
	}
	store.SetAutoGC(cfg.GC)
	if cfg.ActivityMemoryBytes > 0 { // the operator's bound on one activity is the engine's limit too
		lora.SetMemoryLimit(cfg.ActivityMemoryBytes)
	}
	tc := trust.Config{ArtifactRoot: store.Root(), InputRoots: cfg.InputRoots, Registries: cfg.Registries,
		SigningKey: cfg.SigningKey, SigningKeys: cfg.SigningKeys, TrustedKeys: cfg.TrustedKeys}
	if cfg.RegistryURI != "" {
		tc.Registries = append([]trust.Registry{{Name: trust.DefaultName, URI: cfg.RegistryURI}}, cfg.Registries...)
	}
	var topts []trust.Option
	if cfg.ReportSamplesUnsafe {
		topts = append(topts, trust.WithReportSamplesUnsafe())
	}
	policy, err := trust.New(tc, topts...)
	if err != nil {
		return nil, fmt.Errorf("loraflow: %w", err)
	}
	acts := &activities.Activities{
		Store:  store,
		Trust:  policy,
		Region: cfg.Region,
		PUE:    cfg.PUE,
		Logger: cfg.Logger,
	}
	switch cfg.TrainerBackend {
	case "", "local":
		if cfg.RemoteTrainer != nil {
			return nil, fmt.Errorf("loraflow: Config.RemoteTrainer is set but the trainer backend is local")
		}
	case "argo":
		if cfg.RemoteTrainer == nil {
			return nil, fmt.Errorf("loraflow: the argo trainer backend needs Config.RemoteTrainer")
		}
		acts.RemoteTrainer = cfg.RemoteTrainer
	default:
		return nil, fmt.Errorf("loraflow: unknown trainer backend %q (local, argo)", cfg.TrainerBackend)
	}
	return acts, nil
}

// registry is the part of a worker's registry the plugin uses.
type registry interface {
	RegisterWorkflowWithOptions(any, workflow.RegisterOptions)
	RegisterActivityWithOptions(any, activity.RegisterOptions)
}

// Register adds the pipeline workflow and the activities for cfg.Role.
func Register(r registry, acts *activities.Activities, cfg Config) {
	if cfg.Role == RoleTrain {
		r.RegisterActivityWithOptions(acts.TrainLoRA, activity.RegisterOptions{Name: "TrainLoRA"})
		r.RegisterActivityWithOptions(acts.StopRemoteTraining, activity.RegisterOptions{Name: "StopRemoteTraining"})
		return
	}
	r.RegisterWorkflowWithOptions(workflows.NewPipeline(workflows.Options{TrainTaskQueue: cfg.TrainTaskQueue}),
		workflow.RegisterOptions{Name: workflows.PipelineName})
	r.RegisterActivityWithOptions(acts, activity.RegisterOptions{})
}
