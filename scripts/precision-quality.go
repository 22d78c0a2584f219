//go:build ignore

// precision-quality trains the quickstart's adapter (examples/quickstart)
// with the base model's frozen weights held in fp32, bf16 and NF4 (block 64,
// double quantization), and prints each run's held-out loss (on the model
// it trained against, and on the original fp32 base the merge applies it
// to), tokens/s and the adapter's digest; the bf16 and nf4 runs are
// repeated to show that the same seed and mode give the same adapter bit
// for bit. Figures for the precision setting, not a test.
//
//	flock /tmp/heavy.lock go run scripts/precision-quality.go [-steps 150]
//	LORAFLOW_LOWP=go ...   # bf16 products on lowp's Go path (the
//	                       # AVX512_BF16 arithmetic) where the CPU lacks it
package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"sort"

	"github.com/loraflow/loraflow/dataset"
	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/lora/quant"
	"github.com/loraflow/loraflow/pipeline"
	"github.com/loraflow/loraflow/spec"
)

func digest(a *peft.Adapter) string {
	h := sha256.New()
	keys := make([]string, 0, len(a.Tensors))
	for k := range a.Tensors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b [4]byte
	for _, k := range keys {
		h.Write([]byte(k))
		for _, v := range a.Tensors[k] {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
			h.Write(b[:])
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil))[:16]
}

func main() {
	steps := flag.Int("steps", 0, "training steps (0: the spec's)")
	specPath := flag.String("spec", "examples/quickstart/spec.yaml", "pipeline spec")
	flag.Parse()
	ctx := context.Background()
	s, err := spec.Load(*specPath)
	if err != nil {
		log.Fatal(err)
	}
	if *steps > 0 {
		s.Training.Steps = *steps
	}
	snap, err := dataset.Prepare(s.Dataset.Files, dataset.Options{Format: s.Dataset.Format,
		ValidationFraction: s.Dataset.ValidationFraction, MaxBadRows: s.Dataset.MaxBadRows, Seed: s.Dataset.Seed})
	if err != nil {
		log.Fatal(err)
	}
	orig, err := pipeline.LoadBase(s.BaseModel)
	if err != nil {
		log.Fatal(err)
	}
	val, err := orig.Sequences(ctx, snap.Validation)
	if err != nil {
		log.Fatal(err)
	}
	nf4 := &quant.Config{Type: quant.NF4, BlockSize: 64, DoubleQuant: true}
	modes := []struct {
		name string
		o    lora.LoadOptions
	}{
		{"fp32", lora.LoadOptions{}}, {"bf16", lora.LoadOptions{Precision: lora.PrecisionBF16}},
		{"nf4", lora.LoadOptions{Quantization: nf4}}, {"bf16", lora.LoadOptions{Precision: lora.PrecisionBF16}},
		{"nf4", lora.LoadOptions{Quantization: nf4}},
	}
	fmt.Printf("bf16 kernel: %q; load average %s", lora.BF16Kernel(), loadavg())
	fmt.Printf("%-5s %12s %14s %14s %10s %s\n", "mode", "weights MiB", "held-out loss", "on fp32 base", "tokens/s", "adapter")
	var ref float64
	for _, m := range modes {
		base, err := pipeline.LoadBaseWith(s.BaseModel, m.o)
		if err != nil {
			log.Fatal(err)
		}
		pc, err := s.PEFT(base.Model.Config().ModelType)
		if err != nil {
			log.Fatal(err)
		}
		train, err := base.Sequences(ctx, snap.Train)
		if err != nil {
			log.Fatal(err)
		}
		a, res, err := lora.Train(ctx, base.Model, pc, s.TrainConfig(""), train, nil)
		if err != nil {
			log.Fatal(err)
		}
		e, err := lora.Evaluate(ctx, base.Model, a, val, s.Evaluation.BatchSize)
		if err != nil {
			log.Fatal(err)
		}
		eo, err := lora.Evaluate(ctx, orig.Model, a, val, s.Evaluation.BatchSize)
		if err != nil {
			log.Fatal(err)
		}
		if m.name == "fp32" {
			ref = e.Loss
		}
		fmt.Printf("%-5s %12.2f %14.4f %14.4f %10.0f %s  (%+.2f%% vs fp32)\n", m.name, float64(base.Model.WeightBytes())/(1<<20),
			e.Loss, eo.Loss, res.TokensPerSec, digest(a), 100*(e.Loss-ref)/ref)
	}
	fmt.Printf("load average %s", loadavg())
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return string(b)
}
