package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/loraflow/loraflow/dataset"
	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/pipeline"
	"github.com/loraflow/loraflow/provenance"
	"github.com/loraflow/loraflow/registry"
	"github.com/loraflow/loraflow/spec"
	"github.com/loraflow/loraflow/trust"
)

// EvalReportFile is the eval report artifact's file.
const EvalReportFile = "eval_report.json"

// evalReport is the eval report artifact's content.
type evalReport struct {
	Snapshot        string   `json:"snapshot_sha256"`
	BaseModel       string   `json:"base_model_sha256"`
	Adapter         string   `json:"adapter_sha256"`
	Split           string   `json:"split"`
	Base            Metrics  `json:"base"`
	Adapted         Metrics  `json:"adapter"`
	Champion        *Metrics `json:"champion,omitempty"`
	ChampionVersion string   `json:"champion_version,omitempty"`
	Samples         []sample `json:"samples,omitempty"`
	// SuggestedRank is the smallest LoRA rank keeping 99% of every adapted
	// layer's ΔW energy (see rank_report.json and rank_spectra.png).
	SuggestedRank int `json:"suggested_rank,omitempty"`
}

type sample struct {
	Prompt  string `json:"prompt"`
	Base    string `json:"base"`
	Adapter string `json:"adapter"`
}

// Evaluate scores the base model, the new adapter and the current champion
// (when one exists and fits this base model) on the snapshot's held-out
// split, and writes the report as an artifact.
func (a *Activities) Evaluate(ctx context.Context, in EvaluateInput) (EvaluateOutput, error) {
	if err := a.checkSpec("Evaluate", in.Spec); err != nil {
		return EvaluateOutput{}, err
	}
	alive := startKeepAlive(ctx, "loading")
	defer alive.close()
	snapDir, err := a.path(in.Snapshot)
	if err != nil {
		return EvaluateOutput{}, err
	}
	snap, err := dataset.ReadSnapshot(snapDir)
	if err != nil {
		return EvaluateOutput{}, err
	}
	base, err := pipeline.LoadBase(in.Spec.BaseModel)
	if err != nil {
		return EvaluateOutput{}, classify("Evaluate", err)
	}
	adapterDir, err := a.path(in.Adapter)
	if err != nil {
		return EvaluateOutput{}, err
	}
	adapter, err := peft.Load(adapterDir)
	if err != nil {
		return EvaluateOutput{}, classify("Evaluate", &lora.InputError{Kind: lora.KindAdapterMismatch, Msg: adapterDir, Err: err})
	}
	val, err := base.Sequences(ctx, snap.Validation)
	if err != nil {
		return EvaluateOutput{}, err
	}
	classification := snap.Manifest.Format == "classification"
	// For accuracy each example is its prompt and gold label, without EOS,
	// so that the gold continuation is one of the label candidates.
	var labelled []lora.Sequence
	if classification {
		for _, sq := range val {
			labelled = append(labelled, lora.Sequence{Tokens: sq.Tokens[:len(sq.Tokens)-btoi(base.EOS() >= 0)], PromptLen: sq.PromptLen})
		}
	}
	score := func(label string, ad *peft.Adapter) (Metrics, error) {
		alive.set(ctx, "evaluating "+label)
		r, err := lora.Evaluate(ctx, base.Model, ad, val, in.Spec.Evaluation.BatchSize)
		if err != nil {
			return Metrics{}, classify("Evaluate "+label, err)
		}
		m := Metrics{Loss: r.Loss, Perplexity: r.Perplexity, Tokens: r.Tokens, Examples: r.Examples}
		if classification {
			labels := make([][]int, len(snap.Manifest.Labels))
			for i, l := range snap.Manifest.Labels {
				labels[i] = base.Tokenizer.Encode(" " + l)
			}
			if m.Accuracy, err = lora.ClassificationAccuracy(ctx, base.Model, ad, labelled, labels); err != nil {
				return Metrics{}, classify("Evaluate "+label, err)
			}
		}
		return m, nil
	}
	out := EvaluateOutput{Classification: classification}
	if out.Base, err = score("base model", nil); err != nil {
		return out, err
	}
	if out.Adapter, err = score("adapter", adapter); err != nil {
		return out, err
	}
	champ, err := a.champion(ctx, in.Spec, in.BaseModel.SHA256, in.Snapshot.SHA256)
	if err != nil {
		return out, fmt.Errorf("Evaluate: looking up the champion: %w", err)
	}
	out.HasChampion, out.ChampionVersion, out.ChampionComparable, out.ChampionNote = champ.found, champ.version, champ.comparable, champ.note
	switch {
	case champ.adapter != nil:
		if out.Champion, err = score("champion v"+champ.version, champ.adapter); err != nil {
			return out, err
		}
	case champ.comparable:
		out.Champion = champ.metrics
	}
	report := evalReport{
		Snapshot: in.Snapshot.SHA256, BaseModel: in.BaseModel.SHA256, Adapter: in.Adapter.SHA256, Split: dataset.ValidationFile,
		Base: out.Base, Adapted: out.Adapter, ChampionVersion: out.ChampionVersion,
	}
	if p, err := a.policy(); err == nil && p.ReportSamples() {
		// Samples quote the first words of held-out rows; they go into the
		// published report only when the worker's operator allows it.
		report.Samples = a.samples(ctx, base, adapter, snap.Validation)
	}
	if out.ChampionComparable {
		report.Champion = &out.Champion
	}
	dir, err := a.Store.ScratchDir("eval")
	if err != nil {
		return out, err
	}
	defer os.RemoveAll(dir) // a no-op once committed (moved into the store)
	if rep, err := rankDiagnostics(ctx, dir, in.Spec.BaseModel, adapter); err != nil {
		a.logger().Warn("no rank diagnostics", "err", err)
	} else {
		report.SuggestedRank = rep.SuggestedRank
		out.SuggestedRank = rep.SuggestedRank
	}
	if len(in.TrainLosses) > 0 {
		if err := plotLossCurve(filepath.Join(dir, LossCurveFile), in.TrainLosses, in.TrainSteps, out.Base.Loss, out.Adapter.Loss); err != nil {
			a.logger().Warn("no loss curve plot", "err", err)
		}
	}
	b, _ := json.MarshalIndent(report, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, EvalReportFile), append(b, '\n'), 0o644); err != nil {
		return out, err
	}
	if out.Report, err = a.Store.Commit(ctx, dir); err != nil {
		return out, err
	}
	a.logger().Info("evaluated", "base_loss", out.Base.Loss, "adapter_loss", out.Adapter.Loss, "champion", out.ChampionVersion)
	return out, nil
}

// samples generates greedy completions for the first held-out prompts with
// and without the adapter, for people reading the report.
func (a *Activities) samples(ctx context.Context, base *pipeline.Base, adapter *peft.Adapter, val []dataset.Example) []sample {
	var out []sample
	for _, e := range val[:min(2, len(val))] {
		prompt := e.Prompt
		if prompt == "" { // plain text: continue its first words
			r := []rune(e.Completion)
			prompt = string(r[:min(len(r), 40)])
		}
		ids := base.Sequence(dataset.Example{Prompt: prompt}).Tokens
		if base.EOS() >= 0 && len(ids) > 0 && ids[len(ids)-1] == base.EOS() {
			ids = ids[:len(ids)-1]
		}
		opts := lora.GenerateOptions{MaxTokens: 24}
		if base.EOS() >= 0 {
			opts.StopTokens = []int{base.EOS()}
		}
		opts.StopTokens = append(opts.StopTokens, base.Model.StopTokens()...) // generation_config.json's eos list
		gen := func(ad *peft.Adapter) string {
			toks, err := lora.Generate(ctx, base.Model, ad, ids, opts)
			if err != nil {
				return "(" + err.Error() + ")"
			}
			return base.Tokenizer.DecodeSkipSpecial(toks)
		}
		out = append(out, sample{Prompt: prompt, Base: gen(nil), Adapter: gen(adapter)})
	}
	return out
}

// championInfo is what Evaluate learns about the current champion.
type championInfo struct {
	found, comparable bool
	version, note     string
	adapter           *peft.Adapter // when it can be scored here
	metrics           Metrics       // its registered scores, when comparable without scoring
}

// champion finds the version under the alias champion. It is scored on the
// same held-out data when its adapter is stored locally and fits this base
// model; otherwise its registered held-out loss is used when it was
// measured on the same dataset snapshot and base. A champion that cannot be
// compared either way is reported as not comparable, and the gate then
// never promotes over it. Registry errors are returned (retryable): a
// registry outage must not look like "no champion".
func (a *Activities) champion(ctx context.Context, s spec.Spec, baseDigest, snapshotDigest string) (championInfo, error) {
	reg, err := a.openRegistry(ctx, s)
	if err != nil {
		return championInfo{}, err
	}
	defer reg.Close()
	v, ok, err := reg.GetByAlias(ctx, s.Name, registry.AliasChampion)
	if err != nil || !ok {
		return championInfo{}, err
	}
	c := championInfo{found: true, version: v.Version}
	if v.Tags[registry.TagBaseModelDigest] != baseDigest {
		c.note = fmt.Sprintf("champion v%s was trained on another base model", v.Version)
		return c, nil
	}
	if dir := v.Artifacts["adapter"]; dir != "" {
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			// The champion's adapter is scored only when it verifies and is
			// the one its version's attestation digests name; otherwise
			// the gate never promotes over it (not comparable).
			if err := a.verifyChampion(ctx, dir, v); err != nil {
				a.logger().Warn("champion adapter does not verify", "version", v.Version, "err", err)
				c.note = fmt.Sprintf("champion v%s: its adapter does not verify: %v", v.Version, err)
				return c, nil
			}
			if ad, err := peft.Load(dir); err == nil {
				c.adapter, c.comparable = ad, true
				return c, nil
			}
		}
	}
	if loss, ok := v.Metrics["eval_loss"]; ok && v.Tags[registry.TagDatasetDigest] == snapshotDigest {
		c.comparable, c.metrics = true, Metrics{Loss: loss, Accuracy: v.Metrics["eval_accuracy"]}
		c.note = fmt.Sprintf("champion v%s compared by its registered scores on the same snapshot", v.Version)
		return c, nil
	}
	c.note = fmt.Sprintf("champion v%s could not be scored on this held-out data (adapter not stored locally, other snapshot)", v.Version)
	return c, nil
}

// openRegistry opens the registry the spec names among the worker's
// declared ones (see trust.Policy.RegistryURI).
func (a *Activities) openRegistry(ctx context.Context, s spec.Spec) (registry.Registry, error) {
	p, err := a.policy()
	if err != nil {
		return nil, err
	}
	reg, err := p.OpenRegistry(ctx, s)
	var se *trust.SpecError
	if errors.As(err, &se) {
		return nil, nonRetryable(ErrBadSpec, err)
	}
	return reg, err
}

// verifyChampion verifies the registry's copy of the champion adapter and
// checks that its provenance statement is one the version's tags name.
func (a *Activities) verifyChampion(ctx context.Context, dir string, v registry.Version) error {
	pol, err := provenance.NewPolicy(provenance.WithoutArtifactDigestUnsafe(), provenance.WithKinds(provenance.KindAdapter))
	if err != nil {
		return err
	}
	verdict, err := a.verify(ctx, "Evaluate champion v"+v.Version, dir, pol)
	if err != nil {
		return err
	}
	if !slices.Contains(strings.Split(v.Tags[registry.TagAttestationDigest], ","), verdict.ProvenanceSHA256) {
		return fmt.Errorf("its provenance statement %s is not among the version's attestation digests %q", verdict.ProvenanceSHA256, v.Tags[registry.TagAttestationDigest])
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
