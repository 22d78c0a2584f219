// Package charts_test checks the loraflow Helm chart offline: `helm lint
// --strict`, `helm template` with the value sets under loraflow/ci, every
// rendered object decoded strictly into its Kubernetes Go type, the pod
// security settings, the RBAC-only-with-Argo rule, the wiring between objects
// (selectors, volumes, ConfigMap, RoleBinding), the worker environment
// contract, and values.schema.json rejecting bad values.
package charts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	argofake "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	k8stesting "k8s.io/client-go/testing"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/loraflow/loraflow/argo"
)

const (
	helmModule  = "helm.sh/helm/v3/cmd/helm@v3.22.0"
	helmVersion = "v3.22"
	chartDir    = "loraflow"
	// Helm built from source (go install) defaults to Kubernetes v1.20 for
	// .Capabilities; render for a supported cluster version instead.
	kubeVersion = "1.31.0"
	release     = "lf"
	namespace   = "ml"
)

var (
	helmOnce sync.Once
	helmPath string
	helmErr  error
)

// helm returns the path of a helm v3.22 binary, building it with `go install`
// into GOBIN (or GOPATH/bin) the first time; later runs reuse it. The test is
// skipped, visibly, only when it cannot be built (no module proxy).
func helm(t *testing.T) string {
	t.Helper()
	helmOnce.Do(func() { helmPath, helmErr = installHelm() })
	if helmErr != nil {
		t.Skipf("SKIPPED: helm %s could not be built: %v", helmModule, helmErr)
	}
	return helmPath
}

func installHelm() (string, error) {
	// A helm already on PATH at the pinned version is used as it is.
	if p, err := exec.LookPath("helm"); err == nil {
		if v, err := exec.Command(p, "version", "--template", "{{.Version}}").Output(); err == nil && strings.HasPrefix(string(v), helmVersion) {
			return p, nil
		}
	}
	out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("go env: %w", err)
	}
	lines := strings.Split(string(out), "\n")
	dir := strings.TrimSpace(lines[0])
	if dir == "" && len(lines) > 1 {
		dir = filepath.Join(strings.SplitN(strings.TrimSpace(lines[1]), string(os.PathListSeparator), 2)[0], "bin")
	}
	bin := filepath.Join(dir, "helm")
	if v, err := exec.Command(bin, "version", "--template", "{{.Version}}").Output(); err == nil && strings.HasPrefix(string(v), helmVersion) {
		return bin, nil
	}
	cmd := exec.Command("go", "install", helmModule)
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %w\n%s", helmModule, err, out)
	}
	fmt.Fprintf(os.Stderr, "built helm %s in %s\n", helmModule, time.Since(start).Round(time.Second))
	return bin, nil
}

func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helm(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Keep helm away from the user's repositories and caches.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// object is one rendered manifest.
type object struct {
	Source string // template file, from helm's "# Source:" comment
	Kind   string
	Name   string
	Ns     string
	Typed  any // *appsv1.Deployment, *corev1.ConfigMap, ...
}

type rendered struct {
	objs []object
}

func (r rendered) all(kind string) []object {
	var out []object
	for _, o := range r.objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func (r rendered) get(t *testing.T, kind, name string) any {
	t.Helper()
	v, ok := r.lookup(kind, name)
	if !ok {
		t.Fatalf("no %s %q rendered", kind, name)
	}
	return v
}

func (r rendered) lookup(kind, name string) (any, bool) {
	for _, o := range r.objs {
		if o.Kind == kind && o.Name == name {
			return o.Typed, true
		}
	}
	return nil, false
}

// newTyped maps every kind the chart may render to its Go type; a kind not
// listed here fails the test.
func newTyped(apiVersion, kind string) (any, error) {
	switch apiVersion + "/" + kind {
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "v1/Service":
		return &corev1.Service{}, nil
	case "v1/PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}, nil
	case "v1/Pod":
		return &corev1.Pod{}, nil
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, nil
	case "batch/v1/Job":
		return &batchv1.Job{}, nil
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, nil
	case "rbac.authorization.k8s.io/v1/Role":
		return &rbacv1.Role{}, nil
	case "rbac.authorization.k8s.io/v1/RoleBinding":
		return &rbacv1.RoleBinding{}, nil
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}, nil
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "keda.sh/v1alpha1/ScaledObject":
		return &scaledObject{}, nil
	}
	return nil, fmt.Errorf("unexpected kind %s %s", apiVersion, kind)
}

var (
	docSep    = regexp.MustCompile(`(?m)^---\s*$`)
	sourceRef = regexp.MustCompile(`(?m)^# Source: (\S+)`)
)

// decodeStrict decodes one YAML document into its Go type: duplicate keys,
// unknown fields, fields in the wrong case and malformed values (quantities,
// ports, ...) all fail.
func decodeStrict(doc []byte) (object, error) {
	var o object
	if m := sourceRef.FindSubmatch(doc); m != nil {
		o.Source = string(m[1])
	}
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return o, fmt.Errorf("%s: yaml: %w", o.Source, err)
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(js, &head); err != nil {
		return o, fmt.Errorf("%s: %w", o.Source, err)
	}
	o.Kind, o.Name, o.Ns = head.Kind, head.Metadata.Name, head.Metadata.Namespace
	typed, err := newTyped(head.APIVersion, head.Kind)
	if err != nil {
		return o, fmt.Errorf("%s: %w", o.Source, err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(typed); err != nil {
		return o, fmt.Errorf("%s: %s %q: %w", o.Source, o.Kind, o.Name, err)
	}
	// encoding/json matches field names case-insensitively; the API server
	// does not. sigs.k8s.io/json reports case mismatches and duplicates.
	fresh, _ := newTyped(head.APIVersion, head.Kind)
	strictErrs, err := sigsjson.UnmarshalStrict(js, fresh)
	if err != nil {
		return o, fmt.Errorf("%s: %s %q: %w", o.Source, o.Kind, o.Name, err)
	}
	if len(strictErrs) > 0 {
		return o, fmt.Errorf("%s: %s %q: %w", o.Source, o.Kind, o.Name, errors.Join(strictErrs...))
	}
	o.Typed = typed
	return o, nil
}

// render runs `helm template` with the given values file (relative to the
// chart) plus --set pairs, and decodes every object strictly. Test hooks are
// included (helm template renders them).
func render(t *testing.T, valuesFile string, sets ...string) rendered {
	t.Helper()
	out, err := template(t, valuesFile, sets...)
	if err != nil {
		t.Fatal(err)
	}
	var r rendered
	for _, doc := range docSep.Split(out, -1) {
		if strings.TrimSpace(sourceRef.ReplaceAllString(doc, "")) == "" {
			continue
		}
		o, err := decodeStrict([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v\n%s", valuesFile, err, doc)
		}
		r.objs = append(r.objs, o)
	}
	if len(r.objs) == 0 {
		t.Fatalf("%s: helm template rendered nothing", valuesFile)
	}
	return r
}

func template(t *testing.T, valuesFile string, sets ...string) (string, error) {
	t.Helper()
	args := []string{"template", release, chartDir, "--namespace", namespace, "--kube-version", kubeVersion}
	if valuesFile != "" {
		args = append(args, "--values", filepath.Join(chartDir, valuesFile))
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return runHelm(t, args...)
}

var valueSets = []string{
	"ci/minimal-values.yaml",
	"ci/gpu-values.yaml",
	"ci/argo-values.yaml",
	"ci/existing-values.yaml",
}

func TestLintStrict(t *testing.T) {
	for _, vs := range append([]string{""}, valueSets...) {
		name := "defaults"
		if vs != "" {
			name = filepath.Base(vs)
		}
		t.Run(name, func(t *testing.T) {
			args := []string{"lint", "--strict", "--kube-version", kubeVersion, chartDir}
			if vs != "" {
				args = append(args, "--values", filepath.Join(chartDir, vs))
			}
			out, err := runHelm(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "0 chart(s) failed") {
				t.Fatalf("helm lint:\n%s", out)
			}
		})
	}
}

// TestRenderedObjects renders every value set and checks what must hold for
// all of them.
func TestRenderedObjects(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(filepath.Base(vs), func(t *testing.T) {
			r := render(t, vs)
			checkNames(t, r)
			checkPodSecurity(t, r)
			checkWiring(t, r)
			checkWorkerContract(t, r)
		})
	}
}

func checkNames(t *testing.T, r rendered) {
	t.Helper()
	seen := map[string]bool{}
	for _, o := range r.objs {
		for _, msg := range validation.IsDNS1123Subdomain(o.Name) {
			t.Errorf("%s %q: bad name: %s", o.Kind, o.Name, msg)
		}
		if o.Ns == "" {
			t.Errorf("%s %q: no namespace", o.Kind, o.Name)
		}
		key := o.Kind + "/" + o.Ns + "/" + o.Name
		if seen[key] {
			t.Errorf("%s rendered twice", key)
		}
		seen[key] = true
		labels := metaOf(o.Typed).Labels
		for k, v := range labels {
			for _, msg := range validation.IsQualifiedName(k) {
				t.Errorf("%s %q: label key %q: %s", o.Kind, o.Name, k, msg)
			}
			for _, msg := range validation.IsValidLabelValue(v) {
				t.Errorf("%s %q: label %s=%q: %s", o.Kind, o.Name, k, v, msg)
			}
		}
		if labels["app.kubernetes.io/instance"] != release {
			t.Errorf("%s %q: missing app.kubernetes.io/instance label", o.Kind, o.Name)
		}
	}
}

type metaHolder interface{ GetLabels() map[string]string }

func metaOf(typed any) struct{ Labels map[string]string } {
	if m, ok := typed.(metaHolder); ok {
		return struct{ Labels map[string]string }{m.GetLabels()}
	}
	return struct{ Labels map[string]string }{}
}

// podSpecs returns every pod template the chart renders, by owner.
func podSpecs(r rendered) map[string]corev1.PodSpec {
	out := map[string]corev1.PodSpec{}
	for _, o := range r.objs {
		switch v := o.Typed.(type) {
		case *appsv1.Deployment:
			out["Deployment/"+o.Name] = v.Spec.Template.Spec
		case *batchv1.Job:
			out["Job/"+o.Name] = v.Spec.Template.Spec
		case *corev1.Pod:
			out["Pod/"+o.Name] = v.Spec
		}
	}
	return out
}

func checkPodSecurity(t *testing.T, r rendered) {
	t.Helper()
	specs := podSpecs(r)
	if len(specs) == 0 {
		t.Fatal("no pod specs rendered")
	}
	for owner, ps := range specs {
		sc := ps.SecurityContext
		if sc == nil {
			t.Errorf("%s: no pod securityContext", owner)
			continue
		}
		if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s: pod runAsNonRoot is not true", owner)
		}
		if sc.RunAsUser == nil || *sc.RunAsUser == 0 {
			t.Errorf("%s: pod runAsUser unset or root", owner)
		}
		if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: pod seccompProfile is not RuntimeDefault", owner)
		}
		if ps.HostNetwork || ps.HostPID || ps.HostIPC {
			t.Errorf("%s: uses host namespaces", owner)
		}
		for _, v := range ps.Volumes {
			if v.HostPath != nil {
				t.Errorf("%s: hostPath volume %q", owner, v.Name)
			}
		}
		for _, c := range append(slices.Clone(ps.InitContainers), ps.Containers...) {
			csc := c.SecurityContext
			where := owner + " container " + c.Name
			if csc == nil {
				t.Errorf("%s: no securityContext", where)
				continue
			}
			if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation is not false", where)
			}
			if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
				t.Errorf("%s: readOnlyRootFilesystem is not true", where)
			}
			if csc.Privileged != nil && *csc.Privileged {
				t.Errorf("%s: privileged", where)
			}
			if csc.RunAsNonRoot == nil || !*csc.RunAsNonRoot {
				t.Errorf("%s: runAsNonRoot is not true", where)
			}
			if csc.Capabilities == nil || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(csc.Capabilities.Add) != 0 {
				t.Errorf("%s: capabilities are not drop [ALL] with nothing added: %+v", where, csc.Capabilities)
			}
			if csc.SeccompProfile == nil || csc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: seccompProfile is not RuntimeDefault", where)
			}
			// A read-only root needs a writable /tmp.
			if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/tmp" }) {
				t.Errorf("%s: no writable /tmp mount", where)
			}
			if c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s: no memory limit", where)
			}
		}
	}
}

// checkWiring follows every reference between rendered objects.
func checkWiring(t *testing.T, r rendered) {
	t.Helper()
	configMaps := map[string]*corev1.ConfigMap{}
	for _, o := range r.all("ConfigMap") {
		configMaps[o.Name] = o.Typed.(*corev1.ConfigMap)
	}
	for owner, ps := range podSpecs(r) {
		vols := map[string]corev1.Volume{}
		for _, v := range ps.Volumes {
			vols[v.Name] = v
			if v.ConfigMap != nil {
				cm, ok := configMaps[v.ConfigMap.Name]
				if !ok {
					t.Errorf("%s: volume %q: ConfigMap %q is not rendered", owner, v.Name, v.ConfigMap.Name)
				} else {
					for _, it := range v.ConfigMap.Items {
						if _, ok := cm.Data[it.Key]; !ok {
							t.Errorf("%s: volume %q: ConfigMap %q has no key %q", owner, v.Name, cm.Name, it.Key)
						}
					}
				}
			}
		}
		for _, c := range ps.Containers {
			mounted := map[string]bool{}
			for _, m := range c.VolumeMounts {
				if _, ok := vols[m.Name]; !ok {
					t.Errorf("%s container %s: mount of undeclared volume %q", owner, c.Name, m.Name)
				}
				if mounted[m.MountPath] {
					t.Errorf("%s container %s: two mounts at %s", owner, c.Name, m.MountPath)
				}
				mounted[m.MountPath] = true
			}
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef != nil {
					if _, ok := configMaps[ef.ConfigMapRef.Name]; !ok {
						t.Errorf("%s container %s: envFrom ConfigMap %q is not rendered", owner, c.Name, ef.ConfigMapRef.Name)
					}
				}
			}
			ports := map[string]bool{}
			for _, p := range c.Ports {
				ports[p.Name] = true
			}
			for _, pr := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
				if pr != nil && pr.HTTPGet != nil && pr.HTTPGet.Port.StrVal != "" && !ports[pr.HTTPGet.Port.StrVal] {
					t.Errorf("%s container %s: probe on unknown port %q", owner, c.Name, pr.HTTPGet.Port.StrVal)
				}
			}
		}
		// The ServiceAccount named by a pod is rendered, or is the user's own
		// (serviceAccount.create=false).
		if ps.ServiceAccountName != "" && len(r.all("ServiceAccount")) > 0 {
			found := false
			for _, o := range r.all("ServiceAccount") {
				found = found || o.Name == ps.ServiceAccountName
			}
			if !found {
				t.Errorf("%s: ServiceAccount %q is not rendered", owner, ps.ServiceAccountName)
			}
		}
	}
	deployments := map[string]*appsv1.Deployment{}
	for _, o := range r.all("Deployment") {
		d := o.Typed.(*appsv1.Deployment)
		deployments[o.Name] = d
		if !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("Deployment %s: selector %v does not match its pod labels %v", o.Name, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
		}
	}
	// Two Deployments must not select each other's pods.
	for a, da := range deployments {
		for b, db := range deployments {
			if a != b && selects(da.Spec.Selector.MatchLabels, db.Spec.Template.Labels) {
				t.Errorf("Deployment %s selects the pods of %s", a, b)
			}
		}
	}
	for _, o := range r.all("HorizontalPodAutoscaler") {
		h := o.Typed.(*autoscalingv2.HorizontalPodAutoscaler)
		d, ok := deployments[h.Spec.ScaleTargetRef.Name]
		if !ok || h.Spec.ScaleTargetRef.Kind != "Deployment" {
			t.Errorf("HPA %s targets %v, not a rendered Deployment", o.Name, h.Spec.ScaleTargetRef)
			continue
		}
		if d.Spec.Replicas != nil {
			t.Errorf("Deployment %s sets replicas although HPA %s scales it", d.Name, o.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas > h.Spec.MaxReplicas {
			t.Errorf("HPA %s: min %v > max %d", o.Name, h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Resources.Requests.Cpu().IsZero() {
				t.Errorf("HPA %s: container %s of %s has no CPU request to scale on", o.Name, c.Name, d.Name)
			}
		}
	}
	for _, o := range r.all("Service") {
		s := o.Typed.(*corev1.Service)
		var targets []string
		for name, d := range deployments {
			if selects(s.Spec.Selector, d.Spec.Template.Labels) {
				targets = append(targets, name)
				for _, p := range s.Spec.Ports {
					if !slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].Ports, func(cp corev1.ContainerPort) bool { return cp.Name == p.TargetPort.StrVal }) {
						t.Errorf("Service %s: target port %q is not a port of %s", o.Name, p.TargetPort.String(), name)
					}
				}
			}
		}
		if len(targets) != len(deployments) {
			t.Errorf("Service %s selects %v, want every worker Deployment", o.Name, targets)
		}
		for owner, ps := range podSpecs(r) {
			if !strings.HasPrefix(owner, "Deployment/") && selects(s.Spec.Selector, podLabels(r, owner)) {
				t.Errorf("Service %s also selects %s (%v)", o.Name, owner, ps.Containers[0].Name)
			}
		}
	}
	for _, o := range r.all("ServiceMonitor") {
		sm := o.Typed.(*monitoringv1.ServiceMonitor)
		matched := false
		for _, so := range r.all("Service") {
			s := so.Typed.(*corev1.Service)
			if selects(sm.Spec.Selector.MatchLabels, s.Labels) {
				matched = true
				for _, ep := range sm.Spec.Endpoints {
					if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
						t.Errorf("ServiceMonitor %s: port %q is not a port of Service %s", o.Name, ep.Port, s.Name)
					}
				}
			}
		}
		if !matched {
			t.Errorf("ServiceMonitor %s selects no rendered Service", o.Name)
		}
	}
	for _, o := range r.all("RoleBinding") {
		rb := o.Typed.(*rbacv1.RoleBinding)
		role := r.get(t, "Role", rb.RoleRef.Name).(*rbacv1.Role)
		if rb.RoleRef.Kind != "Role" || role.Namespace != rb.Namespace {
			t.Errorf("RoleBinding %s: roleRef %v is not a Role in %s", o.Name, rb.RoleRef, rb.Namespace)
		}
		for _, s := range rb.Subjects {
			used := false
			for _, ps := range podSpecs(r) {
				used = used || (ps.ServiceAccountName == s.Name && s.Namespace == namespace)
			}
			if s.Kind != "ServiceAccount" || !used {
				t.Errorf("RoleBinding %s: subject %+v is not the workers' ServiceAccount", o.Name, s)
			}
		}
	}
}

func podLabels(r rendered, owner string) map[string]string {
	kind, name, _ := strings.Cut(owner, "/")
	v, _ := r.lookup(kind, name)
	switch v := v.(type) {
	case *batchv1.Job:
		return v.Spec.Template.Labels
	case *corev1.Pod:
		return v.Labels
	}
	return nil
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// The environment the worker binary reads (issue 8's worker contract).
var contractEnv = []string{
	"LORAFLOW_TEMPORAL_ADDRESS", "LORAFLOW_NAMESPACE", "LORAFLOW_TASK_QUEUE", "LORAFLOW_TRAIN_TASK_QUEUE",
	"LORAFLOW_ARTIFACT_ROOT", "LORAFLOW_REGISTRY_URI", "LORAFLOW_SIGNING_KEY", "LORAFLOW_TRUSTED_KEYS",
	"LORAFLOW_REGION", "LORAFLOW_PUE", "LORAFLOW_METRICS_ADDR", "LORAFLOW_TRAINER_BACKEND",
	// The trust configuration (package trust, cmd/worker's --input-roots,
	// --registries, --signing-keys, --report-samples-unsafe).
	"LORAFLOW_INPUT_ROOTS", "LORAFLOW_REGISTRIES", "LORAFLOW_SIGNING_KEYS", "LORAFLOW_REPORT_SAMPLES_UNSAFE",
}

// checkWorkerContract: every worker container gets the contract's
// environment, and every file path in it lies on a mounted volume that holds
// that file.
func checkWorkerContract(t *testing.T, r rendered) {
	t.Helper()
	cm := r.get(t, "ConfigMap", release+"-loraflow").(*corev1.ConfigMap)
	for _, k := range contractEnv {
		if _, ok := cm.Data[k]; !ok {
			t.Errorf("ConfigMap: %s missing", k)
		}
	}
	if !regexp.MustCompile(`^[^:\s]+:\d+$`).MatchString(cm.Data["LORAFLOW_TEMPORAL_ADDRESS"]) {
		t.Errorf("LORAFLOW_TEMPORAL_ADDRESS %q is not host:port", cm.Data["LORAFLOW_TEMPORAL_ADDRESS"])
	}
	if !regexp.MustCompile(`^(file|https?)://`).MatchString(cm.Data["LORAFLOW_REGISTRY_URI"]) {
		t.Errorf("LORAFLOW_REGISTRY_URI %q", cm.Data["LORAFLOW_REGISTRY_URI"])
	}
	if cm.Data["LORAFLOW_METRICS_ADDR"] != ":9090" {
		t.Errorf("LORAFLOW_METRICS_ADDR = %q", cm.Data["LORAFLOW_METRICS_ADDR"])
	}
	for _, o := range r.all("Deployment") {
		ps := o.Typed.(*appsv1.Deployment).Spec.Template.Spec
		c := ps.Containers[0]
		if !slices.Equal(c.Command, []string{"loraflow-worker"}) {
			t.Errorf("%s: command %v", o.Name, c.Command)
		}
		if c.ReadinessProbe == nil || c.ReadinessProbe.Exec == nil || !slices.Equal(c.ReadinessProbe.Exec.Command, []string{"loraflow-worker", "check"}) {
			t.Errorf("%s: readiness probe is not `loraflow-worker check`", o.Name)
		}
		if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" && p.ContainerPort == 9090 }) {
			t.Errorf("%s: no metrics port 9090", o.Name)
		}
		for _, key := range []string{"LORAFLOW_SIGNING_KEY", "LORAFLOW_TRUSTED_KEYS", "LORAFLOW_TLS_CERT", "LORAFLOW_TLS_KEY", "LORAFLOW_TLS_CA"} {
			for _, p := range strings.Split(cm.Data[key], ",") {
				if p == "" {
					continue
				}
				if err := fileOnVolume(ps, c, p); err != nil {
					t.Errorf("%s: %s=%s: %v", o.Name, key, p, err)
				}
			}
		}
		for _, e := range strings.Split(cm.Data["LORAFLOW_SIGNING_KEYS"], ",") {
			if e == "" {
				continue
			}
			name, p, ok := strings.Cut(e, "=")
			if !ok || name == "" {
				t.Errorf("%s: LORAFLOW_SIGNING_KEYS entry %q is not NAME=PATH", o.Name, e)
				continue
			}
			if err := fileOnVolume(ps, c, p); err != nil {
				t.Errorf("%s: LORAFLOW_SIGNING_KEYS %s=%s: %v", o.Name, name, p, err)
			}
		}
		for _, root := range strings.Split(cm.Data["LORAFLOW_INPUT_ROOTS"], ",") {
			if root != "" && !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
				return m.MountPath == root && m.ReadOnly && volumeByName(ps, m.Name).PersistentVolumeClaim != nil
			}) {
				t.Errorf("%s: input root %s is not a read-only PVC mount", o.Name, root)
			}
		}
		if root := cm.Data["LORAFLOW_ARTIFACT_ROOT"]; !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
			return m.MountPath == root && !m.ReadOnly && volumeByName(ps, m.Name).PersistentVolumeClaim != nil
		}) {
			t.Errorf("%s: the artifact root %s is not a writable PVC mount", o.Name, root)
		}
	}
}

func volumeByName(ps corev1.PodSpec, name string) corev1.Volume {
	for _, v := range ps.Volumes {
		if v.Name == name {
			return v
		}
	}
	return corev1.Volume{}
}

// fileOnVolume checks that path is a key of a Secret volume mounted at its
// directory (no items: every key becomes a file).
func fileOnVolume(ps corev1.PodSpec, c corev1.Container, path string) error {
	dir, file := filepath.Split(path)
	for _, m := range c.VolumeMounts {
		if filepath.Clean(m.MountPath) != filepath.Clean(dir) {
			continue
		}
		v := volumeByName(ps, m.Name)
		if v.Secret == nil {
			return fmt.Errorf("mounted from volume %q, not a Secret", m.Name)
		}
		if len(v.Secret.Items) > 0 {
			return fmt.Errorf("secret volume %q projects items; %s may be absent", m.Name, file)
		}
		return nil
	}
	return fmt.Errorf("no volume mounted at %s", dir)
}

func configMap(t *testing.T, r rendered) map[string]string {
	return r.get(t, "ConfigMap", release+"-loraflow").(*corev1.ConfigMap).Data
}

func TestMinimal(t *testing.T) {
	r := render(t, "ci/minimal-values.yaml")
	kinds := map[string]int{}
	for _, o := range r.objs {
		kinds[o.Kind]++
	}
	want := map[string]int{"ServiceAccount": 1, "ConfigMap": 1, "PersistentVolumeClaim": 1, "Service": 1, "Deployment": 1, "Pod": 1, "PodDisruptionBudget": 1}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("kinds = %v, want %v", kinds, want)
	}
	d := r.get(t, "Deployment", release+"-loraflow-worker").(*appsv1.Deployment)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %v", d.Spec.Replicas)
	}
	if ps := d.Spec.Template.Spec; ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Error("worker mounts a ServiceAccount token without Argo")
	}
	pvc := r.get(t, "PersistentVolumeClaim", release+"-loraflow-artifacts").(*corev1.PersistentVolumeClaim)
	if !slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}) {
		t.Errorf("PVC access modes %v", pvc.Spec.AccessModes)
	}
	if pvc.Annotations["helm.sh/resource-policy"] != "keep" {
		t.Error("the artifact PVC is not kept on uninstall")
	}
	cm := configMap(t, r)
	for k, want := range map[string]string{
		"LORAFLOW_TEMPORAL_ADDRESS": "temporal-frontend.temporal:7233",
		"LORAFLOW_NAMESPACE":        "default",
		"LORAFLOW_TASK_QUEUE":       "loraflow",
		"LORAFLOW_TRAIN_TASK_QUEUE": "loraflow",
		"LORAFLOW_TRAINER_BACKEND":  "local",
		"LORAFLOW_REGISTRY_URI":     "file:///var/lib/loraflow/artifacts/registry",
		"LORAFLOW_SIGNING_KEY":      "/etc/loraflow/signing/signing.key",
		"LORAFLOW_TRUSTED_KEYS":     "/etc/loraflow/signing/signing.pub",
		"LORAFLOW_PUE":              "1.2",
	} {
		if cm[k] != want {
			t.Errorf("%s = %q, want %q", k, cm[k], want)
		}
	}
	for k := range cm {
		if strings.HasPrefix(k, "LORAFLOW_TLS_") || strings.HasPrefix(k, "LORAFLOW_ARGO_") {
			t.Errorf("%s set without TLS/Argo", k)
		}
	}
	// helm test hook.
	p := r.get(t, "Pod", release+"-loraflow-test-temporal").(*corev1.Pod)
	if p.Annotations["helm.sh/hook"] != "test" || p.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("test pod: hook %q restart %q", p.Annotations["helm.sh/hook"], p.Spec.RestartPolicy)
	}
	if !slices.Equal(p.Spec.Containers[0].Command, []string{"loraflow-worker", "check"}) {
		t.Errorf("test pod command %v", p.Spec.Containers[0].Command)
	}
	if r := render(t, "ci/minimal-values.yaml", "tests.enabled=false"); len(r.all("Pod")) != 0 {
		t.Error("tests.enabled=false still renders the test pod")
	}
}

func TestGPUGroup(t *testing.T) {
	r := render(t, "ci/gpu-values.yaml")
	gpu := r.get(t, "Deployment", release+"-loraflow-gpu-worker").(*appsv1.Deployment)
	cpu := r.get(t, "Deployment", release+"-loraflow-worker").(*appsv1.Deployment)
	gc := gpu.Spec.Template.Spec.Containers[0]
	if q := gc.Resources.Limits[corev1.ResourceName("nvidia.com/gpu")]; q.Value() != 2 {
		t.Errorf("GPU limit = %v, want 2", q.String())
	}
	if q, ok := cpu.Spec.Template.Spec.Containers[0].Resources.Limits["nvidia.com/gpu"]; ok {
		t.Errorf("CPU group asks for GPUs: %v", q.String())
	}
	role := ""
	for _, e := range gc.Env {
		if e.Name == "LORAFLOW_WORKER_ROLE" {
			role = e.Value
		}
	}
	if role != "train" {
		t.Errorf("GPU worker role = %q, want train", role)
	}
	for _, e := range cpu.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "LORAFLOW_WORKER_ROLE" {
			t.Errorf("CPU worker has role %q", e.Value)
		}
	}
	if !slices.ContainsFunc(gc.Env, func(e corev1.EnvVar) bool { return e.Name == "OPENBLAS_NUM_THREADS" && e.Value == "8" }) {
		t.Error("gpuWorkers.extraEnv not rendered")
	}
	if gpu.Spec.Template.Spec.NodeSelector["nvidia.com/gpu.present"] != "true" || len(gpu.Spec.Template.Spec.Tolerations) != 1 ||
		gpu.Spec.Template.Spec.Affinity == nil || gpu.Spec.Template.Spec.Affinity.NodeAffinity == nil {
		t.Errorf("GPU scheduling: nodeSelector %v tolerations %v affinity %v", gpu.Spec.Template.Spec.NodeSelector, gpu.Spec.Template.Spec.Tolerations, gpu.Spec.Template.Spec.Affinity)
	}
	if len(cpu.Spec.Template.Spec.TopologySpreadConstraints) != 1 {
		t.Error("worker.topologySpreadConstraints not rendered")
	}
	cm := configMap(t, r)
	if cm["LORAFLOW_TASK_QUEUE"] != "loraflow" || cm["LORAFLOW_TRAIN_TASK_QUEUE"] != "loraflow-gpu" || cm["LORAFLOW_NAMESPACE"] != "ml" {
		t.Errorf("queues: %q %q ns %q", cm["LORAFLOW_TASK_QUEUE"], cm["LORAFLOW_TRAIN_TASK_QUEUE"], cm["LORAFLOW_NAMESPACE"])
	}
	if cm["LORAFLOW_REGION"] != "FR" || cm["LORAFLOW_PUE"] != "1.1" {
		t.Errorf("carbon: %q %q", cm["LORAFLOW_REGION"], cm["LORAFLOW_PUE"])
	}
	hpas := r.all("HorizontalPodAutoscaler")
	if len(hpas) != 2 {
		t.Fatalf("%d HPAs, want 2", len(hpas))
	}
	h := r.get(t, "HorizontalPodAutoscaler", release+"-loraflow-worker").(*autoscalingv2.HorizontalPodAutoscaler)
	if len(h.Spec.Metrics) != 2 || *h.Spec.Metrics[1].Resource.Target.AverageUtilization != 80 {
		t.Errorf("worker HPA metrics %+v", h.Spec.Metrics)
	}
	sm := r.get(t, "ServiceMonitor", release+"-loraflow").(*monitoringv1.ServiceMonitor)
	if sm.Labels["release"] != "kube-prometheus-stack" || string(sm.Spec.Endpoints[0].Interval) != "15s" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor %+v", sm)
	}
	if len(r.all("Role")) != 0 || len(r.all("RoleBinding")) != 0 {
		t.Error("RBAC rendered without Argo")
	}
}

func TestArgoRBAC(t *testing.T) {
	r := render(t, "ci/argo-values.yaml")
	roles, bindings := r.all("Role"), r.all("RoleBinding")
	if len(roles) != 1 || len(bindings) != 1 {
		t.Fatalf("%d Roles, %d RoleBindings; want 1 and 1", len(roles), len(bindings))
	}
	role := roles[0].Typed.(*rbacv1.Role)
	if role.Namespace != namespace {
		t.Errorf("Role in %q, want the release namespace", role.Namespace)
	}
	want := []rbacv1.PolicyRule{{APIGroups: []string{"argoproj.io"}, Resources: []string{"workflows"}, Verbs: []string{"create", "get", "watch", "patch", "delete"}}}
	if fmt.Sprint(role.Rules) != fmt.Sprint(want) {
		t.Errorf("Role rules %+v, want exactly %+v", role.Rules, want)
	}
	for _, rule := range role.Rules {
		for _, s := range append(append(slices.Clone(rule.Verbs), rule.Resources...), rule.APIGroups...) {
			if s == "*" {
				t.Errorf("wildcard in Role rule %+v", rule)
			}
		}
	}
	sa := r.get(t, "ServiceAccount", release+"-loraflow").(*corev1.ServiceAccount)
	if sa.AutomountServiceAccountToken == nil || !*sa.AutomountServiceAccountToken {
		t.Error("Argo on but the ServiceAccount token is not mounted")
	}
	d := r.get(t, "Deployment", release+"-loraflow-worker").(*appsv1.Deployment)
	if ps := d.Spec.Template.Spec; ps.AutomountServiceAccountToken == nil || !*ps.AutomountServiceAccountToken || ps.ServiceAccountName != sa.Name {
		t.Errorf("worker pod: SA %q automount %v", ps.ServiceAccountName, ps.AutomountServiceAccountToken)
	}
	// Pods other than the workers never get a token.
	for owner, ps := range podSpecs(r) {
		if !strings.HasPrefix(owner, "Deployment/") && (ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken) {
			t.Errorf("%s mounts a ServiceAccount token", owner)
		}
	}
	cm := configMap(t, r)
	for k, want := range map[string]string{
		"LORAFLOW_TRAINER_BACKEND":              "argo",
		"LORAFLOW_ARGO_NAMESPACE":               namespace,
		"LORAFLOW_ARGO_TRAINER_IMAGE":           "registry.example.com/loraflow-trainer:1.2.3",
		"LORAFLOW_ARGO_ARTIFACT_CLAIM":          release + "-loraflow-artifacts",
		"LORAFLOW_ARGO_ARTIFACT_MOUNT_PATH":     "/var/lib/loraflow/artifacts",
		"LORAFLOW_ARGO_SERVICE_ACCOUNT":         "argo-workflow",
		"LORAFLOW_ARGO_GPUS":                    "1",
		"LORAFLOW_ARGO_GPU_RESOURCE":            "nvidia.com/gpu",
		"LORAFLOW_ARGO_CPU":                     "8",
		"LORAFLOW_ARGO_MEMORY":                  "64Gi",
		"LORAFLOW_ARGO_NODE_SELECTOR":           `{"nvidia.com/gpu.present":"true"}`,
		"LORAFLOW_ARGO_TOLERATIONS":             `[{"effect":"NoSchedule","key":"nvidia.com/gpu","operator":"Exists"}]`,
		"LORAFLOW_ARGO_ACTIVE_DEADLINE_SECONDS": "43200",
		"LORAFLOW_TLS_CERT":                     "/etc/loraflow/temporal-tls/tls.crt",
		"LORAFLOW_TLS_KEY":                      "/etc/loraflow/temporal-tls/tls.key",
		"LORAFLOW_TLS_CA":                       "/etc/loraflow/temporal-tls/ca.crt",
		"LORAFLOW_TEMPORAL_ADDRESS":             "temporal.example.com:7233",
	} {
		if cm[k] != want {
			t.Errorf("%s = %q, want %q", k, cm[k], want)
		}
	}
	// The TLS files are there for the test pod too.
	p := r.get(t, "Pod", release+"-loraflow-test-temporal").(*corev1.Pod)
	for _, k := range []string{"LORAFLOW_TLS_CERT", "LORAFLOW_TLS_KEY", "LORAFLOW_TLS_CA"} {
		if err := fileOnVolume(p.Spec, p.Spec.Containers[0], cm[k]); err != nil {
			t.Errorf("test pod: %s: %v", k, err)
		}
	}
	// Turning Argo off removes the RBAC and the token.
	off := render(t, "ci/argo-values.yaml", "argo.enabled=false")
	if len(off.all("Role")) != 0 || len(off.all("RoleBinding")) != 0 {
		t.Error("RBAC still rendered with argo.enabled=false")
	}
	if sa := off.get(t, "ServiceAccount", release+"-loraflow").(*corev1.ServiceAccount); *sa.AutomountServiceAccountToken {
		t.Error("token mounted with argo.enabled=false")
	}
}

func TestExistingSecretAndClaim(t *testing.T) {
	r := render(t, "ci/existing-values.yaml")
	if n := len(r.all("PersistentVolumeClaim")); n != 0 {
		t.Errorf("%d PVCs rendered with artifacts.existingClaim", n)
	}
	if n := len(r.all("ServiceAccount")); n != 0 {
		t.Errorf("%d ServiceAccounts rendered with serviceAccount.create=false", n)
	}
	d := r.get(t, "Deployment", release+"-loraflow-worker").(*appsv1.Deployment)
	ps := d.Spec.Template.Spec
	if ps.ServiceAccountName != "ml-workers" {
		t.Errorf("serviceAccountName %q", ps.ServiceAccountName)
	}
	if v := volumeByName(ps, "artifacts"); v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "shared-ml-artifacts" {
		t.Errorf("artifacts volume %+v", v)
	}
	if v := volumeByName(ps, "signing"); v.Secret == nil || v.Secret.SecretName != "team-signing-key" {
		t.Errorf("signing volume %+v", v)
	}
	if v := volumeByName(ps, "trusted-keys"); v.Secret == nil || v.Secret.SecretName != "trusted-signers" {
		t.Errorf("trusted-keys volume %+v", v)
	}
	c := ps.Containers[0]
	if c.Image != "registry.example.com/ml/loraflow@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" {
		t.Errorf("image %q", c.Image)
	}
	if len(ps.ImagePullSecrets) != 1 || ps.ImagePullSecrets[0].Name != "regcred" {
		t.Errorf("imagePullSecrets %v", ps.ImagePullSecrets)
	}
	if !slices.ContainsFunc(c.EnvFrom, func(e corev1.EnvFromSource) bool {
		return e.SecretRef != nil && e.SecretRef.Name == "mlflow-credentials"
	}) {
		t.Error("registry.existingSecret not in envFrom")
	}
	cm := configMap(t, r)
	for k, want := range map[string]string{
		"LORAFLOW_ARTIFACT_ROOT":       "/data/loraflow",
		"LORAFLOW_REGISTRY_URI":        "http://mlflow.mlflow.svc:5000",
		"LORAFLOW_SIGNING_KEY":         "/etc/loraflow/signing/cosign.key",
		"LORAFLOW_TRUSTED_KEYS":        "/etc/loraflow/signing/cosign.pub,/etc/loraflow/trusted-keys/platform.pub,/etc/loraflow/trusted-keys/research.pub",
		"LORAFLOW_ARGO_NAMESPACE":      "argo-gpu",
		"LORAFLOW_ARGO_ARTIFACT_CLAIM": "argo-ml-artifacts",
		"LORAFLOW_ARGO_TRAINER_IMAGE":  c.Image,
	} {
		if cm[k] != want {
			t.Errorf("%s = %q, want %q", k, cm[k], want)
		}
	}
	// RBAC lands in the Argo namespace and binds the existing ServiceAccount.
	role := r.all("Role")[0].Typed.(*rbacv1.Role)
	rb := r.all("RoleBinding")[0].Typed.(*rbacv1.RoleBinding)
	if role.Namespace != "argo-gpu" || rb.Namespace != "argo-gpu" || rb.Subjects[0].Name != "ml-workers" || rb.Subjects[0].Namespace != namespace {
		t.Errorf("RBAC: role ns %q binding ns %q subject %+v", role.Namespace, rb.Namespace, rb.Subjects)
	}
	// Schedule Job: a post-install/upgrade hook running `loraflow schedule create`
	// on the spec mounted from its ConfigMap.
	job := r.get(t, "Job", release+"-loraflow-schedule").(*batchv1.Job)
	if job.Annotations["helm.sh/hook"] != "post-install,post-upgrade" {
		t.Errorf("schedule job hook %q", job.Annotations["helm.sh/hook"])
	}
	jc := job.Spec.Template.Spec.Containers[0]
	if len(jc.Command) != 5 || jc.Command[0] != "/bin/sh" || jc.Command[1] != "-ec" ||
		!slices.Equal(jc.Command[3:], []string{"loraflow-schedule", "--pause-on-failure"}) {
		t.Fatalf("schedule command %q", jc.Command)
	}
	script := jc.Command[2]
	for _, want := range []string{
		`exec loraflow schedule create --update --spec /etc/loraflow/schedule/spec.yaml --cron "$SCHEDULE_CRON" --id "$SCHEDULE_ID" "$@"`,
	} {
		if !strings.Contains(script, want) {
			t.Errorf("schedule script lacks %q:\n%s", want, script)
		}
	}
	if strings.Contains(script, "support-bot-weekly") || strings.Contains(script, "30 2") {
		t.Error("values are spliced into the shell script instead of passed as environment")
	}
	envs := map[string]string{}
	for _, e := range jc.Env {
		envs[e.Name] = e.Value
	}
	if envs["SCHEDULE_ID"] != "support-bot-weekly" || envs["SCHEDULE_CRON"] != "30 2 * * 1" {
		t.Errorf("schedule env %v", envs)
	}
	// Run the script with a stub `loraflow` to see the command it issues.
	if sh, err := exec.LookPath("sh"); err == nil {
		dir := t.TempDir()
		logf := filepath.Join(dir, "calls")
		stub := "#!/bin/sh\necho \"$*\" >> " + logf + "\nexit 0\n"
		if err := os.WriteFile(filepath.Join(dir, "loraflow"), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(sh, append([]string{"-ec", script}, jc.Command[3:]...)...)
		cmd.Env = []string{"PATH=" + dir + ":/usr/bin:/bin", "SCHEDULE_ID=" + envs["SCHEDULE_ID"], "SCHEDULE_CRON=" + envs["SCHEDULE_CRON"]}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("script: %v\n%s", err, out)
		}
		calls, _ := os.ReadFile(logf)
		want := "schedule create --update --spec /etc/loraflow/schedule/spec.yaml --cron 30 2 * * 1 --id support-bot-weekly --pause-on-failure\n"
		if string(calls) != want {
			t.Errorf("calls\n%s\nwant\n%s", calls, want)
		}
	}
	specCM := r.get(t, "ConfigMap", release+"-loraflow-schedule").(*corev1.ConfigMap)
	var spec map[string]any
	if err := yaml.UnmarshalStrict([]byte(specCM.Data["spec.yaml"]), &spec); err != nil {
		t.Fatalf("schedule spec.yaml: %v", err)
	}
	if spec["name"] != "support-bot" || spec["lora"].(map[string]any)["r"] != float64(8) {
		t.Errorf("schedule spec %v", spec)
	}
	if !slices.ContainsFunc(jc.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.MountPath == "/etc/loraflow/schedule" && volumeByName(job.Spec.Template.Spec, m.Name).ConfigMap != nil &&
			volumeByName(job.Spec.Template.Spec, m.Name).ConfigMap.Name == specCM.Name
	}) {
		t.Error("schedule spec ConfigMap is not mounted at /etc/loraflow/schedule")
	}
}

// TestRejectedValues: values.schema.json and the chart's own checks refuse
// values that would render a broken release.
func TestRejectedValues(t *testing.T) {
	cases := []struct {
		name string
		sets []string
		want string
	}{
		{"unknown key", []string{"wokrer.replicas=3"}, "additional properties"},
		{"negative replicas", []string{"worker.replicas=-1"}, "minimum"},
		{"address without port", []string{"temporal.address=temporal"}, "does not match pattern"},
		{"empty signing secret", []string{"signing.existingSecret="}, "minLength"},
		{"bad pull policy", []string{"image.pullPolicy=Sometimes"}, "value must be one of"},
		{"registry scheme", []string{"registry.uri=s3://bucket"}, "does not match pattern"},
		{"tls without secret", []string{"temporal.tls.enabled=true"}, "temporal.tls.existingSecret"},
		{"argo elsewhere without claim", []string{"argo.enabled=true", "argo.namespace=argo"}, "argo.artifactClaim"},
		{"hpa min above max", []string{"worker.autoscaling.enabled=true", "worker.autoscaling.minReplicas=5", "worker.autoscaling.maxReplicas=2"}, "minReplicas"},
		{"schedule without spec", []string{"schedule.enabled=true"}, "schedule.spec"},
		{"zero gpus", []string{"gpuWorkers.enabled=true", "gpuWorkers.gpus=0"}, "minimum"},
		{"registry with credentials", []string{"trust.registries.prod=https://user:pw@mlflow:5000"}, "does not match pattern"},
		{"registry named default", []string{"trust.registries.default=https://mlflow:5000"}, "default"},
		{"signing key without secret", []string{"trust.signingKeys.team.key=cosign.key"}, "existingSecret"},
		{"input root without claim", []string{"trust.inputRoots[0].mountPath=/data"}, "existingClaim"},
		{"gpu workers with argo", []string{"gpuWorkers.enabled=true", "argo.enabled=true"}, "exclude each other"},
		{"unknown autoscaling mode", []string{"worker.autoscaling.mode=memory"}, "value must be one of"},
		{"queue scaling with tls", []string{"worker.autoscaling.enabled=true", "worker.autoscaling.mode=queue", "temporal.tls.enabled=true", "temporal.tls.existingSecret=t"}, "TriggerAuthentication"},
		{"tmp size", []string{"tmpSizeLimit=lots"}, "does not match pattern"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := template(t, "ci/minimal-values.yaml", tc.sets...)
			if err == nil {
				t.Fatalf("--set %v rendered; want an error mentioning %q", tc.sets, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error does not mention %q:\n%v", tc.want, err)
			}
		})
	}
}

// TestValuesDocumented: every leaf of values.yaml is named in the chart README.
func TestValuesDocumented(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.UnmarshalStrict(raw, &values); err != nil {
		t.Fatal(err)
	}
	var keys []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		m, ok := v.(map[string]any)
		// resources is a Kubernetes object of its own, documented whole.
		if !ok || len(m) == 0 || strings.HasSuffix(prefix, ".resources") {
			keys = append(keys, prefix)
			return
		}
		for k, sub := range m {
			walk(strings.TrimPrefix(prefix+"."+k, "."), sub)
		}
	}
	walk("", values)
	sort.Strings(keys)
	for _, k := range keys {
		if !bytes.Contains(readme, []byte("`"+k+"`")) {
			t.Errorf("README.md does not document `%s`", k)
		}
	}
}

// TestDockerfile checks the image build file's structure: multi-stage, the
// OpenBLAS packages in the right stages, both binaries built with cgo and the
// openblas tag, and a non-root final user. (Building it needs a container
// runtime and registry access, which the test machines do not have.)
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "build", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, drop comments.
	text := regexp.MustCompile(`\\\n`).ReplaceAllString(string(raw), " ")
	type stage struct {
		from  string
		lines []string
	}
	var stages []stage
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(strings.ToUpper(line), "FROM ") {
			stages = append(stages, stage{from: line})
			continue
		}
		if len(stages) > 0 {
			stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, line)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a multi-stage build", len(stages))
	}
	build, final := strings.Join(stages[0].lines, "\n"), strings.Join(stages[len(stages)-1].lines, "\n")
	for _, want := range []string{"libopenblas-dev", "CGO_ENABLED=1", `-tags "${GO_TAGS}"`, "./cmd/worker", "./cmd/loraflow", "-o /out/loraflow-worker", "-o /out/loraflow "} {
		if !strings.Contains(build, want) {
			t.Errorf("build stage lacks %q", want)
		}
	}
	if !regexp.MustCompile(`(?m)^ARG GO_TAGS=openblas$`).MatchString(build) {
		t.Error("build stage does not default GO_TAGS to openblas")
	}
	if !strings.Contains(final, "libopenblas0") || strings.Contains(final, "libopenblas-dev") || strings.Contains(final, "golang") {
		t.Error("runtime stage must install libopenblas0 only (no dev packages, no toolchain)")
	}
	if !strings.Contains(final, "COPY --from=build /out/loraflow-worker /out/loraflow /usr/local/bin/") {
		t.Error("runtime stage does not copy both binaries onto PATH")
	}
	users := regexp.MustCompile(`(?m)^USER (\S+)$`).FindAllStringSubmatch(final, -1)
	if len(users) == 0 {
		t.Fatal("runtime stage sets no USER")
	}
	last := users[len(users)-1][1]
	uid, _, _ := strings.Cut(last, ":")
	if uid == "0" || uid == "root" || uid != "65532" {
		t.Errorf("final USER %q; want 65532, the chart's runAsUser", last)
	}
	if !strings.Contains(final, `CMD ["loraflow-worker"]`) {
		t.Error("the image does not start the worker by default")
	}
}

// TestChartConfiguresArgoBackend: the Argo settings the chart renders are
// what argo.ConfigFromEnv reads, the Workflow built from them uses the
// chart's claim, mount path, image and GPU settings, and every API verb the
// backend uses on a run that is cancelled (create, get, watch, patch, delete)
// is granted by the chart's Role.
func TestChartConfiguresArgoBackend(t *testing.T) {
	for _, vs := range []string{"ci/argo-values.yaml", "ci/existing-values.yaml"} {
		t.Run(filepath.Base(vs), func(t *testing.T) {
			r := render(t, vs)
			data := configMap(t, r)
			cfg, err := argo.ConfigFromEnv(func(k string) string { return data[k] })
			if err != nil {
				t.Fatal(err)
			}
			cfg.HeartbeatInterval, cfg.PollInterval, cfg.ResyncInterval = time.Millisecond, time.Millisecond, 10*time.Millisecond
			cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			cs := argofake.NewSimpleClientset()
			b, err := argo.New(cs, cfg)
			if err != nil {
				t.Fatal(err)
			}
			root := data["LORAFLOW_ARTIFACT_ROOT"]
			job := argo.Job{SnapshotPath: root + "/snapshots/s", BaseModelPath: root + "/models/m", SpecPath: root + "/runs/r/spec.yaml", OutputDir: root + "/runs/r/adapter"}
			wf, err := b.BuildWorkflow(job)
			if err != nil {
				t.Fatal(err)
			}
			c := wf.Spec.Templates[0].Container
			if wf.Namespace != data["LORAFLOW_ARGO_NAMESPACE"] || c.Image != data["LORAFLOW_ARGO_TRAINER_IMAGE"] ||
				wf.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != data["LORAFLOW_ARGO_ARTIFACT_CLAIM"] ||
				c.VolumeMounts[0].MountPath != root || *wf.Spec.SecurityContext.RunAsUser != 65532 {
				t.Errorf("workflow does not follow the chart: %+v", wf)
			}
			if q := c.Resources.Limits["nvidia.com/gpu"]; q.String() != data["LORAFLOW_ARGO_GPUS"] {
				t.Errorf("GPU limit %s, chart says %s", q.String(), data["LORAFLOW_ARGO_GPUS"])
			}

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { _, err := b.Train(ctx, job, nil); done <- err }()
			deadline := time.Now().Add(5 * time.Second)
			for !slices.ContainsFunc(cs.Actions(), func(a k8stesting.Action) bool { return a.GetVerb() == "watch" }) {
				if time.Now().After(deadline) {
					t.Fatal("the backend never watched its Workflow")
				}
				time.Sleep(time.Millisecond)
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("Train: %v", err)
			}
			role := r.all("Role")[0].Typed.(*rbacv1.Role)
			if role.Namespace != cfg.Namespace {
				t.Errorf("Role in %s, Workflows in %s", role.Namespace, cfg.Namespace)
			}
			used := map[string]bool{}
			for _, a := range cs.Actions() {
				used[a.GetVerb()] = true
				if !slices.Contains(role.Rules[0].Verbs, a.GetVerb()) || a.GetResource().Resource != "workflows" || a.GetNamespace() != role.Namespace {
					t.Errorf("the backend used %s %s in %s, which the Role does not grant", a.GetVerb(), a.GetResource().Resource, a.GetNamespace())
				}
			}
			for _, v := range role.Rules[0].Verbs {
				if !used[v] {
					t.Errorf("the Role grants %q, which the backend never used", v)
				}
			}
		})
	}
}

// TestTrustConfig: the trust values reach the worker environment exactly as
// cmd/worker reads them (comma-separated lists, NAME=VALUE pairs, a bool),
// and the defaults declare nothing beyond the artifact store, so the
// quickstart's files (in the artifact store) stay readable.
func TestTrustConfig(t *testing.T) {
	cm := configMap(t, render(t, "ci/minimal-values.yaml"))
	for k, want := range map[string]string{
		"LORAFLOW_INPUT_ROOTS": "", "LORAFLOW_REGISTRIES": "", "LORAFLOW_SIGNING_KEYS": "", "LORAFLOW_REPORT_SAMPLES_UNSAFE": "false",
	} {
		if got, ok := cm[k]; !ok || got != want {
			t.Errorf("defaults: %s = %q (set: %v), want %q", k, got, ok, want)
		}
	}
	r := render(t, "ci/existing-values.yaml", "trust.reportSamplesUnsafe=true")
	cm = configMap(t, r)
	for k, want := range map[string]string{
		"LORAFLOW_INPUT_ROOTS":           "/data/base-models,/data/datasets",
		"LORAFLOW_REGISTRIES":            "archive=file:///data/loraflow/archive-registry,staging=http://mlflow-staging.mlflow.svc:5000",
		"LORAFLOW_SIGNING_KEYS":          "release=/etc/loraflow/signing-keys/0/cosign.key,research=/etc/loraflow/signing-keys/1/signing.key",
		"LORAFLOW_REPORT_SAMPLES_UNSAFE": "true",
	} {
		if got := cm[k]; got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	ps := r.get(t, "Deployment", release+"-loraflow-worker").(*appsv1.Deployment).Spec.Template.Spec
	for name, claim := range map[string]string{"input-root-0": "shared-base-models", "input-root-1": "shared-datasets"} {
		if v := volumeByName(ps, name); v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != claim || !v.PersistentVolumeClaim.ReadOnly {
			t.Errorf("volume %s = %+v, want claim %s read-only", name, v, claim)
		}
	}
	for name, secret := range map[string]string{"signing-key-0": "release-signing-key", "signing-key-1": "research-signing-key"} {
		if v := volumeByName(ps, name); v.Secret == nil || v.Secret.SecretName != secret {
			t.Errorf("volume %s = %+v, want secret %s", name, v, secret)
		}
	}
}

// TestArgoTrainerPodsMountInputRoots: the chart hands trust.inputRoots to
// the Argo backend too, so a base model in one of them is mounted
// (read-only, at the workers' path) in the trainer pod.
func TestArgoTrainerPodsMountInputRoots(t *testing.T) {
	r := render(t, "ci/argo-values.yaml", "trust.inputRoots[0].mountPath=/data/models", "trust.inputRoots[0].existingClaim=shared-models")
	data := configMap(t, r)
	if got := data["LORAFLOW_ARGO_INPUT_CLAIMS"]; got != "shared-models=/data/models" {
		t.Fatalf("LORAFLOW_ARGO_INPUT_CLAIMS = %q", got)
	}
	cfg, err := argo.ConfigFromEnv(func(k string) string { return data[k] })
	if err != nil {
		t.Fatal(err)
	}
	b, err := argo.New(argofake.NewSimpleClientset(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	root := data["LORAFLOW_ARTIFACT_ROOT"]
	wf, err := b.BuildWorkflow(argo.Job{SnapshotPath: root + "/snapshots/s", BaseModelPath: "/data/models/m", SpecPath: root + "/runs/r/spec.yaml", OutputDir: root + "/runs/r/adapter"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range wf.Spec.Templates[0].Container.VolumeMounts {
		found = found || (m.MountPath == "/data/models" && m.ReadOnly)
	}
	if !found {
		t.Errorf("the trainer pod does not mount /data/models read-only: %+v", wf.Spec.Templates[0].Container.VolumeMounts)
	}
}
