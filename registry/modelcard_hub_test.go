package registry

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Repo ids as huggingface_hub's validate_repo_id
// (src/huggingface_hub/utils/_validators.py) judges them: REPO_ID_REGEX
// r"^(\b[\w\-.]+\b/)?\b[\w\-.]+\b$", at most 96 characters, "--" and ".."
// refused, ".git" suffix refused.
func TestIsHubID(t *testing.T) {
	for id, want := range map[string]bool{
		"gpt2": true, "meta-llama/Llama-3.2-1B": true, "Qwen/Qwen2.5-0.5B-Instruct": true, "org/name.v1": true,
		"/models/llama": false, "sha256:abcd": false, "a/b/c": false, "org--x/name": false, "org/na..me": false,
		"org/name.git": false, strings.Repeat("a", 97): false, "": false, "./local": false,
	} {
		if got := IsHubID(id); got != want {
			t.Errorf("IsHubID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestHubModelIDFromConfig(t *testing.T) {
	dir := t.TempDir()
	if got := HubModelID(dir); got != "" {
		t.Errorf("no config.json: %q", got)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"_name_or_path":"/home/me/llama","model_type":"llama"}`), 0o644)
	if got := HubModelID(dir); got != "" {
		t.Errorf("local _name_or_path gave %q", got)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"_name_or_path":"meta-llama/Llama-3.2-1B","model_type":"llama"}`), 0o644)
	if got := HubModelID(dir); got != "meta-llama/Llama-3.2-1B" {
		t.Errorf("HubModelID = %q", got)
	}
}

// The front matter carries Hub metadata only: base_model and datasets as
// repo ids or not at all, and co2_eq_emissions.emissions as a number for a
// YAML 1.1 reader (PyYAML's resolver needs a "." in a float; yaml.v3 alone
// writes 5e-05, which PyYAML reads as the string "5e-05").
func TestModelCardFrontMatterIsHubMetadata(t *testing.T) {
	card, err := RenderModelCard(CardInfo{ModelName: "m", BaseModel: "/abs/base", Datasets: []string{"sha256:" + strings.Repeat("a", 64), "org/data"},
		CO2: &CO2Emissions{Emissions: 5e-05}})
	if err != nil {
		t.Fatal(err)
	}
	front := strings.SplitN(string(card), "---\n", 3)[1]
	if strings.Contains(front, "base_model") || strings.Contains(front, "/abs/base") {
		t.Errorf("a local path in the front matter:\n%s", front)
	}
	if strings.Contains(front, "sha256:") {
		t.Errorf("a digest as a dataset:\n%s", front)
	}
	if !strings.Contains(front, "emissions: 0.00005\n") {
		t.Errorf("emissions not written as a plain decimal:\n%s", front)
	}
	var fm map[string]any
	if err := yaml.Unmarshal([]byte(front), &fm); err != nil {
		t.Fatal(err)
	}
	if ds, _ := fm["datasets"].([]any); len(ds) != 1 || ds[0] != "org/data" {
		t.Errorf("datasets = %v", fm["datasets"])
	}
	if _, ok := fm["co2_eq_emissions"].(map[string]any)["emissions"].(float64); !ok {
		t.Errorf("emissions is not a number: %#v", fm["co2_eq_emissions"])
	}

	card, _ = RenderModelCard(CardInfo{ModelName: "m", BaseModel: "meta-llama/Llama-3.2-1B"})
	if !strings.Contains(string(card), "base_model: meta-llama/Llama-3.2-1B\n") || !strings.Contains(string(card), "base_model:adapter:meta-llama/Llama-3.2-1B") {
		t.Errorf("Hub id base model missing:\n%s", card)
	}
}
