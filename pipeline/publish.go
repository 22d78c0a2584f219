package pipeline

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/loraflow/loraflow/artifact"
	"github.com/loraflow/loraflow/provenance"
	"github.com/loraflow/loraflow/registry"
	"github.com/loraflow/loraflow/spec"
)

// Publish verifies (v) every attested artifact, then registers them in reg
// as one registry version tagged with their digests, the attestation
// digests, the inputs, the eval metrics and the carbon figures. The
// champion alias moves to it only when the gate said so; otherwise it is
// the challenger. A retried Publish, or a later run that trained the same
// weights, finds the version already made for them (keyed by the trained
// adapter's digest).
func Publish(ctx context.Context, store *artifact.Store, v Verifier, reg registry.Registry, in PublishInput, o StepOptions) (PublishOutput, error) {
	logger := loggerOf(o.Logger)
	dirs := map[string]string{}
	var adapter Attestation
	var attDigests []string
	var trained string // the attested adapter's digest without its model card
	for _, att := range in.Attestations {
		dir, err := store.Path(att.Artifact)
		if err != nil {
			return PublishOutput{}, err
		}
		// The verdict must be for the artifact this run attested (its
		// digests as Attest returned them), not any validly signed one.
		pol, err := expecting(att)
		if err != nil {
			return PublishOutput{}, err
		}
		verdict, err := verify(ctx, v, dir, pol)
		if err != nil {
			return PublishOutput{}, err
		}
		name := map[string]string{"adapter": "adapter", "eval-report": "eval", "merged-model": "merged"}[att.Kind]
		if _, dup := dirs[name]; dup {
			return PublishOutput{}, NonRetryable(ErrVerificationFailed, fmt.Errorf("two %s attestations", att.Kind))
		}
		dirs[name] = dir
		attDigests = append(attDigests, att.Digest)
		// Bundles travel with the version, beside their artifact under its
		// registry name, so `loraflow verify <version>/<name>` finds them.
		// Only the bundles the verifier itself opened and checked are
		// copied: Attestation.Bundles is activity input, and anyone who
		// can schedule an activity could list any file there.
		for _, b := range verdict.Bundles {
			dirs[name+strings.TrimPrefix(filepath.Base(b), filepath.Base(dir))] = b
		}
		if att.Kind == "adapter" {
			adapter, trained = att, provenance.ManifestDigest(withoutFile(verdict.Files, ModelCardFile))
		}
	}
	if adapter.Kind == "" {
		return PublishOutput{}, NonRetryable(ErrVerificationFailed, errors.New("no attested adapter to publish"))
	}
	// The registry keys a version by the trained adapter (so that a later
	// run that trains the same weights finds it), which is the attested
	// adapter without the model card Attest added: recomputed here from the
	// files the verifier hashed, never taken from the input alone.
	if trained != in.Train.Adapter.SHA256 {
		return PublishOutput{}, NonRetryable(ErrVerificationFailed, fmt.Errorf("the attested adapter's files but its %s hash to %s, not the trained adapter %s", ModelCardFile, trained, in.Train.Adapter.SHA256))
	}
	tags := map[string]string{
		registry.TagAdapterDigest:     adapter.Artifact.SHA256,
		registry.TagAttestationDigest: strings.Join(attDigests, ","),
		registry.TagBaseModel:         in.Spec.BaseModel,
		registry.TagBaseModelDigest:   in.BaseModel.SHA256,
		registry.TagDatasetDigest:     in.Snapshot.SHA256,
		registry.TagSpecDigest:        in.Spec.Digest(),
	}
	if id, run, ok := strings.Cut(in.InvocationID, "/"); ok {
		tags[registry.TagWorkflowID], tags[registry.TagRunID] = id, run
	}
	if in.Merge != nil {
		tags[registry.TagMergedDigest] = in.Merge.Merged.SHA256
	}
	alias := registry.AliasChallenger
	if in.Promote {
		alias = registry.AliasChampion
	}
	tags[registry.TagGateDecision] = alias
	for k, v := range in.Carbon.Tags() {
		tags[k] = v
	}
	metrics := map[string]float64{
		"eval_loss": in.Eval.Adapter.Loss, "eval_perplexity": in.Eval.Adapter.Perplexity,
		"base_eval_loss": in.Eval.Base.Loss, "train_final_loss": in.Train.FinalLoss,
		"train_tokens_per_sec": in.Train.TokensPerSec,
		"energy_kwh":           in.Carbon.Total.EnergyKWh, "emissions_g": in.Carbon.Total.EmissionsKg * 1000,
	}
	if in.Eval.Classification {
		metrics["eval_accuracy"], metrics["base_eval_accuracy"] = in.Eval.Adapter.Accuracy, in.Eval.Base.Accuracy
	}
	if in.Merge != nil {
		metrics["merge_max_logit_diff"] = in.Merge.MaxLogitDiff
	}
	history := make([]registry.MetricPoint, len(in.Train.Losses))
	for i, l := range in.Train.Losses {
		history[i] = registry.MetricPoint{Step: int64(CurveStep(i, len(in.Train.Losses), in.Train.Steps)), Value: l}
	}
	t := in.Spec.Training
	params := map[string]string{
		"r": fmt.Sprint(in.Spec.LoRA.R), "lora_alpha": fmt.Sprint(in.Spec.LoRA.LoraAlpha), "target_modules": targetsParam(in.Spec),
		"learning_rate": fmt.Sprint(t.LearningRate), "steps": fmt.Sprint(in.Train.Steps), "batch_size": fmt.Sprint(t.BatchSize),
		"seq_len": fmt.Sprint(t.SeqLen), "schedule": t.Schedule, "seed": fmt.Sprint(t.Seed),
	}
	ver, err := reg.Publish(ctx, registry.PublishRequest{
		ModelName: in.Spec.Name, ArtifactDirs: dirs, ArtifactDigest: "sha256:" + trained,
		Tags: tags, Metrics: metrics, MetricHistory: map[string][]registry.MetricPoint{"train_loss": history}, Params: params,
		Datasets: []registry.Dataset{{Name: in.Spec.Name + "-snapshot", Digest: in.Snapshot.SHA256, SourceType: "local",
			Source: in.Snapshot.URI, Context: "training"}},
		Description: fmt.Sprintf("LoRA adapter of %s; eval loss %.4f (base %.4f)", filepath.Base(in.Spec.BaseModel), in.Eval.Adapter.Loss, in.Eval.Base.Loss),
		Alias:       alias,
	})
	if err != nil {
		var apiErr *registry.APIError
		if errors.As(err, &apiErr) && !apiErr.Retryable() {
			return PublishOutput{}, NonRetryable(ErrRegistryRejected, err)
		}
		return PublishOutput{}, err
	}
	logger.Info("published", "model", ver.Model, "version", ver.Version, "alias", alias, "existed", ver.Existed)
	return PublishOutput{Model: ver.Model, Version: ver.Version, Alias: alias, Registry: reg.URI(), URI: ver.Source, Existed: ver.Existed}, nil
}

func targetsParam(s spec.Spec) string {
	if t := s.LoRA.TargetModules.Names(); t != nil {
		return strings.Join(t, ",")
	}
	return "default for the model type"
}

// withoutFile is files without the one named name.
func withoutFile(files []provenance.FileDigest, name string) []provenance.FileDigest {
	out := make([]provenance.FileDigest, 0, len(files))
	for _, f := range files {
		if f.Name != name {
			out = append(out, f)
		}
	}
	return out
}
