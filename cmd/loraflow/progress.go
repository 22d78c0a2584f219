package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"golang.org/x/term"

	"github.com/loraflow/loraflow/activities"
	"github.com/loraflow/loraflow/internal/digestfmt"
	"github.com/loraflow/loraflow/pipeline"
	"github.com/loraflow/loraflow/workflows"
)

// runSnapshot is what the CLI knows of a run at one moment: the workflow's
// progress query and the pending activity's last heartbeat.
type runSnapshot struct {
	status   string
	running  bool
	progress workflows.Progress
	train    *activities.TrainProgress
	attempt  int32
	failure  string
}

func snapshot(ctx context.Context, c client.Client, id, runID string) (runSnapshot, error) {
	var s runSnapshot
	desc, err := c.DescribeWorkflowExecution(ctx, id, runID)
	if err != nil {
		return s, err
	}
	info := desc.GetWorkflowExecutionInfo()
	s.status = statusName(info.GetStatus().String())
	s.running = info.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING
	for _, pa := range desc.GetPendingActivities() {
		s.attempt = pa.GetAttempt()
		if f := pa.GetLastFailure(); f != nil {
			s.failure = f.GetMessage()
		}
		if pa.GetActivityType().GetName() == workflows.StageTrainLoRA && pa.GetHeartbeatDetails() != nil {
			var tp activities.TrainProgress
			if err := converter.GetDefaultDataConverter().FromPayloads(pa.GetHeartbeatDetails(), &tp); err == nil {
				s.train = &tp
			}
		}
	}
	if v, err := c.QueryWorkflow(ctx, id, runID, workflows.ProgressQuery); err == nil {
		_ = v.Get(&s.progress)
	} else if s.running {
		return s, fmt.Errorf("querying progress: %w", err)
	}
	return s, nil
}

// statusName is a workflow execution status as the CLI prints it: running,
// completed, failed, canceled, terminated, timedout.
func statusName(s string) string {
	return strings.ToLower(strings.TrimPrefix(s, "WorkflowExecutionStatus"))
}

// progressView shows a run's progress: a bar per stage on a terminal (as
// pip, cargo and tqdm draw them), plain lines elsewhere (logs, CI). Stages
// are listed with their times as they finish.
type progressView interface {
	update(s runSnapshot)
	// finish ends the display; ok says whether the run completed (a bar
	// is then filled), else the bar keeps its state.
	finish(ok bool)
}

// follow shows the run's progress until it ends and returns its result. A
// failed or canceled run's error is a *runError, which prints once, with
// where training stood.
func follow(ctx context.Context, out io.Writer, c client.Client, run client.WorkflowRun) (*workflows.Result, error) {
	var view progressView = newLineView(out)
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		view = newBarView(out)
	}
	done := make(chan struct{})
	var res workflows.Result
	var runErr error
	go func() {
		runErr = run.Get(ctx, &res)
		close(done)
	}()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var last runSnapshot
	for {
		select {
		case <-done:
			if runErr != nil {
				view.finish(false)
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				return nil, newRunError(run.GetID(), runErr, last.train)
			}
			// The last stages may have finished since the last tick.
			if s, err := snapshot(ctx, c, run.GetID(), run.GetRunID()); err == nil {
				s.train = last.train
				view.update(s)
			}
			view.finish(true)
			return &res, nil
		case <-ctx.Done():
			view.finish(false)
			return nil, ctx.Err()
		case <-tick.C:
		}
		if s, err := snapshot(ctx, c, run.GetID(), run.GetRunID()); err == nil {
			if s.train == nil && s.progress.Stage == last.progress.Stage {
				s.train = last.train // between heartbeats
			}
			if s.train != nil {
				last.train = s.train
			}
			last.progress = s.progress
			view.update(s)
		}
	}
}

func describe(s runSnapshot, smoothedLoss float64) string {
	d := s.progress.Stage
	if s.attempt > 1 {
		d += fmt.Sprintf(" (attempt %d: %s)", s.attempt, firstLine(s.failure))
	}
	if s.training() {
		d += fmt.Sprintf(" smoothed loss %.4f %.0f tok/s", smoothedLoss, s.train.TokensPerSec)
	}
	return d
}

func (s runSnapshot) training() bool {
	return s.progress.Stage == workflows.StageTrainLoRA && s.train != nil && s.train.TotalSteps > 0
}

// stageTracker is what both views share: which finished stages are shown,
// and the training loss smoothed as the bars of the HF Trainer show it (an
// exponential moving average over the heartbeats seen).
type stageTracker struct {
	shown    int
	stage    string
	ema      float64
	lastStep int
}

// newlyDone returns the stages finished since the last call.
func (t *stageTracker) newlyDone(s runSnapshot) []workflows.StageTime {
	if len(s.progress.Completed) <= t.shown {
		return nil
	}
	d := s.progress.Completed[t.shown:]
	t.shown = len(s.progress.Completed)
	return d
}

// emaWeight is the weight of the newest loss in the smoothed figure.
const emaWeight = 0.3

func (t *stageTracker) smooth(s runSnapshot) float64 {
	if !s.training() {
		return t.ema
	}
	if t.lastStep == 0 || s.train.Step < t.lastStep {
		t.ema = s.train.Loss
	} else if s.train.Step > t.lastStep {
		t.ema = emaWeight*s.train.Loss + (1-emaWeight)*t.ema
	}
	t.lastStep = s.train.Step
	return t.ema
}

// stageDone is the line a finished stage gets.
func stageDone(st workflows.StageTime) string {
	return fmt.Sprintf("%-12s done in %s", st.Stage, (time.Duration(st.Seconds*10) * time.Second / 10).String())
}

type barView struct {
	out      io.Writer
	bar      *progressbar.ProgressBar
	max      int64
	training bool
	track    stageTracker
}

func newBarView(out io.Writer) *barView {
	b := &barView{out: out}
	b.newBar(-1)
	return b
}

// newBar starts a bar: with a step total for training, else a spinner
// that turns at each update (no redraw of its own between them).
func (b *barView) newBar(max int64) {
	b.max = max
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(b.out),
		progressbar.OptionSetWidth(20),
		progressbar.OptionThrottle(200 * time.Millisecond),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionSetSpinnerChangeInterval(0),
		progressbar.OptionFullWidth(),
		progressbar.OptionShowElapsedTimeOnFinish(),
	}
	if max > 0 {
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true))
	}
	b.bar = progressbar.NewOptions64(max, opts...)
}

// closeBar ends the current bar: a training bar is filled and kept on its
// line (the step total reached), a spinner is erased.
func (b *barView) closeBar(filled bool) {
	if b.max > 0 && filled {
		_ = b.bar.Finish()
		fmt.Fprintln(b.out)
	} else if b.max > 0 {
		_ = b.bar.Exit()
		fmt.Fprintln(b.out)
	} else {
		_ = b.bar.Clear()
		fmt.Fprint(b.out, "\r")
	}
}

func (b *barView) update(s runSnapshot) {
	loss := b.track.smooth(s)
	if done := b.track.newlyDone(s); len(done) > 0 {
		b.closeBar(true)
		for _, st := range done {
			fmt.Fprintf(b.out, "✓ %s\n", stageDone(st))
		}
		b.newBar(-1)
	}
	if s.training() {
		if b.max != int64(s.train.TotalSteps) {
			b.bar.Clear()
			b.newBar(int64(s.train.TotalSteps))
		}
		b.bar.Describe(describe(s, loss))
		_ = b.bar.Set(s.train.Step)
		return
	}
	if b.max > 0 { // training went on to another stage not yet reported done
		return
	}
	if s.progress.Stage == workflows.StageDone {
		return
	}
	b.bar.Describe(describe(s, loss))
	_ = b.bar.Add(1)
}

func (b *barView) finish(ok bool) { b.closeBar(ok) }

type lineView struct {
	out       io.Writer
	track     stageTracker
	lastTenth int
}

func newLineView(out io.Writer) *lineView { return &lineView{out: out, lastTenth: -1} }

func (l *lineView) update(s runSnapshot) {
	now := time.Now().Format("15:04:05")
	loss := l.track.smooth(s)
	for _, st := range l.track.newlyDone(s) {
		fmt.Fprintf(l.out, "%s %s\n", now, stageDone(st))
	}
	if s.progress.Stage != l.track.stage {
		l.track.stage, l.lastTenth = s.progress.Stage, -1
		if s.progress.Stage != workflows.StageDone {
			fmt.Fprintf(l.out, "%s %s\n", now, describe(s, loss))
		}
	}
	if s.training() {
		if tenth := 10 * s.train.Step / s.train.TotalSteps; tenth > l.lastTenth {
			l.lastTenth = tenth
			fmt.Fprintf(l.out, "%s   step %d/%d smoothed loss %.4f lr %.2e %.0f tokens/s\n", now,
				s.train.Step, s.train.TotalSteps, loss, s.train.LearningRate, s.train.TokensPerSec)
		}
	}
}

func (l *lineView) finish(bool) {}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func printSummary(out io.Writer, r *workflows.Result) {
	fmt.Fprintf(out, "\nPipeline %s", r.Status)
	if r.Reason != "" {
		fmt.Fprintf(out, ": %s", r.Reason)
	}
	fmt.Fprintln(out)
	p := r.Prepare
	fmt.Fprintf(out, "  dataset     snapshot %s  train %d, validation %d, bad rows %d, duplicates %d\n",
		digestfmt.Short(p.Snapshot.SHA256), p.Train, p.Validation, p.BadRows, p.Duplicates)
	if t := r.Train; t != nil {
		adapter := t.Adapter
		for _, a := range r.Attestations {
			if a.Kind == "adapter" { // the signed adapter, with its model card
				adapter = a.Artifact
			}
		}
		fmt.Fprintf(out, "  adapter     %s\n              sha256 %s\n", strings.TrimPrefix(adapter.URI, "file://"), adapter.SHA256)
		if t.Reused {
			fmt.Fprintf(out, "  training    reused: an earlier run with the same data, base model and settings trained this adapter\n")
			fmt.Fprintf(out, "              (%d steps, %d tokens, final loss %.4f, %.0f tokens/s then); no training energy spent now\n", t.Steps, t.Tokens, t.FinalLoss, t.TokensPerSec)
		} else {
			fmt.Fprintf(out, "  training    %d steps, %d tokens, final loss %.4f, %.0f tokens/s", t.Steps, t.Tokens, t.FinalLoss, t.TokensPerSec)
		}
		if t.ResumedFromStep > 0 && !t.Reused {
			fmt.Fprintf(out, " (resumed from step %d)", t.ResumedFromStep)
		}
		if !t.Reused {
			fmt.Fprintln(out)
		}
	}
	if e := r.Eval; e != nil {
		fmt.Fprintf(out, "  evaluation  held-out loss %.4f -> %.4f, perplexity %.2f -> %.2f", e.Base.Loss, e.Adapter.Loss, e.Base.Perplexity, e.Adapter.Perplexity)
		if e.Classification {
			fmt.Fprintf(out, ", accuracy %.3f -> %.3f", e.Base.Accuracy, e.Adapter.Accuracy)
		}
		fmt.Fprintln(out)
		fmt.Fprintf(out, "              report %s (open in a browser: held-out metrics, loss curve, rank spectra; suggested rank %d)\n",
			filepath.Join(strings.TrimPrefix(e.Report.URI, "file://"), pipeline.ReportHTMLFile), e.SuggestedRank)
		switch {
		case e.ChampionComparable:
			fmt.Fprintf(out, "              champion v%s held-out loss %.4f\n", e.ChampionVersion, e.Champion.Loss)
		case e.HasChampion:
			fmt.Fprintf(out, "              %s\n", e.ChampionNote)
		}
	}
	if g := r.Gate; g != nil {
		fmt.Fprintf(out, "  gate        passed=%v promote=%v: %s\n", g.Passed, g.Promote, g.Reason)
	}
	if m := r.Merge; m != nil {
		fmt.Fprintf(out, "  merged      %s\n              max |logit diff| %.3g (tolerance %.3g)\n", strings.TrimPrefix(m.Merged.URI, "file://"), m.MaxLogitDiff, m.Tolerance)
	}
	for _, a := range r.Attestations {
		fmt.Fprintf(out, "  attested    %-13s %s (+%d companion bundles)\n", a.Kind, a.Bundles[0], len(a.Bundles)-1)
	}
	if pub := r.Publication; pub != nil {
		existed := ""
		if pub.Existed {
			existed = " (already published)"
		}
		fmt.Fprintf(out, "  registry    %s version %s alias %s%s (%s)\n              %s\n", pub.Model, pub.Version, pub.Alias, existed, pub.Registry, pub.URI)
	}
	cs := r.Carbon
	t := cs.Total
	fmt.Fprintf(out, "  carbon      %.3g kWh, %.3g gCO2e (%s; %.0f gCO2e/kWh, %s; PUE %.2f)\n",
		t.EnergyKWh, t.EmissionsKg*1000, t.Method(), t.IntensityGPerKWh, t.IntensitySource, t.PUE)
	if cf := cs.Counterfactual; cf != nil && (r.Train == nil || !r.Train.Reused) {
		fmt.Fprintf(out, "              full fine-tuning instead: %.3g kWh, %.3g gCO2e (%.1fx the FLOPs, %.1fx the optimizer memory)\n",
			cf.FullEnergyKWh, cf.FullEmissionsKg*1000, cf.FLOPRatio, cf.OptimizerMemoryRatio)
	}
	fmt.Fprint(out, "  stages     ")
	for _, st := range r.Stages {
		fmt.Fprintf(out, " %s %.1fs", st.Stage, st.Seconds)
	}
	fmt.Fprintln(out)
}
