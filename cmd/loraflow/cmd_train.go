package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/loraflow/loraflow/artifact"
	"github.com/loraflow/loraflow/dataset"
	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/pipeline"
	"github.com/loraflow/loraflow/spec"
)

func init() { register(newTrainCmd) }

// exitBadInput is the trainer contract's exit code for input that no retry
// can fix (argo/README.md).
const exitBadInput = 2

func newTrainCmd() *cobra.Command {
	var snapshot, base, specPath, out, checkpoints, result, precision string
	cmd := &cobra.Command{
		Use:   "train --snapshot DIR --base DIR --spec FILE --out DIR",
		Short: "Train a LoRA adapter outside Temporal (the Argo trainer image's entrypoint)",
		Long: `Train runs the TrainLoRA step by itself: the spec's LoRA config and training
settings, on a prepared dataset snapshot, from a base checkpoint, writing a
PEFT adapter folder to --out (atomically). It resumes from --checkpoints.
Progress goes to $LORAFLOW_PROGRESS_FILE as JSON when set. Exit codes: 0
done, 2 bad input (no retry helps), 1 anything else.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			err := runTrain(cmd, snapshot, base, specPath, out, checkpoints, result, precision)
			var ie *lora.InputError
			var bad *dataset.BadDataError
			if errors.As(err, &ie) || errors.As(err, &bad) || errors.Is(err, errBadTrainArgs) {
				fmt.Fprintln(os.Stderr, "loraflow train: bad input:", err)
				os.Exit(exitBadInput)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&snapshot, "snapshot", "", "prepared dataset snapshot folder")
	f.StringVar(&base, "base", "", "base checkpoint folder (overrides the spec's base_model)")
	f.StringVar(&specPath, "spec", "", "pipeline spec (YAML or JSON)")
	f.StringVar(&out, "out", "", "adapter folder to create")
	f.StringVar(&checkpoints, "checkpoints", "", "checkpoint folder (default OUT.checkpoints)")
	f.StringVar(&result, "result", "", "write the training figures here as JSON")
	f.StringVar(&precision, "precision", "", "products against the frozen base weights: fp32 (exact) or bf16 (overrides the spec's training.precision)")
	for _, n := range []string{"snapshot", "spec", "out"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

var errBadTrainArgs = errors.New("bad arguments")

func runTrain(cmd *cobra.Command, snapshot, base, specPath, out, checkpoints, result, precision string) error {
	s, err := spec.Load(specPath)
	if err != nil {
		return fmt.Errorf("%w: %v", errBadTrainArgs, err)
	}
	switch precision {
	case "":
	case lora.PrecisionFP32, lora.PrecisionBF16:
		s.Training.Precision = precision
	default:
		return fmt.Errorf("%w: --precision %q: want %s or %s", errBadTrainArgs, precision, lora.PrecisionFP32, lora.PrecisionBF16)
	}
	if base != "" {
		s.BaseModel = base
	}
	if _, err := os.Stat(out); err == nil {
		// A retried pod after a finished run: the adapter was renamed into
		// place as the last step, so a complete folder means done.
		if complete(out) && (result == "" || fileExists(result)) {
			fmt.Fprintf(cmd.OutOrStdout(), "adapter already in %s\n", out)
			return nil
		}
		return fmt.Errorf("%w: --out %s exists but is not a complete adapter", errBadTrainArgs, out)
	}
	if checkpoints == "" {
		checkpoints = filepath.Clean(out) + ".checkpoints"
	}
	tmp := filepath.Clean(out) + ".partial"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	progressFile := os.Getenv("LORAFLOW_PROGRESS_FILE")
	progress := func(p lora.Progress) {
		fmt.Fprintf(cmd.ErrOrStderr(), "step %d/%d loss %.4f lr %.2e %.0f tokens/s\n", p.Step, p.TotalSteps, p.Loss, p.LearningRate, p.TokensPerSec)
		if progressFile != "" {
			b, _ := json.Marshal(map[string]any{"step": p.Step, "total_steps": p.TotalSteps, "loss": p.Loss, "tokens_per_sec": p.TokensPerSec, "checkpoint": p.Checkpoint})
			_ = artifact.WriteFileAtomic(progressFile, b)
		}
	}
	// The trainer measures its own energy, over every run that resumed
	// from these checkpoints, and reports it in its result: the worker
	// attests that, not its own waiting.
	var res pipeline.TrainResult
	usage, err := pipeline.Measure(cmd.Context(), pipeline.MeterOptions(s.Carbon, "", 0), "TrainLoRA", filepath.Join(checkpoints, "energy.json"), func() (err error) {
		res, err = pipeline.TrainAdapter(cmd.Context(), *s, snapshot, tmp, checkpoints, progress)
		return err
	})
	if err != nil {
		return err
	}
	res.Usage = &usage
	if result != "" { // before the rename: a complete --out implies its result
		b, _ := json.Marshal(res)
		if err := artifact.WriteFileAtomic(result, b); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "adapter written to %s: %d steps, final loss %.4f\n", out, res.Steps, res.FinalLoss)
	return nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func complete(adapterDir string) bool {
	return fileExists(filepath.Join(adapterDir, "adapter_config.json")) && fileExists(filepath.Join(adapterDir, "adapter_model.safetensors"))
}
