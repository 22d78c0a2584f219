package pipeline

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// TestEvalReportKeysAreSnakeCase: every key of eval_report.json is
// snake_case, and accuracy appears only for classification data.
func TestEvalReportKeysAreSnakeCase(t *testing.T) {
	m := Metrics{Loss: 2, Perplexity: 7.39, Accuracy: 0, Tokens: 10, Examples: 2}
	for _, classification := range []bool{false, true} {
		champion := newReportMetrics(m, classification)
		rep := evalReport{Snapshot: "s", BaseModel: "b", Adapter: "a", Split: "validation.jsonl", Task: "text",
			Base: newReportMetrics(m, classification), Adapted: newReportMetrics(m, classification), Champion: &champion,
			ChampionVersion: "1", Samples: []sample{{Prompt: "p"}}, SuggestedRank: 4}
		b, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range regexp.MustCompile(`"([^"]+)":`).FindAllStringSubmatch(string(b), -1) {
			if !regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`).MatchString(k[1]) {
				t.Errorf("key %q is not snake_case: %s", k[1], b)
			}
		}
		if got := strings.Contains(string(b), `"accuracy"`); got != classification {
			t.Errorf("classification %v: accuracy present %v: %s", classification, got, b)
		}
	}
}
