package argo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	wftyped "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/typed/workflow/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// Backend submits training Workflows and watches them.
type Backend struct {
	client versioned.Interface
	cfg    Config
}

// New returns a Backend using client (a real or fake Argo clientset).
func New(client versioned.Interface, cfg Config) (*Backend, error) {
	if client == nil {
		return nil, errors.New("argo: nil clientset")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Backend{client: client, cfg: cfg.withDefaults()}, nil
}

// NewInCluster returns a Backend that talks to the API server of the cluster
// it runs in, with the pod's ServiceAccount (the Helm chart grants it create,
// get, watch, patch and delete on Workflows in cfg.Namespace).
func NewInCluster(cfg Config) (*Backend, error) {
	rc, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("argo: in-cluster config: %w", err)
	}
	cs, err := versioned.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("argo: clientset: %w", err)
	}
	return New(cs, cfg)
}

// Status is what the heartbeat callback receives.
type Status struct {
	Workflow  string
	Phase     string // "", Pending, Running, Succeeded, Failed, Error
	Progress  string // Argo's "done/total" of the Workflow's nodes
	Message   string
	StartedAt time.Time
	// Trainer is the trainer's own progress (Job.ProgressFile), when it wrote some.
	Trainer *TrainerProgress
}

// TrainerProgress is the JSON a trainer may write to LORAFLOW_PROGRESS_FILE.
type TrainerProgress struct {
	Step         int     `json:"step"`
	TotalSteps   int     `json:"total_steps"`
	Loss         float64 `json:"loss"`
	TokensPerSec float64 `json:"tokens_per_sec,omitempty"`
	Checkpoint   string  `json:"checkpoint,omitempty"`
}

// Train runs job as an Argo Workflow and returns the adapter folder
// (job.OutputDir) once the Workflow succeeded and the folder passed the
// checks. heartbeat (may be nil) is called on every change seen and at least
// every HeartbeatInterval. Other failures are *Error values.
//
// When ctx ends, what happens to the Workflow depends on why
// (context.Cause): a cancellation (the cause is or wraps context.Canceled)
// terminates and deletes it (kept, terminated, with KeepCancelled); any
// other cause — a worker shutting down, the attempt's deadline, a lost
// lease — leaves it running, so that the next attempt adopts it instead of
// losing the training done so far. Either way Train returns an error
// wrapping the cause. A caller whose own cancellation signal is another
// error (Temporal's CanceledError) maps it to context.Canceled first; a
// caller that gives up without an attempt running calls [Backend.Stop].
//
// A Workflow of the same name that already exists (a retried activity) is
// adopted: watched if running, used if it succeeded, and replaced if it
// failed.
func (b *Backend) Train(ctx context.Context, job Job, heartbeat func(Status)) (string, error) {
	wf, err := b.BuildWorkflow(job)
	if err != nil {
		return "", err
	}
	log := b.cfg.Logger.With("workflow", wf.Name, "namespace", wf.Namespace)
	wfs := b.client.ArgoprojV1alpha1().Workflows(b.cfg.Namespace)
	if err := b.submit(ctx, wfs, wf, log); err != nil {
		if ctx.Err() != nil {
			return "", b.interrupted(ctx, wfs, wf.Name) // it may have been created before ctx ended
		}
		return "", err
	}
	final, err := b.wait(ctx, wfs, wf.Name, job, heartbeat)
	if err != nil {
		if ctx.Err() != nil {
			return "", b.interrupted(ctx, wfs, wf.Name)
		}
		return "", err
	}
	if final.Status.Phase != wfv1.WorkflowSucceeded {
		e := classify(final)
		log.Warn("training workflow failed", "reason", e.Reason, "exit_code", e.ExitCode, "retryable", e.Retryable, "message", e.Message)
		return "", e
	}
	if err := b.checkAdapter(job.OutputDir); err != nil {
		return "", &Error{Workflow: wf.Name, Phase: string(final.Status.Phase), Reason: ReasonInvalidAdapter, ExitCode: 0, Err: err}
	}
	log.Info("training workflow succeeded", "adapter", job.OutputDir)
	return job.OutputDir, nil
}

// submit creates the Workflow, adopting one of the same name that exists.
func (b *Backend) submit(ctx context.Context, wfs wftyped.WorkflowInterface, wf *wfv1.Workflow, log interface{ Info(string, ...any) }) error {
	for attempt := 0; ; attempt++ {
		_, err := wfs.Create(ctx, wf, metav1.CreateOptions{})
		switch {
		case err == nil:
			log.Info("training workflow submitted")
			return nil
		case apierrors.IsAlreadyExists(err) && attempt == 0:
			old, gerr := wfs.Get(ctx, wf.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(gerr) {
				continue // deleted meanwhile: create again
			}
			if gerr != nil {
				return apiError(wf.Name, gerr)
			}
			if !isOurs(old, wf) {
				return &Error{Workflow: wf.Name, Reason: ReasonRejected, ExitCode: -1,
					Message: "a Workflow of this name exists and was not created by loraflow for the same inputs"}
			}
			if old.Status.Phase != wfv1.WorkflowFailed && old.Status.Phase != wfv1.WorkflowError {
				log.Info("adopting existing training workflow", "phase", old.Status.Phase)
				return nil
			}
			log.Info("replacing failed training workflow", "phase", old.Status.Phase)
			if err := wfs.Delete(ctx, wf.Name, metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationForeground)}); err != nil && !apierrors.IsNotFound(err) {
				return apiError(wf.Name, err)
			}
			// Foreground deletion finishes asynchronously; wait until it is gone.
			if err := b.waitGone(ctx, wfs, wf.Name); err != nil {
				return err
			}
		default:
			return apiError(wf.Name, err)
		}
	}
}

func isOurs(old, want *wfv1.Workflow) bool {
	if old.Labels[LabelManagedBy] != ManagedBy {
		return false
	}
	for _, k := range []string{AnnotationSnapshot, AnnotationBaseModel, AnnotationSpec, AnnotationOutput} {
		if old.Annotations[k] != want.Annotations[k] {
			return false
		}
	}
	return true
}

func (b *Backend) waitGone(ctx context.Context, wfs wftyped.WorkflowInterface, name string) error {
	deadline := time.Now().Add(b.cfg.APIOutageTimeout)
	for {
		_, err := wfs.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if time.Now().After(deadline) {
			return &Error{Workflow: name, Reason: ReasonAPIUnavailable, ExitCode: -1, Retryable: true, Message: "old workflow still being deleted", Err: err}
		}
		if err := sleep(ctx, b.cfg.PollInterval); err != nil {
			return err
		}
	}
}

// apiError classifies an API server error: refusals are final, the rest
// (timeouts, throttling, outages) retryable.
func apiError(name string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	final := apierrors.IsForbidden(err) || apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) ||
		apierrors.IsUnauthorized(err) || apierrors.IsMethodNotSupported(err) || apierrors.IsNotAcceptable(err)
	reason := ReasonAPIUnavailable
	if final {
		reason = ReasonRejected
	}
	return &Error{Workflow: name, Reason: reason, ExitCode: -1, Retryable: !final, Err: err}
}

func done(wf *wfv1.Workflow) bool {
	switch wf.Status.Phase {
	case wfv1.WorkflowSucceeded, wfv1.WorkflowFailed, wfv1.WorkflowError:
		return true
	}
	return false
}

// wait follows the Workflow until it completes: Get, then Watch (a field
// selector on its name) from that resourceVersion; a closed or failed watch
// is opened again after a fresh Get; while watching, a Get every
// ResyncInterval catches lost events; when no watch can be opened, Get every
// PollInterval.
func (b *Backend) wait(ctx context.Context, wfs wftyped.WorkflowInterface, name string, job Job, heartbeat func(Status)) (*wfv1.Workflow, error) {
	log := b.cfg.Logger.With("workflow", name)
	var last *wfv1.Workflow
	beat := func(wf *wfv1.Workflow) {
		if wf != nil {
			last = wf
		}
		if heartbeat != nil && last != nil {
			heartbeat(b.status(last, job))
		}
	}
	var failingSince time.Time
	// get reads the Workflow; (nil, nil) means a transient failure to retry.
	get := func() (*wfv1.Workflow, error) {
		wf, err := wfs.Get(ctx, name, metav1.GetOptions{})
		switch {
		case err == nil:
			failingSince = time.Time{}
			return wf, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case apierrors.IsNotFound(err):
			return nil, &Error{Workflow: name, Reason: ReasonDeleted, ExitCode: -1, Retryable: true, Message: "the Workflow was deleted while training ran"}
		}
		if failingSince.IsZero() {
			failingSince = time.Now()
		}
		if time.Since(failingSince) > b.cfg.APIOutageTimeout {
			return nil, &Error{Workflow: name, Reason: ReasonAPIUnavailable, ExitCode: -1, Retryable: true, Err: err}
		}
		log.Warn("get workflow failed; retrying", "err", err)
		return nil, nil
	}
	for {
		wf, err := get()
		if err != nil {
			return nil, err
		}
		if wf == nil {
			if err := b.pause(ctx, b.cfg.PollInterval, beat); err != nil {
				return nil, err
			}
			continue
		}
		beat(wf)
		if done(wf) {
			return wf, nil
		}
		w, err := wfs.Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", name).String(),
			ResourceVersion: wf.ResourceVersion,
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			log.Warn("watch failed; polling", "err", err)
			if err := b.pause(ctx, b.cfg.PollInterval, beat); err != nil {
				return nil, err
			}
			continue
		}
		final, err := b.follow(ctx, w, name, get, beat)
		w.Stop()
		if err != nil || final != nil {
			return final, err
		}
		log.Debug("watch closed; re-establishing")
	}
}

// follow consumes one watch. It returns the completed Workflow, an error, or
// (nil, nil) when the watch ended and must be opened again.
func (b *Backend) follow(ctx context.Context, w watch.Interface, name string, get func() (*wfv1.Workflow, error), beat func(*wfv1.Workflow)) (*wfv1.Workflow, error) {
	hb := time.NewTicker(b.cfg.HeartbeatInterval)
	defer hb.Stop()
	resync := time.NewTicker(b.cfg.ResyncInterval)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-hb.C:
			beat(nil)
		case <-resync.C:
			wf, err := get()
			if err != nil {
				return nil, err
			}
			if wf != nil {
				beat(wf)
				if done(wf) {
					return wf, nil
				}
			}
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil, nil
			}
			switch ev.Type {
			case watch.Error:
				b.cfg.Logger.Debug("watch error event", "workflow", name, "status", apierrors.FromObject(ev.Object))
				return nil, nil
			case watch.Bookmark:
				continue
			}
			wf, ok := ev.Object.(*wfv1.Workflow)
			if !ok || wf.Name != name {
				continue
			}
			if ev.Type == watch.Deleted {
				return nil, &Error{Workflow: name, Phase: string(wf.Status.Phase), Reason: ReasonDeleted, ExitCode: -1, Retryable: true,
					Message: "the Workflow was deleted while training ran"}
			}
			beat(wf)
			if done(wf) {
				return wf, nil
			}
		}
	}
}

// pause waits d, heartbeating meanwhile.
func (b *Backend) pause(ctx context.Context, d time.Duration, beat func(*wfv1.Workflow)) error {
	t := time.NewTimer(d)
	defer t.Stop()
	hb := time.NewTicker(b.cfg.HeartbeatInterval)
	defer hb.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		case <-hb.C:
			beat(nil)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// IsCancel reports whether cause, the context.Cause of a done context, is a
// cancellation (Train then stops the Workflow) rather than a shutdown or a
// timeout (Train leaves it running for the next attempt).
func IsCancel(cause error) bool { return errors.Is(cause, context.Canceled) }

// interrupted handles a ctx that ended while Train ran: it stops the
// Workflow on a cancellation and leaves it running otherwise.
func (b *Backend) interrupted(ctx context.Context, wfs wftyped.WorkflowInterface, name string) error {
	cause := context.Cause(ctx)
	if !IsCancel(cause) {
		b.cfg.Logger.Info("training workflow left running for the next attempt to adopt", "workflow", name, "cause", cause)
		return fmt.Errorf("argo: workflow %s: left running for the next attempt: %w", name, cause)
	}
	if err := b.stop(ctx, wfs, name); err != nil {
		b.cfg.Logger.Warn("stopping cancelled workflow failed", "workflow", name, "err", err)
	}
	return fmt.Errorf("argo: workflow %s: training cancelled: %w", name, cause)
}

// Stop terminates and deletes (kept, terminated, with KeepCancelled) the
// Workflow of job, if there is one: the cleanup of a run cancelled while no
// Train call was running for it (between two attempts, or after a worker
// died). It is idempotent; ctx may be done (Stop uses a context of its own,
// bounded by CleanupTimeout).
func (b *Backend) Stop(ctx context.Context, job Job) error {
	wf, err := b.BuildWorkflow(job)
	if err != nil {
		return err
	}
	wfs := b.client.ArgoprojV1alpha1().Workflows(b.cfg.Namespace)
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.CleanupTimeout)
	defer cancel()
	old, err := wfs.Get(gctx, wf.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return apiError(wf.Name, err)
	case !isOurs(old, wf):
		return nil // someone else's Workflow of that name: not ours to stop
	}
	return b.stop(ctx, wfs, wf.Name)
}

// stop terminates the Workflow (Argo kills its pods) and deletes it, with a
// context of its own since ctx is already done.
func (b *Backend) stop(ctx context.Context, wfs wftyped.WorkflowInterface, name string) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.CleanupTimeout)
	defer cancel()
	log := b.cfg.Logger.With("workflow", name)
	patch := []byte(`{"spec":{"shutdown":"` + string(wfv1.ShutdownStrategyTerminate) + `"}}`)
	var terr error
	if _, err := wfs.Patch(cctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
		terr = fmt.Errorf("argo: terminating workflow %s: %w", name, err)
	}
	if b.cfg.KeepCancelled {
		if terr == nil {
			log.Info("cancelled training workflow terminated")
		}
		return terr
	}
	// Deleting also stops it (its pods are owned by it), so try even when
	// the termination failed.
	if err := wfs.Delete(cctx, name, metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationBackground)}); err != nil && !apierrors.IsNotFound(err) {
		return errors.Join(terr, fmt.Errorf("argo: deleting workflow %s: %w", name, err))
	}
	log.Info("cancelled training workflow terminated and deleted")
	return nil
}

func (b *Backend) status(wf *wfv1.Workflow, job Job) Status {
	s := Status{
		Workflow:  wf.Name,
		Phase:     string(wf.Status.Phase),
		Progress:  string(wf.Status.Progress),
		Message:   wf.Status.Message,
		StartedAt: wf.Status.StartedAt.Time,
	}
	if job.ProgressFile != "" {
		if raw, err := os.ReadFile(job.ProgressFile); err == nil {
			var p TrainerProgress
			if json.Unmarshal(raw, &p) == nil {
				s.Trainer = &p
			}
		}
	}
	return s
}

var exitCodeInMessage = regexp.MustCompile(`exit code (\d+)`)

// classify maps a failed Workflow to an *Error.
func classify(wf *wfv1.Workflow) *Error {
	e := &Error{Workflow: wf.Name, Phase: string(wf.Status.Phase), ExitCode: -1, Message: wf.Status.Message}
	// The failed pod node carries the trainer's exit code and message.
	ids := make([]string, 0, len(wf.Status.Nodes))
	for id := range wf.Status.Nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		n := wf.Status.Nodes[id]
		if n.Type != wfv1.NodeTypePod || (n.Phase != wfv1.NodeFailed && n.Phase != wfv1.NodeError) {
			continue
		}
		if n.Message != "" {
			e.Message = n.Message
		}
		if n.Outputs != nil && n.Outputs.ExitCode != nil {
			if c, err := strconv.Atoi(*n.Outputs.ExitCode); err == nil {
				e.ExitCode = c
			}
		}
		if e.ExitCode < 0 {
			if m := exitCodeInMessage.FindStringSubmatch(n.Message); m != nil {
				e.ExitCode, _ = strconv.Atoi(m[1])
			}
		}
		break
	}
	msg := strings.ToLower(e.Message + " " + wf.Status.Message)
	switch {
	case wf.Spec.Shutdown != "":
		e.Reason, e.Retryable = ReasonStopped, false
	case e.ExitCode == ExitBadInput:
		e.Reason, e.Retryable = ReasonBadInput, false
	case strings.Contains(msg, "deadline"):
		e.Reason, e.Retryable = ReasonDeadlineExceeded, false
	case wf.Status.Phase == wfv1.WorkflowError:
		e.Reason, e.Retryable = ReasonWorkflowError, true
	default:
		e.Reason, e.Retryable = ReasonTrainerFailed, true
	}
	return e
}

func ptr[T any](v T) *T { return &v }
