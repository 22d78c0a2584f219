package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// CO2Emissions is the Hugging Face model card's co2_eq_emissions block.
type CO2Emissions struct {
	// Emissions in grams of CO2 equivalent.
	Emissions            YAMLFloat `yaml:"emissions"`
	Source               string    `yaml:"source,omitempty"`        // e.g. "loraflow carbon (RAPL measured)"
	TrainingType         string    `yaml:"training_type,omitempty"` // "fine-tuning"
	GeographicalLocation string    `yaml:"geographical_location,omitempty"`
	HardwareUsed         string    `yaml:"hardware_used,omitempty"`
}

// CardMetric is one evaluation result for the card's model-index.
type CardMetric struct {
	Type  string // e.g. "perplexity", "loss", "accuracy"
	Name  string // display name; defaults to Type
	Value float64
}

// CardInfo is what WriteModelCard writes.
type CardInfo struct {
	// ModelName names the adapter (the registered model's name).
	ModelName   string
	BaseModel   string // Hugging Face id or path of the base model
	Description string
	License     string   // SPDX id, optional
	Language    []string // optional
	Datasets    []string
	Tags        []string // extra tags; "peft", "lora" and "loraflow" are always added
	// Metrics, evaluated on EvalDataset, for model-index.
	Metrics     []CardMetric
	EvalDataset string // name of the held-out set (default "held-out")
	// TaskType is the model-index task (default "text-generation").
	TaskType string
	// TrainingParams are shown in a table (hyperparameters, seed, steps).
	TrainingParams map[string]string
	CO2            *CO2Emissions
	// CounterfactualCO2Grams is the same run as full fine-tuning, if known.
	CounterfactualCO2Grams float64
	// Merged marks a full model made by merging the adapter into its base:
	// a transformers model (library_name "transformers", loaded with
	// AutoModelForCausalLM), not a PEFT adapter.
	Merged bool
	// Provenance lists what a reader needs to check the artifacts:
	// digests, attestation files, workflow and run IDs (name → value).
	Provenance map[string]string
}

type cardFrontMatter struct {
	BaseModel   string        `yaml:"base_model,omitempty"`
	LibraryName string        `yaml:"library_name"`
	License     string        `yaml:"license,omitempty"`
	Language    []string      `yaml:"language,omitempty"`
	Tags        []string      `yaml:"tags"`
	Datasets    []string      `yaml:"datasets,omitempty"`
	PipelineTag string        `yaml:"pipeline_tag,omitempty"`
	CO2         *CO2Emissions `yaml:"co2_eq_emissions,omitempty"`
	ModelIndex  []cardModel   `yaml:"model-index,omitempty"`
}

type cardModel struct {
	Name    string       `yaml:"name"`
	Results []cardResult `yaml:"results"`
}

type cardResult struct {
	Task    cardTask      `yaml:"task"`
	Dataset cardDataset   `yaml:"dataset"`
	Metrics []cardMetricY `yaml:"metrics"`
}

type cardTask struct {
	Type string `yaml:"type"`
}

type cardDataset struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"`
}

type cardMetricY struct {
	Type  string    `yaml:"type"`
	Value YAMLFloat `yaml:"value"`
	Name  string    `yaml:"name,omitempty"`
}

// YAMLFloat is a number written so that YAML 1.1 readers (PyYAML, which the
// Hub's model-card tooling, huggingface_hub's ModelCard, uses through
// yaml.safe_load) read a float: PyYAML's float resolver
// (yaml/resolver.py, tag:yaml.org,2002:float) requires a "." in the
// mantissa and a signed exponent, so Go's "5e-05" would come back as the
// string '5e-05'; this writes "5.0e-05".
type YAMLFloat float64

// MarshalYAML implements yaml.Marshaler.
func (f YAMLFloat) MarshalYAML() (any, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v, nil
	}
	s := strconv.FormatFloat(v, 'g', -1, 64)
	mant, exp, hasExp := strings.Cut(s, "e")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	if hasExp {
		s = mant + "e" + exp // Go always signs the exponent: e-05, e+21
	} else {
		s = mant
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: s}, nil
}

// HubID returns the Hugging Face Hub id a base model folder names: the
// "_name_or_path" of its config.json (transformers' save_pretrained writes
// the id the model was loaded from) when it has the Hub's repo-id form
// "namespace/name" (huggingface_hub utils/_validators.py validate_repo_id:
// letters, digits, "-", "_", ".", at most 96 characters, no "--" or ".."),
// else "" (a local path is no valid base_model metadata).
func HubID(baseDir string) string {
	f, err := os.Open(filepath.Join(baseDir, "config.json"))
	if err != nil {
		return ""
	}
	defer f.Close()
	var cfg struct {
		NameOrPath string `json:"_name_or_path"`
	}
	if err := json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&cfg); err != nil {
		return ""
	}
	id := cfg.NameOrPath
	if len(id) > 96 || strings.Contains(id, "--") || strings.Contains(id, "..") || !hubRepoID.MatchString(id) {
		return ""
	}
	return id
}

var hubRepoID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]*[A-Za-z0-9_]$`)

// RenderModelCard returns the README.md text: YAML front matter in the
// Hugging Face model card format, then a human-readable body.
func RenderModelCard(info CardInfo) ([]byte, error) {
	if info.ModelName == "" {
		return nil, fmt.Errorf("registry: model card: model name is empty")
	}
	task := info.TaskType
	if task == "" {
		task = "text-generation"
	}
	library := "peft"
	if info.Merged {
		library = "transformers"
	}
	fm := cardFrontMatter{
		BaseModel:   info.BaseModel,
		LibraryName: library,
		License:     info.License,
		Language:    info.Language,
		Datasets:    info.Datasets,
		PipelineTag: task,
		CO2:         info.CO2,
	}
	seen := map[string]bool{}
	fixed := []string{"peft", "lora", "loraflow"}
	if info.Merged {
		fixed = []string{"lora", "loraflow", "merged"}
	}
	for _, t := range append(fixed, info.Tags...) {
		if t != "" && !seen[t] {
			seen[t] = true
			fm.Tags = append(fm.Tags, t)
		}
	}
	if info.BaseModel != "" && !info.Merged && !seen["base_model:adapter:"+info.BaseModel] {
		fm.Tags = append(fm.Tags, "base_model:adapter:"+info.BaseModel)
	}
	var metrics []cardMetricY
	for _, m := range info.Metrics {
		if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			continue
		}
		metrics = append(metrics, cardMetricY{Type: m.Type, Value: YAMLFloat(m.Value), Name: m.Name})
	}
	if len(metrics) > 0 {
		ds := info.EvalDataset
		if ds == "" {
			ds = "held-out"
		}
		fm.ModelIndex = []cardModel{{Name: info.ModelName, Results: []cardResult{{
			Task:    cardTask{Type: task},
			Dataset: cardDataset{Name: ds, Type: ds},
			Metrics: metrics,
		}}}}
	}
	var yb bytes.Buffer
	enc := yaml.NewEncoder(&yb)
	enc.SetIndent(2)
	if err := enc.Encode(fm); err != nil {
		return nil, fmt.Errorf("registry: model card front matter: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("registry: model card front matter: %w", err)
	}

	var b bytes.Buffer
	b.WriteString("---\n")
	b.Write(yb.Bytes())
	b.WriteString("---\n\n")
	fmt.Fprintf(&b, "# %s\n\n", info.ModelName)
	if info.Description != "" {
		b.WriteString(strings.TrimSpace(info.Description) + "\n\n")
	}
	switch {
	case info.Merged && info.BaseModel != "":
		fmt.Fprintf(&b, "`%s` with a LoRA adapter merged into its weights by a loraflow pipeline.\n\n", info.BaseModel)
	case info.Merged:
		b.WriteString("A base model with a LoRA adapter merged into its weights by a loraflow pipeline.\n\n")
	case info.BaseModel != "":
		fmt.Fprintf(&b, "A LoRA adapter for `%s`, trained and published by a loraflow pipeline.\n\n", info.BaseModel)
	default:
		b.WriteString("A LoRA adapter trained and published by a loraflow pipeline.\n\n")
	}
	if info.Merged {
		b.WriteString("## Use\n\n```python\nfrom transformers import AutoModelForCausalLM\n\n")
		fmt.Fprintf(&b, "model = AutoModelForCausalLM.from_pretrained(%q)\n```\n\n", "path/to/"+info.ModelName)
	} else {
		b.WriteString("## Use\n\n```python\nfrom peft import AutoPeftModelForCausalLM\n\n")
		fmt.Fprintf(&b, "model = AutoPeftModelForCausalLM.from_pretrained(%q)\n```\n\n", "path/to/"+info.ModelName)
	}
	if len(info.Datasets) > 0 {
		b.WriteString("## Training data\n\n")
		for _, d := range info.Datasets {
			fmt.Fprintf(&b, "- %s\n", d)
		}
		b.WriteString("\n")
	}
	if len(info.TrainingParams) > 0 {
		b.WriteString("## Training parameters\n\n| parameter | value |\n|---|---|\n")
		for _, k := range slices.Sorted(maps.Keys(info.TrainingParams)) {
			fmt.Fprintf(&b, "| %s | %s |\n", mdCell(k), mdCell(info.TrainingParams[k]))
		}
		b.WriteString("\n")
	}
	if len(metrics) > 0 {
		fmt.Fprintf(&b, "## Evaluation (%s)\n\n| metric | value |\n|---|---|\n", fm.ModelIndex[0].Results[0].Dataset.Name)
		for _, m := range metrics {
			name := m.Name
			if name == "" {
				name = m.Type
			}
			fmt.Fprintf(&b, "| %s | %s |\n", mdCell(name), strconv.FormatFloat(float64(m.Value), 'g', 6, 64))
		}
		b.WriteString("\n")
	}
	if info.CO2 != nil {
		b.WriteString("## Carbon footprint\n\n")
		fmt.Fprintf(&b, "- Emissions: %s g CO2eq", strconv.FormatFloat(float64(info.CO2.Emissions), 'g', 4, 64))
		if info.CO2.Source != "" {
			fmt.Fprintf(&b, " (%s)", info.CO2.Source)
		}
		b.WriteString("\n")
		if info.CO2.HardwareUsed != "" {
			fmt.Fprintf(&b, "- Hardware: %s\n", info.CO2.HardwareUsed)
		}
		if info.CO2.GeographicalLocation != "" {
			fmt.Fprintf(&b, "- Location: %s\n", info.CO2.GeographicalLocation)
		}
		if info.CounterfactualCO2Grams > 0 {
			fmt.Fprintf(&b, "- The same run as full fine-tuning: about %s g CO2eq\n", strconv.FormatFloat(info.CounterfactualCO2Grams, 'g', 4, 64))
		}
		b.WriteString("\n")
	}
	if len(info.Provenance) > 0 {
		b.WriteString("## Provenance\n\n| item | value |\n|---|---|\n")
		for _, k := range slices.Sorted(maps.Keys(info.Provenance)) {
			fmt.Fprintf(&b, "| %s | `%s` |\n", mdCell(k), mdCell(info.Provenance[k]))
		}
		b.WriteString("\nThe signed in-toto statements (SLSA provenance, carbon, evaluation) travel with the adapter; verify them before use.\n")
	}
	return b.Bytes(), nil
}

func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// WriteModelCard writes dir/README.md atomically.
func WriteModelCard(dir string, info CardInfo) error {
	b, err := RenderModelCard(info)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, "README.md"), b)
}
