package argo

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Job is one training run. The four paths are on the artifact store, absolute
// and under Config.ArtifactMountPath.
type Job struct {
	// Name of the Workflow; "" = DefaultName(job), derived from the inputs, so
	// that a retried activity finds the Workflow its previous attempt started.
	Name          string
	SnapshotPath  string // the prepared, validated dataset snapshot
	BaseModelPath string // the base checkpoint folder (config.json + safetensors)
	SpecPath      string // the pipeline spec (training hyper-parameters, LoRA config)
	OutputDir     string // where the trainer writes the PEFT adapter folder
	// ProgressFile, when set, is passed to the trainer as LORAFLOW_PROGRESS_FILE;
	// the trainer may write its progress there as JSON (see README.md), and
	// each heartbeat carries the latest.
	ProgressFile string
	Image        string            // overrides Config.Image
	GPUs         int               // overrides Config.GPUs when > 0
	ExtraArgs    []string          // appended to the trainer's flags
	Env          map[string]string // extra environment of the trainer
	Labels       map[string]string // extra labels of the Workflow and its pod
}

// Labels and annotations the backend puts on its Workflows.
const (
	LabelManagedBy       = "app.kubernetes.io/managed-by"
	LabelComponent       = "app.kubernetes.io/component"
	ManagedBy            = "loraflow"
	ComponentTrainer     = "trainer"
	AnnotationSnapshot   = "loraflow.dev/snapshot"
	AnnotationBaseModel  = "loraflow.dev/base-model"
	AnnotationSpec       = "loraflow.dev/spec"
	AnnotationOutput     = "loraflow.dev/output"
	EnvProgressFile      = "LORAFLOW_PROGRESS_FILE"
	artifactsVolume      = "artifacts"
	inputVolumePrefix    = "input-root-"
	tmpVolume            = "tmp"
	trainTemplate        = "train"
	trainerContainerName = "main" // Argo's name for a container template's container
)

// DefaultName is the Workflow name of a Job without one: "loraflow-train-"
// and 16 hex digits of a hash of everything that defines the run.
func DefaultName(job Job, image string, gpus int) string {
	h := sha256.New()
	for _, s := range []string{job.SnapshotPath, job.BaseModelPath, job.SpecPath, job.OutputDir, image, fmt.Sprint(gpus), strings.Join(job.ExtraArgs, "\x00")} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "loraflow-train-" + hex.EncodeToString(h.Sum(nil))[:16]
}

func badInput(format string, args ...any) *Error {
	return &Error{Reason: ReasonBadInput, ExitCode: -1, Message: fmt.Sprintf(format, args...)}
}

// BuildWorkflow returns the Workflow that Train submits for job: one container
// template running the trainer with the GPU limits, the artifact store mounted
// at the same path as in the workers, and a restricted security context.
func (b *Backend) BuildWorkflow(job Job) (*wfv1.Workflow, error) {
	c := b.cfg
	image := job.Image
	if image == "" {
		image = c.Image
	}
	gpus := c.GPUs
	if job.GPUs > 0 {
		gpus = job.GPUs
	}
	if job.GPUs < 0 {
		return nil, badInput("GPUs %d < 0", job.GPUs)
	}
	for _, p := range []struct{ flag, v string }{
		{"snapshot", job.SnapshotPath}, {"base", job.BaseModelPath}, {"spec", job.SpecPath}, {"out", job.OutputDir},
	} {
		if p.v == "" {
			return nil, badInput("no %s path", p.flag)
		}
		if p.flag == "base" && c.inputRootOf(p.v) != "" {
			continue // read from an input root, mounted read-only below
		}
		if !underRoot(c.ArtifactMountPath, p.v) {
			return nil, badInput("%s path %q is not under the artifact store %s%s", p.flag, p.v, c.ArtifactMountPath, c.inputRootsHint(p.flag))
		}
	}
	if job.ProgressFile != "" && !underRoot(c.ArtifactMountPath, job.ProgressFile) {
		return nil, badInput("progress file %q is not under the artifact store %s", job.ProgressFile, c.ArtifactMountPath)
	}
	name := job.Name
	if name == "" {
		name = DefaultName(job, image, gpus)
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 || len(name) > 63 {
		return nil, badInput("workflow name %q: %s", name, strings.Join(append(errs, "at most 63 characters"), "; "))
	}
	labels := map[string]string{LabelManagedBy: ManagedBy, LabelComponent: ComponentTrainer}
	for k, v := range job.Labels {
		if errs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...); len(errs) > 0 {
			return nil, badInput("label %s=%q: %s", k, v, strings.Join(errs, "; "))
		}
		labels[k] = v
	}

	args := []string{"--snapshot", job.SnapshotPath, "--base", job.BaseModelPath, "--spec", job.SpecPath, "--out", job.OutputDir}
	args = append(args, job.ExtraArgs...)
	env := []corev1.EnvVar{{Name: "HOME", Value: "/tmp"}}
	if job.ProgressFile != "" {
		env = append(env, corev1.EnvVar{Name: EnvProgressFile, Value: job.ProgressFile})
	}
	for _, k := range slices.Sorted(maps.Keys(job.Env)) {
		env = append(env, corev1.EnvVar{Name: k, Value: job.Env[k]})
	}

	res := *c.Resources.DeepCopy()
	if gpus > 0 {
		if res.Limits == nil {
			res.Limits = corev1.ResourceList{}
		}
		res.Limits[corev1.ResourceName(c.GPUResource)] = *resource.NewQuantity(int64(gpus), resource.DecimalSI)
	}

	volumes := []corev1.Volume{
		{Name: artifactsVolume, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c.ArtifactClaim}}},
		{Name: tmpVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	mounts := []corev1.VolumeMount{
		{Name: artifactsVolume, MountPath: c.ArtifactMountPath},
		{Name: tmpVolume, MountPath: "/tmp"},
	}
	for i, in := range c.InputClaims { // read-only, at the workers' paths
		name := fmt.Sprintf("%s%d", inputVolumePrefix, i)
		volumes = append(volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: in.Claim, ReadOnly: true}}})
		mounts = append(mounts, corev1.VolumeMount{Name: name, MountPath: in.MountPath, ReadOnly: true})
	}

	no, yes := false, true
	runAs := c.RunAsUser
	wf := &wfv1.Workflow{
		TypeMeta: metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "Workflow"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: c.Namespace,
			Labels:    labels,
			Annotations: map[string]string{
				AnnotationSnapshot:  job.SnapshotPath,
				AnnotationBaseModel: job.BaseModelPath,
				AnnotationSpec:      job.SpecPath,
				AnnotationOutput:    job.OutputDir,
			},
		},
		Spec: wfv1.WorkflowSpec{
			Entrypoint:         trainTemplate,
			ServiceAccountName: c.ServiceAccountName,
			PodMetadata:        &wfv1.Metadata{Labels: maps.Clone(labels)},
			NodeSelector:       maps.Clone(c.NodeSelector),
			Tolerations:        append([]corev1.Toleration(nil), c.Tolerations...),
			// Succeeded pods go at once; failed ones stay for `kubectl logs`.
			PodGC: &wfv1.PodGC{Strategy: wfv1.PodGCOnWorkflowSuccess},
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   &yes,
				RunAsUser:      &runAs,
				RunAsGroup:     &runAs,
				FSGroup:        &runAs,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Volumes: volumes,
			Templates: []wfv1.Template{{
				Name: trainTemplate,
				Container: &corev1.Container{
					Name:         trainerContainerName,
					Image:        image,
					Command:      append([]string(nil), c.TrainerCommand...),
					Args:         args,
					Env:          env,
					Resources:    res,
					VolumeMounts: mounts,
					SecurityContext: &corev1.SecurityContext{
						AllowPrivilegeEscalation: &no,
						ReadOnlyRootFilesystem:   &yes,
						RunAsNonRoot:             &yes,
						Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					},
				},
			}},
		},
	}
	if c.ActiveDeadline > 0 {
		secs := int64(c.ActiveDeadline.Seconds())
		wf.Spec.ActiveDeadlineSeconds = &secs
	}
	if c.TTLAfterCompletion > 0 {
		secs := int32(c.TTLAfterCompletion.Seconds())
		wf.Spec.TTLStrategy = &wfv1.TTLStrategy{SecondsAfterCompletion: &secs}
	}
	return wf, nil
}

// inputRootOf is the mount path of the input claim p lies under ("" when none).
func (c Config) inputRootOf(p string) string {
	for _, in := range c.InputClaims {
		if underRoot(in.MountPath, p) {
			return in.MountPath
		}
	}
	return ""
}

func (c Config) inputRootsHint(flag string) string {
	if flag != "base" {
		return ""
	}
	if len(c.InputClaims) == 0 {
		return " and no input claims are configured (LORAFLOW_ARGO_INPUT_CLAIMS)"
	}
	var ps []string
	for _, in := range c.InputClaims {
		ps = append(ps, in.MountPath)
	}
	return " or an input claim (" + strings.Join(ps, ", ") + ")"
}

func underRoot(root, p string) bool {
	// Absolute, and no "..", "." or "//" that could lead elsewhere.
	if !path.IsAbs(p) || path.Clean(p) != strings.TrimSuffix(p, "/") {
		return false
	}
	root = path.Clean(root)
	p = path.Clean(p)
	return p == root || strings.HasPrefix(p, root+"/") || root == "/"
}
