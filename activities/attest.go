package activities

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/loraflow/loraflow/artifact"
	"github.com/loraflow/loraflow/carbon"
	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/pipeline"
	"github.com/loraflow/loraflow/provenance"
	"github.com/loraflow/loraflow/registry"
	"github.com/loraflow/loraflow/spec"
)

// Attest signs an artifact's provenance (SLSA v1), its model-signing
// manifest, and its eval and carbon statements, as Sigstore bundles beside
// it. An adapter first gets its model card (README.md) so that the card is
// covered by the signatures; the attested adapter is then a new artifact,
// returned in Attestation.Artifact.
func (a *Activities) Attest(ctx context.Context, in AttestInput) (Attestation, error) {
	if err := a.checkSpec("Attest", in.Spec); err != nil {
		return Attestation{}, err
	}
	alive := startKeepAlive(ctx, "hashing and signing") // hashing a whole model takes minutes
	defer alive.close()
	signer, err := a.signer(in.Spec)
	if err != nil {
		return Attestation{}, err
	}
	// Sign only what still hashes to its store digest: an object replaced
	// under objects/<digest> is refused, not signed.
	if _, err := a.storedPath(ctx, "Attest", in.Artifact); err != nil {
		return Attestation{}, err
	}
	if in.Kind == string(provenance.KindAdapter) && in.Train != nil && in.Carbon != nil && in.Carbon.Counterfactual == nil {
		cf, err := counterfactual(in.Spec.BaseModel, in.Spec, *in.Train, in.Train.Usage)
		if err != nil {
			a.logger().Warn("no full fine-tuning counterfactual", "err", err)
		} else {
			summary := *in.Carbon
			summary.Counterfactual = cf
			in.Carbon = &summary
		}
	}
	ref := in.Artifact
	if in.Kind == string(provenance.KindAdapter) {
		if ref, err = a.withModelCard(ctx, in); err != nil {
			return Attestation{}, err
		}
	}
	dir, err := a.path(ref)
	if err != nil {
		return Attestation{}, err
	}
	snapDir, err := a.storedPath(ctx, "Attest", in.Snapshot)
	if err != nil {
		return Attestation{}, err
	}
	deps := []provenance.Dependency{}
	if in.Kind != string(provenance.KindEvalReport) || len(in.Parents) == 0 {
		baseDigest, err := provenance.DigestPath(ctx, in.Spec.BaseModel)
		if err != nil {
			return Attestation{}, err
		}
		deps = append(deps, provenance.Dependency{Role: provenance.RoleBaseModel, Name: filepath.Base(in.Spec.BaseModel),
			URI: "file://" + in.Spec.BaseModel, SHA256: baseDigest})
	}
	if in.Kind == string(provenance.KindAdapter) {
		snapDigest, err := provenance.DigestPath(ctx, snapDir)
		if err != nil {
			return Attestation{}, err
		}
		deps = append(deps, provenance.Dependency{Role: provenance.RoleDataset, Name: "dataset-snapshot",
			URI: "file://" + snapDir, SHA256: snapDigest})
	}
	for _, p := range in.Parents {
		pdir, err := a.path(p.Artifact)
		if err != nil {
			return Attestation{}, err
		}
		deps = append(deps, provenance.Dependency{Role: provenance.RoleParent, Name: p.Kind, URI: "file://" + pdir,
			SHA256: p.FolderDigest, Attestation: p.Digest})
	}
	info := activity.GetInfo(ctx)
	art := provenance.Artifact{
		Kind: provenance.Kind(in.Kind), Dir: dir, // named by its store digest, as its folder is
		Dependencies: deps, ExternalParameters: in.Spec, InvocationID: in.InvocationID,
		WorkerIdentity: info.WorkflowExecution.ID, StartedOn: time.Unix(in.StartedOn, 0).UTC(), FinishedOn: time.Unix(in.FinishedOn, 0).UTC(),
	}
	if in.Eval != nil {
		art.Eval = in.Eval
	}
	if in.Carbon != nil {
		art.Carbon = in.Carbon
	}
	att, err := provenance.Attest(ctx, signer, art)
	if err != nil {
		return Attestation{}, fmt.Errorf("Attest %s: %w", in.Kind, err)
	}
	out := Attestation{Kind: in.Kind, Artifact: ref, Digest: att.ProvenanceSHA256, FolderDigest: att.SHA256}
	if in.Carbon != nil {
		out.Counterfactual = in.Carbon.Counterfactual
	}
	for _, b := range att.Bundles {
		out.Bundles = append(out.Bundles, b.Path)
	}
	a.logger().Info("attested", "kind", in.Kind, "artifact", ref.SHA256, "provenance", att.ProvenanceSHA256, "key", signer.KeyID())
	return out, nil
}

// withModelCard copies the adapter into a new artifact with a Hugging Face
// model card (README.md).
func (a *Activities) withModelCard(ctx context.Context, in AttestInput) (artifact.Ref, error) {
	src, err := a.path(in.Artifact)
	if err != nil {
		return artifact.Ref{}, err
	}
	dir, err := a.Store.ScratchDir("adapter-card")
	if err != nil {
		return artifact.Ref{}, err
	}
	defer os.RemoveAll(dir) // a no-op once committed (moved into the store)
	if err := pipeline.CopyFiles(src, dir); err != nil {
		return artifact.Ref{}, err
	}
	card := registry.CardInfo{
		ModelName: in.Spec.Name,
		// Hub metadata takes a Hub id or nothing: the base folder's own
		// id when its config names one, never a local path.
		BaseModel:   registry.HubID(in.Spec.BaseModel),
		Description: fmt.Sprintf("LoRA adapter for %s, trained by loraflow (workflow %s).", filepath.Base(in.Spec.BaseModel), in.InvocationID),
		Tags:        []string{"lora", "peft", "loraflow"},
		TaskType:    "text-generation",
		Provenance:  cardProvenance(in.BaseModel, in.Snapshot, map[string]string{"workflow": in.InvocationID}),
	}
	if t := in.Train; t != nil {
		card.TrainingParams = map[string]string{
			"steps": fmt.Sprint(t.Steps), "tokens": fmt.Sprint(t.Tokens), "final_train_loss": fmt.Sprintf("%.4f", t.FinalLoss),
			"r": fmt.Sprint(in.Spec.LoRA.R), "lora_alpha": fmt.Sprint(in.Spec.LoRA.LoraAlpha),
			"learning_rate": fmt.Sprint(in.Spec.Training.LearningRate), "seed": fmt.Sprint(in.Spec.Training.Seed),
			"precision": in.Spec.Training.Precision, "quantization": quantParam(in.Spec.Quantization),
		}
	}
	if e := in.Eval; e != nil {
		card.Metrics = []registry.CardMetric{
			{Type: "loss", Name: "held-out loss", Value: e.Adapter.Loss},
			{Type: "perplexity", Name: "held-out perplexity", Value: e.Adapter.Perplexity},
			{Type: "loss", Name: "base model held-out loss", Value: e.Base.Loss},
		}
		if e.Classification {
			card.Metrics = append(card.Metrics, registry.CardMetric{Type: "accuracy", Name: "held-out accuracy", Value: e.Adapter.Accuracy})
		}
	}
	if c := in.Carbon; c != nil {
		// The co2_eq_emissions fields come from carbon's one model-card builder.
		mc := carbon.NewModelCard(c.Total, "fine-tuning")
		card.CO2 = &registry.CO2Emissions{
			Emissions: registry.YAMLFloat(mc.EmissionsGrams), Source: mc.Source,
			TrainingType: mc.TrainingType, GeographicalLocation: mc.GeographicalLocation, HardwareUsed: mc.HardwareUsed,
		}
		if cf := c.Counterfactual; cf != nil {
			card.CounterfactualCO2Grams = cf.FullEmissionsKg * 1000
		}
	}
	if err := registry.WriteModelCard(dir, card); err != nil {
		return artifact.Ref{}, err
	}
	return a.Store.Commit(ctx, dir)
}

// cardProvenance is a model card's provenance table: where the signed
// statements are, how to check them, the base model and dataset digests the
// artifact was made from, and extra entries.
// quantParam is the card's record of the quantization the adapter was
// trained against ("none", or e.g. "nf4, block 64, double quantization").
func quantParam(q spec.Quantization) string {
	if q.Type == "" || q.Type == "none" {
		return "none"
	}
	s := fmt.Sprintf("%s, block %d", q.Type, q.BlockSize)
	if q.DoubleQuant == nil || *q.DoubleQuant {
		s += ", double quantization"
	}
	return s
}

func cardProvenance(base, snapshot artifact.Ref, extra map[string]string) map[string]string {
	p := map[string]string{
		"attestations":   "Sigstore bundles beside this folder: <folder>.provenance.sigstore.json and companions",
		"verify":         "loraflow verify <folder> --key <public key>",
		"dataset_sha256": snapshot.SHA256,
		"base_sha256":    base.SHA256,
	}
	maps.Copy(p, extra)
	return p
}

// counterfactual estimates what full fine-tuning of the same run would have
// cost, from the run's FLOP counts (the engine's FLOP model, counted where
// training ended) and the measured training figures. A training result
// recorded without them gets them from the base model and the spec.
func counterfactual(baseDir string, s spec.Spec, t TrainOutput, trainUsage Usage) (*carbon.Counterfactual, error) {
	fc := t.FLOPs
	if fc.AdapterParams == 0 {
		m, err := lora.LoadModel(baseDir)
		if err != nil {
			return nil, err
		}
		cfg, err := s.PEFT(m.Config().ModelType)
		if err != nil {
			return nil, err
		}
		fc = pipeline.TrainingFLOPs(m, cfg, s.TrainConfig(""), t.TrainableParams)
	}
	cf, err := carbon.CounterfactualFromFLOPs(fc, carbon.LoRARun{
		Tokens: t.Tokens, Seconds: trainUsage.DurationS, TokensPerSec: t.TokensPerSec,
		EnergyKWh: trainUsage.EnergyKWh, EmissionsKg: trainUsage.EmissionsKg, BytesPerParam: 4,
	})
	if err != nil {
		return nil, err
	}
	return &cf, nil
}
