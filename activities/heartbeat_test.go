package activities

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/loraflow/loraflow/pipeline"
)

// TestStepWatchdog: with watchSteps, progress that stops for longer than
// max(10 × the longest step, stepStallMin) counts as stalled (the heartbeats
// stop); loading before the first step and keep-alives without watchSteps
// never do.
func TestStepWatchdog(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k := &keepAlive{}
	if s, _ := k.stalled(t0.Add(24 * time.Hour)); s {
		t.Fatal("a keep-alive without watchSteps stalled")
	}
	k.watch = true
	if s, _ := k.stalled(t0.Add(24 * time.Hour)); s {
		t.Fatal("stalled before the first step (model loading)")
	}
	k.progressAt(t0)
	if s, _ := k.stalled(t0.Add(stepStallMin - time.Second)); s {
		t.Fatal("stalled within the minimum limit")
	}
	if s, _ := k.stalled(t0.Add(stepStallMin + time.Second)); !s {
		t.Fatal("a step wedged past the minimum limit was not caught")
	}
	// Slow steps raise the limit to ten of them.
	k.progressAt(t0.Add(5 * time.Minute))
	last := t0.Add(5 * time.Minute)
	if s, limit := k.stalled(last.Add(40 * time.Minute)); s || limit != 50*time.Minute {
		t.Fatalf("stalled %v limit %v after 5-minute steps, want not stalled, limit 50m", s, limit)
	}
	if s, _ := k.stalled(last.Add(51 * time.Minute)); !s {
		t.Fatal("not stalled after ten slow steps' time")
	}
}

// TestTrainAdapterSeesCancellationBeforeTraining: a context cancelled while
// the model loads or the data is tokenized stops TrainAdapter before the
// first step (no checkpoint written).
func TestTrainAdapterSeesCancellationBeforeTraining(t *testing.T) {
	w := newWorld(t, nil)
	prep := w.prepare(t)
	snap, _ := w.acts.Store.Path(prep.Snapshot)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ck := filepath.Join(w.dir, "ck")
	if _, err := pipeline.TrainAdapter(ctx, w.spec, snap, filepath.Join(w.dir, "out"), ck, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(ck); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("training started after the cancellation (checkpoints: %v)", err)
	}
}
