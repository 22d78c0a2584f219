package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/loraflow/loraflow/artifact"
	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/merge"
	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/lora/safetensors"
	"github.com/loraflow/loraflow/provenance"
	"github.com/loraflow/loraflow/registry"
)

// MergeReportFile is written inside the merged model's folder.
const MergeReportFile = "merge_report.json"

// StepOptions are what a step needs from its caller besides its input.
type StepOptions struct {
	Progress func(string) // told what the step is doing (a heartbeat); may be nil
	Logger   *slog.Logger
}

// Merge writes W' = W0 + scale·B·A into a copy of the base checkpoint,
// tensor by tensor, after verifying (v) that the adapter is the one this
// run attested, trained on this base model and dataset snapshot; the merged
// model must reproduce base+adapter logits on probe sequences within the
// tolerance of its dtype, or the merge fails. The merged model is committed
// to store.
func Merge(ctx context.Context, store *artifact.Store, v Verifier, in MergeInput, o StepOptions) (MergeOutput, error) {
	progress, logger := progressOf(o.Progress), loggerOf(o.Logger)
	progress("verifying the adapter")
	adapterDir, err := store.Path(in.Adapter)
	if err != nil {
		return MergeOutput{}, err
	}
	// Not "signed by some trusted key" but "the adapter this run attested,
	// trained on this base model and this dataset snapshot".
	if in.AdapterAttestation.Artifact.SHA256 != in.Adapter.SHA256 {
		return MergeOutput{}, NonRetryable(ErrVerificationFailed, fmt.Errorf("MergeInput.AdapterAttestation is for artifact %q, the adapter to merge is %q", in.AdapterAttestation.Artifact.SHA256, in.Adapter.SHA256))
	}
	snapDir, err := store.Path(in.Snapshot)
	if err != nil {
		return MergeOutput{}, NonRetryable(ErrVerificationFailed, fmt.Errorf("MergeInput.Snapshot: %w", err))
	}
	pol, err := expecting(in.AdapterAttestation, provenance.WithDependencyPath(provenance.RoleBaseModel, in.Spec.BaseModel),
		provenance.WithDependencyPath(provenance.RoleDataset, snapDir))
	if err != nil {
		return MergeOutput{}, err
	}
	if _, err := verify(ctx, v, adapterDir, pol); err != nil {
		return MergeOutput{}, err
	}
	adapter, err := peft.Load(adapterDir)
	if err != nil {
		return MergeOutput{}, &lora.InputError{Kind: lora.KindAdapterMismatch, Msg: adapterDir, Err: err}
	}
	ck, err := safetensors.OpenDir(in.Spec.BaseModel)
	if err != nil {
		return MergeOutput{}, &lora.InputError{Kind: lora.KindCorruptCheckpoint, Msg: in.Spec.BaseModel, Err: err}
	}
	dtype := safetensors.F32
	for _, n := range ck.Names() {
		if info, ok := ck.Info(n); ok && (info.DType == safetensors.BF16 || info.DType == safetensors.F16) {
			dtype = info.DType
			break
		}
	}
	ck.Close()
	raw, _ := os.ReadFile(filepath.Join(in.Spec.BaseModel, "config.json"))
	mc, err := lora.ParseModelConfig(raw)
	if err != nil {
		return MergeOutput{}, err
	}
	probes := merge.DefaultProbes(mc.VocabSize, 4, min(32, mc.MaxPositions), 1)
	adapters := []merge.Weighted{{Name: filepath.Base(adapterDir), Adapter: adapter, Weight: 1}}
	scratch, err := store.ScratchDir("merged")
	if err != nil {
		return MergeOutput{}, err
	}
	defer os.RemoveAll(scratch) // a no-op once committed (moved into the store)
	out := filepath.Join(scratch, "model")
	rep, err := merge.Merge(ctx, in.Spec.BaseModel, out, merge.Options{
		Adapters: adapters, SafeMerge: true, Logger: logger, ReportFile: MergeReportFile,
		Progress: func(done, total int) { progress(fmt.Sprintf("merged %d/%d tensors", done, total)) },
		Verify:   merge.EngineVerifier(in.Spec.BaseModel, adapters, probes, merge.DefaultTolerance(dtype)),
	})
	if err != nil {
		return MergeOutput{}, err
	}
	mo := MergeOutput{TensorsMerged: len(rep.Tensors)}
	if eq := rep.Equivalence; eq != nil {
		mo.MaxLogitDiff, mo.Tolerance, mo.ProbeSetDigest = eq.MaxAbsLogitDiff, eq.Tolerance, eq.ProbeDigest
	}
	// The merged model is a model of its own: the base model's README.md and
	// metrics.json describe the base, so they are replaced by the merged
	// model's card and figures.
	if err := writeMergedCard(out, in, mo); err != nil {
		return MergeOutput{}, err
	}
	ref, err := store.Commit(ctx, out)
	if err != nil {
		return MergeOutput{}, err
	}
	mo.Merged = ref
	logger.Info("merged", "model", ref.SHA256, "tensors", mo.TensorsMerged, "max_logit_diff", mo.MaxLogitDiff)
	return mo, nil
}

// MergedMetricsFile is the merged model's own metrics file, which replaces
// the base model's.
const MergedMetricsFile = "metrics.json"

// writeMergedCard writes the merged model's Hugging Face card (README.md)
// and metrics.json into dir.
func writeMergedCard(dir string, in MergeInput, mo MergeOutput) error {
	card := registry.CardInfo{
		ModelName:   in.Spec.Name + "-merged",
		BaseModel:   registry.HubID(in.Spec.BaseModel),
		Description: fmt.Sprintf("The LoRA adapter sha256:%s merged into %s by loraflow.", in.Adapter.SHA256, filepath.Base(in.Spec.BaseModel)),
		TaskType:    "text-generation",
		Merged:      true,
		Provenance: cardProvenance(in.BaseModel, in.Snapshot, map[string]string{
			"adapter_sha256":   in.Adapter.SHA256,
			"max_logit_diff":   fmt.Sprintf("%.3g (tolerance %.3g)", mo.MaxLogitDiff, mo.Tolerance),
			"probe_set_sha256": mo.ProbeSetDigest,
		}),
	}
	if err := registry.WriteModelCard(dir, card); err != nil {
		return err
	}
	b, err := json.MarshalIndent(map[string]any{
		"adapter_sha256": in.Adapter.SHA256, "base_model_sha256": in.BaseModel.SHA256,
		"tensors_merged": mo.TensorsMerged, "max_abs_logit_diff": mo.MaxLogitDiff,
		"tolerance": mo.Tolerance, "probe_set_sha256": mo.ProbeSetDigest,
	}, "", "  ")
	if err != nil {
		return err
	}
	return artifact.WriteFileAtomic(filepath.Join(dir, MergedMetricsFile), append(b, '\n'))
}
