package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/loraflow/loraflow/activities"
	"github.com/loraflow/loraflow/internal/testmodel"
	"github.com/loraflow/loraflow/workflows"
)

// snapshots is a run as the views see it: data prep, training to 20/20
// (the last heartbeat at step 18, as throttled heartbeats leave it), then
// evaluation and the end.
func snapshots() []runSnapshot {
	done := func(names ...string) []workflows.StageTime {
		var st []workflows.StageTime
		for _, n := range names {
			st = append(st, workflows.StageTime{Stage: n, Seconds: 1.25})
		}
		return st
	}
	train := func(step int) *activities.TrainProgress {
		return &activities.TrainProgress{Step: step, TotalSteps: 20, Loss: 3 - float64(step)/10, TokensPerSec: 5000}
	}
	return []runSnapshot{
		{progress: workflows.Progress{Stage: workflows.StagePrepareData}},
		{progress: workflows.Progress{Stage: workflows.StageTrainLoRA, Completed: done("PrepareData")}, train: train(5)},
		{progress: workflows.Progress{Stage: workflows.StageTrainLoRA, Completed: done("PrepareData")}, train: train(18)},
		{progress: workflows.Progress{Stage: workflows.StageEvaluate, Completed: done("PrepareData", "TrainLoRA")}, train: train(18)},
		{progress: workflows.Progress{Stage: workflows.StageDone, Completed: done("PrepareData", "TrainLoRA", "Evaluate")}},
	}
}

// TestBarReachesTheTotal: when training ends the bar shows 100% and
// 20/20, every stage is listed as done with its time, and no spinner is
// left saying "Done (6/-)".
func TestBarReachesTheTotal(t *testing.T) {
	var out bytes.Buffer
	v := newBarView(&out)
	for _, s := range snapshots() {
		v.update(s)
		time.Sleep(210 * time.Millisecond) // past the bar's render throttle
	}
	v.finish(true)
	got := out.String()
	for _, want := range []string{"100%", "20/20", "✓ PrepareData  done in 1.2s", "✓ TrainLoRA    done in 1.2s", "✓ Evaluate     done in 1.2s"} {
		if !strings.Contains(got, want) {
			t.Errorf("bar output lacks %q:\n%q", want, got)
		}
	}
	if strings.Contains(got, "Done (") || strings.Contains(got, "/-)") {
		t.Errorf("a spinner count is left:\n%q", got)
	}
}

// TestLinesWithoutATerminal: without a terminal each stage gets a start
// and a done line, training a line per tenth, and nothing is redrawn.
func TestLinesWithoutATerminal(t *testing.T) {
	var out bytes.Buffer
	v := newLineView(&out)
	for _, s := range snapshots() {
		v.update(s)
	}
	v.finish(true)
	got := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d `).ReplaceAllString(out.String(), "")
	want := `PrepareData
PrepareData  done in 1.2s
TrainLoRA smoothed loss 2.5000 5000 tok/s
  step 5/20 smoothed loss 2.5000 lr 0.00e+00 5000 tokens/s
  step 18/20 smoothed loss 2.1100 lr 0.00e+00 5000 tokens/s
TrainLoRA    done in 1.2s
Evaluate
Evaluate     done in 1.2s
`
	if got != want {
		t.Errorf("line output:\n%s\nwant:\n%s", got, want)
	}
	if strings.ContainsAny(got, "\r\x1b") {
		t.Errorf("line output redraws: %q", got)
	}
}

// TestFailurePrintedOnce: a run whose TrainLoRA fails with
// TargetModuleNotFound reports it once, with one retryable verdict and
// the layer names grouped, instead of the SDK's chain that repeats the
// message and contradicts itself (retryable: false ... retryable: true).
func TestFailurePrintedOnce(t *testing.T) {
	testmodel.RequireTemporalCLI(t)
	ws := testmodel.NewWorkspace(t, 60)
	useEmbeddedDefault(t, ws.Dir)
	specPath := ws.WriteSpec(t, `name: fail
base_model: base
dataset: {files: [data.jsonl], format: text}
lora: {r: 2, target_modules: [nope_proj]}
training: {steps: 4, batch_size: 4, seq_len: 32, learning_rate: 0.01, seed: 1}
`)
	out, err := runCLI(t, "run", specPath, "--ui=false", "--id", "fail-1")
	if err == nil {
		t.Fatalf("run succeeded:\n%s", out)
	}
	msg := err.Error()
	want := `run fail-1 failed: TrainLoRA: TargetModuleNotFound (not retryable): target_modules ["nope_proj"] matches no linear layer; linear layers: q_proj [32→32] ×2, k_proj [32→16] ×2, v_proj [32→16] ×2, o_proj [32→32] ×2, gate_proj [32→64] ×2, up_proj [32→64] ×2, down_proj [64→32] ×2, lm_head [32→300]`
	if msg != want {
		t.Errorf("error:\n%s\nwant:\n%s", msg, want)
	}
	if strings.Count(msg+out, "matches no linear layer") != 1 || strings.Contains(msg, "retryable: true") {
		t.Errorf("the failure is repeated or contradicts itself:\n%s\n%s", out, msg)
	}
}

// TestCancelSaysWhereTrainingStopped: `cancel ID` waits for the run to
// stop and says at which step, and which checkpoint a rerun resumes from;
// the `run` following it ends with the same line, its bar not filled.
func TestCancelSaysWhereTrainingStopped(t *testing.T) {
	testmodel.RequireTemporalCLI(t)
	ws := testmodel.NewWorkspace(t, 100)
	useEmbeddedDefault(t, ws.Dir)
	specPath := ws.WriteSpec(t, `name: long
base_model: base
dataset: {files: [data.jsonl], format: text}
lora: {r: 2, target_modules: [q_proj]}
training: {steps: 100000, batch_size: 2, seq_len: 16, learning_rate: 0.001, seed: 1, checkpoint_every: 5}
timeouts: {heartbeat: 3s}
`)
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := runCLI(t, "run", specPath, "--ui=false", "--id", "long-1")
		done <- result{out, err}
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case r := <-done: // the run ended before training got going: say why
			t.Fatalf("run ended early: %v\n%s", r.err, r.out)
		default:
		}
		got, statusErr := runCLI(t, "status", "long-1")
		if statusErr != nil {
			got += "\n(status: " + statusErr.Error() + ")"
		}
		if m := regexp.MustCompile(`training: step (\d+)/`).FindStringSubmatch(got); m != nil && len(m[1]) >= 2 {
			// past a checkpoint or two; then let the run's own follower
			// (it polls every 0.5 s) see a heartbeat too before the cancel
			// removes the pending activity.
			time.Sleep(1500 * time.Millisecond)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("training did not get going:\n%s", got)
		}
		time.Sleep(300 * time.Millisecond)
	}
	got, err := runCLI(t, "cancel", "long-1")
	if err != nil {
		t.Fatalf("cancel: %v\n%s", err, got)
	}
	line := regexp.MustCompile(`^run long-1 canceled at step (\d+)/100000, last checkpoint step (\d+) \(.*step-\d{6}\); ` +
		"`loraflow run` with the same spec resumes from that checkpoint\n$")
	if !line.MatchString(got) {
		t.Errorf("cancel printed %q", got)
	}
	ctx, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	select {
	case r := <-done:
		if r.err == nil || !strings.Contains(r.err.Error(), "run long-1 canceled at step ") || strings.Contains(r.err.Error(), "workflow execution error") {
			t.Errorf("run ended with %v\n%s", r.err, r.out)
		}
	case <-ctx.Done():
		t.Fatal("run did not end after the cancel")
	}
}

// TestRunInATerminal runs `loraflow run` with a pseudo-terminal as its
// output, as a user's shell gives it: the training bar is drawn and ends
// at 100% with the step total, each stage is ticked off with its time,
// and the summary follows.
func TestRunInATerminal(t *testing.T) {
	testmodel.RequireTemporalCLI(t)
	ws := testmodel.NewWorkspace(t, 60)
	useEmbeddedDefault(t, ws.Dir)
	specPath := ws.WriteSpec(t, `name: tty
base_model: base
dataset: {files: [data.jsonl], format: text}
lora: {r: 2, target_modules: [q_proj]}
training: {steps: 3000, batch_size: 2, seq_len: 16, learning_rate: 0.01, seed: 1}
timeouts: {heartbeat: 1s} # heartbeats reach the server every 0.8 s; 3000 steps take seconds even on a quiet machine (600 took 0.9 s: no heartbeat, no bar)
`)
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	var screen bytes.Buffer
	read := make(chan struct{})
	go func() { _, _ = io.Copy(&screen, ptmx); close(read) }()
	root := newRootCmd()
	root.SetOut(tty)
	root.SetErr(tty)
	root.SetArgs([]string{"run", specPath, "--ui=false"})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	runErr := root.ExecuteContext(ctx)
	tty.Close()
	<-read
	got := screen.String()
	if os.Getenv("SHOW") != "" {
		t.Logf("%q", got)
	}
	if runErr != nil {
		t.Fatalf("run: %v\n%q", runErr, got)
	}
	for _, want := range []string{"100%", "(3000/3000)", "✓ PrepareData", "✓ TrainLoRA", "✓ Publish", "Pipeline published"} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, got)
		}
	}
	if strings.Contains(got, "/-)") {
		t.Errorf("a spinner count is left:\n%q", got)
	}
}
