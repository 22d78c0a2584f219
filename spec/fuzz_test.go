package spec

import (
	"encoding/json"
	"os"
	"testing"
)

// FuzzParse feeds arbitrary YAML to Parse. It must never panic, and a spec
// it accepts must survive the JSON round trip a workflow input makes, still
// valid and with the same digest. The seeds run as a normal test in CI;
// fuzz with go test ./spec -run '^$' -fuzz FuzzParse -fuzztime 30s
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	if b, err := os.ReadFile("../examples/quickstart/spec.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(minimal + "registry:\n  uri: https://user:pass@mlflow:5000\n"))
	f.Add([]byte(minimal + "registry:\n  name: prod\nsigning:\n  key: team-a\n  trusted_keys: [a.pub]\n"))
	f.Add([]byte(minimal + "lora:\n  target_modules: all-linear\n  rank_pattern: {q_proj: 4}\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		s, err := Parse(data, "fuzz.yaml")
		if err != nil {
			return
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("an accepted spec does not encode as JSON: %v", err)
		}
		var back Spec
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("an accepted spec does not decode from its JSON: %v", err)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("an accepted spec is invalid after the JSON round trip: %v", err)
		}
		if back.Digest() != s.Digest() {
			t.Fatalf("the digest changed in the JSON round trip:\n%s", b)
		}
	})
}
