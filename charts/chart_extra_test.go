package charts_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/loraflow/loraflow/spec"
)

// scaledObject is the part of KEDA's ScaledObject (keda.sh/v1alpha1) the
// chart writes, field names as in KEDA's CRD (config/crd/bases/
// keda.sh_scaledobjects.yaml) and its Temporal scaler's documented metadata.
type scaledObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		ScaleTargetRef struct {
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount int32 `json:"minReplicaCount"`
		MaxReplicaCount int32 `json:"maxReplicaCount"`
		Triggers        []struct {
			Type     string `json:"type"`
			Metadata struct {
				Endpoint                  string `json:"endpoint"`
				Namespace                 string `json:"namespace"`
				TaskQueue                 string `json:"taskQueue"`
				QueueTypes                string `json:"queueTypes"`
				TargetQueueSize           string `json:"targetQueueSize"`
				ActivationTargetQueueSize string `json:"activationTargetQueueSize"`
			} `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

// TestPlainHelmTemplate: `helm template` with no --kube-version works with
// a helm built by `go install` (which reports Kubernetes v1.20 offline),
// and a cluster that lacks the APIs the chart uses is refused by name.
func TestPlainHelmTemplate(t *testing.T) {
	if _, err := runHelm(t, "template", release, chartDir); err != nil {
		t.Fatalf("plain helm template: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "kubeVersion:") {
		t.Error("Chart.yaml has a kubeVersion constraint, which go-installed helm refuses offline")
	}
}

// TestCosignKeyPassword: with signing.passwordKey the workers get the
// cosign key's password as COSIGN_PASSWORD from the signing Secret.
func TestCosignKeyPassword(t *testing.T) {
	r := render(t, "ci/gpu-values.yaml", "signing.passwordKey=password")
	for _, group := range []string{"worker", "gpu-worker"} {
		dep := r.get(t, "Deployment", release+"-loraflow-"+group).(*appsv1.Deployment)
		found := false
		for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
			if e.Name == "COSIGN_PASSWORD" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil &&
				e.ValueFrom.SecretKeyRef.Name == "loraflow-signing" && e.ValueFrom.SecretKeyRef.Key == "password" {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no COSIGN_PASSWORD from the signing Secret: %+v", group, dep.Spec.Template.Spec.Containers[0].Env)
		}
	}
	dep := render(t, "ci/minimal-values.yaml").get(t, "Deployment", release+"-loraflow-worker").(*appsv1.Deployment)
	for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "COSIGN_PASSWORD" {
			t.Error("COSIGN_PASSWORD set without signing.passwordKey")
		}
	}
}

// TestDisruptionBudgetsAndTmpLimit: a PodDisruptionBudget per worker group
// selects exactly that group's pods, and /tmp has a size limit.
func TestDisruptionBudgetsAndTmpLimit(t *testing.T) {
	r := render(t, "ci/gpu-values.yaml")
	for _, group := range []string{"worker", "gpu-worker"} {
		name := release + "-loraflow-" + group
		pdb := r.get(t, "PodDisruptionBudget", name).(*policyv1.PodDisruptionBudget)
		dep := r.get(t, "Deployment", name).(*appsv1.Deployment)
		if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
			t.Errorf("%s: maxUnavailable %v", name, pdb.Spec.MaxUnavailable)
		}
		for k, v := range pdb.Spec.Selector.MatchLabels {
			if dep.Spec.Template.Labels[k] != v {
				t.Errorf("%s: PDB selects %s=%s, the pods have %q", name, k, v, dep.Spec.Template.Labels[k])
			}
		}
		var tmp *corev1.Volume
		for i, v := range dep.Spec.Template.Spec.Volumes {
			if v.Name == "tmp" {
				tmp = &dep.Spec.Template.Spec.Volumes[i]
			}
		}
		if tmp == nil || tmp.EmptyDir == nil || tmp.EmptyDir.SizeLimit == nil || tmp.EmptyDir.SizeLimit.String() != "1Gi" {
			t.Errorf("%s: /tmp volume %+v", name, tmp)
		}
	}
	if _, ok := render(t, "ci/minimal-values.yaml", "podDisruptionBudget.enabled=false").lookup("PodDisruptionBudget", release+"-loraflow-worker"); ok {
		t.Error("a PDB rendered with podDisruptionBudget.enabled=false")
	}
}

// TestQueueAutoscaling: mode queue renders a KEDA ScaledObject on each
// group's own task queue instead of a CPU HorizontalPodAutoscaler.
func TestQueueAutoscaling(t *testing.T) {
	r := render(t, "ci/gpu-values.yaml", "worker.autoscaling.enabled=true", "worker.autoscaling.mode=queue",
		"gpuWorkers.autoscaling.enabled=true", "gpuWorkers.autoscaling.mode=queue")
	for group, want := range map[string][2]string{"worker": {"loraflow", "workflow,activity"}, "gpu-worker": {"", "activity"}} {
		name := release + "-loraflow-" + group
		if _, ok := r.lookup("HorizontalPodAutoscaler", name); ok {
			t.Errorf("%s: an HPA beside the ScaledObject", name)
		}
		so := r.get(t, "ScaledObject", name).(*scaledObject)
		if so.Spec.ScaleTargetRef.Name != name || len(so.Spec.Triggers) != 1 || so.Spec.Triggers[0].Type != "temporal" {
			t.Fatalf("%s: %+v", name, so.Spec)
		}
		m := so.Spec.Triggers[0].Metadata
		if (want[0] != "" && m.TaskQueue != want[0]) || m.TaskQueue == "" || m.QueueTypes != want[1] || m.Endpoint == "" || m.TargetQueueSize == "" {
			t.Errorf("%s: trigger %+v", name, m)
		}
		dep := r.get(t, "Deployment", name).(*appsv1.Deployment)
		if dep.Spec.Replicas != nil {
			t.Errorf("%s: replicas set while KEDA scales it", name)
		}
	}
	cpu := render(t, "ci/minimal-values.yaml", "worker.autoscaling.enabled=true")
	_ = cpu.get(t, "HorizontalPodAutoscaler", release+"-loraflow-worker").(*autoscalingv2.HorizontalPodAutoscaler)
}

// TestExampleSchedulesAreValidSpecs feeds every values file's schedule.spec
// to the spec parser the schedule Job's `loraflow schedule create` uses.
func TestExampleSchedulesAreValidSpecs(t *testing.T) {
	n := 0
	for _, vs := range append([]string{"values.yaml"}, valueSets...) {
		raw, err := os.ReadFile(filepath.Join(chartDir, vs))
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			Schedule struct {
				Spec map[string]any `json:"spec"`
			} `json:"schedule"`
		}
		if err := yaml.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		if len(v.Schedule.Spec) == 0 {
			continue
		}
		n++
		doc, err := yaml.Marshal(v.Schedule.Spec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := spec.Parse(doc, vs+" schedule.spec"); err != nil {
			t.Errorf("%v", err)
		}
	}
	if n == 0 {
		t.Fatal("no values file has a schedule spec")
	}
}

// TestNotesCommandsExist renders NOTES.txt for every value set and runs each
// `loraflow ...` command it prints with --help against the CLI built from
// this tree: every subcommand and flag named must exist.
func TestNotesCommandsExist(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "loraflow")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/loraflow").CombinedOutput(); err != nil {
		t.Fatalf("building the CLI: %v\n%s", err, out)
	}
	chart := copyChart(t)
	notesCM := `apiVersion: v1
kind: ConfigMap
metadata:
  name: notes
data:
  notes: |
{{ include "loraflow.notes" . | indent 4 }}
`
	if err := os.WriteFile(filepath.Join(chart, "templates", "zz-notes.yaml"), []byte(notesCM), 0o644); err != nil {
		t.Fatal(err)
	}
	cmdLine := regexp.MustCompile(`(?m)^\s+(loraflow\s.*)$`)
	seen := 0
	for _, vs := range valueSets {
		out, err := runHelm(t, "template", release, chart, "--namespace", namespace, "--values", filepath.Join(chart, vs), "--show-only", "templates/zz-notes.yaml")
		if err != nil {
			t.Fatal(err)
		}
		var cm corev1.ConfigMap
		if err := yaml.Unmarshal([]byte(out), &cm); err != nil {
			t.Fatal(err)
		}
		for _, m := range cmdLine.FindAllStringSubmatch(cm.Data["notes"], -1) {
			args := shellFields(strings.TrimSuffix(strings.TrimSpace(m[1]), "\\"))[1:]
			seen++
			c := exec.Command(bin, append(args, "--help")...)
			c.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir())
			help, err := c.CombinedOutput()
			// The help must be the named command's, not a parent's.
			var path []string
			for _, a := range args {
				if strings.HasPrefix(a, "-") {
					break
				}
				path = append(path, a)
			}
			if err != nil || !strings.Contains(string(help), "Usage:\n  loraflow "+strings.Join(path[:commandDepth(path)], " ")) {
				t.Errorf("%s: NOTES prints %q, which the CLI refuses: %v\n%s", vs, m[1], err, help)
			}
		}
	}
	if seen < 4 {
		t.Fatalf("found only %d loraflow commands in NOTES", seen)
	}
}

// commandDepth is how many leading words of a NOTES command are subcommand
// names (the rest are positional arguments: a spec file, a schedule ID).
func commandDepth(path []string) int {
	switch {
	case len(path) >= 2 && (path[0] == "schedule" || path[0] == "runs" || path[0] == "registry" || path[0] == "dev"):
		return 2
	case len(path) >= 1:
		return 1
	}
	return 0
}

// shellFields splits a command line on spaces, keeping "quoted words".
func shellFields(s string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ' ' && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// copyChart copies the chart into a temporary folder the test may add to.
func copyChart(t *testing.T) string {
	dst := filepath.Join(t.TempDir(), chartDir)
	err := filepath.Walk(chartDir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(chartDir, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
