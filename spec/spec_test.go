package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const minimal = `
name: demo
base_model: ./base
dataset:
  files: [data.jsonl]
  format: text
`

func TestParseMinimalAppliesDefaults(t *testing.T) {
	s, err := Parse([]byte(minimal), "demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.LoRA.R != 8 || s.LoRA.LoraAlpha != 16 || s.Training.Schedule != "cosine" {
		t.Fatalf("defaults not applied: %+v", s)
	}
	if s.Dataset.ValidationFraction != 0.1 {
		t.Fatalf("validation fraction default = %v", s.Dataset.ValidationFraction)
	}
}

func TestUnknownFieldIsNamed(t *testing.T) {
	_, err := Parse([]byte(minimal+"training:\n  stepz: 3\n"), "demo.yaml")
	if err == nil || !strings.Contains(err.Error(), "stepz") {
		t.Fatalf("want an error naming stepz, got %v", err)
	}
}

func TestSchemaRejectsBadValues(t *testing.T) {
	cases := map[string]string{
		"format":   strings.Replace(minimal, "format: text", "format: parquet", 1),
		"r":        minimal + "lora:\n  r: 0\n",
		"bias":     minimal + "lora:\n  bias: some\n",
		"schedule": minimal + "training:\n  schedule: step\n",
		"registry": minimal + "registry:\n  uri: s3://bucket\n",
	}
	for field, doc := range cases {
		if _, err := Parse([]byte(doc), "demo.yaml"); err == nil {
			t.Errorf("%s: invalid value accepted", field)
		} else if !strings.Contains(err.Error(), field) && !strings.Contains(err.Error(), "registry") {
			t.Errorf("%s: error does not name the field: %v", field, err)
		}
	}
}

func TestLoadResolvesPathsAgainstSpecFolder(t *testing.T) {
	dir := t.TempDir()
	doc := minimal + "registry:\n  uri: file://reg\nsigning:\n  key: env:KEY\n"
	path := filepath.Join(dir, "spec.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.BaseModel != filepath.Join(dir, "base") || s.Dataset.Files[0] != filepath.Join(dir, "data.jsonl") {
		t.Fatalf("paths not resolved: %q %q", s.BaseModel, s.Dataset.Files)
	}
	if s.Registry.URI != "file://"+filepath.Join(dir, "reg") {
		t.Fatalf("registry uri = %q", s.Registry.URI)
	}
	if s.Signing.Key != "env:KEY" {
		t.Fatalf("env: key source rewritten: %q", s.Signing.Key)
	}
}

func TestDigestIsStable(t *testing.T) {
	a, _ := Parse([]byte(minimal), "a")
	b, _ := Parse([]byte(minimal), "b")
	if a.Digest() != b.Digest() || len(a.Digest()) != 64 {
		t.Fatal("digest not stable")
	}
	b.Training.Seed = 7
	if a.Digest() == b.Digest() {
		t.Fatal("digest ignores a field")
	}
}

func TestTimeoutsMustBePositive(t *testing.T) {
	if _, err := Parse([]byte(minimal+"timeouts: {heartbeat: 0s}\n"), "s.yaml"); err == nil || !strings.Contains(err.Error(), "timeouts.heartbeat") {
		t.Fatalf("zero heartbeat accepted: %v", err)
	}
	if _, err := Parse([]byte(minimal+"timeouts: {train: 1h30m}\n"), "s.yaml"); err != nil {
		t.Fatalf("1h30m refused: %v", err)
	}
}

func TestNormalizeNeedsAbsolutePaths(t *testing.T) {
	s, _ := Parse([]byte(minimal), "s.yaml")
	if err := s.Normalize(); err == nil || !strings.Contains(err.Error(), "not absolute") {
		t.Fatalf("relative paths accepted: %v", err)
	}
	s.BaseModel, s.Dataset.Files = "/m", []string{"/d.jsonl"}
	s.Timeouts = Timeouts{}
	if err := s.Normalize(); err != nil || s.Timeouts.Heartbeat != "60s" {
		t.Fatalf("normalize: %v %+v", err, s.Timeouts)
	}
}

// padded is the minimal spec grown to exactly size bytes by a trailing
// YAML comment.
func padded(size int) []byte {
	doc := minimal + "#"
	return []byte(doc + strings.Repeat("x", size-len(doc)-1) + "\n")
}

func TestSpecSizeIsBounded(t *testing.T) {
	dir := t.TempDir()
	atLimit := filepath.Join(dir, "at-limit.yaml")
	over := filepath.Join(dir, "over.yaml")
	if err := os.WriteFile(atLimit, padded(MaxFileSize), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(over, padded(MaxFileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(atLimit); err != nil {
		t.Fatalf("a spec of exactly MaxFileSize bytes: %v", err)
	}
	_, err := Load(over)
	if err == nil || !strings.Contains(err.Error(), over) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("Load of a spec over MaxFileSize: want an error naming %s, got %v", over, err)
	}
	_, err = Parse(padded(MaxFileSize+1), "input.yaml")
	if err == nil || !strings.Contains(err.Error(), "input.yaml") || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("Parse of a spec over MaxFileSize: want an error naming input.yaml, got %v", err)
	}
}
