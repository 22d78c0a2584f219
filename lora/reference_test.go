package lora

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The reference fixtures in testdata/reference are written by
// scripts/reference/decoder_reference.py, a PyTorch re-statement of
// transformers' model definitions. Weights are not stored: both sides
// generate every tensor from its name with hashWeights.

// hashUniform is decoder_reference.py's hash_uniform: value i of the tensor
// called name, in [-1, 1), from the lowbias32 mix of i·0x9E3779B9 plus the
// FNV-1a hash of the name.
func hashUniform(name string, n int) []float64 {
	out := make([]float64, n)
	h := nameHash(name)
	for i := range out {
		out[i] = hashAt(h, i)
	}
	return out
}

func nameHash(name string) uint32 {
	f := fnv.New32a()
	f.Write([]byte(name))
	return f.Sum32()
}

// hashAt is value i of the tensor whose name hashes to h.
func hashAt(h uint32, i int) float64 {
	x := uint32(i)*0x9E3779B9 + h
	x ^= x >> 16
	x *= 0x7FEB352D
	x ^= x >> 15
	x *= 0x846CA68B
	x ^= x >> 16
	return float64(x)*(1.0/(1<<31)) - 1
}

// hashWeights is decoder_reference.py's hash_weights.
func hashWeights(name string, shape []int, gemma bool) []float32 {
	n := 1
	for _, d := range shape {
		n *= d
	}
	off, mul := 0.0, 1.0
	switch {
	case strings.HasSuffix(name, "norm.weight"):
		off, mul = 1, 0.1
		if gemma {
			off = 0
		}
	case strings.HasSuffix(name, ".bias"):
		mul = 0.1
	case strings.HasSuffix(name, "embed_tokens.weight"):
	default:
		mul = 1 / math.Sqrt(float64(shape[1]))
	}
	h := nameHash(name)
	out := make([]float32, n)
	parallelFor(n, 1<<16, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out[i] = float32(off + float64(mul*hashAt(h, i))) // the conversion keeps mul·v unfused, as torch rounds it
		}
	})
	return out
}

type referenceFixture struct {
	Name      string          `json:"name"`
	Heavy     bool            `json:"heavy"`
	Config    json.RawMessage `json:"config"`
	Tokens    []int           `json:"tokens"`
	Cols      []int           `json:"cols"`
	LogSumExp []float64       `json:"logsumexp"`
	MaxAbs    float64         `json:"max_abs"`
	Logits    [][]float64     `json:"logits"`
}

// hashModel builds the model of cfg with hashWeights.
func hashModel(t testing.TB, cfg ModelConfig) *Model {
	t.Helper()
	n, err := buildNet[float32](cfg, func(name string, shape []int) ([]float32, error) {
		return hashWeights(name, shape, cfg.Gemma), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return &Model{cfg: cfg, net: n}
}

// TestReferenceLogits compares the logits of every decoder family, small
// configs and the real models' widths, with the PyTorch reference: every
// position's log-sum-exp over the whole vocabulary and the logits at the
// fixture's columns, within 1e-4 of the largest logit's magnitude (at
// least 1). The real-width fixtures (1–3 GB of float32 weights each) run
// only with LORAFLOW_REAL_WIDTH=1.
func TestReferenceLogits(t *testing.T) {
	files, _ := filepath.Glob("testdata/reference/*.json")
	if len(files) == 0 {
		t.Fatal("no reference fixtures")
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var fx referenceFixture
		if err := json.Unmarshal(raw, &fx); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		t.Run(fx.Name, func(t *testing.T) {
			if fx.Heavy && os.Getenv("LORAFLOW_REAL_WIDTH") != "1" {
				t.Skip("real-width fixture: set LORAFLOW_REAL_WIDTH=1 (needs a few GB)")
			}
			cfg, err := ParseModelConfig(fx.Config)
			if err != nil {
				t.Fatal(err)
			}
			m := hashModel(t, cfg)
			lg, err := Logits(context.Background(), m, nil, fx.Tokens)
			if err != nil {
				t.Fatal(err)
			}
			d := referenceDiff(lg, cfg.VocabSize, fx)
			t.Logf("%s: max |Δlogit| %.3g (max |logit| %.3g, relative %.3g)", fx.Name, d, fx.MaxAbs, d/math.Max(1, fx.MaxAbs))
			if d > 1e-4*math.Max(1, fx.MaxAbs) {
				t.Fatalf("logits differ from the reference by %.3g", d)
			}
		})
	}
}

// referenceDiff is the largest difference of the fixture's log-sum-exps
// and logit columns.
func referenceDiff(lg []float32, V int, fx referenceFixture) float64 {
	worst := 0.0
	for i := range fx.Tokens {
		row := lg[i*V : (i+1)*V]
		mx := float64(row[0])
		for _, v := range row {
			mx = math.Max(mx, float64(v))
		}
		var s float64
		for _, v := range row {
			s += math.Exp(float64(v) - mx)
		}
		worst = math.Max(worst, math.Abs(mx+math.Log(s)-fx.LogSumExp[i]))
		for j, c := range fx.Cols {
			worst = math.Max(worst, math.Abs(float64(row[c])-fx.Logits[i][j]))
		}
	}
	return worst
}
