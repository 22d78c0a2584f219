package pipeline

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/loraflow/loraflow/dataset"
	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/peft"
)

// TestHeldOutDuringTraining: with evaluation.every_steps the held-out split
// is scored at those steps, and the last point is the held-out loss of the
// adapter training returns, scored independently after it (tolerance 1e-12:
// the same weights, the same data).
func TestHeldOutDuringTraining(t *testing.T) {
	ctx := context.Background()
	dir, sp, store := tinyRun(t, `training: {steps: 6, batch_size: 4, seq_len: 32, seed: 1, learning_rate: 0.01, checkpoint_every: 4}
evaluation: {every_steps: 2}`)
	prep, err := PrepareData(ctx, store, PrepareDataInput{Spec: *sp}, StepOptions{})
	if err != nil {
		t.Fatal(err)
	}
	snapDir, _ := store.Path(prep.Snapshot)
	out := filepath.Join(dir, "adapter")
	res, err := TrainAdapter(ctx, *sp, snapDir, out, filepath.Join(dir, "ck"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.HeldOut) != 3 || res.HeldOut[0].Step != 2 || res.HeldOut[1].Step != 4 || res.HeldOut[2].Step != 6 {
		t.Fatalf("held-out points %+v, want steps 2, 4, 6", res.HeldOut)
	}
	snap, err := dataset.ReadSnapshot(snapDir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadBase(sp.BaseModel)
	if err != nil {
		t.Fatal(err)
	}
	val, err := b.Sequences(ctx, snap.Validation)
	if err != nil {
		t.Fatal(err)
	}
	ad, err := peft.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	r, err := lora.Evaluate(ctx, b.Model, ad, val, sp.Evaluation.BatchSize)
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(res.HeldOut[2].Loss - r.Loss); d > 1e-12 {
		t.Errorf("last held-out point %.15g, the final adapter scores %.15g", res.HeldOut[2].Loss, r.Loss)
	}
	if res.HeldOut[0].Loss == res.HeldOut[2].Loss {
		t.Error("the held-out loss did not move during training")
	}
}
