package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/loraflow/loraflow/internal/fixtures"
	"github.com/loraflow/loraflow/lora/combine"
	"github.com/loraflow/loraflow/lora/diagnose"
	"github.com/loraflow/loraflow/lora/merge"
	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/lora/safetensors"
	"github.com/loraflow/loraflow/report"
)

func init() {
	register(newMergeCmd)
	register(newUnmergeCmd)
	register(newCombineCmd)
	register(newInspectCmd)
	register(newMergeBenchCmd)
}

// loadWeighted loads adapter folders and pairs them with weights (all 1
// when none are given).
func loadWeighted(dirs []string, weights []float64) ([]merge.Weighted, error) {
	if len(dirs) == 0 {
		return nil, errors.New("at least one --adapter FOLDER is required")
	}
	if len(weights) != 0 && len(weights) != len(dirs) {
		return nil, fmt.Errorf("%d --weight values for %d adapters: give one per adapter, in the same order", len(weights), len(dirs))
	}
	out := make([]merge.Weighted, len(dirs))
	for i, d := range dirs {
		a, err := peft.Load(d)
		if err != nil {
			return nil, fmt.Errorf("adapter %s: %w", d, err)
		}
		w := 1.0
		if len(weights) != 0 {
			w = weights[i]
		}
		out[i] = merge.Weighted{Name: d, Adapter: a, Weight: w}
	}
	return out, nil
}

// quietMergeLog keeps merge's progress log off the terminal: the command
// prints the report itself.
var quietMergeLog = slog.New(slog.DiscardHandler)

func writeJSONFile(path string, v any) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(raw, '\n'), 0o644)
}

func printMergeReport(w io.Writer, rep *merge.Report) {
	fmt.Fprintf(w, "%sd %d tensors of %s into %s (%d untouched, copied byte for byte)\n",
		rep.Operation, len(rep.Tensors), rep.BaseDir, rep.OutputDir, rep.UntouchedTensors)
	maxDelta := 0.0
	for _, t := range rep.Tensors {
		maxDelta = max(maxDelta, t.MaxAbsDelta)
	}
	fmt.Fprintf(w, "  max |ΔW| %.3g; %.1f MB copied, %.1f MB recomputed; %.2fs (copy %.2fs, update %.2fs, fsync %.2fs)\n",
		maxDelta, float64(rep.BytesCopied)/1e6, float64(rep.BytesRewritten)/1e6, rep.TotalSeconds, rep.CopySeconds, rep.UpdateSeconds, rep.SyncSeconds)
	if e := rep.Equivalence; e != nil {
		fmt.Fprintf(w, "  equivalence: max |logit diff| %.3g (relative %.3g ≤ %.3g for %s) over %d probes, %d tokens, probes %s\n",
			e.MaxAbsLogitDiff, e.RelativeDiff, e.Tolerance, e.DType, e.Probes, e.Tokens, e.ProbeDigest)
	}
}

func newMergeCmd() *cobra.Command {
	var (
		base, out, report, reportIn string
		adapters                    []string
		weights                     []float64
		unsafe, overwrite, noVerify bool
		noFsync                     bool
		probes, probeLen            int
		tolerance                   float64
		sig                         signatureCheck
	)
	cmd := &cobra.Command{
		Use:   "merge --base MODEL --adapter ADAPTER [--adapter ADAPTER2 --weight 0.7 --weight 0.3] --out MERGED",
		Short: "Merge LoRA adapters into a base checkpoint, with an equivalence proof",
		Long: `Merge writes W' = W0 + Σ wᵢ·(alpha/r)·Bᵢ·Aᵢ for every adapted layer (transposed for
GPT-2's Conv1D) into a copy of the base folder, keeping each tensor's dtype (F32, F16,
BF16), the sharding and index, and every other tensor and file byte for byte. It streams
tensor by tensor, so memory does not grow with the model, and builds the output in a
temporary folder that is renamed into place only when everything succeeded.

Unless --no-verify is given, the merged model is then checked against base + adapter
with the loraflow engine on probe sequences: the largest logit difference, the probe
set's sha256 and the tolerance for the dtype go into the report, and a difference above
the tolerance fails the merge.`,
		Example: `  loraflow merge --base models/tiny-llama --adapter out/adapter --out out/merged
  loraflow merge --base m --adapter a1 --adapter a2 --weight 0.7 --weight 0.3 --out merged --report merge.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("merge: --out is required")
			}
			if err := sig.check(cmd.Context(), cmd.ErrOrStderr(), adapters); err != nil {
				return fmt.Errorf("merge: %w", err)
			}
			ws, err := loadWeighted(adapters, weights)
			if err != nil {
				return fmt.Errorf("merge: %w", err)
			}
			if base == "" {
				p := ws[0].Adapter.Config.BaseModelNameOrPath
				if _, err := os.Stat(filepath.Join(p, "config.json")); p == "" || err != nil {
					return fmt.Errorf("merge: --base is required (the adapter's base_model_name_or_path %q is not a local model folder)", p)
				}
				base = p
			}
			for _, w := range ws {
				if p := w.Adapter.Config.BaseModelNameOrPath; p != "" && filepath.Base(filepath.Clean(p)) != filepath.Base(filepath.Clean(base)) {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: adapter %s was trained on %s, merged into %s; shapes are checked tensor by tensor\n", w.Name, p, base)
				}
			}
			opts := merge.Options{Adapters: ws, SafeMerge: !unsafe, Overwrite: overwrite, ReportFile: reportIn, NoSync: noFsync, Logger: quietMergeLog}
			if !noVerify {
				var ps [][]int
				if probes > 0 {
					cfg, err := os.ReadFile(filepath.Join(base, "config.json"))
					if err != nil {
						return fmt.Errorf("merge: %w", err)
					}
					var c struct {
						VocabSize int `json:"vocab_size"`
					}
					if err := json.Unmarshal(cfg, &c); err != nil || c.VocabSize <= 0 {
						return fmt.Errorf("merge: %s/config.json has no vocab_size for the probes", base)
					}
					ps = merge.DefaultProbes(c.VocabSize, probes, probeLen, 0)
				}
				opts.Verify = merge.EngineVerifier(base, ws, ps, tolerance)
			}
			rep, err := merge.Merge(cmd.Context(), base, out, opts)
			if err != nil {
				if rep != nil && rep.Equivalence != nil {
					printMergeReport(cmd.ErrOrStderr(), rep)
				}
				return err
			}
			printMergeReport(cmd.OutOrStdout(), rep)
			if report != "" {
				return writeJSONFile(report, rep)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&base, "base", "", "base model folder (config.json + model.safetensors or shards; default: the adapter's base_model_name_or_path when it is a local folder)")
	f.StringArrayVar(&adapters, "adapter", nil, "PEFT adapter folder (repeat to merge several)")
	f.Float64SliceVar(&weights, "weight", nil, "weight of each adapter, in order (default 1 each; negative subtracts)")
	f.StringVar(&out, "out", "", "output folder (must not exist unless --overwrite)")
	f.BoolVar(&unsafe, "unsafe", false, "do not refuse a result with NaN or Inf (safe_merge off)")
	f.BoolVar(&overwrite, "overwrite", false, "replace an existing output folder")
	f.BoolVar(&noVerify, "no-verify", false, "skip the equivalence check")
	f.BoolVar(&noFsync, "no-fsync", false, "do not fsync the output before renaming it into place")
	_ = f.MarkHidden("no-fsync")
	f.IntVar(&probes, "probes", 0, "number of probe sequences for the equivalence check (default 4)")
	f.IntVar(&probeLen, "probe-len", 16, "tokens per probe sequence")
	f.Float64Var(&tolerance, "tolerance", 0, "largest relative logit difference accepted (default by dtype: F32 1e-4, F16 5e-3, BF16 5e-2)")
	f.StringVar(&report, "report", "", "write the merge report as JSON to this file")
	f.StringVar(&reportIn, "report-in-folder", "", "also write the report inside the merged folder under this file name (e.g. merge_report.json)")
	sig.flags(f)
	return cmd
}

func newUnmergeCmd() *cobra.Command {
	var (
		merged, out, report string
		adapters            []string
		weights             []float64
		overwrite           bool
		sig                 signatureCheck
	)
	cmd := &cobra.Command{
		Use:   "unmerge --merged MERGED --adapter ADAPTER --out BASE",
		Short: "Take merged LoRA adapters out of a checkpoint again (W0 = W' − ΔW)",
		Long: `Unmerge subtracts the adapters' updates from a merged checkpoint, with the same weights
that were used to merge them. F32 checkpoints come back to within float32 rounding;
F16/BF16 ones within a unit or two in the last place, since the merge rounded.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if merged == "" || out == "" {
				return errors.New("unmerge: --merged and --out are required")
			}
			if err := sig.check(cmd.Context(), cmd.ErrOrStderr(), adapters); err != nil {
				return fmt.Errorf("unmerge: %w", err)
			}
			ws, err := loadWeighted(adapters, weights)
			if err != nil {
				return fmt.Errorf("unmerge: %w", err)
			}
			rep, err := merge.Unmerge(cmd.Context(), merged, out, merge.Options{Adapters: ws, Overwrite: overwrite, Logger: quietMergeLog})
			if err != nil {
				return err
			}
			printMergeReport(cmd.OutOrStdout(), rep)
			if report != "" {
				return writeJSONFile(report, rep)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&merged, "merged", "", "merged model folder")
	f.StringArrayVar(&adapters, "adapter", nil, "PEFT adapter folder that was merged (repeat for several)")
	f.Float64SliceVar(&weights, "weight", nil, "the weights used when merging (default 1 each)")
	f.StringVar(&out, "out", "", "output folder")
	f.BoolVar(&overwrite, "overwrite", false, "replace an existing output folder")
	f.StringVar(&report, "report", "", "write the report as JSON to this file")
	sig.flags(f)
	return cmd
}

func newCombineCmd() *cobra.Command {
	var (
		adapters     []string
		weights      []float64
		out, method  string
		svdRank      int
		svdClamp     float64
		density      float64
		majoritySign string
		seed         uint64
		sig          signatureCheck
	)
	cmd := &cobra.Command{
		Use:   "combine --adapter A1 --adapter A2 --weight 0.5 --weight 0.5 --method svd --out COMBINED",
		Short: "Combine LoRA adapters into one, as PEFT's add_weighted_adapter",
		Long: `Combine builds a new PEFT adapter from several trained on the same base model.
Methods: ` + joinMethods() + `.
linear and the ties/dare/magnitude_prune methods need equal ranks; cat adds the ranks up
and is exact; svd and the *_svd forms decompose the combined ΔW to --svd-rank (default:
the largest rank), optionally clamping to the --svd-clamp quantile. --density is the
fraction kept by the pruning methods, --majority-sign total|frequency the TIES sign
election, --seed fixes the DARE masks. The result has lora_alpha = r.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("combine: --out is required")
			}
			if len(adapters) < 1 {
				return errors.New("combine: give at least one --adapter")
			}
			if len(weights) == 0 {
				return errors.New("combine: give one --weight per adapter (PEFT has no default weights)")
			}
			if combine.Method(method).NeedsDensity() && !cmd.Flags().Changed("density") {
				return fmt.Errorf("combine: --method %s prunes: give --density, the fraction of entries to keep (0..1)", method)
			}
			if err := sig.check(cmd.Context(), cmd.ErrOrStderr(), adapters); err != nil {
				return fmt.Errorf("combine: %w", err)
			}
			ws, err := loadWeighted(adapters, weights)
			if err != nil {
				return fmt.Errorf("combine: %w", err)
			}
			list := make([]*peft.Adapter, len(ws))
			for i, w := range ws {
				list[i] = w.Adapter
			}
			t0 := time.Now()
			res, err := combine.Adapters(cmd.Context(), list, combine.Options{
				Method: combine.Method(method), Weights: weights, SVDRank: svdRank, SVDClamp: svdClamp,
				Density: density, MajoritySign: majoritySign, Seed: seed,
			})
			if err != nil {
				return err
			}
			if err := res.Save(out); err != nil {
				return fmt.Errorf("combine: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "combined %d adapters with %s into %s: r = lora_alpha = %d, %d modules (%.2fs)\n",
				len(list), method, out, res.Config.R, len(res.Modules()), time.Since(t0).Seconds())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&adapters, "adapter", nil, "PEFT adapter folder (repeat)")
	f.Float64SliceVar(&weights, "weight", nil, "weight of each adapter, in order (negative subtracts)")
	f.StringVar(&method, "method", "svd", "combination type")
	f.IntVar(&svdRank, "svd-rank", 0, "rank of the svd methods' result (default: the largest input rank)")
	f.Float64Var(&svdClamp, "svd-clamp", 0, "clamp the svd factors to this quantile of their entries (0 = off)")
	f.Float64Var(&density, "density", 0, "fraction of entries kept by ties, dare_* and magnitude_prune (0..1)")
	f.StringVar(&majoritySign, "majority-sign", "total", "TIES sign election: total or frequency")
	f.Uint64Var(&seed, "seed", 0, "seed of the DARE random masks")
	f.StringVar(&out, "out", "", "output adapter folder")
	sig.flags(f)
	return cmd
}

func joinMethods() string {
	s := make([]string, len(combine.Methods))
	for i, m := range combine.Methods {
		s[i] = string(m)
	}
	return strings.Join(s, ", ")
}

func newInspectCmd() *cobra.Command {
	var (
		base, plotPath string
		jsonOut        bool
	)
	cmd := &cobra.Command{
		Use:   "inspect ADAPTER [--base MODEL] [--plot spectra.png] [--json]",
		Short: "Show an adapter's config, parameter counts and the spectra of its updates",
		Long: `Inspect prints the adapter's configuration, its trainable parameter count (and, with
--base, the base model's and the trainable percentage), and for every adapted layer the
singular values of ΔW = (alpha/r)·B·A, its effective rank at 90% and 99% of the energy,
‖ΔW‖ and ‖ΔW‖/‖W0‖, with a suggested rank: the smallest r keeping 99% of every layer's
energy. --plot draws the spectra (PNG, SVG or PDF by extension).`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := peft.Load(args[0])
			if err != nil {
				return fmt.Errorf("inspect: %w", err)
			}
			var b diagnose.Base
			if base == "" {
				// The adapter's own base_model_name_or_path, when it is a local folder.
				if p := a.Config.BaseModelNameOrPath; p != "" {
					if _, err := os.Stat(filepath.Join(p, "config.json")); err == nil {
						base = p
					}
				}
			}
			if base != "" {
				ck, err := safetensors.OpenDir(base)
				if err != nil {
					return fmt.Errorf("inspect: base %s: %w", base, err)
				}
				defer ck.Close()
				b = ck
			}
			rep, err := diagnose.Analyze(cmd.Context(), a, b)
			if err != nil {
				return fmt.Errorf("inspect %s: %w", args[0], err)
			}
			if plotPath != "" {
				if err := report.SaveSpectra(rep, plotPath); err != nil {
					return err
				}
			}
			if jsonOut {
				return rep.WriteJSON(cmd.OutOrStdout())
			}
			return rep.WriteText(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&base, "base", "", "base model folder, for ‖ΔW‖/‖W0‖ and parameter totals (default: base_model_name_or_path when it is a local folder)")
	f.StringVar(&plotPath, "plot", "", "write a plot of the singular value spectra (.png, .svg, .pdf)")
	f.BoolVar(&jsonOut, "json", false, "print the report as JSON")
	return cmd
}

func newMergeBenchCmd() *cobra.Command {
	var (
		sizeMB, shardMB int64
		dtype, dir      string
		rank, repeats   int
		allLinear       bool
	)
	cmd := &cobra.Command{
		Use:    "merge-bench",
		Short:  "Benchmark merging a generated checkpoint against copying it",
		Hidden: true,
		Long: `merge-bench generates a Llama-layout checkpoint of --size-mb of random tensors (sharded
by --shard-mb) with a rank --rank q/v adapter, then times cp -r, a Go copy of the same
files, and the merge (with and without fsync), and reports the merge's peak RSS.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMergeBench(cmd.Context(), cmd.OutOrStdout(), dir, sizeMB, shardMB, safetensors.DType(dtype), rank, repeats, allLinear)
		},
	}
	f := cmd.Flags()
	f.Int64Var(&sizeMB, "size-mb", 200, "checkpoint size in MB")
	f.Int64Var(&shardMB, "shard-mb", 100, "shard size in MB (0 = one file)")
	f.StringVar(&dtype, "dtype", "BF16", "F32, F16 or BF16")
	f.IntVar(&rank, "rank", 16, "adapter rank")
	f.BoolVar(&allLinear, "all-linear", false, "adapt all seven linear layers of every block (worst case) instead of q_proj and v_proj")
	f.IntVar(&repeats, "repeats", 3, "runs of each variant (the best is reported)")
	f.StringVar(&dir, "dir", "", "work folder (default: a temporary folder, removed afterwards)")
	return cmd
}

func runMergeBench(ctx context.Context, w io.Writer, dir string, sizeMB, shardMB int64, dt safetensors.DType, rank, repeats int, allLinear bool) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "loraflow-merge-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	base := filepath.Join(dir, "base")
	t0 := time.Now()
	a, err := fixtures.SyntheticCheckpoint(base, sizeMB<<20, shardMB<<20, dt, rank, allLinear, 1)
	if err != nil {
		return fmt.Errorf("merge-bench: generate: %w", err)
	}
	var size int64
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		if info, err := e.Info(); err == nil {
			size += info.Size()
		}
	}
	adapterDir := filepath.Join(dir, "adapter")
	if err := a.Save(adapterDir); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	total := 0
	if ck, err := safetensors.OpenDir(base); err == nil {
		total = len(ck.Names())
		ck.Close()
	}
	targets := "q_proj, v_proj"
	if allLinear {
		targets = "all linear layers"
	}
	fmt.Fprintf(w, "checkpoint: %.1f MB %s in %d files, generated in %.1fs; adapter r=%d on %s (%d of %d tensors); GOMAXPROCS %d\n",
		float64(size)/1e6, dt, len(entries)-1, time.Since(t0).Seconds(), rank, targets, len(a.Modules()), total, runtime.GOMAXPROCS(0))

	// Every variant runs as child processes; the merge runs this binary, so
	// that its peak RSS (VmHWM, from its report) is its own.
	out := filepath.Join(dir, "out")
	reportPath := filepath.Join(dir, "report.json")
	mergeArgs := func(fsync bool) []string {
		args := []string{self, "merge", "--no-verify", "--base", base, "--adapter", adapterDir, "--out", out, "--report", reportPath}
		if !fsync {
			args = append(args, "--no-fsync")
		}
		return args
	}
	type variant struct {
		name  string
		cmds  [][]string
		merge bool
	}
	variants := []variant{
		{"cp -r", [][]string{{"cp", "-r", base, out}}, false},
		{"cp -r + sync", [][]string{{"cp", "-r", base, out}, {"sync", "-f", out}}, false},
		{"merge, no fsync", [][]string{mergeArgs(false)}, true},
		{"merge + fsync", [][]string{mergeArgs(true)}, true},
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "variant\tbest wall s\tMB/s\tvs cp -r\tCPU s (user+sys)\tpeak RSS MB")
	var cpWall float64
	for _, v := range variants {
		bestWall, bestCPU, rss := math.Inf(1), 0.0, int64(0)
		for i := 0; i < repeats; i++ {
			os.RemoveAll(out)
			t := time.Now()
			cpu := 0.0
			for _, args := range v.cmds {
				c := exec.CommandContext(ctx, args[0], args[1:]...)
				if msg, err := c.CombinedOutput(); err != nil {
					return fmt.Errorf("merge-bench: %s: %v: %s", strings.Join(args, " "), err, msg)
				}
				cpu += (c.ProcessState.UserTime() + c.ProcessState.SystemTime()).Seconds()
			}
			if wall := time.Since(t).Seconds(); wall < bestWall {
				bestWall, bestCPU = wall, cpu
			}
			if v.merge {
				raw, err := os.ReadFile(reportPath)
				if err != nil {
					return err
				}
				var rep merge.Report
				if err := json.Unmarshal(raw, &rep); err != nil {
					return err
				}
				rss = max(rss, rep.PeakRSSBytes)
			}
		}
		os.RemoveAll(out)
		if v.name == "cp -r" {
			cpWall = bestWall
		}
		rssText := "-"
		if rss > 0 {
			rssText = fmt.Sprintf("%.0f", float64(rss)/(1<<20))
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%.0f\t%.2f×\t%.3f\t%s\n", v.name, bestWall, float64(size)/1e6/bestWall, bestWall/cpWall, bestCPU, rssText)
	}
	return tw.Flush()
}
