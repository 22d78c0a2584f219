package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/quant"
)

func init() { register(newBenchCmd) }

// benchWorkloads are the workloads `loraflow bench` knows, by name.
var benchWorkloads = map[string]lora.Workload{
	lora.Llama30M.Name:  lora.Llama30M,
	lora.GPT2Small.Name: lora.GPT2Small,
	lora.Llama1B.Name:   lora.Llama1B,
	lora.Qwen05B.Name:   lora.Qwen05B,
	lora.Llama8B.Name:   lora.Llama8B,
}

// benchWorkloadOrder is the order of --workload all (the small reference
// workloads), benchRealScale that of --workload real.
var (
	benchWorkloadOrder = []string{lora.Llama30M.Name, lora.GPT2Small.Name}
	benchRealScale     = []string{lora.Llama1B.Name, lora.Qwen05B.Name, lora.Llama8B.Name}
)

// benchPeakTime is how long each child measures each FMA peak loop.
var benchPeakTime = 150 * time.Millisecond

// benchChildSpec is what the parent asks one child process to run.
type benchChildSpec struct {
	Workload string `json:"workload"`
	Steps    int    `json:"steps"`
	Full     bool   `json:"full"`
	BLAS     string `json:"blas"`
	Kernel   string `json:"kernel,omitempty"` // sgemm kernel; empty: the default
	Ckpt     bool   `json:"ckpt,omitempty"`
	// Precision and Quant hold the frozen weights (benchLowp).
	Precision string `json:"precision,omitempty"`
	Quant     string `json:"quant,omitempty"`
}

// benchLowp is how the bench children hold the frozen weights: the
// --precision and --quantization flags.
var benchLowp struct{ precision, quant string }

// benchChildResult is what a child prints: the training run, then the sgemm
// measured in the same process right after it (so at the same machine load;
// after the peak RSS was read, so its buffers do not count).
// The child then measures the CPU's FMA peaks, also at the same load.
type benchChildResult struct {
	lora.BenchResult
	SgemmGFLOPs float64           `json:"sgemm_gflops"`
	Peaks       []lora.PeakResult `json:"peaks"`
}

// benchChildCommand makes the command of one child run; tests replace it.
var benchChildCommand = func(ctx context.Context, spec string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench: locating this binary to re-run it: %w", err)
	}
	return exec.CommandContext(ctx, exe, "bench", "--child", spec), nil
}

// benchRow is one line of the bench table.
type benchRow struct {
	lora.BenchResult
	Mode        string  `json:"mode"` // "LoRA" or "full"
	SgemmGFLOPs float64 `json:"sgemm_gflops"`
	StepVsSgemm float64 `json:"step_vs_sgemm"` // achieved GFLOP/s ÷ sgemm GFLOP/s
	// FP32PeakGFLOPs is the fp32 FMA peak (AVX-512 where the CPU has it,
	// else AVX2) measured in the same child; StepVsPeak the step's
	// achieved GFLOP/s ÷ it. Peaks has every loop the CPU runs.
	FP32PeakGFLOPs float64           `json:"fp32_peak_gflops"`
	StepVsPeak     float64           `json:"step_vs_fp32_peak"`
	Peaks          []lora.PeakResult `json:"peaks,omitempty"`
	RSSLoRAVsFull  float64           `json:"rss_lora_vs_full,omitempty"` // on the LoRA row, with --full
	// TrainRSSLoRAVsFull is the same ratio of the RSS above each process's
	// base (peak − RSS before the model was made).
	TrainRSSLoRAVsFull float64 `json:"train_rss_lora_vs_full,omitempty"`
	PeakRSSMiB         float64 `json:"peak_rss_mib"`
	SgemmShape         [3]int  `json:"sgemm_mnk"`
	LoadAvgAtStart     string  `json:"loadavg_at_start"`
}

// benchReport is the --json output.
type benchReport struct {
	GOMAXPROCS    int        `json:"gomaxprocs"`
	Checkpointing bool       `json:"gradient_checkpointing"`
	NumCPU        int        `json:"num_cpu"`
	LoadAvgStart  string     `json:"loadavg_start"`
	LoadAvgEnd    string     `json:"loadavg_end"`
	Rows          []benchRow `json:"rows"`
	// FallbackSlowdown is openblas tokens/s ÷ the tokens/s of each pure-Go
	// backend (go, gonum), keyed "workload mode openblas/backend", for the
	// backends that ran.
	FallbackSlowdown map[string]float64 `json:"fallback_slowdown,omitempty"`
	// Refused lists the memory-only workloads that did not run, with why
	// (their float32 weights do not fit in the memory available).
	Refused []string `json:"refused,omitempty"`
}

func newBenchCmd() *cobra.Command {
	var (
		workload string
		steps    int
		full     bool
		asJSON   bool
		backend  string
		kernel   string
		prec     string
		child    string
		ckpt     bool
	)
	cmd := &cobra.Command{
		Use:   "bench [--workload llama30m|gpt2s|llama1b|qwen0.5b|llama8b|all|real] [--steps N] [--full] [--blas B] [--kernel K] [--json]",
		Short: "Measure the training engine's throughput and memory on the reference workloads",
		Long: `Bench trains the reference workloads (docs/architecture.md, random weights and tokens)
for a few steps and prints tokens/s, the achieved GFLOP/s (from the model's
FLOP count), the float32 sgemm GFLOP/s of the same BLAS measured in the same
process right after the run (the same machine load), their ratio, and the peak RSS. Each workload runs in its own child
process, so peak RSS is per workload. With --full the same workloads also run
as full fine-tuning, and the LoRA/full peak-RSS ratio is printed. --blas all
runs every BLAS backend of the binary: openblas (built with -tags openblas), go (pure Go
with the AVX-512 or AVX2 sgemm kernel) and gonum (pure Go, gonum's own sgemm);
--kernel all runs each pure-Go sgemm kernel the CPU has (avx512, avx2) side by side.
Each child also measures the CPU's physical limit, register-only FMA loops
on every core (fp32 AVX2, fp32 AVX-512 and bf16 VDPBF16PS, where the CPU has
them), and the table gives the step's share of the fp32 peak.

--workload all runs the small reference workloads (llama30m, gpt2s); real runs
the real-scale shapes with random weights: llama1b (Llama-3.2-1B), qwen0.5b
(Qwen2.5-0.5B's widths on the llama architecture) and llama8b (Llama-3-8B,
one step for peak RSS; refused where its float32 weights do not fit). Real-scale
runs need several GiB each: on a shared machine run them one at a time.
The machine's load average is printed beside the figures: on a shared CPU
they are only comparable at similar load.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if child != "" {
				return runBenchChild(cmd.Context(), child, cmd.OutOrStdout())
			}
			var names []string
			switch workload {
			case "all":
				names = benchWorkloadOrder
			case "real":
				names = benchRealScale
			default:
				for _, n := range strings.Split(workload, ",") {
					if _, ok := benchWorkloads[n]; !ok {
						return fmt.Errorf("bench: unknown workload %q (want %s, all or real)", n,
							strings.Join(append(slices.Clone(benchWorkloadOrder), benchRealScale...), ", "))
					}
					names = append(names, n)
				}
			}
			if steps < 1 {
				return fmt.Errorf("bench: --steps %d: want at least 1", steps)
			}
			backends := []string{lora.BLASBackend()}
			switch backend {
			case "", "default":
			case "all":
				backends = lora.BLASBackends()
			default:
				if !slices.Contains(lora.BLASBackends(), backend) {
					return fmt.Errorf("bench: --blas %q: this binary has %s", backend, strings.Join(lora.BLASBackends(), ", "))
				}
				backends = []string{backend}
			}
			kernels := []string{""}
			switch kernel {
			case "", "default":
			case "all":
				kernels = slices.DeleteFunc(lora.SgemmKernels(), func(k string) bool { return k == "gonum" })
			default:
				if !slices.Contains(lora.SgemmKernels(), kernel) {
					return fmt.Errorf("bench: --kernel %q: this CPU runs %s", kernel, strings.Join(lora.SgemmKernels(), ", "))
				}
				kernels = []string{kernel}
			}
			switch prec {
			case lora.PrecisionFP32, lora.PrecisionBF16:
			default:
				return fmt.Errorf("bench: --precision %q: want %s or %s", prec, lora.PrecisionFP32, lora.PrecisionBF16)
			}
			if full && (prec != lora.PrecisionFP32 || benchLowp.quant != "none") {
				return fmt.Errorf("bench: --full with --precision %s --quantization %s: full fine-tuning trains every weight in float32", prec, benchLowp.quant)
			}
			benchLowp.precision = prec
			rep, err := runBench(cmd.Context(), names, backends, kernels, steps, full, ckpt, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			printBenchTable(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&workload, "workload", "all", "llama30m, gpt2s, llama1b, qwen0.5b, llama8b (comma-separated), all (llama30m,gpt2s) or real (the last three)")
	f.IntVar(&steps, "steps", 3, "optimizer steps per run")
	f.BoolVar(&full, "full", false, "also run each workload as full fine-tuning (memory comparison)")
	f.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	f.StringVar(&backend, "blas", "default", "BLAS backend: default, openblas, go (pure Go, AVX-512/AVX2 sgemm), gonum or all")
	f.StringVar(&prec, "precision", lora.PrecisionFP32, "products against the frozen weights: fp32 (exact) or bf16 (frozen weights held in BF16; LoRA only)")
	f.StringVar(&kernel, "kernel", "default", "pure-Go sgemm kernel: default, avx512, avx2 or all (each the CPU runs)")
	f.BoolVar(&ckpt, "checkpointing", false, "train with gradient checkpointing (both modes): blocks replayed in the backward pass, less memory")
	f.StringVar(&child, "child", "", "internal: run one benchmark (JSON spec) and print its result")
	f.StringVar(&benchLowp.quant, "quantization", "none", "frozen block weights: none, nf4, fp4 or int8 (block 64, double quantization)")
	_ = f.MarkHidden("child")
	return cmd
}

// runBench runs every (backend, kernel, workload, mode) in its own child
// process; kernel "" is the default sgemm kernel.
func runBench(ctx context.Context, names, backends, kernels []string, steps int, full, ckpt bool, progress io.Writer) (*benchReport, error) {
	rep := &benchReport{Checkpointing: ckpt, GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(), LoadAvgStart: loadAvg(),
		FallbackSlowdown: map[string]float64{}}
	orig := lora.BLASBackend()
	defer func() { _ = lora.UseBLAS(orig) }()
	modes := []bool{false}
	if full {
		modes = append(modes, true)
	}
	for _, be := range backends {
		if err := lora.UseBLAS(be); err != nil {
			return nil, err
		}
		for _, kernel := range kernels {
			if kernel != "" && be == "gonum" {
				continue // gonum's backend runs no sgemm kernel
			}
			if err := runBenchKernel(ctx, rep, names, be, kernel, modes, steps, ckpt, progress); err != nil {
				return nil, err
			}
		}
	}
	for _, r := range rep.Rows {
		if r.BLAS != "openblas" {
			continue
		}
		for _, g := range rep.Rows {
			if g.BLAS != "openblas" && g.Workload == r.Workload && g.Mode == r.Mode && g.TokensPerSec > 0 {
				rep.FallbackSlowdown[r.Workload+" "+r.Mode+" openblas/"+g.BLAS+"("+g.Kernel+")"] = r.TokensPerSec / g.TokensPerSec
			}
		}
	}
	if len(rep.FallbackSlowdown) == 0 {
		rep.FallbackSlowdown = nil
	}
	rep.LoadAvgEnd = loadAvg()
	return rep, nil
}

// runBenchKernel runs every workload and mode on one backend and kernel,
// appending rows to rep.
func runBenchKernel(ctx context.Context, rep *benchReport, names []string, be, kernel string, modes []bool, steps int, ckpt bool, progress io.Writer) error {
	for _, name := range names {
		w := benchWorkloads[name]
		mnk := benchSgemmShape(w)
		var loraRow = -1
		for _, fm := range modes {
			la := loadAvg()
			st := steps
			if w.MemoryOnly {
				st = 1
			}
			fmt.Fprintf(progress, "bench: %s %s %s %s, %d steps (load average %s)...\n", name, modeName(fm), be, kernelName(kernel), st, la)
			res, err := runBenchChildProcess(ctx, benchChildSpec{Workload: name, Steps: st, Full: fm, BLAS: be, Kernel: kernel, Ckpt: ckpt,
				Precision: benchLowp.precision, Quant: benchLowp.quant})
			if err != nil && w.MemoryOnly {
				// A memory-only shape that does not fit here is a finding,
				// not a failure of the other rows.
				rep.Refused = append(rep.Refused, err.Error())
				continue
			}
			if err != nil {
				return err
			}
			sg := res.SgemmGFLOPs
			row := benchRow{BenchResult: res.BenchResult, Mode: modeName(fm), SgemmGFLOPs: sg, SgemmShape: mnk,
				PeakRSSMiB: float64(res.PeakRSSBytes) / (1 << 20), LoadAvgAtStart: la,
				Peaks: res.Peaks, FP32PeakGFLOPs: lora.FP32Peak(res.Peaks)}
			if sg > 0 {
				row.StepVsSgemm = res.GFLOPs / sg
			}
			if row.FP32PeakGFLOPs > 0 {
				row.StepVsPeak = res.GFLOPs / row.FP32PeakGFLOPs
			}
			if !fm {
				loraRow = len(rep.Rows)
			} else if loraRow >= 0 && res.PeakRSSBytes > 0 {
				lr := &rep.Rows[loraRow]
				lr.RSSLoRAVsFull = float64(lr.PeakRSSBytes) / float64(res.PeakRSSBytes)
				if d := res.PeakRSSBytes - res.BaseRSSBytes; d > 0 {
					lr.TrainRSSLoRAVsFull = float64(lr.PeakRSSBytes-lr.BaseRSSBytes) / float64(d)
				}
			}
			rep.Rows = append(rep.Rows, row)
		}
	}
	return nil
}

func kernelName(k string) string {
	if k == "" {
		return "default kernel"
	}
	return k + " kernel"
}

func modeName(full bool) string {
	if full {
		return "full"
	}
	return "LoRA"
}

// benchSgemmShape is the sgemm measured beside a workload: its largest block
// product, tokens × intermediate × hidden.
func benchSgemmShape(w lora.Workload) [3]int {
	return [3]int{w.Batch * w.SeqLen, w.Model.Intermediate, w.Model.Hidden}
}

func runBenchChildProcess(ctx context.Context, spec benchChildSpec) (benchChildResult, error) {
	js, err := json.Marshal(spec)
	if err != nil {
		return benchChildResult{}, err
	}
	c, err := benchChildCommand(ctx, string(js))
	if err != nil {
		return benchChildResult{}, err
	}
	var out, stderr bytes.Buffer
	c.Stdout, c.Stderr = &out, &stderr
	if err := c.Run(); err != nil {
		return benchChildResult{}, fmt.Errorf("bench: child for %s (%s, %s): %w: %s", spec.Workload, modeName(spec.Full), spec.BLAS, err, strings.TrimSpace(stderr.String()))
	}
	var res benchChildResult
	if err := json.Unmarshal(lastLine(out.Bytes()), &res); err != nil {
		return benchChildResult{}, fmt.Errorf("bench: child for %s: reading its result %q: %w", spec.Workload, out.String(), err)
	}
	return res, nil
}

// lastLine returns the last non-empty line of b (the child's JSON result).
func lastLine(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return lines[len(lines)-1]
}

// runBenchChild runs one benchmark in this process and prints its result as one JSON line.
func runBenchChild(ctx context.Context, specJSON string, w io.Writer) error {
	var spec benchChildSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return fmt.Errorf("bench: --child %q: %w", specJSON, err)
	}
	wl, ok := benchWorkloads[spec.Workload]
	if !ok {
		return fmt.Errorf("bench: --child: unknown workload %q", spec.Workload)
	}
	if spec.BLAS != "" {
		if err := lora.UseBLAS(spec.BLAS); err != nil {
			return err
		}
	}
	if spec.Kernel != "" {
		if err := lora.UseSgemmKernel(spec.Kernel); err != nil {
			return err
		}
	}
	o := lora.LoadOptions{Precision: spec.Precision}
	if spec.Quant != "" && spec.Quant != "none" {
		o.Quantization = &quant.Config{Type: quant.Type(spec.Quant), BlockSize: 64, DoubleQuant: true}
	}
	res, err := lora.RunBenchmarkWith(ctx, wl, spec.Steps, spec.Full, spec.Ckpt, o)
	if err != nil {
		return fmt.Errorf("bench: %s: %w", spec.Workload, err)
	}
	mnk := benchSgemmShape(wl)
	sg := lora.SgemmGFLOPs(mnk[0], mnk[1], mnk[2], 5)
	b, err := json.Marshal(benchChildResult{BenchResult: res, SgemmGFLOPs: sg, Peaks: lora.MeasurePeaks(benchPeakTime)})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func printBenchTable(w io.Writer, rep *benchReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tmode\tbackend\tkernel\tweights\tsteps\ttokens/s\tGFLOP/s\tsgemm GFLOP/s\tstep/sgemm\tfp32 peak\tstep/peak\tpeak RSS MiB\tbase MiB\tLoRA/full RSS\t(above base)\tload avg\t")
	for _, r := range rep.Rows {
		ratio, tratio := "-", "-"
		if r.RSSLoRAVsFull > 0 {
			ratio = fmt.Sprintf("%.2f", r.RSSLoRAVsFull)
		}
		if r.TrainRSSLoRAVsFull > 0 {
			tratio = fmt.Sprintf("%.2f", r.TrainRSSLoRAVsFull)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s %.0f MiB\t%d\t%.1f\t%.1f\t%.1f\t%.2f\t%.0f\t%.2f\t%.0f\t%.0f\t%s\t%s\t%s\t\n",
			r.Workload, r.Mode, r.BLAS, r.Kernel, r.Precision, float64(r.WeightBytes)/(1<<20), r.Steps, r.TokensPerSec, r.GFLOPs, r.SgemmGFLOPs, r.StepVsSgemm,
			r.FP32PeakGFLOPs, r.StepVsPeak, r.PeakRSSMiB, float64(r.BaseRSSBytes)/(1<<20), ratio, tratio, r.LoadAvgAtStart)
	}
	_ = tw.Flush()
	for _, r := range rep.Refused {
		fmt.Fprintf(w, "not run: %s\n", r)
	}
	printPeaks(w, rep.Rows)
	for _, k := range slices.Sorted(maps.Keys(rep.FallbackSlowdown)) {
		i := strings.LastIndexByte(k, ' ')
		fmt.Fprintf(w, "%s tokens/s, %s: %.2f×\n", k[i+1:], k[:i], rep.FallbackSlowdown[k])
	}
	if rep.Checkpointing {
		fmt.Fprintln(w, "gradient checkpointing on (GFLOP/s leave out the replayed forward pass of the blocks)")
	}
	fmt.Fprintf(w, "GOMAXPROCS %d, %d CPUs; load average %s at start, %s at end\n", rep.GOMAXPROCS, rep.NumCPU, rep.LoadAvgStart, rep.LoadAvgEnd)
	for _, r := range rep.Rows {
		if r.Precision != "" && r.Precision != lora.PrecisionFP32 || r.Quantization != "" {
			fmt.Fprintf(w, "%s %s: frozen weights precision %s, quantization %s, %.0f MiB held\n", r.Workload, r.Mode, r.Precision, r.Quantization, float64(r.WeightBytes)/(1<<20))
		}
	}
}

// printPeaks prints, per FMA peak loop, the range of its rate over the
// rows' children (each measured right after its own run).
func printPeaks(w io.Writer, rows []benchRow) {
	lo, hi := map[string]float64{}, map[string]float64{}
	var order []string
	for _, r := range rows {
		for _, p := range r.Peaks {
			if _, ok := lo[p.Loop]; !ok {
				order = append(order, p.Loop)
				lo[p.Loop] = p.GFLOPs
			}
			lo[p.Loop], hi[p.Loop] = min(lo[p.Loop], p.GFLOPs), max(hi[p.Loop], p.GFLOPs)
		}
	}
	for _, l := range order {
		threads := rows[0].Peaks[0].Threads
		fmt.Fprintf(w, "FMA peak %s on %d threads: %.0f–%.0f GFLOP/s\n", l, threads, lo[l], hi[l])
	}
}

// loadAvg returns the 1-, 5- and 15-minute load averages (Linux), or "?".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
