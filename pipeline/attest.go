package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/loraflow/loraflow/artifact"
	"github.com/loraflow/loraflow/carbon"
	"github.com/loraflow/loraflow/provenance"
	"github.com/loraflow/loraflow/registry"
	"github.com/loraflow/loraflow/spec"
)

// AttestOptions are what Attest needs besides its input.
type AttestOptions struct {
	// WorkerIdentity names who ran the step in the provenance statement.
	WorkerIdentity string
	Logger         *slog.Logger
}

// Attest signs an artifact's provenance (SLSA v1), its model-signing
// manifest, and its eval and carbon statements, as Sigstore bundles beside
// it, with signer. An adapter first gets its model card (README.md) so that
// the card is covered by the signatures; the attested adapter is then a new
// artifact of store, returned in Attestation.Artifact.
func Attest(ctx context.Context, store *artifact.Store, signer *provenance.Signer, in AttestInput, o AttestOptions) (Attestation, error) {
	logger := loggerOf(o.Logger)
	// The carbon statement is signed as given: the full fine-tuning
	// counterfactual was computed where training ended (TrainOutput) and
	// the workflow put it into in.Carbon.
	//
	// Each object is hashed once, and what is signed is what was hashed:
	// provenance.Attest hashes the artifact and refuses to sign unless it
	// hashes to its store digest (ExpectSHA256); an adapter's files are
	// checked as they are copied beside its model card. An object changed
	// under objects/<digest> is refused, not signed.
	ref, err := in.Artifact, error(nil)
	if in.Kind == string(provenance.KindAdapter) {
		if ref, err = withModelCard(ctx, store, in); err != nil {
			return Attestation{}, err
		}
	}
	dir, err := store.Path(ref)
	if err != nil {
		return Attestation{}, err
	}
	deps := []provenance.Dependency{}
	if in.Kind != string(provenance.KindEvalReport) || len(in.Parents) == 0 {
		d, err := dependency(ctx, provenance.RoleBaseModel, filepath.Base(in.Spec.BaseModel), in.Spec.BaseModel, in.BaseModel.SHA256)
		if err != nil {
			return Attestation{}, err
		}
		deps = append(deps, d)
	}
	if in.Kind == string(provenance.KindAdapter) {
		snapDir, err := store.Path(in.Snapshot)
		if err != nil {
			return Attestation{}, err
		}
		d, err := dependency(ctx, provenance.RoleDataset, "dataset-snapshot", snapDir, in.Snapshot.SHA256)
		if err != nil {
			return Attestation{}, err
		}
		deps = append(deps, d)
	}
	for _, p := range in.Parents {
		pdir, err := store.Path(p.Artifact)
		if err != nil {
			return Attestation{}, err
		}
		deps = append(deps, provenance.Dependency{Role: provenance.RoleParent, Name: p.Kind, URI: "file://" + pdir,
			SHA256: p.FolderDigest, Attestation: p.Digest})
	}
	art := provenance.Artifact{
		Kind: provenance.Kind(in.Kind), Dir: dir, ExpectSHA256: ref.SHA256, // named by its store digest, as its folder is
		Dependencies: deps, ExternalParameters: in.Spec, InvocationID: in.InvocationID,
		WorkerIdentity: o.WorkerIdentity, StartedOn: time.Unix(in.StartedOn, 0).UTC(), FinishedOn: time.Unix(in.FinishedOn, 0).UTC(),
	}
	if in.Eval != nil {
		art.Eval = in.Eval
	}
	if in.Carbon != nil {
		art.Carbon = in.Carbon
	}
	att, err := provenance.Attest(ctx, signer, art)
	var changed *provenance.DigestMismatchError
	if errors.As(err, &changed) {
		return Attestation{}, NonRetryable(ErrVerificationFailed, fmt.Errorf("%s: store object %s: %w", in.Kind, ref.SHA256, err))
	}
	if err != nil {
		return Attestation{}, fmt.Errorf("%s: %w", in.Kind, err)
	}
	out := Attestation{Kind: in.Kind, Artifact: ref, Digest: att.ProvenanceSHA256, FolderDigest: att.SHA256}
	for _, b := range att.Bundles {
		out.Bundles = append(out.Bundles, b.Path)
	}
	logger.Info("attested", "kind", in.Kind, "artifact", ref.SHA256, "provenance", att.ProvenanceSHA256, "key", signer.KeyID())
	return out, nil
}

// withModelCard copies the adapter into a new artifact with a Hugging Face
// model card (README.md).
func withModelCard(ctx context.Context, store *artifact.Store, in AttestInput) (artifact.Ref, error) {
	src, err := store.Path(in.Artifact)
	if err != nil {
		return artifact.Ref{}, err
	}
	dir, err := store.ScratchDir("adapter-card")
	if err != nil {
		return artifact.Ref{}, err
	}
	defer os.RemoveAll(dir) // a no-op once committed (moved into the store)
	if err := CopyFiles(src, dir); err != nil {
		return artifact.Ref{}, err
	}
	// The copy is what gets signed: it must be the trained adapter, byte
	// for byte (hashed once, here, in the private scratch folder).
	if got, err := artifact.DigestDir(ctx, dir); err != nil {
		return artifact.Ref{}, err
	} else if got != in.Artifact.SHA256 {
		return artifact.Ref{}, NonRetryable(ErrVerificationFailed, fmt.Errorf("store object %s now hashes to %s: it changed after it was committed", in.Artifact.SHA256, got))
	}
	if _, err := os.Stat(filepath.Join(dir, ModelCardFile)); err == nil {
		return artifact.Ref{}, NonRetryable(ErrVerificationFailed, fmt.Errorf("adapter %s already has a %s: the registry's version key (the adapter without its card) would not be recomputable", in.Artifact.SHA256, ModelCardFile))
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
	return store.Commit(ctx, dir)
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

// dependency is a signed dependency on the folder or file at path, which
// must still hash to want, the digest the run recorded for it (PrepareData
// fingerprinted the base model; the snapshot is a store object): the
// statement names what the run used, and a path that changed since is
// refused, not signed under its new digest.
func dependency(ctx context.Context, role provenance.Role, name, path, want string) (provenance.Dependency, error) {
	got, err := provenance.DigestPath(ctx, path)
	if err != nil {
		return provenance.Dependency{}, err
	}
	if want != "" && got != want {
		return provenance.Dependency{}, NonRetryable(ErrVerificationFailed, fmt.Errorf("%s %s now hashes to %s, not %s as when the run used it", role, path, got, want))
	}
	return provenance.Dependency{Role: role, Name: name, URI: "file://" + path, SHA256: got}, nil
}

// ModelCardFile is the adapter's model card, which Attest adds
// (registry.WriteModelCard writes it); every other file of the attested
// adapter is the trained adapter's.
const ModelCardFile = "README.md"
