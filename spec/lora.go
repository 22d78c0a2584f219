package spec

import (
	"encoding/json"
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/lora/quant"
)

// TargetModules is the spec's target_modules: PEFT's own typed selection (a
// list matched by suffix, a regular expression, or "all-linear"), readable
// from YAML as a list or a string. The zero value selects PEFT's default for
// the model type.
type TargetModules struct{ peft.TargetModules }

// Targets selects modules by name (suffix match), as a YAML list does.
func Targets(names ...string) TargetModules {
	return TargetModules{peft.TargetModules{List: names}}
}

// TargetPattern selects modules by a regular expression or "all-linear", as
// a YAML string does.
func TargetPattern(s string) TargetModules {
	var t TargetModules
	b, _ := json.Marshal(s)
	_ = t.UnmarshalJSON(b) // a JSON string always decodes
	return t
}

// IsZero reports an unset selection (so JSON omits it, as before).
func (t TargetModules) IsZero() bool { return t.IsEmpty() }

// UnmarshalYAML reads a list of names or a string, as PEFT's JSON does.
func (t *TargetModules) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		var s string
		if err := n.Decode(&s); err != nil {
			return err
		}
		*t = TargetPattern(s)
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		*t = Targets(l...)
	default:
		return fmt.Errorf("line %d: target_modules must be a list or a string", n.Line)
	}
	return nil
}

// InitLoraWeights is the spec's init_lora_weights: PEFT's typed value ("true",
// "false", "gaussian", "pissa", "olora"), readable from YAML as a boolean or
// a string; JSON writes true/false as booleans, as PEFT does.
type InitLoraWeights struct{ peft.InitLoraWeights }

// UnmarshalYAML reads a boolean or a string.
func (v *InitLoraWeights) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: init_lora_weights must be a boolean or a string", n.Line)
	}
	if n.Tag == "!!bool" {
		var b bool
		if err := n.Decode(&b); err != nil {
			return err
		}
		v.InitLoraWeights = peft.InitLoraWeights(fmt.Sprint(b))
		return nil
	}
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v.InitLoraWeights = peft.InitLoraWeights(s)
	return nil
}

// PEFT returns the adapter config the spec's LoRA section describes for a
// base model of modelType: PEFT's own fields, with PEFT's default targets
// for the model type when target_modules is unset. A spec that passed
// Normalize (or came from Load) has every default filled in already, so
// peft.Config.Normalize changes nothing here; bad values are a
// KindBadConfig input error.
func (s *Spec) PEFT(modelType string) (peft.Config, error) {
	l := s.LoRA
	c := peft.Config{
		PeftType: "LORA", TaskType: "CAUSAL_LM", BaseModelNameOrPath: s.BaseModel,
		R: l.R, LoraAlpha: l.LoraAlpha, LoraDropout: l.LoraDropout, TargetModules: l.TargetModules.TargetModules,
		Bias: l.Bias, UseRSLoRA: l.UseRSLoRA, UseDoRA: l.UseDoRA, InitLoraWeights: l.InitLoraWeights.InitLoraWeights,
		RankPattern: l.RankPattern, AlphaPattern: l.AlphaPattern, LayersToTransform: l.LayersToTransform,
		ModulesToSave: l.ModulesToSave,
	}
	if c.TargetModules.IsEmpty() {
		def, ok := peft.DefaultTargetModules(modelType)
		if !ok {
			return peft.Config{}, &lora.InputError{Kind: lora.KindBadConfig, Msg: fmt.Sprintf("spec lora section: PEFT has no default target_modules for model_type %q; set lora.target_modules", modelType)}
		}
		c.TargetModules = peft.TargetModules{List: def}
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		return peft.Config{}, &lora.InputError{Kind: lora.KindBadConfig, Msg: fmt.Sprintf("spec lora section: %v", err)}
	}
	return c, nil
}

// TrainConfig returns the engine's training settings for the spec, with
// checkpoints in checkpointDir.
func (s *Spec) TrainConfig(checkpointDir string) lora.TrainConfig {
	t := s.Training
	return lora.TrainConfig{
		Steps: t.Steps, Epochs: t.Epochs, BatchSize: t.BatchSize, SeqLen: t.SeqLen, GradAccumSteps: t.GradAccumSteps,
		WarmupSteps: t.WarmupSteps, LearningRate: t.LearningRate, WeightDecay: t.WeightDecay, MaxGradNorm: t.MaxGradNorm,
		LoraPlusLRRatio: s.LoRA.LoraPlusLRRatio, Schedule: t.Schedule, Seed: t.Seed,
		CheckpointDir: checkpointDir, CheckpointEvery: t.CheckpointEvery,
	}
}

// LoadOptions returns how the engine holds the base model's frozen weights
// in training: the precision and the quantization of the spec.
func (s *Spec) LoadOptions() lora.LoadOptions {
	o := lora.LoadOptions{Precision: s.Training.Precision}
	if q := s.Quantization; q.Type != "" && q.Type != "none" {
		o.Quantization = &quant.Config{Type: quant.Type(q.Type), BlockSize: q.BlockSize, DoubleQuant: q.DoubleQuant == nil || *q.DoubleQuant}
	}
	return o
}

// Names lists the selection as written: the names of a list, or the one
// string of a regex or "all-linear"; nil when unset.
func (t TargetModules) Names() []string {
	switch {
	case t.AllLinear:
		return []string{"all-linear"}
	case t.Regex != "":
		return []string{t.Regex}
	}
	return t.List
}
