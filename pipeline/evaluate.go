package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/loraflow/loraflow/artifact"
	"github.com/loraflow/loraflow/dataset"
	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/provenance"
	"github.com/loraflow/loraflow/registry"
	"github.com/loraflow/loraflow/spec"
)

// EvalReportFile is the eval report artifact's file.
const EvalReportFile = "eval_report.json"

// evalReport is the eval report artifact's content. Its keys are
// snake_case throughout; accuracy is there only for classification data.
type evalReport struct {
	Snapshot        string         `json:"snapshot_sha256"`
	BaseModel       string         `json:"base_model_sha256"`
	Adapter         string         `json:"adapter_sha256"`
	Split           string         `json:"split"`
	Task            string         `json:"task"` // "text" or "classification"
	Base            reportMetrics  `json:"base"`
	Adapted         reportMetrics  `json:"adapter"`
	Champion        *reportMetrics `json:"champion,omitempty"`
	ChampionVersion string         `json:"champion_version,omitempty"`
	Samples         []sample       `json:"samples,omitempty"`
	// SuggestedRank is the smallest LoRA rank keeping 99% of every adapted
	// layer's ΔW energy (see rank_report.json and rank_spectra.png).
	SuggestedRank int `json:"suggested_rank,omitempty"`
}

// reportMetrics are one model's scores as the report writes them.
type reportMetrics struct {
	Loss       float64  `json:"loss"`
	Perplexity float64  `json:"perplexity"`
	Accuracy   *float64 `json:"accuracy,omitempty"` // classification data only
	Tokens     int      `json:"tokens"`
	Examples   int      `json:"examples"`
}

func newReportMetrics(m Metrics, classification bool) reportMetrics {
	r := reportMetrics{Loss: m.Loss, Perplexity: m.Perplexity, Tokens: m.Tokens, Examples: m.Examples}
	if classification {
		acc := m.Accuracy
		r.Accuracy = &acc
	}
	return r
}

type sample struct {
	Prompt  string `json:"prompt"`
	Base    string `json:"base"`
	Adapter string `json:"adapter"`
}

// EvaluateOptions are what Evaluate needs besides its input.
type EvaluateOptions struct {
	// Champion is the current champion (FindChampion); the zero value: none.
	Champion Champion
	// ReportSamples lets the report quote the first words of held-out rows
	// (the worker operator's choice, trust.Policy.ReportSamples).
	ReportSamples bool
	Progress      func(string) // told what the step is doing; may be nil
	Logger        *slog.Logger
}

// Evaluate scores the base model, the new adapter and the current champion
// (o.Champion, when it can be scored or compared) on the snapshot's
// held-out split, and commits the report as an artifact of store.
func Evaluate(ctx context.Context, store *artifact.Store, in EvaluateInput, o EvaluateOptions) (EvaluateOutput, error) {
	progress, logger := progressOf(o.Progress), loggerOf(o.Logger)
	snapDir, err := store.Path(in.Snapshot)
	if err != nil {
		return EvaluateOutput{}, err
	}
	snap, err := dataset.ReadSnapshot(snapDir)
	if err != nil {
		return EvaluateOutput{}, err
	}
	base, err := LoadBase(in.Spec.BaseModel)
	if err != nil {
		return EvaluateOutput{}, err
	}
	adapterDir, err := store.Path(in.Adapter)
	if err != nil {
		return EvaluateOutput{}, err
	}
	adapter, err := peft.Load(adapterDir)
	if err != nil {
		return EvaluateOutput{}, &lora.InputError{Kind: lora.KindAdapterMismatch, Msg: adapterDir, Err: err}
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
		progress("evaluating " + label)
		r, err := lora.Evaluate(ctx, base.Model, ad, val, in.Spec.Evaluation.BatchSize)
		if err != nil {
			return Metrics{}, fmt.Errorf("scoring the %s: %w", label, err)
		}
		m := Metrics{Loss: r.Loss, Perplexity: r.Perplexity, Tokens: r.Tokens, Examples: r.Examples}
		if classification {
			labels := make([][]int, len(snap.Manifest.Labels))
			for i, l := range snap.Manifest.Labels {
				labels[i] = base.Tokenizer.Encode(" " + l)
			}
			if m.Accuracy, err = lora.ClassificationAccuracy(ctx, base.Model, ad, labelled, labels); err != nil {
				return Metrics{}, fmt.Errorf("scoring the %s: %w", label, err)
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
	champ := o.Champion
	out.HasChampion, out.ChampionVersion, out.ChampionComparable, out.ChampionNote = champ.Found, champ.Version, champ.Comparable, champ.Note
	switch {
	case champ.Adapter != nil:
		if out.Champion, err = score("champion v"+champ.Version, champ.Adapter); err != nil {
			return out, err
		}
	case champ.Comparable:
		out.Champion = champ.Metrics
	}
	task := "text"
	if classification {
		task = "classification"
	}
	report := evalReport{
		Snapshot: in.Snapshot.SHA256, BaseModel: in.BaseModel.SHA256, Adapter: in.Adapter.SHA256, Split: dataset.ValidationFile, Task: task,
		Base: newReportMetrics(out.Base, classification), Adapted: newReportMetrics(out.Adapter, classification), ChampionVersion: out.ChampionVersion,
	}
	if o.ReportSamples {
		// Samples quote the first words of held-out rows; they go into the
		// published report only when the worker's operator allows it.
		report.Samples = samples(ctx, base, adapter, snap.Validation)
	}
	if out.ChampionComparable {
		champion := newReportMetrics(out.Champion, classification)
		report.Champion = &champion
	}
	dir, err := store.ScratchDir("eval")
	if err != nil {
		return out, err
	}
	defer os.RemoveAll(dir) // a no-op once committed (moved into the store)
	if rep, err := rankDiagnostics(ctx, dir, in.Spec.BaseModel, adapter); err != nil {
		logger.Warn("no rank diagnostics", "err", err)
	} else {
		report.SuggestedRank = rep.SuggestedRank
		out.SuggestedRank = rep.SuggestedRank
	}
	if len(in.TrainLosses) > 0 {
		if err := plotLossCurve(filepath.Join(dir, LossCurveFile), in.TrainLosses, in.TrainSteps, in.TrainHeldOut, out.Base.Loss, out.Adapter.Loss); err != nil {
			logger.Warn("no loss curve plot", "err", err)
		}
	}
	if err := writeHTMLReport(dir, in.Spec.Name, report, classification); err != nil {
		logger.Warn("no HTML report", "err", err)
	}
	b, _ := json.MarshalIndent(report, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, EvalReportFile), append(b, '\n'), 0o644); err != nil {
		return out, err
	}
	if out.Report, err = store.Commit(ctx, dir); err != nil {
		return out, err
	}
	logger.Info("evaluated", "base_loss", out.Base.Loss, "adapter_loss", out.Adapter.Loss, "champion", out.ChampionVersion)
	return out, nil
}

// samples generates greedy completions for the first held-out prompts with
// and without the adapter, for people reading the report.
func samples(ctx context.Context, base *Base, adapter *peft.Adapter, val []dataset.Example) []sample {
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

// Champion is what Evaluate learns about the current champion.
type Champion struct {
	Found, Comparable bool
	Version, Note     string
	Adapter           *peft.Adapter // when it can be scored here
	Metrics           Metrics       // its registered scores, when comparable without scoring
}

// FindChampion finds the version of reg under the alias champion. It is
// scored on the same held-out data when its adapter is stored locally,
// verifies (v) and fits this base model; otherwise its registered held-out
// loss is used when it was measured on the same dataset snapshot and base.
// A champion that cannot be compared either way is reported as not
// comparable, and the gate then never promotes over it. Registry errors are
// returned (retryable): a registry outage must not look like "no champion".
func FindChampion(ctx context.Context, reg registry.Registry, v Verifier, s spec.Spec, baseDigest, snapshotDigest string, logger *slog.Logger) (Champion, error) {
	ver, ok, err := reg.GetByAlias(ctx, s.Name, registry.AliasChampion)
	if err != nil || !ok {
		return Champion{}, err
	}
	c := Champion{Found: true, Version: ver.Version}
	if ver.Tags[registry.TagBaseModelDigest] != baseDigest {
		c.Note = fmt.Sprintf("champion v%s was trained on another base model", ver.Version)
		return c, nil
	}
	if dir := ver.Artifacts["adapter"]; dir != "" {
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			// The champion's adapter is scored only when it verifies and is
			// the one its version's attestation digests name; otherwise
			// the gate never promotes over it (not comparable).
			if err := verifyChampion(ctx, v, dir, ver); err != nil {
				loggerOf(logger).Warn("champion adapter does not verify", "version", ver.Version, "err", err)
				c.Note = fmt.Sprintf("champion v%s: its adapter does not verify: %v", ver.Version, err)
				return c, nil
			}
			if ad, err := peft.Load(dir); err == nil {
				c.Adapter, c.Comparable = ad, true
				return c, nil
			}
		}
	}
	if loss, ok := ver.Metrics["eval_loss"]; ok && ver.Tags[registry.TagDatasetDigest] == snapshotDigest {
		c.Comparable, c.Metrics = true, Metrics{Loss: loss, Accuracy: ver.Metrics["eval_accuracy"]}
		c.Note = fmt.Sprintf("champion v%s compared by its registered scores on the same snapshot", ver.Version)
		return c, nil
	}
	c.Note = fmt.Sprintf("champion v%s could not be scored on this held-out data (adapter not stored locally, other snapshot)", ver.Version)
	return c, nil
}

// verifyChampion verifies the registry's copy of the champion adapter and
// checks that its provenance statement is one the version's tags name.
func verifyChampion(ctx context.Context, v Verifier, dir string, ver registry.Version) error {
	pol, err := provenance.NewPolicy(provenance.WithoutArtifactDigestUnsafe(), provenance.WithKinds(provenance.KindAdapter))
	if err != nil {
		return err
	}
	verdict, err := verify(ctx, v, dir, pol)
	if err != nil {
		return err
	}
	if !slices.Contains(strings.Split(ver.Tags[registry.TagAttestationDigest], ","), verdict.ProvenanceSHA256) {
		return fmt.Errorf("its provenance statement %s is not among the version's attestation digests %q", verdict.ProvenanceSHA256, ver.Tags[registry.TagAttestationDigest])
	}
	return nil
}

// ChampionDigests reads the input digests of reg's champion of model name,
// so that a scheduled run can end early when nothing changed.
func ChampionDigests(ctx context.Context, reg registry.Registry, name string) (FindChampionOutput, error) {
	v, ok, err := reg.GetByAlias(ctx, name, registry.AliasChampion)
	if err != nil || !ok {
		return FindChampionOutput{}, err
	}
	return FindChampionOutput{Found: true, Version: v.Version, SnapshotDigest: v.Tags[registry.TagDatasetDigest],
		BaseDigest: v.Tags[registry.TagBaseModelDigest], SpecDigest: v.Tags[registry.TagSpecDigest]}, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
