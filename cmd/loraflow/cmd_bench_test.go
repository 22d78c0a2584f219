package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loraflow/loraflow/lora"
)

// benchTiny is a workload small enough for a test.
var benchTiny = lora.Workload{Name: "tiny",
	Model: lora.ModelConfig{ModelType: "llama", VocabSize: 64, Hidden: 16, Layers: 1, Heads: 2, KVHeads: 2,
		Intermediate: 24, MaxPositions: 16, RopeTheta: 10000, BosTokenID: -1, EosTokenID: -1},
	Batch: 2, SeqLen: 16, Rank: 4, Alpha: 8, Targets: []string{"q_proj", "v_proj"}}

// TestBenchChildHelper is not a test: it is the child process of
// TestBenchCommand (the test binary re-run with BENCH_CHILD_HELPER=1).
func TestBenchChildHelper(t *testing.T) {
	if os.Getenv("BENCH_CHILD_HELPER") != "1" {
		t.Skip("helper process of TestBenchCommand")
	}
	benchWorkloads[benchTiny.Name] = benchTiny
	benchPeakTime = 5 * time.Millisecond
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	root := newRootCmd()
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		os.Stderr.WriteString(err.Error())
		os.Exit(2)
	}
	os.Exit(0)
}

func TestBenchCommand(t *testing.T) {
	benchWorkloads[benchTiny.Name] = benchTiny
	defer func(d time.Duration) { benchPeakTime = d }(benchPeakTime)
	benchPeakTime = 5 * time.Millisecond
	defer delete(benchWorkloads, benchTiny.Name)
	orig := benchChildCommand
	defer func() { benchChildCommand = orig }()
	var children []int
	benchChildCommand = func(ctx context.Context, spec string) (*exec.Cmd, error) {
		c := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBenchChildHelper$", "--", "bench", "--child", spec)
		c.Env = append(os.Environ(), "BENCH_CHILD_HELPER=1")
		children = append(children, 1)
		return c, nil
	}

	out, err := runCLI(t, "bench", "--workload", "tiny", "--steps", "2", "--full", "--json")
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	if len(children) != 2 {
		t.Fatalf("%d child processes, want 2 (LoRA and full)", len(children))
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rep.Rows) != 2 || rep.Rows[0].Mode != "LoRA" || rep.Rows[1].Mode != "full" {
		t.Fatalf("rows: %+v", rep.Rows)
	}
	for _, r := range rep.Rows {
		if r.Workload != "tiny" || r.Steps != 2 || r.TokensPerSec <= 0 || r.GFLOPs <= 0 || r.SgemmGFLOPs <= 0 ||
			r.StepVsSgemm <= 0 || r.PeakRSSBytes <= 0 || r.BLAS != lora.BLASBackend() {
			t.Fatalf("row %+v", r)
		}
		if got, want := r.StepVsSgemm, r.GFLOPs/r.SgemmGFLOPs; got != want {
			t.Fatalf("ratio %v, want %v", got, want)
		}
		if r.Kernel != lora.SgemmKernel() {
			t.Fatalf("kernel %q, want %q", r.Kernel, lora.SgemmKernel())
		}
		// The FMA peak loops ran in the child (amd64 with AVX2 at least).
		if r.FP32PeakGFLOPs != lora.FP32Peak(r.Peaks) || (len(lora.MeasurePeaks(0)) > 0 &&
			(r.FP32PeakGFLOPs <= 0 || r.StepVsPeak != r.GFLOPs/r.FP32PeakGFLOPs)) {
			t.Fatalf("peak %v, step/peak %v, peaks %+v", r.FP32PeakGFLOPs, r.StepVsPeak, r.Peaks)
		}
	}
	if rep.Rows[0].RSSLoRAVsFull <= 0 || rep.Rows[1].RSSLoRAVsFull != 0 || rep.Rows[0].TrainRSSLoRAVsFull < 0 || rep.Rows[0].BaseRSSBytes <= 0 {
		t.Fatalf("RSS ratio on the wrong rows: %+v", rep.Rows)
	}

	// the table
	out, err = runCLI(t, "bench", "--workload", "tiny", "--steps", "1")
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	for _, want := range []string{"tokens/s", "sgemm GFLOP/s", "peak RSS MiB", "tiny", "LoRA", lora.BLASBackend(), "load average", "fp32 peak", "step/peak"} {
		if !strings.Contains(out, want) {
			t.Fatalf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, " full ") {
		t.Fatalf("full fine-tuning ran without --full:\n%s", out)
	}

	if _, err := runCLI(t, "bench", "--workload", "nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown workload: %v", err)
	}
	if _, err := runCLI(t, "bench", "--blas", "mkl"); err == nil {
		t.Fatal("unknown backend accepted")
	}
	if _, err := runCLI(t, "bench", "--precision", "fp8"); err == nil {
		t.Fatal("--precision fp8 accepted")
	}
	if _, err := runCLI(t, "bench", "--precision", "bf16", "--full"); err == nil {
		t.Fatal("--precision bf16 with --full accepted")
	}
	out, err = runCLI(t, "bench", "--workload", "tiny", "--steps", "1", "--precision", "bf16", "--json")
	if err != nil {
		t.Fatalf("bench --precision bf16: %v\n%s", err, out)
	}
	rep = benchReport{}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r := rep.Rows[0]; r.Precision != "bf16" || r.WeightBytes <= 0 {
		t.Fatalf("bf16 row %+v", r)
	}
	benchLowp.precision = lora.PrecisionFP32
	if _, err := runCLI(t, "bench", "--kernel", "avx1024"); err == nil || !strings.Contains(err.Error(), "avx1024") {
		t.Fatalf("unknown kernel: %v", err)
	}

	// --kernel all: one child per assembly kernel the CPU has, each row
	// naming its kernel.
	children = nil
	out, err = runCLI(t, "bench", "--workload", "tiny", "--steps", "1", "--blas", "go", "--kernel", "all", "--json")
	if !slices.Contains(lora.BLASBackends(), "go") {
		if err == nil {
			t.Fatal("--blas go accepted without the go backend")
		}
		return
	}
	if err != nil {
		t.Fatalf("bench --kernel all: %v\n%s", err, out)
	}
	rep = benchReport{}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var kernels []string
	for _, r := range rep.Rows {
		kernels = append(kernels, r.Kernel)
	}
	if want := slices.DeleteFunc(lora.SgemmKernels(), func(k string) bool { return k == "gonum" }); !slices.Equal(kernels, want) || len(children) != len(want) {
		t.Fatalf("--kernel all ran %v in %d children, want %v", kernels, len(children), want)
	}
}
