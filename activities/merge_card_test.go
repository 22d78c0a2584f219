package activities

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The merged model carries its own Hugging Face card and metrics, not the
// base model's: a transformers model (library_name "transformers", the
// Hub's field for the library that loads it), its adapter and base named by
// digest, its merge equivalence figures in metrics.json.
func TestMergedModelHasItsOwnCardAndMetrics(t *testing.T) {
	w := newTrained(t)
	prep, att := w.prep, w.att
	v, err := w.env().ExecuteActivity(w.acts.Merge, MergeInput{Spec: w.spec, BaseModel: prep.BaseModel, Snapshot: prep.Snapshot, Adapter: att.Artifact, AdapterAttestation: att})
	if err != nil {
		t.Fatal(err)
	}
	var mo MergeOutput
	v.Get(&mo)
	dir, _ := w.acts.Store.Path(mo.Merged)
	card, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	front, _, _ := strings.Cut(strings.TrimPrefix(string(card), "---\n"), "---\n")
	if !strings.Contains(front, "library_name: transformers") || strings.Contains(front, "base_model:adapter:") || strings.Contains(front, "base_model: /") {
		t.Fatalf("merged model card front matter:\n%s", front)
	}
	if !strings.Contains(string(card), att.Artifact.SHA256) {
		t.Error("merged model card does not name its adapter's digest")
	}
	var metrics map[string]any
	b, err := os.ReadFile(filepath.Join(dir, MergedMetricsFile))
	if err != nil || json.Unmarshal(b, &metrics) != nil {
		t.Fatalf("metrics.json: %v %s", err, b)
	}
	if metrics["adapter_sha256"] != att.Artifact.SHA256 || metrics["max_abs_logit_diff"] != mo.MaxLogitDiff {
		t.Fatalf("metrics.json %v, merge output %+v", metrics, mo)
	}
}
