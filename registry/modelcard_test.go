package registry

import (
	"bytes"
	"os"
	"path/filepath"
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
