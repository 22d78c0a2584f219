package lora

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/lora/safetensors"
)

func adapterBytes(t *testing.T, a *peft.Adapter) []byte {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "a")
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	w, err := os.ReadFile(filepath.Join(dir, peft.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := os.ReadFile(filepath.Join(dir, peft.ConfigFile))
	return append(w, c...)
}

func resumeSetup() (peft.Config, TrainConfig, []Sequence) {
	pc := llamaLoRAConfig("q_proj", "v_proj", "down_proj")
	pc.LoraDropout = 0.1
	tc := TrainConfig{Steps: 10, BatchSize: 3, GradAccumSteps: 2, LearningRate: 5e-3, WarmupSteps: 2,
		Schedule: "cosine", WeightDecay: 0.01, LoraPlusLRRatio: 4, Seed: 42, CheckpointEvery: 3}
	return pc, tc, patternData(32, 13, 12, 5)
}

// TestResumeGivesSameAdapter interrupts a run after step 5 (its last
// checkpoint is step 3), resumes it, and compares the final adapter bytes
// with an uninterrupted run's and with a second uninterrupted run's.
func TestResumeGivesSameAdapter(t *testing.T) {
	ctx := context.Background()
	m := newTiny(t, tinyLlamaConfig(), 8)
	pc, tc, data := resumeSetup()

	straight := tc
	straight.CheckpointDir = t.TempDir()
	a1, r1, err := Train(ctx, m, pc, straight, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	a2, _, err := Train(ctx, m, pc, tc, data, nil) // no checkpoints at all
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(adapterBytes(t, a1), adapterBytes(t, a2)) {
		t.Fatal("same seed gave different adapters")
	}

	interrupted := tc
	interrupted.CheckpointDir = t.TempDir()
	cctx, cancel := context.WithCancel(ctx)
	var ckpts []string
	_, _, err = Train(cctx, m, pc, interrupted, data, func(p Progress) {
		if p.Checkpoint != "" {
			ckpts = append(ckpts, filepath.Base(p.Checkpoint))
		}
		if p.Step == 5 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	if len(ckpts) != 1 || ckpts[0] != "step-000003" {
		t.Fatalf("checkpoints %v", ckpts)
	}
	if latest, _ := LatestCheckpoint(interrupted.CheckpointDir); filepath.Base(latest) != "step-000003" {
		t.Fatalf("latest %q", latest)
	}
	if _, err := peft.Load(filepath.Join(interrupted.CheckpointDir, "step-000003", "adapter")); err != nil {
		t.Fatalf("checkpoint adapter: %v", err)
	}
	a3, r3, err := Train(ctx, m, pc, interrupted, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r3.ResumedFromStep != 3 || r3.Steps != 10 || len(r3.Losses) != 10 || r3.Tokens != r1.Tokens {
		t.Fatalf("resumed result %+v vs %+v", r3, r1)
	}
	for i := range r1.Losses {
		if r1.Losses[i] != r3.Losses[i] {
			t.Fatalf("loss %d: %v vs %v", i, r1.Losses[i], r3.Losses[i])
		}
	}
	if !bytes.Equal(adapterBytes(t, a1), adapterBytes(t, a3)) {
		t.Fatal("resumed run's adapter differs from the uninterrupted run's")
	}
	// A different seed is a different run: its checkpoint is refused.
	other := interrupted
	other.Seed = 7
	var ie *InputError
	if _, _, err := Train(ctx, m, pc, other, data, nil); !errors.As(err, &ie) || ie.Kind != KindCorruptCheckpoint {
		t.Fatalf("foreign checkpoint: %v", err)
	}
}

func TestNonFiniteLossKeepsLastCheckpoint(t *testing.T) {
	m := newTiny(t, tinyLlamaConfig(), 8)
	dir := t.TempDir()
	tc := TrainConfig{Steps: 6, BatchSize: 4, LearningRate: 1e36, Schedule: "constant", MaxGradNorm: -1, CheckpointDir: dir, CheckpointEvery: 1}
	_, _, err := Train(context.Background(), m, llamaLoRAConfig("q_proj", "v_proj", "up_proj", "down_proj"), tc, patternData(32, 8, 8, 1), nil)
	var ie *InputError
	if !errors.As(err, &ie) || ie.Kind != KindNonFiniteLoss {
		t.Fatalf("want NonFiniteLoss, got %v", err)
	}
	latest, _ := LatestCheckpoint(dir)
	if latest == "" || !strings.Contains(err.Error(), latest) {
		t.Fatalf("error %q does not name the last good checkpoint %q", err, latest)
	}
	t.Log(err)
	// the kept checkpoint is complete and finite
	a, err := peft.Load(filepath.Join(latest, "adapter"))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range a.Tensors {
		for _, x := range v {
			if x != x || x > 1e38 || x < -1e38 {
				t.Fatalf("%s holds %v", k, x)
			}
		}
	}
}

// TestGradientCheckpointingIsExact: replaying blocks in the backward pass
// gives the same adapter bytes as keeping all activations, with dropout.
func TestGradientCheckpointingIsExact(t *testing.T) {
	for _, cfg := range []ModelConfig{tinyLlamaConfig(), tinyGPT2Config()} {
		m := newTiny(t, cfg, 8)
		pc := peft.DefaultConfig()
		pc.TargetModules = peft.TargetModules{AllLinear: true}
		pc.R, pc.LoraDropout = 4, 0.2
		tc := TrainConfig{Steps: 4, BatchSize: 3, LearningRate: 5e-3, Seed: 1}
		data := patternData(32, 9, 12, 2)
		a1, _, err := Train(context.Background(), m, pc, tc, data, nil)
		if err != nil {
			t.Fatal(err)
		}
		tc.GradientCheckpointing = true
		a2, _, err := Train(context.Background(), m, pc, tc, data, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(adapterBytes(t, a1), adapterBytes(t, a2)) {
			t.Fatalf("%s: gradient checkpointing changed the adapter", cfg.ModelType)
		}
	}
}

// TestSameAdapterAcrossThreadCounts: work is split in chunks that do not
// depend on GOMAXPROCS (and gonum's GEMM computes each output block on one
// goroutine), so the adapter bytes do not depend on the thread count.
func TestSameAdapterAcrossThreadCounts(t *testing.T) {
	if BLASBackend() != "gonum" {
		t.Skip("OpenBLAS's results may depend on its own thread count")
	}
	cfg := tinyLlamaConfig()
	cfg.Hidden, cfg.Intermediate = 128, 256
	m := newTiny(t, cfg, 8)
	pc, tc, _ := resumeSetup()
	tc.BatchSize, tc.Steps = 8, 4
	data := patternData(32, 32, 32, 5)
	var want []byte
	for _, p := range []int{1, 3} {
		old := runtime.GOMAXPROCS(p)
		a, _, err := Train(context.Background(), m, pc, tc, data, nil)
		runtime.GOMAXPROCS(old)
		if err != nil {
			t.Fatal(err)
		}
		got := adapterBytes(t, a)
		if want == nil {
			want = got
		} else if !bytes.Equal(got, want) {
			t.Fatalf("GOMAXPROCS=%d gave a different adapter", p)
		}
	}
}

// A checkpoint records the training time that led to it, so a resumed run
// reports tokens/s over the whole run, not over its own part only: with
// 1000 tokens, 9 s before the checkpoint and about 1 s since, that is about
// 100 tokens/s. A checkpoint without the record (older ones) falls back to
// this process's tokens and time.
func TestThroughputCountsTheWholeRun(t *testing.T) {
	r := &trainRun[float32]{tokens: 1000, priorSeconds: 9, runStart: time.Now().Add(-time.Second)}
	if got := r.throughput(true, 400); got < 90 || got > 100.001 {
		t.Errorf("resumed throughput %.2f tokens/s, want about 1000/(9+1) = 100", got)
	}
	r.priorSeconds = 0
	if got := r.throughput(true, 400); got < 300 || got > 400.001 {
		t.Errorf("throughput after an unrecorded checkpoint %.2f tokens/s, want about 400/1", got)
	}

	// The checkpoint a run writes holds its training time.
	m := newTiny(t, tinyLlamaConfig(), 8)
	pc, tc, data := resumeSetup()
	tc.CheckpointDir = t.TempDir()
	if _, _, err := Train(context.Background(), m, pc, tc, data, nil); err != nil {
		t.Fatal(err)
	}
	latest, _ := LatestCheckpoint(tc.CheckpointDir)
	f, err := safetensors.Open(filepath.Join(latest, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st trainState
	if err := json.Unmarshal([]byte(f.Metadata()[stateMetaKey]), &st); err != nil || st.TrainSeconds <= 0 {
		t.Fatalf("checkpoint state train_seconds = %v (%v)", st.TrainSeconds, err)
	}
}
