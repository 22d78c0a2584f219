package registry

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestWriteModelCard(t *testing.T) {
	dir := t.TempDir()
	info := CardInfo{
		ModelName:      "tiny-lora",
		BaseModel:      "loraflow/tiny-llama",
		Description:    "Answers questions | politely.",
		License:        "apache-2.0",
		Datasets:       []string{"stdlib/moby-dick"},
		Tags:           []string{"text-generation", "peft"},
		Metrics:        []CardMetric{{Type: "perplexity", Value: 4.5, Name: "Perplexity"}, {Type: "loss", Value: 1.5}},
		EvalDataset:    "moby-dick-heldout",
		TrainingParams: map[string]string{"r": "8", "lora_alpha": "16"},
		CO2: &CO2Emissions{Emissions: 12.5, Source: "loraflow carbon (RAPL)", TrainingType: "fine-tuning",
			GeographicalLocation: "FRA", HardwareUsed: "2 x Intel Xeon"},
		CounterfactualCO2Grams: 90,
		Provenance:             map[string]string{"adapter sha256": "abc", "workflow": "wf-1/run-2"},
	}
	if err := WriteModelCard(dir, info); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("---\n")) {
		t.Fatalf("no front matter: %q", b[:20])
	}
	end := bytes.Index(b[4:], []byte("\n---\n"))
	if end < 0 {
		t.Fatal("front matter not closed")
	}
	var fm map[string]any
	if err := yaml.Unmarshal(b[4:4+end], &fm); err != nil {
		t.Fatal(err)
	}
	if fm["base_model"] != "loraflow/tiny-llama" || fm["library_name"] != "peft" || fm["license"] != "apache-2.0" {
		t.Errorf("front matter = %v", fm)
	}
	tags := fm["tags"].([]any)
	if len(tags) != 5 || tags[0] != "peft" || tags[4] != "base_model:adapter:loraflow/tiny-llama" {
		t.Errorf("tags = %v (peft must not repeat)", tags)
	}
	co2 := fm["co2_eq_emissions"].(map[string]any)
	if co2["emissions"] != 12.5 || co2["training_type"] != "fine-tuning" || co2["geographical_location"] != "FRA" {
		t.Errorf("co2 = %v", co2)
	}
	mi := fm["model-index"].([]any)[0].(map[string]any)
	res := mi["results"].([]any)[0].(map[string]any)
	if mi["name"] != "tiny-lora" || res["task"].(map[string]any)["type"] != "text-generation" ||
		res["dataset"].(map[string]any)["name"] != "moby-dick-heldout" {
		t.Errorf("model-index = %v", mi)
	}
	metrics := res["metrics"].([]any)
	if len(metrics) != 2 || metrics[0].(map[string]any)["value"] != 4.5 {
		t.Errorf("metrics = %v", metrics)
	}
	body := string(b[4+end:])
	for _, want := range []string{"# tiny-lora", `Answers questions | politely.`, "| lora_alpha | 16 |", "| Perplexity | 4.5 |", "12.5 g CO2eq", "about 90 g CO2eq", "| adapter sha256 | `abc` |"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	if err := WriteModelCard(dir, CardInfo{}); err == nil {
		t.Error("card without a model name accepted")
	}
}

// pyYAMLFloat is PyYAML's implicit float resolver (yaml/resolver.py,
// Resolver.add_implicit_resolver('tag:yaml.org,2002:float', ...)), which
// decides whether the Hub's Python tooling reads a plain scalar as a float.
var pyYAMLFloat = regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?` +
	`|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*` +
	`|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`)

func TestCardNumbersAreYAML11Floats(t *testing.T) {
	for _, v := range []float64{5e-05, 1.5e-07, 0.0952, 42, 3e21, 0} {
		b, err := yaml.Marshal(map[string]YAMLFloat{"emissions": YAMLFloat(v)})
		if err != nil {
			t.Fatal(err)
		}
		text := strings.TrimSpace(strings.TrimPrefix(string(b), "emissions:"))
		if !pyYAMLFloat.MatchString(text) {
			t.Errorf("%g is written %q, which PyYAML reads as a string", v, text)
		}
		var back map[string]float64
		if err := yaml.Unmarshal(b, &back); err != nil || back["emissions"] != v {
			t.Errorf("%q reads back as %v (%v), want %g", text, back["emissions"], err, v)
		}
	}
}

// base_model is a Hub repo id (huggingface_hub utils/_validators.py,
// validate_repo_id) taken from the base folder's config.json, or nothing.
func TestHubID(t *testing.T) {
	for name, want := range map[string]string{
		"meta-llama/Llama-3.2-1B": "meta-llama/Llama-3.2-1B",
		"Qwen/Qwen2.5-0.5B":       "Qwen/Qwen2.5-0.5B",
		"/models/llama":           "",
		"./llama":                 "",
		"gpt2":                    "", // a legacy id with no namespace: not "namespace/name"
		"a/b--c":                  "",
		"org/name/../../etc":      "",
		"":                        "",
		strings.Repeat("a", 90) + "/" + strings.Repeat("b", 10): "",
	} {
		dir := t.TempDir()
		b, _ := json.Marshal(map[string]string{"_name_or_path": name, "model_type": "llama"})
		os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
		if got := HubID(dir); got != want {
			t.Errorf("_name_or_path %q: HubID = %q, want %q", name, got, want)
		}
	}
	if got := HubID(t.TempDir()); got != "" {
		t.Errorf("no config.json: HubID = %q", got)
	}
}
