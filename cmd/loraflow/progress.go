package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"golang.org/x/term"

	"github.com/loraflow/loraflow/activities"
	"github.com/loraflow/loraflow/internal/digestfmt"
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

// progressView shows a run's progress: a progress bar on a terminal, a line
// per stage and per tenth of training elsewhere (logs, CI).
type progressView interface {
	update(s runSnapshot)
	finish()
}

// follow shows the run's progress until it ends and returns its result.
func follow(ctx context.Context, out io.Writer, c client.Client, run client.WorkflowRun) (*workflows.Result, error) {
	var view progressView = &lineView{out: out, lastTenth: -1}
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
	for {
		select {
		case <-done:
			view.finish()
			if runErr != nil {
				return nil, runErr
			}
			return &res, nil
		case <-ctx.Done():
			view.finish()
			return nil, ctx.Err()
		case <-tick.C:
		}
		if s, err := snapshot(ctx, c, run.GetID(), run.GetRunID()); err == nil {
			view.update(s)
		}
	}
}

func describe(s runSnapshot) string {
	d := s.progress.Stage
	if s.attempt > 1 {
		d += fmt.Sprintf(" (attempt %d: %s)", s.attempt, firstLine(s.failure))
	}
	if s.training() {
		d += fmt.Sprintf(" loss %.4f %.0f tok/s", s.train.Loss, s.train.TokensPerSec)
	}
	return d
}

func (s runSnapshot) training() bool {
	return s.progress.Stage == workflows.StageTrainLoRA && s.train != nil && s.train.TotalSteps > 0
}

type barView struct {
	out io.Writer
	bar *progressbar.ProgressBar
	max int64
}

func newBarView(out io.Writer) *barView {
	return &barView{out: out, max: -1, bar: progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(out),
		progressbar.OptionSetWidth(20),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionFullWidth(),
		progressbar.OptionSetRenderBlankState(true),
	)}
}

func (b *barView) update(s runSnapshot) {
	if s.training() {
		if b.max != int64(s.train.TotalSteps) {
			b.max = int64(s.train.TotalSteps)
			b.bar.ChangeMax64(b.max)
			b.bar.Reset()
		}
		b.bar.Describe(describe(s))
		_ = b.bar.Set(s.train.Step)
		return
	}
	if b.max != -1 {
		b.max = -1
		b.bar.ChangeMax64(-1)
		b.bar.Reset()
	}
	b.bar.Describe(describe(s))
	_ = b.bar.Add(1)
}

func (b *barView) finish() {
	_ = b.bar.Finish()
	fmt.Fprintln(b.out)
}

type lineView struct {
	out       io.Writer
	stage     string
	lastTenth int
}

func (l *lineView) update(s runSnapshot) {
	if s.progress.Stage != l.stage {
		l.stage, l.lastTenth = s.progress.Stage, -1
		fmt.Fprintf(l.out, "%s %s\n", time.Now().Format("15:04:05"), describe(s))
	}
	if s.training() {
		if tenth := 10 * s.train.Step / s.train.TotalSteps; tenth > l.lastTenth {
			l.lastTenth = tenth
			fmt.Fprintf(l.out, "%s   step %d/%d loss %.4f lr %.2e %.0f tokens/s\n", time.Now().Format("15:04:05"),
				s.train.Step, s.train.TotalSteps, s.train.Loss, s.train.LearningRate, s.train.TokensPerSec)
		}
	}
}

func (l *lineView) finish() {}

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
		fmt.Fprintf(out, "  training    %d steps, %d tokens, final loss %.4f, %.0f tokens/s", t.Steps, t.Tokens, t.FinalLoss, t.TokensPerSec)
		if t.ResumedFromStep > 0 {
			fmt.Fprintf(out, " (resumed from step %d)", t.ResumedFromStep)
		}
		fmt.Fprintln(out)
	}
	if e := r.Eval; e != nil {
		fmt.Fprintf(out, "  evaluation  held-out loss %.4f -> %.4f, perplexity %.2f -> %.2f", e.Base.Loss, e.Adapter.Loss, e.Base.Perplexity, e.Adapter.Perplexity)
		if e.Classification {
			fmt.Fprintf(out, ", accuracy %.3f -> %.3f", e.Base.Accuracy, e.Adapter.Accuracy)
		}
		fmt.Fprintln(out)
		fmt.Fprintf(out, "              report %s (loss curve, rank spectra; suggested rank %d)\n", strings.TrimPrefix(e.Report.URI, "file://"), e.SuggestedRank)
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
	if cf := cs.Counterfactual; cf != nil {
		fmt.Fprintf(out, "              full fine-tuning instead: %.3g kWh, %.3g gCO2e (%.1fx the FLOPs, %.1fx the optimizer memory)\n",
			cf.FullEnergyKWh, cf.FullEmissionsKg*1000, cf.FLOPRatio, cf.OptimizerMemoryRatio)
	}
	fmt.Fprint(out, "  stages     ")
	for _, st := range r.Stages {
		fmt.Fprintf(out, " %s %.1fs", st.Stage, st.Seconds)
	}
	fmt.Fprintln(out)
}
