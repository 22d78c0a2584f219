package activities

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/loraflow/loraflow/pipeline"
	"github.com/loraflow/loraflow/registry"
	"github.com/loraflow/loraflow/spec"
)

// Publish verifies every attested artifact, then registers them as one
// registry version tagged with their digests, the attestation digests, the
// inputs, the eval metrics and the carbon figures. The champion alias moves
// to it only when the gate said so; otherwise it is the challenger. A
// retried Publish, or a later run that trained the same weights, finds the
// version already made for them (keyed by the trained adapter's digest).
func (a *Activities) Publish(ctx context.Context, in PublishInput) (PublishOutput, error) {
	if err := a.checkSpec("Publish", in.Spec); err != nil {
		return PublishOutput{}, err
	}
	alive := startKeepAlive(ctx, "verifying and publishing") // hashing a whole model takes minutes
	defer alive.close()
	dirs := map[string]string{}
	var adapter Attestation
	var attDigests []string
	for _, att := range in.Attestations {
		dir, err := a.path(att.Artifact)
		if err != nil {
			return PublishOutput{}, err
		}
		// The verdict must be for the artifact this run attested (its
		// digests as Attest returned them), not any validly signed one.
		pol, err := expecting(att)
		if err != nil {
			return PublishOutput{}, err
		}
		verdict, err := a.verify(ctx, "Publish", dir, pol)
		if err != nil {
			return PublishOutput{}, err
		}
		name := map[string]string{"adapter": "adapter", "eval-report": "eval", "merged-model": "merged"}[att.Kind]
		if _, dup := dirs[name]; dup {
			return PublishOutput{}, nonRetryable(ErrVerificationFailed, fmt.Errorf("Publish: two %s attestations", att.Kind))
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
			adapter = att
		}
	}
	if adapter.Kind == "" {
		return PublishOutput{}, nonRetryable(ErrVerificationFailed, errors.New("Publish: no attested adapter to publish"))
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
		history[i] = registry.MetricPoint{Step: int64(curveStep(i, len(in.Train.Losses), in.Train.Steps)), Value: l}
	}
	t := in.Spec.Training
	params := map[string]string{
		"r": fmt.Sprint(in.Spec.LoRA.R), "lora_alpha": fmt.Sprint(in.Spec.LoRA.LoraAlpha), "target_modules": targetsParam(in.Spec),
		"learning_rate": fmt.Sprint(t.LearningRate), "steps": fmt.Sprint(in.Train.Steps), "batch_size": fmt.Sprint(t.BatchSize),
		"seq_len": fmt.Sprint(t.SeqLen), "schedule": t.Schedule, "seed": fmt.Sprint(t.Seed),
	}
	reg, err := a.openRegistry(ctx, in.Spec)
	if err != nil {
		return PublishOutput{}, fmt.Errorf("Publish: %w", err)
	}
	defer reg.Close()
	v, err := reg.Publish(ctx, registry.PublishRequest{
		ModelName: in.Spec.Name, ArtifactDirs: dirs, ArtifactDigest: "sha256:" + in.Train.Adapter.SHA256,
		Tags: tags, Metrics: metrics, MetricHistory: map[string][]registry.MetricPoint{"train_loss": history}, Params: params,
		Datasets: []registry.Dataset{{Name: in.Spec.Name + "-snapshot", Digest: in.Snapshot.SHA256, SourceType: "local",
			Source: in.Snapshot.URI, Context: "training"}},
		Description: fmt.Sprintf("LoRA adapter of %s; eval loss %.4f (base %.4f)", filepath.Base(in.Spec.BaseModel), in.Eval.Adapter.Loss, in.Eval.Base.Loss),
		Alias:       alias,
	})
	if err != nil {
		var apiErr *registry.APIError
		if errors.As(err, &apiErr) && !apiErr.Retryable() {
			return PublishOutput{}, nonRetryable(pipeline.ErrRegistryRejected, fmt.Errorf("Publish: %w", err))
		}
		return PublishOutput{}, fmt.Errorf("Publish: %w", err)
	}
	a.logger().Info("published", "model", v.Model, "version", v.Version, "alias", alias, "existed", v.Existed)
	a.Store.AfterRun(ctx, a.logger()) // the run's last step: bounded automatic gc (artifact/autogc.go)
	return PublishOutput{Model: v.Model, Version: v.Version, Alias: alias, Registry: reg.URI(), URI: v.Source, Existed: v.Existed}, nil
}

// FindChampion reads the current champion's input digests, so that a
// scheduled run can end early when nothing changed.
func (a *Activities) FindChampion(ctx context.Context, in FindChampionInput) (FindChampionOutput, error) {
	if err := a.checkSpec("FindChampion", in.Spec); err != nil {
		return FindChampionOutput{}, err
	}
	reg, err := a.openRegistry(ctx, in.Spec)
	if err != nil {
		return FindChampionOutput{}, fmt.Errorf("FindChampion: %w", err)
	}
	defer reg.Close()
	v, ok, err := reg.GetByAlias(ctx, in.Spec.Name, registry.AliasChampion)
	if err != nil || !ok {
		return FindChampionOutput{}, err
	}
	return FindChampionOutput{Found: true, Version: v.Version, SnapshotDigest: v.Tags[registry.TagDatasetDigest],
		BaseDigest: v.Tags[registry.TagBaseModelDigest], SpecDigest: v.Tags[registry.TagSpecDigest]}, nil
}

func targetsParam(s spec.Spec) string {
	if t := s.LoRA.TargetModules.Names(); t != nil {
		return strings.Join(t, ",")
	}
	return "default for the model type"
}
