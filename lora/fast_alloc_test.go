package lora

import (
	"runtime"
	"testing"
)

// stepGarbage trains a few steps and returns the bytes and objects allocated
// per forward+backward pass after warm-up.
func stepGarbage(t *testing.T, cfg ModelConfig, full bool) (bytesPerStep, allocsPerStep float64) {
	t.Helper()
	m := newTiny(t, cfg, 1)
	n := m.net.clone()
	var tr []trainable[float32]
	if full {
		tr = fullTrainables(n)
	} else {
		var err error
		if tr, err = initLoRA(n, llamaLoRAConfig(loraTargetsOf(cfg)...), 1, 0); err != nil {
			t.Fatal(err)
		}
	}
	tc := TrainConfig{Steps: 100, BatchSize: 2, SeqLen: cfg.MaxPositions}.withDefaults(cfg)
	run := newTrainRun(n, tr, tc, shiftedData(cfg.VocabSize, 16, cfg.MaxPositions, 3))
	for s := 0; s < 2; s++ { // warm-up: the workspace grows to its size
		run.lossAndGrad(s)
	}
	const steps = 4
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one thread: gonum's parallel sgemm allocates per call
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for s := 2; s < 2+steps; s++ {
		run.lossAndGrad(s)
	}
	runtime.ReadMemStats(&m1)
	return float64(m1.TotalAlloc-m0.TotalAlloc) / float64(steps), float64(m1.Mallocs-m0.Mallocs) / float64(steps)
}

func loraTargetsOf(cfg ModelConfig) []string {
	if cfg.isGPT2() {
		return []string{"c_attn", "c_fc"}
	}
	return []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
}

// TestTrainStepGarbage: after warm-up a training step reuses its buffers.
// What it still allocates (closures of the parallel loops, the batch's token
// lists, and with the gonum backend gonum's sgemm blocks) is
// a small constant: the workspace of these models is over 2 MB, one of its
// activation buffers 66–133 KB.
func TestTrainStepGarbage(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers")
	}
	for _, tcse := range []struct {
		name string
		cfg  ModelConfig
	}{{"llama", tinyLlamaConfig()}, {"gpt2", tinyGPT2Config()}} {
		cfg := tcse.cfg
		cfg.Hidden, cfg.MaxPositions = 64, attnTile+66
		if !cfg.isGPT2() {
			cfg.Heads, cfg.KVHeads = 4, 2
		}
		for _, full := range []bool{false, true} {
			b, a := stepGarbage(t, cfg, full)
			t.Logf("%s full=%v: %.0f bytes, %.0f allocations per step", tcse.name, full, b, a)
			if b > 192<<10 {
				t.Errorf("%s full=%v: %.0f bytes allocated per step", tcse.name, full, b)
			}
		}
	}
}
