package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// CO2Emissions is the Hugging Face model card's co2_eq_emissions block.
type CO2Emissions struct {
	// Emissions in grams of CO2 equivalent.
	Emissions            float64 `yaml:"emissions"`
	Source               string  `yaml:"source,omitempty"`        // e.g. "loraflow carbon (RAPL measured)"
	TrainingType         string  `yaml:"training_type,omitempty"` // "fine-tuning"
	GeographicalLocation string  `yaml:"geographical_location,omitempty"`
	HardwareUsed         string  `yaml:"hardware_used,omitempty"`
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
	// Provenance lists what a reader needs to check the artifacts:
	// digests, attestation files, workflow and run IDs (name → value).
	Provenance map[string]string
}

// hubRepoID is huggingface_hub's REPO_ID_REGEX
// (src/huggingface_hub/utils/_validators.py, validate_repo_id):
// r"^(\b[\w\-.]+\b/)?\b[\w\-.]+\b$", an optional namespace and a name.
var hubRepoID = regexp.MustCompile(`^(\b[\w\-.]+\b/)?\b[\w\-.]+\b$`)

// IsHubID tells whether s is a valid Hugging Face repo id, by the rules of
// huggingface_hub's validate_repo_id: REPO_ID_REGEX, at most 96 characters,
// no "--" or "..", not ending in ".git". An absolute path or a "sha256:..."
// string is not one.
func IsHubID(s string) bool {
	return s != "" && len(s) <= 96 && hubRepoID.MatchString(s) &&
		!strings.Contains(s, "--") && !strings.Contains(s, "..") && !strings.HasSuffix(s, ".git")
}

// HubModelID returns the Hub id of the base model in folder dir: the
// "_name_or_path" of its config.json (transformers' PretrainedConfig
// writes the id the model was loaded from there) when that is a Hub id, or
// "" (the card then has no base_model: the Hub refuses a local path there).
func HubModelID(dir string) string {
	if IsHubID(dir) {
		if _, err := os.Stat(dir); err != nil { // an id, not a folder
			return dir
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil || len(b) > 1<<20 {
		return ""
	}
	var cfg struct {
		NameOrPath string `json:"_name_or_path"`
	}
	if json.Unmarshal(b, &cfg) != nil || !IsHubID(cfg.NameOrPath) {
		return ""
	}
	return cfg.NameOrPath
}

// yamlNumber is a float that every YAML reader reads as a number. yaml.v3
// writes 5e-05 for 0.00005, which PyYAML (YAML 1.1: a float needs a "."
// and a signed exponent, resolver.py's float regexp) reads as a string; the
// plain decimal form reads as a float everywhere.
type yamlNumber float64

func (v yamlNumber) MarshalYAML() (any, error) {
	f := float64(v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("registry: model card: emissions %v is not a number", f)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: s}, nil
}

// cardCO2 is CO2Emissions as written to the front matter.
type cardCO2 struct {
	Emissions            yamlNumber `yaml:"emissions"`
	Source               string     `yaml:"source,omitempty"`
	TrainingType         string     `yaml:"training_type,omitempty"`
	GeographicalLocation string     `yaml:"geographical_location,omitempty"`
	HardwareUsed         string     `yaml:"hardware_used,omitempty"`
}

type cardFrontMatter struct {
	BaseModel   string      `yaml:"base_model,omitempty"`
	LibraryName string      `yaml:"library_name"`
	License     string      `yaml:"license,omitempty"`
	Language    []string    `yaml:"language,omitempty"`
	Tags        []string    `yaml:"tags"`
	Datasets    []string    `yaml:"datasets,omitempty"`
	PipelineTag string      `yaml:"pipeline_tag,omitempty"`
	CO2         *cardCO2    `yaml:"co2_eq_emissions,omitempty"`
	ModelIndex  []cardModel `yaml:"model-index,omitempty"`
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
	Type  string  `yaml:"type"`
	Value float64 `yaml:"value"`
	Name  string  `yaml:"name,omitempty"`
}

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
	fm := cardFrontMatter{
		LibraryName: "peft",
		License:     info.License,
		Language:    info.Language,
		PipelineTag: task,
	}
	// The Hub's metadata wants repo ids in base_model and datasets
	// (huggingface_hub's ModelCardData; a local path or a digest is refused
	// by the Hub's validation): anything else stays in the body only.
	hubBase := IsHubID(info.BaseModel)
	if hubBase {
		fm.BaseModel = info.BaseModel
	}
	for _, d := range info.Datasets {
		if IsHubID(d) {
			fm.Datasets = append(fm.Datasets, d)
		}
	}
	if c := info.CO2; c != nil {
		fm.CO2 = &cardCO2{Emissions: yamlNumber(c.Emissions), Source: c.Source, TrainingType: c.TrainingType,
			GeographicalLocation: c.GeographicalLocation, HardwareUsed: c.HardwareUsed}
	}
	seen := map[string]bool{}
	for _, t := range append([]string{"peft", "lora", "loraflow"}, info.Tags...) {
		if t != "" && !seen[t] {
			seen[t] = true
			fm.Tags = append(fm.Tags, t)
		}
	}
	if hubBase && !seen["base_model:adapter:"+info.BaseModel] {
		fm.Tags = append(fm.Tags, "base_model:adapter:"+info.BaseModel)
	}
	var metrics []cardMetricY
	for _, m := range info.Metrics {
		if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			continue
		}
		metrics = append(metrics, cardMetricY{Type: m.Type, Value: m.Value, Name: m.Name})
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
	if info.BaseModel != "" {
		fmt.Fprintf(&b, "A LoRA adapter for `%s`, trained and published by a loraflow pipeline.\n\n", info.BaseModel)
	} else {
		b.WriteString("A LoRA adapter trained and published by a loraflow pipeline.\n\n")
	}
	b.WriteString("## Use\n\n```python\nfrom peft import AutoPeftModelForCausalLM\n\n")
	fmt.Fprintf(&b, "model = AutoPeftModelForCausalLM.from_pretrained(%q)\n```\n\n", "path/to/"+info.ModelName)
	if len(info.Datasets) > 0 {
		b.WriteString("## Training data\n\n")
		for _, d := range info.Datasets {
			fmt.Fprintf(&b, "- %s\n", d)
		}
		b.WriteString("\n")
	}
	if len(info.TrainingParams) > 0 {
		b.WriteString("## Training parameters\n\n| parameter | value |\n|---|---|\n")
		for _, k := range sortedKeys(info.TrainingParams) {
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
			fmt.Fprintf(&b, "| %s | %s |\n", mdCell(name), strconv.FormatFloat(m.Value, 'g', 6, 64))
		}
		b.WriteString("\n")
	}
	if info.CO2 != nil {
		b.WriteString("## Carbon footprint\n\n")
		fmt.Fprintf(&b, "- Emissions: %s g CO2eq", strconv.FormatFloat(info.CO2.Emissions, 'g', 4, 64))
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
		for _, k := range sortedKeys(info.Provenance) {
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
