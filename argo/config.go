package argo

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"path"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Defaults of Config.
const (
	DefaultGPUResource       = "nvidia.com/gpu"
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultResyncInterval    = 30 * time.Second
	DefaultPollInterval      = 5 * time.Second
	DefaultAPIOutageTimeout  = 5 * time.Minute
	DefaultCleanupTimeout    = 30 * time.Second
	DefaultRunAsUser         = 65532
)

// DefaultTrainerCommand is the trainer entrypoint in the loraflow image.
var DefaultTrainerCommand = []string{"loraflow", "train"}

// Config says where and how training Workflows run. Namespace, Image,
// ArtifactClaim and ArtifactMountPath are required.
type Config struct {
	// Namespace of the Workflows (LORAFLOW_ARGO_NAMESPACE).
	Namespace string
	// Image is the default trainer image (LORAFLOW_ARGO_TRAINER_IMAGE).
	Image string
	// TrainerCommand is the container command; the backend appends the
	// --snapshot/--base/--spec/--out flags. Default DefaultTrainerCommand.
	TrainerCommand []string
	// ArtifactClaim is the PersistentVolumeClaim of the artifact store in
	// Namespace; it is mounted at ArtifactMountPath, the same path the
	// workers use, so Job paths mean the same file in both places.
	ArtifactClaim     string
	ArtifactMountPath string
	// InputClaims are the operator's further input roots (the workers'
	// --input-roots besides the artifact store): each claim is mounted
	// read-only in the trainer pod at the path the workers see it at, so a
	// base model read from one trains remotely too (LORAFLOW_ARGO_INPUT_CLAIMS).
	InputClaims []InputClaim
	// ServiceAccountName of the Workflow pods ("" = namespace default).
	ServiceAccountName string
	// GPUs per training pod when a Job does not say; GPUResource is the
	// extended resource name (default nvidia.com/gpu).
	GPUs        int
	GPUResource string
	// Resources of the trainer container besides the GPUs (requests and
	// limits of cpu, memory, ...).
	Resources    corev1.ResourceRequirements
	NodeSelector map[string]string
	Tolerations  []corev1.Toleration
	// ActiveDeadline bounds one run (Workflow activeDeadlineSeconds); 0 = none.
	ActiveDeadline time.Duration
	// RunAsUser of the trainer pod (non-root; default 65532).
	RunAsUser int64
	// TTLAfterCompletion lets Argo delete finished Workflows; 0 = keep them.
	TTLAfterCompletion time.Duration
	// KeepCancelled keeps a cancelled Workflow (terminated) instead of deleting it.
	KeepCancelled bool

	// HeartbeatInterval: the heartbeat callback is called at least this often
	// while the Workflow runs (and on every change seen).
	HeartbeatInterval time.Duration
	// ResyncInterval: while watching, the Workflow is also read with Get this
	// often, so a lost watch event delays completion by at most this much.
	ResyncInterval time.Duration
	// PollInterval: when a watch cannot be opened, the Workflow is polled with
	// Get this often.
	PollInterval time.Duration
	// APIOutageTimeout: Train gives up with a retryable error once the API
	// server has failed every call for this long.
	APIOutageTimeout time.Duration
	// CleanupTimeout bounds stopping and deleting a cancelled Workflow.
	CleanupTimeout time.Duration

	// ValidateAdapter, when set, is called on the output folder after the
	// built-in checks (files present, config JSON, safetensors header), e.g.
	// to load it with the engine and compare shapes and digests. An error
	// makes Train fail with a non-retryable InvalidAdapter error.
	ValidateAdapter func(dir string) error

	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if len(c.TrainerCommand) == 0 {
		c.TrainerCommand = DefaultTrainerCommand
	}
	if c.GPUResource == "" {
		c.GPUResource = DefaultGPUResource
	}
	if c.RunAsUser == 0 {
		c.RunAsUser = DefaultRunAsUser
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.ResyncInterval <= 0 {
		c.ResyncInterval = DefaultResyncInterval
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.APIOutageTimeout <= 0 {
		c.APIOutageTimeout = DefaultAPIOutageTimeout
	}
	if c.CleanupTimeout <= 0 {
		c.CleanupTimeout = DefaultCleanupTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// InputClaim is one read-only input root of the trainer pods: an existing
// PersistentVolumeClaim in Namespace and the absolute path it is mounted at.
type InputClaim struct {
	Claim     string
	MountPath string
}

func (c Config) validate() error {
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"Namespace", c.Namespace}, {"Image", c.Image},
		{"ArtifactClaim", c.ArtifactClaim}, {"ArtifactMountPath", c.ArtifactMountPath},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("argo: config: %s not set", strings.Join(missing, ", "))
	}
	if !path.IsAbs(c.ArtifactMountPath) {
		return fmt.Errorf("argo: config: ArtifactMountPath %q is not absolute", c.ArtifactMountPath)
	}
	if c.GPUs < 0 {
		return fmt.Errorf("argo: config: GPUs %d < 0", c.GPUs)
	}
	mounts := map[string]bool{path.Clean(c.ArtifactMountPath): true, "/tmp": true}
	for i, in := range c.InputClaims {
		switch {
		case in.Claim == "" || len(validation.IsDNS1123Subdomain(in.Claim)) > 0:
			return fmt.Errorf("argo: config: InputClaims[%d]: claim %q is not a claim name", i, in.Claim)
		case !path.IsAbs(in.MountPath) || path.Clean(in.MountPath) == "/":
			return fmt.Errorf("argo: config: InputClaims[%d] (%s): mount path %q is not an absolute folder", i, in.Claim, in.MountPath)
		case mounts[path.Clean(in.MountPath)]:
			return fmt.Errorf("argo: config: InputClaims[%d] (%s): mount path %q is already mounted", i, in.Claim, in.MountPath)
		}
		mounts[path.Clean(in.MountPath)] = true
	}
	if c.RunAsUser < 0 {
		return fmt.Errorf("argo: config: RunAsUser %d is root or negative", c.RunAsUser)
	}
	return nil
}

// Environment variables read by ConfigFromEnv; the Helm chart sets them.
const (
	EnvNamespace         = "LORAFLOW_ARGO_NAMESPACE"
	EnvTrainerImage      = "LORAFLOW_ARGO_TRAINER_IMAGE"
	EnvArtifactClaim     = "LORAFLOW_ARGO_ARTIFACT_CLAIM"
	EnvArtifactMountPath = "LORAFLOW_ARGO_ARTIFACT_MOUNT_PATH"
	EnvServiceAccount    = "LORAFLOW_ARGO_SERVICE_ACCOUNT"
	EnvGPUs              = "LORAFLOW_ARGO_GPUS"
	EnvGPUResource       = "LORAFLOW_ARGO_GPU_RESOURCE"
	EnvNodeSelector      = "LORAFLOW_ARGO_NODE_SELECTOR" // JSON object
	EnvTolerations       = "LORAFLOW_ARGO_TOLERATIONS"   // JSON array of tolerations
	EnvActiveDeadline    = "LORAFLOW_ARGO_ACTIVE_DEADLINE_SECONDS"
	EnvRunAsUser         = "LORAFLOW_ARGO_RUN_AS_USER"
	EnvCPU               = "LORAFLOW_ARGO_CPU"          // request, e.g. "8"
	EnvMemory            = "LORAFLOW_ARGO_MEMORY"       // request and limit, e.g. "64Gi"
	EnvInputClaims       = "LORAFLOW_ARGO_INPUT_CLAIMS" // CLAIM=/mount/path,... (the Helm chart's trust.inputRoots)
	// EnvArtifactRoot is the workers' artifact root; it is the default mount path.
	EnvArtifactRoot = "LORAFLOW_ARTIFACT_ROOT"
)

// ConfigFromEnv reads a Config from the LORAFLOW_ARGO_* variables (getenv is
// usually os.Getenv). Unset variables keep their zero value (then the
// defaults apply); malformed ones are errors naming the variable.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Namespace:          getenv(EnvNamespace),
		Image:              getenv(EnvTrainerImage),
		ArtifactClaim:      getenv(EnvArtifactClaim),
		ArtifactMountPath:  getenv(EnvArtifactMountPath),
		ServiceAccountName: getenv(EnvServiceAccount),
		GPUResource:        getenv(EnvGPUResource),
	}
	if c.ArtifactMountPath == "" {
		c.ArtifactMountPath = getenv(EnvArtifactRoot)
	}
	if v := getenv(EnvInputClaims); v != "" {
		for _, pair := range strings.Split(v, ",") {
			claim, mount, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if !ok {
				return c, fmt.Errorf("argo: %s: %q is not CLAIM=/mount/path", EnvInputClaims, pair)
			}
			c.InputClaims = append(c.InputClaims, InputClaim{Claim: claim, MountPath: mount})
		}
	}
	intVar := func(name string, dst *int64) error {
		if v := getenv(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("argo: %s=%q: %w", name, v, err)
			}
			*dst = n
		}
		return nil
	}
	var gpus, deadline int64
	if err := intVar(EnvGPUs, &gpus); err != nil {
		return c, err
	}
	if err := intVar(EnvActiveDeadline, &deadline); err != nil {
		return c, err
	}
	if err := intVar(EnvRunAsUser, &c.RunAsUser); err != nil {
		return c, err
	}
	c.GPUs = int(gpus)
	c.ActiveDeadline = time.Duration(deadline) * time.Second
	if v := getenv(EnvNodeSelector); v != "" {
		if err := json.Unmarshal([]byte(v), &c.NodeSelector); err != nil {
			return c, fmt.Errorf("argo: %s: %w", EnvNodeSelector, err)
		}
	}
	if v := getenv(EnvTolerations); v != "" {
		if err := json.Unmarshal([]byte(v), &c.Tolerations); err != nil {
			return c, fmt.Errorf("argo: %s: %w", EnvTolerations, err)
		}
	}
	for _, q := range []struct {
		env  string
		name corev1.ResourceName
		lim  bool
	}{{EnvCPU, corev1.ResourceCPU, false}, {EnvMemory, corev1.ResourceMemory, true}} {
		v := getenv(q.env)
		if v == "" {
			continue
		}
		qty, err := resource.ParseQuantity(v)
		if err != nil {
			return c, fmt.Errorf("argo: %s=%q: %w", q.env, v, err)
		}
		if c.Resources.Requests == nil {
			c.Resources.Requests = corev1.ResourceList{}
		}
		c.Resources.Requests[q.name] = qty
		if q.lim {
			if c.Resources.Limits == nil {
				c.Resources.Limits = corev1.ResourceList{}
			}
			c.Resources.Limits[q.name] = qty
		}
	}
	return c, nil
}
