package argo_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"

	"go.temporal.io/sdk/worker"

	"github.com/loraflow/loraflow/argo"
)

const ns = "ml"

var wfGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "workflows"}

type env struct {
	t    *testing.T
	cs   *fake.Clientset
	b    *argo.Backend
	cfg  argo.Config
	job  argo.Job
	root string

	mu    sync.Mutex
	beats []argo.Status
}

func newEnv(t *testing.T, tweak ...func(*argo.Config)) *env {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"snapshots/s1", "models/base", "runs/r1"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := argo.Config{
		Namespace:          ns,
		Image:              "registry.example.com/loraflow:1.0",
		ArtifactClaim:      "lf-artifacts",
		ArtifactMountPath:  root,
		ServiceAccountName: "argo-workflow",
		GPUs:               1,
		NodeSelector:       map[string]string{"nvidia.com/gpu.present": "true"},
		Tolerations:        []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
		ActiveDeadline:     12 * time.Hour,
		TTLAfterCompletion: 24 * time.Hour,
		HeartbeatInterval:  5 * time.Millisecond,
		ResyncInterval:     50 * time.Millisecond,
		PollInterval:       5 * time.Millisecond,
		APIOutageTimeout:   2 * time.Second,
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, f := range tweak {
		f(&cfg)
	}
	cs := fake.NewSimpleClientset()
	b, err := argo.New(cs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{
		t: t, cs: cs, b: b, cfg: cfg, root: root,
		job: argo.Job{
			SnapshotPath:  filepath.Join(root, "snapshots/s1"),
			BaseModelPath: filepath.Join(root, "models/base"),
			SpecPath:      filepath.Join(root, "runs/r1/spec.yaml"),
			OutputDir:     filepath.Join(root, "runs/r1/adapter"),
			ProgressFile:  filepath.Join(root, "runs/r1/progress.json"),
		},
	}
}

func (e *env) heartbeat(s argo.Status) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.beats = append(e.beats, s)
}

func (e *env) sawPhase(phase string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.ContainsFunc(e.beats, func(s argo.Status) bool { return s.Phase == phase })
}

type result struct {
	dir string
	err error
}

// start runs Train in the background.
func (e *env) start(ctx context.Context) <-chan result {
	ch := make(chan result, 1)
	go func() {
		dir, err := e.b.Train(ctx, e.job, e.heartbeat)
		ch <- result{dir, err}
	}()
	return ch
}

func (e *env) wait(ch <-chan result) result {
	e.t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		e.t.Fatal("Train did not return")
		return result{}
	}
}

func (e *env) name() string {
	e.t.Helper()
	wf, err := e.b.BuildWorkflow(e.job)
	if err != nil {
		e.t.Fatal(err)
	}
	return wf.Name
}

// created waits until the Workflow exists and returns it.
func (e *env) created() *wfv1.Workflow {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		wf, err := e.cs.ArgoprojV1alpha1().Workflows(ns).Get(context.Background(), e.name(), metav1.GetOptions{})
		if err == nil {
			return wf
		}
		time.Sleep(time.Millisecond)
	}
	e.t.Fatal("the Workflow was not created")
	return nil
}

// set moves the Workflow to phase, as Argo's controller would.
func (e *env) set(phase wfv1.WorkflowPhase, mutate func(*wfv1.Workflow)) *wfv1.Workflow {
	e.t.Helper()
	wfs := e.cs.ArgoprojV1alpha1().Workflows(ns)
	wf, err := wfs.Get(context.Background(), e.name(), metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	wf.Status.Phase = phase
	if wf.Status.StartedAt.IsZero() {
		wf.Status.StartedAt = metav1.Now()
	}
	wf.Status.Progress = "0/1"
	if phase == wfv1.WorkflowSucceeded {
		wf.Status.Progress = "1/1"
	}
	if mutate != nil {
		mutate(wf)
	}
	wf, err = wfs.Update(context.Background(), wf, metav1.UpdateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return wf
}

// failPod marks the Workflow failed with one failed pod node.
func failPod(exitCode, message string) func(*wfv1.Workflow) {
	return func(wf *wfv1.Workflow) {
		n := wfv1.NodeStatus{ID: wf.Name, Name: wf.Name, Type: wfv1.NodeTypePod, Phase: wfv1.NodeFailed, Message: message}
		if exitCode != "" {
			n.Outputs = &wfv1.Outputs{ExitCode: &exitCode}
		}
		wf.Status.Nodes = wfv1.Nodes{wf.Name: n}
		wf.Status.Message = message
	}
}

func writeAdapter(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := `{"peft_type":"LORA","r":8,"lora_alpha":16,"target_modules":["q_proj","v_proj"]}`
	if err := os.WriteFile(filepath.Join(dir, argo.AdapterConfigFile), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	hdr := []byte(`{"base_model.model.x.lora_A.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]}}`)
	var buf []byte
	buf = binary.LittleEndian.AppendUint64(buf, uint64(len(hdr)))
	buf = append(buf, hdr...)
	buf = append(buf, 0, 0, 0x80, 0x3f)
	if err := os.WriteFile(filepath.Join(dir, argo.AdapterWeightsFile), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

func countActions(cs *fake.Clientset, verb string) int {
	n := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == verb && a.GetResource() == wfGVR {
			n++
		}
	}
	return n
}

func TestTrainSuccess(t *testing.T) {
	e := newEnv(t)
	ch := e.start(context.Background())
	wf := e.created()

	// The submitted Workflow runs the trainer with the GPU limit and the
	// artifact store mounted where the job's paths live.
	c := wf.Spec.Templates[0].Container
	if got := c.Resources.Limits["nvidia.com/gpu"]; got.Value() != 1 {
		t.Errorf("GPU limit %v", got.String())
	}
	wantArgs := []string{"--snapshot", e.job.SnapshotPath, "--base", e.job.BaseModelPath, "--spec", e.job.SpecPath, "--out", e.job.OutputDir}
	if !slices.Equal(c.Command, []string{"loraflow", "train"}) || !slices.Equal(c.Args, wantArgs) {
		t.Errorf("command %v args %v", c.Command, c.Args)
	}
	if c.VolumeMounts[0].MountPath != e.root || wf.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "lf-artifacts" {
		t.Errorf("artifact mount %+v, volume %+v", c.VolumeMounts[0], wf.Spec.Volumes[0])
	}
	if !slices.ContainsFunc(c.Env, func(v corev1.EnvVar) bool { return v.Name == argo.EnvProgressFile && v.Value == e.job.ProgressFile }) {
		t.Errorf("env %v lacks the progress file", c.Env)
	}

	if err := os.WriteFile(e.job.ProgressFile, []byte(`{"step":40,"total_steps":100,"loss":1.25}`), 0o644); err != nil {
		t.Fatal(err)
	}
	e.set(wfv1.WorkflowRunning, nil)
	waitFor(t, func() bool { return e.sawPhase("Running") })
	waitFor(t, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		last := e.beats[len(e.beats)-1]
		return last.Trainer != nil && last.Trainer.Step == 40 && last.Trainer.TotalSteps == 100 && last.Progress == "0/1"
	})
	writeAdapter(t, e.job.OutputDir)
	e.set(wfv1.WorkflowSucceeded, nil)

	r := e.wait(ch)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.dir != e.job.OutputDir {
		t.Errorf("adapter dir %q, want %q", r.dir, e.job.OutputDir)
	}
	if !e.sawPhase("Succeeded") {
		t.Error("no heartbeat with the Succeeded phase")
	}
	// The watch is restricted to this Workflow.
	watched := false
	for _, a := range e.cs.Actions() {
		if wa, ok := a.(k8stesting.WatchAction); ok {
			f := wa.GetWatchRestrictions().Fields
			v, ok := f.RequiresExactMatch("metadata.name")
			watched = watched || (ok && v == wf.Name)
		}
	}
	if !watched {
		t.Error("no watch with a metadata.name field selector")
	}
	if countActions(e.cs, "delete") != 0 {
		t.Error("a succeeded Workflow was deleted")
	}
}

func TestTrainFailureClassified(t *testing.T) {
	cases := []struct {
		name      string
		phase     wfv1.WorkflowPhase
		mutate    func(*wfv1.Workflow)
		reason    string
		exitCode  int
		retryable bool
	}{
		{"bad input", wfv1.WorkflowFailed, failPod("2", "Error (exit code 2)"), argo.ReasonBadInput, 2, false},
		{"trainer crash", wfv1.WorkflowFailed, failPod("1", "Error (exit code 1)"), argo.ReasonTrainerFailed, 1, true},
		{"exit code only in message", wfv1.WorkflowFailed, failPod("", "OOMKilled (exit code 137)"), argo.ReasonTrainerFailed, 137, true},
		{"bad input code only in message", wfv1.WorkflowFailed, failPod("", "Error (exit code 2)"), argo.ReasonBadInput, 2, false},
		{"controller error", wfv1.WorkflowError, func(wf *wfv1.Workflow) { wf.Status.Message = "pod deleted" }, argo.ReasonWorkflowError, -1, true},
		{"deadline", wfv1.WorkflowFailed, failPod("", "Step exceeded its deadline"), argo.ReasonDeadlineExceeded, -1, false},
		{"stopped by someone", wfv1.WorkflowFailed, func(wf *wfv1.Workflow) {
			wf.Spec.Shutdown = wfv1.ShutdownStrategyStop
			failPod("143", "Stopped with strategy 'Stop'")(wf)
		}, argo.ReasonStopped, 143, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ch := e.start(context.Background())
			e.created()
			e.set(wfv1.WorkflowRunning, nil)
			e.set(tc.phase, tc.mutate)
			r := e.wait(ch)
			var ae *argo.Error
			if !errors.As(r.err, &ae) {
				t.Fatalf("error %v (%T) is not an *argo.Error", r.err, r.err)
			}
			if ae.Reason != tc.reason || ae.ExitCode != tc.exitCode || ae.Retryable != tc.retryable || argo.IsRetryable(r.err) != tc.retryable {
				t.Errorf("got reason %s exit %d retryable %v; want %s %d %v (%v)", ae.Reason, ae.ExitCode, ae.Retryable, tc.reason, tc.exitCode, tc.retryable, r.err)
			}
			if ae.Workflow != e.name() || ae.Phase != string(tc.phase) {
				t.Errorf("error names workflow %q phase %q", ae.Workflow, ae.Phase)
			}
		})
	}
}

// TestWatchClosedMidRun: the first watch delivers one event and closes; the
// backend reads the Workflow again, opens a new watch and sees it finish.
func TestWatchClosedMidRun(t *testing.T) {
	e := newEnv(t, func(c *argo.Config) { c.ResyncInterval = time.Hour }) // only watches can see the end
	first := watch.NewFake()
	var watches atomic.Int32
	e.cs.PrependWatchReactor("workflows", func(k8stesting.Action) (bool, watch.Interface, error) {
		if watches.Add(1) == 1 {
			return true, first, nil
		}
		return false, nil, nil // the tracker's watch
	})
	ch := e.start(context.Background())
	e.created()
	waitFor(t, func() bool { return watches.Load() == 1 })
	running := e.set(wfv1.WorkflowRunning, nil)
	first.Modify(running) // blocks until the backend reads it
	waitFor(t, func() bool { return e.sawPhase("Running") })
	first.Stop()
	waitFor(t, func() bool { return watches.Load() >= 2 })
	writeAdapter(t, e.job.OutputDir)
	e.set(wfv1.WorkflowSucceeded, nil)
	r := e.wait(ch)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if n := countActions(e.cs, "get"); n < 2 {
		t.Errorf("%d gets; the closed watch should be followed by a fresh Get", n)
	}
}

// TestWatchUnavailableFallsBackToGet: no watch can be opened; polling Get
// still follows the Workflow to its end.
func TestWatchUnavailableFallsBackToGet(t *testing.T) {
	e := newEnv(t)
	e.cs.PrependWatchReactor("workflows", func(k8stesting.Action) (bool, watch.Interface, error) {
		return true, nil, apierrors.NewServiceUnavailable("watch cache not ready")
	})
	ch := e.start(context.Background())
	e.created()
	e.set(wfv1.WorkflowRunning, nil)
	waitFor(t, func() bool { return e.sawPhase("Running") })
	writeAdapter(t, e.job.OutputDir)
	e.set(wfv1.WorkflowSucceeded, nil)
	if r := e.wait(ch); r.err != nil {
		t.Fatal(r.err)
	}
	if n := countActions(e.cs, "get"); n < 3 {
		t.Errorf("only %d gets while watches failed", n)
	}
}

// TestGetOutageGivesUp: the API server fails every call; Train returns a
// retryable APIUnavailable error after APIOutageTimeout.
func TestGetOutageGivesUp(t *testing.T) {
	e := newEnv(t, func(c *argo.Config) { c.APIOutageTimeout = 50 * time.Millisecond })
	ch := e.start(context.Background())
	e.created()
	e.cs.PrependReactor("get", "workflows", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewTimeoutError("etcd slow", 1)
	})
	e.cs.PrependWatchReactor("workflows", func(k8stesting.Action) (bool, watch.Interface, error) {
		return true, nil, apierrors.NewTimeoutError("etcd slow", 1)
	})
	r := e.wait(ch)
	var ae *argo.Error
	if !errors.As(r.err, &ae) || ae.Reason != argo.ReasonAPIUnavailable || !ae.Retryable {
		t.Fatalf("err = %v", r.err)
	}
}

func TestCancelTerminatesAndDeletes(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	ch := e.start(ctx)
	e.created()
	e.set(wfv1.WorkflowRunning, nil)
	waitFor(t, func() bool { return e.sawPhase("Running") })
	cancel()
	r := e.wait(ch)
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", r.err)
	}
	terminated := false
	for _, a := range e.cs.Actions() {
		if pa, ok := a.(k8stesting.PatchAction); ok && pa.GetName() == e.name() {
			terminated = terminated || strings.Contains(string(pa.GetPatch()), `"shutdown":"Terminate"`)
		}
	}
	if !terminated {
		t.Error("the Workflow was not terminated")
	}
	if _, err := e.cs.ArgoprojV1alpha1().Workflows(ns).Get(context.Background(), e.name(), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Workflow still exists after cancellation (err %v)", err)
	}
}

func TestCancelKeepsTerminatedWorkflow(t *testing.T) {
	e := newEnv(t, func(c *argo.Config) { c.KeepCancelled = true })
	ctx, cancel := context.WithCancel(context.Background())
	ch := e.start(ctx)
	e.created()
	cancel()
	if r := e.wait(ch); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("err = %v", r.err)
	}
	wf, err := e.cs.ArgoprojV1alpha1().Workflows(ns).Get(context.Background(), e.name(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if wf.Spec.Shutdown != wfv1.ShutdownStrategyTerminate {
		t.Errorf("shutdown = %q, want Terminate", wf.Spec.Shutdown)
	}
}

func TestDeletedWhileRunning(t *testing.T) {
	e := newEnv(t)
	ch := e.start(context.Background())
	e.created()
	e.set(wfv1.WorkflowRunning, nil)
	waitFor(t, func() bool { return e.sawPhase("Running") })
	if err := e.cs.ArgoprojV1alpha1().Workflows(ns).Delete(context.Background(), e.name(), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	r := e.wait(ch)
	var ae *argo.Error
	if !errors.As(r.err, &ae) || ae.Reason != argo.ReasonDeleted || !ae.Retryable {
		t.Fatalf("err = %v", r.err)
	}
}

func TestInvalidAdapter(t *testing.T) {
	cases := map[string]func(t *testing.T, dir string){
		"missing folder": func(*testing.T, string) {},
		"missing weights": func(t *testing.T, dir string) {
			writeAdapter(t, dir)
			os.Remove(filepath.Join(dir, argo.AdapterWeightsFile))
		},
		"truncated weights": func(t *testing.T, dir string) {
			writeAdapter(t, dir)
			p := filepath.Join(dir, argo.AdapterWeightsFile)
			raw, _ := os.ReadFile(p)
			os.WriteFile(p, raw[:20], 0o644)
		},
		"config without peft_type": func(t *testing.T, dir string) {
			writeAdapter(t, dir)
			os.WriteFile(filepath.Join(dir, argo.AdapterConfigFile), []byte(`{"r":8}`), 0o644)
		},
	}
	for name, prepare := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			ch := e.start(context.Background())
			e.created()
			prepare(t, e.job.OutputDir)
			e.set(wfv1.WorkflowSucceeded, nil)
			r := e.wait(ch)
			var ae *argo.Error
			if !errors.As(r.err, &ae) || ae.Reason != argo.ReasonInvalidAdapter || ae.Retryable {
				t.Fatalf("err = %v", r.err)
			}
		})
	}
	t.Run("ValidateAdapter hook", func(t *testing.T) {
		hookErr := errors.New("shape [8,64] of lora_A does not match the base model")
		var seen string
		e := newEnv(t, func(c *argo.Config) {
			c.ValidateAdapter = func(dir string) error { seen = dir; return hookErr }
		})
		ch := e.start(context.Background())
		e.created()
		writeAdapter(t, e.job.OutputDir)
		e.set(wfv1.WorkflowSucceeded, nil)
		r := e.wait(ch)
		if !errors.Is(r.err, hookErr) || argo.IsRetryable(r.err) || seen != e.job.OutputDir {
			t.Fatalf("err = %v, hook saw %q", r.err, seen)
		}
	})
}

// TestRetriedActivityAdoptsWorkflow: a second Train for the same job finds the
// Workflow of the first attempt instead of starting another.
func TestRetriedActivityAdoptsWorkflow(t *testing.T) {
	e := newEnv(t)
	wf, err := e.b.BuildWorkflow(e.job)
	if err != nil {
		t.Fatal(err)
	}
	wf.Status.Phase = wfv1.WorkflowSucceeded
	if _, err := e.cs.ArgoprojV1alpha1().Workflows(ns).Create(context.Background(), wf, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	writeAdapter(t, e.job.OutputDir)
	e.cs.ClearActions()
	r := e.wait(e.start(context.Background()))
	if r.err != nil {
		t.Fatal(r.err)
	}
	if countActions(e.cs, "delete") != 0 {
		t.Error("the succeeded Workflow was replaced")
	}
}

func TestFailedWorkflowIsReplaced(t *testing.T) {
	e := newEnv(t)
	wf, _ := e.b.BuildWorkflow(e.job)
	wf.Status.Phase = wfv1.WorkflowFailed
	if _, err := e.cs.ArgoprojV1alpha1().Workflows(ns).Create(context.Background(), wf, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.cs.ClearActions()
	ch := e.start(context.Background())
	waitFor(t, func() bool { return countActions(e.cs, "delete") == 1 && countActions(e.cs, "create") == 2 })
	fresh := e.created()
	if fresh.Status.Phase != "" {
		t.Fatalf("phase %q after replacement", fresh.Status.Phase)
	}
	writeAdapter(t, e.job.OutputDir)
	e.set(wfv1.WorkflowSucceeded, nil)
	if r := e.wait(ch); r.err != nil {
		t.Fatal(r.err)
	}
}

func TestForeignWorkflowNotAdopted(t *testing.T) {
	e := newEnv(t)
	e.job.Name = "somebody-elses"
	other := &wfv1.Workflow{ObjectMeta: metav1.ObjectMeta{Name: "somebody-elses", Namespace: ns}}
	if _, err := e.cs.ArgoprojV1alpha1().Workflows(ns).Create(context.Background(), other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r := e.wait(e.start(context.Background()))
	var ae *argo.Error
	if !errors.As(r.err, &ae) || ae.Reason != argo.ReasonRejected || ae.Retryable {
		t.Fatalf("err = %v", r.err)
	}
}

func TestRejectedByAPIServer(t *testing.T) {
	e := newEnv(t)
	e.cs.PrependReactor("create", "workflows", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(wfGVR.GroupResource(), "x", errors.New("RBAC: no create"))
	})
	r := e.wait(e.start(context.Background()))
	var ae *argo.Error
	if !errors.As(r.err, &ae) || ae.Reason != argo.ReasonRejected || ae.Retryable || !apierrors.IsForbidden(r.err) {
		t.Fatalf("err = %v", r.err)
	}
}

func TestBadJob(t *testing.T) {
	cases := map[string]func(j *argo.Job){
		"snapshot outside the store": func(j *argo.Job) { j.SnapshotPath = "/etc/passwd" },
		"dot-dot escape":             func(j *argo.Job) { j.OutputDir = j.OutputDir + "/../../../../x" },
		"relative path":              func(j *argo.Job) { j.SpecPath = "spec.yaml" },
		"no base":                    func(j *argo.Job) { j.BaseModelPath = "" },
		"bad name":                   func(j *argo.Job) { j.Name = "Not_A_Name" },
		"bad label":                  func(j *argo.Job) { j.Labels = map[string]string{"run": "has spaces"} },
		"negative gpus":              func(j *argo.Job) { j.GPUs = -1 },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			mutate(&e.job)
			_, err := e.b.Train(context.Background(), e.job, nil)
			var ae *argo.Error
			if !errors.As(err, &ae) || ae.Reason != argo.ReasonBadInput || ae.Retryable {
				t.Fatalf("err = %v", err)
			}
			if n := countActions(e.cs, "create"); n != 0 {
				t.Errorf("%d Workflows created for a bad job", n)
			}
		})
	}
}

func TestDefaultNameIsStable(t *testing.T) {
	e := newEnv(t)
	a, _ := e.b.BuildWorkflow(e.job)
	b, _ := e.b.BuildWorkflow(e.job)
	e.job.SnapshotPath += "2"
	c, _ := e.b.BuildWorkflow(e.job)
	if a.Name != b.Name || a.Name == c.Name || !strings.HasPrefix(a.Name, "loraflow-train-") {
		t.Errorf("names %q %q %q", a.Name, b.Name, c.Name)
	}
}

func TestConfigFromEnv(t *testing.T) {
	vars := map[string]string{ // as the Helm chart renders them
		"LORAFLOW_ARGO_NAMESPACE":               "argo-gpu",
		"LORAFLOW_ARGO_TRAINER_IMAGE":           "registry.example.com/loraflow-trainer:1.2.3",
		"LORAFLOW_ARGO_ARTIFACT_CLAIM":          "lf-artifacts",
		"LORAFLOW_ARGO_ARTIFACT_MOUNT_PATH":     "/var/lib/loraflow/artifacts",
		"LORAFLOW_ARGO_SERVICE_ACCOUNT":         "argo-workflow",
		"LORAFLOW_ARGO_GPUS":                    "2",
		"LORAFLOW_ARGO_GPU_RESOURCE":            "nvidia.com/gpu",
		"LORAFLOW_ARGO_NODE_SELECTOR":           `{"nvidia.com/gpu.present":"true"}`,
		"LORAFLOW_ARGO_TOLERATIONS":             `[{"effect":"NoSchedule","key":"nvidia.com/gpu","operator":"Exists"}]`,
		"LORAFLOW_ARGO_ACTIVE_DEADLINE_SECONDS": "43200",
		"LORAFLOW_ARGO_RUN_AS_USER":             "65532",
		"LORAFLOW_ARGO_CPU":                     "8",
		"LORAFLOW_ARGO_MEMORY":                  "64Gi",
	}
	c, err := argo.ConfigFromEnv(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Namespace != "argo-gpu" || c.GPUs != 2 || c.ActiveDeadline != 12*time.Hour || c.RunAsUser != 65532 ||
		c.NodeSelector["nvidia.com/gpu.present"] != "true" || len(c.Tolerations) != 1 || c.Tolerations[0].Operator != corev1.TolerationOpExists ||
		c.Resources.Limits.Memory().String() != "64Gi" || c.Resources.Requests.Cpu().String() != "8" || c.ArtifactMountPath != "/var/lib/loraflow/artifacts" {
		t.Errorf("config %+v", c)
	}
	if _, err := argo.New(fake.NewSimpleClientset(), c); err != nil {
		t.Errorf("New: %v", err)
	}
	vars["LORAFLOW_ARGO_GPUS"] = "two"
	if _, err := argo.ConfigFromEnv(func(k string) string { return vars[k] }); err == nil || !strings.Contains(err.Error(), "LORAFLOW_ARGO_GPUS") {
		t.Errorf("bad GPUs: err = %v", err)
	}
	if _, err := argo.New(fake.NewSimpleClientset(), argo.Config{Namespace: "x"}); err == nil || !strings.Contains(err.Error(), "Image") {
		t.Errorf("incomplete config accepted: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// terminated reports whether Train sent the Terminate patch.
func (e *env) terminated() bool {
	for _, a := range e.cs.Actions() {
		if pa, ok := a.(k8stesting.PatchAction); ok && pa.GetName() == e.name() && strings.Contains(string(pa.GetPatch()), `"shutdown":"Terminate"`) {
			return true
		}
	}
	return false
}

// TestShutdownLeavesWorkflowForNextAttempt: a context ended by a worker
// shutdown (the SDK cancels activity contexts with cause ErrWorkerShutdown
// after WorkerStopTimeout, go.temporal.io/sdk internal/internal_worker_base.go)
// or by the attempt's deadline leaves the Workflow running, and the next
// Train adopts it instead of creating another.
func TestShutdownLeavesWorkflowForNextAttempt(t *testing.T) {
	for name, end := range map[string]func() (context.Context, func()){
		"worker shutdown": func() (context.Context, func()) {
			ctx, cancel := context.WithCancelCause(context.Background())
			return ctx, func() { cancel(worker.ErrWorkerShutdown) }
		},
		"attempt deadline": func() (context.Context, func()) {
			ctx, cancel := context.WithCancelCause(context.Background())
			return ctx, func() { cancel(context.DeadlineExceeded) }
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			ctx, stop := end()
			ch := e.start(ctx)
			e.created()
			e.set(wfv1.WorkflowRunning, nil)
			waitFor(t, func() bool { return e.sawPhase("Running") })
			stop()
			r := e.wait(ch)
			if r.err == nil || errors.Is(r.err, context.Canceled) {
				t.Fatalf("err = %v, want the shutdown cause", r.err)
			}
			if e.terminated() {
				t.Fatal("the Workflow was terminated on a shutdown")
			}
			wf, err := e.cs.ArgoprojV1alpha1().Workflows(ns).Get(context.Background(), e.name(), metav1.GetOptions{})
			if err != nil || wf.Status.Phase != wfv1.WorkflowRunning {
				t.Fatalf("after the shutdown: %v, phase %v", err, wf.Status.Phase)
			}

			// The next attempt adopts it.
			e.cs.ClearActions()
			ch = e.start(context.Background())
			waitFor(t, func() bool { return countActions(e.cs, "watch") > 0 })
			writeAdapter(t, e.job.OutputDir)
			e.set(wfv1.WorkflowSucceeded, nil)
			if r := e.wait(ch); r.err != nil {
				t.Fatal(r.err)
			}
			if n := countActions(e.cs, "delete"); n != 0 {
				t.Errorf("%d deletes, want 0 (adopted, not replaced)", n)
			}
		})
	}
}

// TestStopBetweenAttempts: the cleanup of a run cancelled while no attempt
// runs terminates and deletes the Workflow an earlier attempt left, and is
// a no-op when there is none or it belongs to someone else.
func TestStopBetweenAttempts(t *testing.T) {
	e := newEnv(t)
	if err := e.b.Stop(context.Background(), e.job); err != nil {
		t.Fatalf("Stop without a Workflow: %v", err)
	}
	wf, err := e.b.BuildWorkflow(e.job)
	if err != nil {
		t.Fatal(err)
	}
	wf.Status.Phase = wfv1.WorkflowRunning
	if _, err := e.cs.ArgoprojV1alpha1().Workflows(ns).Create(context.Background(), wf, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A done context: the workflow's cleanup may run after cancellation.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.b.Stop(ctx, e.job); err != nil {
		t.Fatal(err)
	}
	if !e.terminated() {
		t.Error("the Workflow was not terminated")
	}
	if _, err := e.cs.ArgoprojV1alpha1().Workflows(ns).Get(context.Background(), e.name(), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Workflow still exists (err %v)", err)
	}

	foreign := wf.DeepCopy()
	foreign.ResourceVersion = ""
	foreign.Labels = map[string]string{}
	if _, err := e.cs.ArgoprojV1alpha1().Workflows(ns).Create(context.Background(), foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.cs.ClearActions()
	if err := e.b.Stop(context.Background(), e.job); err != nil {
		t.Fatal(err)
	}
	if n := countActions(e.cs, "delete") + countActions(e.cs, "patch"); n != 0 {
		t.Errorf("a foreign Workflow was touched (%d actions)", n)
	}
}
