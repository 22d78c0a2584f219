package lora

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// withMemoryLimit sets MemoryLimit for one test.
func withMemoryLimit(t *testing.T, n int64) {
	t.Helper()
	prev := memoryLimit.Load()
	SetMemoryLimit(n)
	t.Cleanup(func() { memoryLimit.Store(prev) })
}

// savedTiny writes a tiny llama checkpoint and returns its folder and its
// config.json as a map, for tests that edit one field.
func savedTiny(t *testing.T) (string, map[string]any) {
	t.Helper()
	dir := t.TempDir()
	if err := newTiny(t, tinyLlamaConfig(), 1).Save(dir); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return dir, m
}

func writeConfig(t *testing.T, dir string, m map[string]any) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func peakHeapMB() float64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapSys) / (1 << 20)
}

// TestLoadModelRefusesHostileConfig: absurd, negative, fractional and
// wrongly typed sizes in config.json are refused as BadConfig naming the
// field, before the model is allocated; a config larger than the checkpoint
// (num_hidden_layers 1000, a real checkpoint of 2) stops at the first
// missing tensor without allocating the layers it claims.
func TestLoadModelRefusesHostileConfig(t *testing.T) {
	withMemoryLimit(t, 64<<20)
	cases := []struct {
		field string
		value any
		kind  string
		want  string
	}{
		{"num_hidden_layers", 1e9, KindBadConfig, "field num_hidden_layers is 1e+09, over the limit of 4096"},
		{"hidden_size", -16, KindBadConfig, "field hidden_size is -16, want at least 1"},
		{"vocab_size", 0, KindBadConfig, "field vocab_size is 0, want at least 1"},
		{"intermediate_size", 24.5, KindBadConfig, "field intermediate_size is 24.5, want a whole number"},
		{"num_attention_heads", "4", KindBadConfig, "field num_attention_heads is a string, want a whole number"},
		{"max_position_embeddings", []any{1}, KindBadConfig, "field max_position_embeddings is a list"},
		{"rms_norm_eps", -1, KindBadConfig, "field rms_norm_eps is -1, want a positive number"},
		{"vocab_size", 1 << 24, KindBadConfig, "over the memory limit of 64.0 MiB"},
		{"num_hidden_layers", 1000, KindMissingTensor, `tensor "model.layers.2.input_layernorm.weight" is missing`},
		{"hidden_size", 32, KindCorruptCheckpoint, `has shape [32 16], config.json implies [32 32]`},
	}
	for _, c := range cases {
		t.Run(c.field+"="+strings.Trim(mustJSON(c.value), `"`), func(t *testing.T) {
			dir, m := savedTiny(t)
			m[c.field] = c.value
			writeConfig(t, dir, m)
			before := peakHeapMB()
			_, err := LoadModel(dir)
			ie, ok := IsInputError(err)
			if !ok || ie.Kind != c.kind || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("LoadModel = %v, want %s saying %q", err, c.kind, c.want)
			}
			if grown := peakHeapMB() - before; grown > 64 {
				t.Errorf("the heap grew by %.0f MiB before the refusal", grown)
			}
		})
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestLoadModelRefusesSpecialOrHugeConfig: config.json is read only when it
// is a regular file of at most MaxConfigBytes.
func TestLoadModelRefusesSpecialOrHugeConfig(t *testing.T) {
	dir, _ := savedTiny(t)
	path := filepath.Join(dir, "config.json")
	if err := os.Truncate(path, MaxConfigBytes+1); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadModel(dir); !isKind(err, KindBadConfig) || !strings.Contains(err.Error(), "over the 4194304-byte limit") {
		t.Errorf("huge config.json: %v", err)
	}
	os.Remove(path)
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if _, err := LoadModel(dir); !isKind(err, KindBadConfig) || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("FIFO config.json: %v", err)
	}
}

func isKind(err error, kind string) bool {
	ie, ok := IsInputError(err)
	return ok && ie.Kind == kind
}

// TestTrainRefusesHostileTrainConfig: a seq_len beyond the model's
// positions is refused (it used to be clamped silently), and a batch whose
// activations cannot fit the memory limit is refused before the first step,
// naming batch_size.
func TestTrainRefusesHostileTrainConfig(t *testing.T) {
	withMemoryLimit(t, 256<<20)
	m := newTiny(t, tinyLlamaConfig(), 1)
	data := patternData(32, 8, 16, 1)
	pc := llamaLoRAConfig("q_proj")
	for _, c := range []struct {
		tc   TrainConfig
		want string
	}{
		{TrainConfig{Steps: 1, SeqLen: 100000}, "seq_len 100000 is longer than the model's 32 positions"},
		{TrainConfig{Steps: 1, BatchSize: 10000000}, "batch_size 10000000 × seq_len 32 needs about"},
		{TrainConfig{Steps: 1, BatchSize: -1}, "negative size"},
	} {
		_, _, err := Train(context.Background(), m, pc, c.tc, data, nil)
		if !isKind(err, KindBadTrainConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Train(%+v) = %v, want BadTrainConfig saying %q", c.tc, err, c.want)
		}
	}
	if _, _, err := Train(context.Background(), m, pc, TrainConfig{Steps: 1, BatchSize: 2}, data, nil); err != nil {
		t.Errorf("a small batch under the limit: %v", err)
	}
}

// TestNewModelRefusesWhatDoesNotFit: the weights' estimate is checked
// against MemoryLimit before a random model is allocated.
func TestNewModelRefusesWhatDoesNotFit(t *testing.T) {
	withMemoryLimit(t, 64<<20)
	cfg := tinyLlamaConfig()
	cfg.VocabSize, cfg.Hidden = 1<<20, 1024
	_, err := NewModel(cfg, 1)
	if !isKind(err, KindBadConfig) || !strings.Contains(err.Error(), "over the memory limit") {
		t.Fatalf("NewModel = %v", err)
	}
}
