package mlflowtest

import (
	"fmt"
	"strings"
	"testing"
)

// TestServerAppliesMLflowValidation sends one request per rule of
// mlflow/utils/validation.py that applies to a call loraflow makes; each must
// draw MLflow's answer, 400 INVALID_PARAMETER_VALUE, and the request just
// inside the limit must pass. The limits are the constants of validation.py,
// quoted beside each case.
func TestServerAppliesMLflowValidation(t *testing.T) {
	s := NewServer(t)
	api := s.URL + "/api/2.0/mlflow/"
	mustOK := func(method, path, body string) {
		t.Helper()
		if st, out := send(t, method, api+path, body); st != 200 {
			t.Fatalf("%s %s: %d %v", method, path, st, out)
		}
	}
	mustOK("POST", "runs/create", `{"experiment_id":"0"}`)
	mustOK("POST", "registered-models/create", `{"name":"m"}`)
	mustOK("POST", "model-versions/create", `{"name":"m","source":"mlflow-artifacts:/0/run0001/artifacts","run_id":"run0001"}`)

	rep := func(c string, n int) string { return strings.Repeat(c, n) }
	ds := func(name, digest, source string, tags string) string {
		return fmt.Sprintf(`{"run_id":"run0001","datasets":[{"tags":[%s],"dataset":{"name":%q,"digest":%q,"source_type":"local","source":%q}}]}`, tags, name, digest, source)
	}
	sha := rep("a", 64)
	cases := []struct {
		rule         string
		method, path string
		bad, good    string
	}{
		// MAX_DATASET_DIGEST_SIZE = 36: a sha256 hex (64) is refused.
		{"MAX_DATASET_DIGEST_SIZE", "POST", "runs/log-inputs", ds("d", sha, "{}", ""), ds("d", rep("a", 36), "{}", "")},
		// MAX_DATASET_NAME_SIZE = 500.
		{"MAX_DATASET_NAME_SIZE", "POST", "runs/log-inputs", ds(rep("n", 501), "x", "{}", ""), ds(rep("n", 500), "x", "{}", "")},
		// MAX_DATASET_SOURCE_SIZE = 65535.
		{"MAX_DATASET_SOURCE_SIZE", "POST", "runs/log-inputs", ds("d", "x", rep("s", 65536), ""), ds("d", "x", rep("s", 65535), "")},
		// MAX_INPUT_TAG_KEY_SIZE = 255, MAX_INPUT_TAG_VALUE_SIZE = 500.
		{"MAX_INPUT_TAG_KEY_SIZE", "POST", "runs/log-inputs", ds("d", "x", "{}", `{"key":"`+rep("k", 256)+`","value":"v"}`), ds("d", "x", "{}", `{"key":"`+rep("k", 255)+`","value":"v"}`)},
		{"MAX_INPUT_TAG_VALUE_SIZE", "POST", "runs/log-inputs", ds("d", "x", "{}", `{"key":"k","value":"`+rep("v", 501)+`"}`), ds("d", "x", "{}", `{"key":"k","value":"`+rep("v", 500)+`"}`)},
		// _VALID_PARAM_AND_METRIC_NAMES = r"^[/\w.\- ]*$": a colon is refused.
		{"_VALID_PARAM_AND_METRIC_NAMES (param)", "POST", "runs/log-batch", `{"run_id":"run0001","params":[{"key":"a:b","value":"v"}]}`, `{"run_id":"run0001","params":[{"key":"a/b c-d.e_f","value":"v"}]}`},
		{"_VALID_PARAM_AND_METRIC_NAMES (metric)", "POST", "runs/log-batch", `{"run_id":"run0001","metrics":[{"key":"loss@1","value":1,"timestamp":1}]}`, `{"run_id":"run0001","metrics":[{"key":"loss_1","value":1,"timestamp":1}]}`},
		{"_VALID_PARAM_AND_METRIC_NAMES (tag)", "POST", "runs/set-tag", `{"run_id":"run0001","key":"a=b","value":"v"}`, `{"run_id":"run0001","key":"a.b","value":"v"}`},
		// path_not_unique: normpath(name) != name, or it starts with "/" or "..".
		{"path_not_unique", "POST", "runs/log-batch", `{"run_id":"run0001","tags":[{"key":"a//b","value":"v"}]}`, `{"run_id":"run0001","tags":[{"key":"a/b","value":"v"}]}`},
		{"path_not_unique (leading /)", "POST", "runs/set-tag", `{"run_id":"run0001","key":"/a","value":"v"}`, `{"run_id":"run0001","key":"a","value":"v"}`},
		{"path_not_unique (..)", "POST", "runs/set-tag", `{"run_id":"run0001","key":"../a","value":"v"}`, `{"run_id":"run0001","key":"a..","value":"v"}`},
		// MAX_ENTITY_KEY_LENGTH = 250 (param, metric and tag keys).
		{"MAX_ENTITY_KEY_LENGTH", "POST", "runs/log-batch", `{"run_id":"run0001","params":[{"key":"` + rep("k", 251) + `","value":"v"}]}`, `{"run_id":"run0001","params":[{"key":"` + rep("k", 250) + `","value":"v"}]}`},
		// MAX_PARAM_VAL_LENGTH = 6000.
		{"MAX_PARAM_VAL_LENGTH", "POST", "runs/log-batch", `{"run_id":"run0001","params":[{"key":"long","value":"` + rep("v", 6001) + `"}]}`, `{"run_id":"run0001","params":[{"key":"long2","value":"` + rep("v", 6000) + `"}]}`},
		// MAX_TAG_VAL_LENGTH = 5000.
		{"MAX_TAG_VAL_LENGTH", "POST", "runs/set-tag", `{"run_id":"run0001","key":"t","value":"` + rep("v", 5001) + `"}`, `{"run_id":"run0001","key":"t","value":"` + rep("v", 5000) + `"}`},
		// _validate_param_keys_unique.
		{"_validate_param_keys_unique", "POST", "runs/log-batch", `{"run_id":"run0001","params":[{"key":"dup","value":"v"},{"key":"dup","value":"v"}]}`, `{"run_id":"run0001","params":[{"key":"dup","value":"v"}]}`},
		// _validate_metric: "Timestamp must be a nonnegative long".
		{"_validate_metric timestamp", "POST", "runs/log-batch", `{"run_id":"run0001","metrics":[{"key":"m","value":1,"timestamp":-1}]}`, `{"run_id":"run0001","metrics":[{"key":"m","value":1,"timestamp":0}]}`},
		// _RUN_ID_REGEX = r"^[a-zA-Z0-9][\w\-]{0,255}$".
		{"_RUN_ID_REGEX", "POST", "runs/update", `{"run_id":"-run0001","status":"RUNNING"}`, `{"run_id":"run0001","status":"RUNNING"}`},
		// _EXPERIMENT_ID_REGEX = r"^[a-zA-Z0-9][\w\-]{0,63}$".
		{"_EXPERIMENT_ID_REGEX", "POST", "runs/create", `{"experiment_id":"` + rep("0", 65) + `"}`, `{"experiment_id":"0"}`},
		// MAX_EXPERIMENT_NAME_LENGTH = 500.
		{"MAX_EXPERIMENT_NAME_LENGTH", "POST", "experiments/create", `{"name":"` + rep("e", 501) + `"}`, `{"name":"` + rep("e", 500) + `"}`},
		// MAX_EXPERIMENT_TAG_VAL_LENGTH = 5000.
		{"MAX_EXPERIMENT_TAG_VAL_LENGTH", "POST", "experiments/create", `{"name":"e2","tags":[{"key":"k","value":"` + rep("v", 5001) + `"}]}`, `{"name":"e2","tags":[{"key":"k","value":"` + rep("v", 5000) + `"}]}`},
		// MAX_MODEL_REGISTRY_TAG_KEY_LENGTH = 250 (registered model).
		{"MAX_MODEL_REGISTRY_TAG_KEY_LENGTH", "POST", "registered-models/create", `{"name":"m2","tags":[{"key":"` + rep("k", 251) + `","value":"v"}]}`, `{"name":"m2","tags":[{"key":"` + rep("k", 250) + `","value":"v"}]}`},
		// MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH = 5000 (model version).
		{"MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH", "POST", "model-versions/set-tag", `{"name":"m","version":"1","key":"k","value":"` + rep("v", 5001) + `"}`, `{"name":"m","version":"1","key":"k","value":"` + rep("v", 5000) + `"}`},
		// _validate_model_version: int(version).
		{"_validate_model_version", "GET", "model-versions/get?name=m&version=one", "", ""},
		// _REGISTERED_MODEL_ALIAS_REGEX = r"^[\w\-]*$".
		{"_REGISTERED_MODEL_ALIAS_REGEX", "POST", "registered-models/alias", `{"name":"m","alias":"my.alias","version":"1"}`, `{"name":"m","alias":"my_alias-1","version":"1"}`},
		// "'latest' alias name (case insensitive) is reserved."
		{"latest reserved", "POST", "registered-models/alias", `{"name":"m","alias":"Latest","version":"1"}`, ""},
		// _REGISTERED_MODEL_ALIAS_VERSION_REGEX = r"^[vV]\d+$".
		{"version alias reserved", "POST", "registered-models/alias", `{"name":"m","alias":"V12","version":"1"}`, `{"name":"m","alias":"v12x","version":"1"}`},
		// MAX_REGISTERED_MODEL_ALIAS_LENGTH = 255.
		{"MAX_REGISTERED_MODEL_ALIAS_LENGTH", "POST", "registered-models/alias", `{"name":"m","alias":"` + rep("a", 256) + `","version":"1"}`, `{"name":"m","alias":"` + rep("a", 255) + `","version":"1"}`},
		// MAX_BATCH_LOG_REQUEST_SIZE = int(1e6) bytes of request body.
		{"MAX_BATCH_LOG_REQUEST_SIZE", "POST", "runs/log-batch", `{"run_id":"run0001","tags":[{"key":"big","value":"` + rep("v", 1_000_000) + `"}]}`, ""},
	}
	for _, c := range cases {
		if c.bad == "" && c.method == "POST" {
			t.Fatalf("%s: no request", c.rule)
		}
		path := c.path
		st, out := send(t, c.method, api+path, c.bad)
		if st != 400 || out["error_code"] != "INVALID_PARAMETER_VALUE" {
			t.Errorf("%s: %s %s answered %d %v, want 400 INVALID_PARAMETER_VALUE", c.rule, c.method, c.path, st, out)
		}
		if c.good != "" {
			if st, out := send(t, c.method, api+path, c.good); st != 200 {
				t.Errorf("%s: the request at the limit answered %d %v", c.rule, st, out)
			}
		}
	}
	if v := s.Violations(); len(v) != 0 {
		t.Errorf("MLflow's validation answers are not protocol violations: %v", v)
	}
}

// TestServerTruncatesUnderMLFLOW_TRUNCATE_LONG_VALUES: with the server's
// MLFLOW_TRUNCATE_LONG_VALUES on (MLflow's default), _validate_param and
// _validate_tag cut param values to MAX_PARAM_VAL_LENGTH and run tag values
// to MAX_TAG_VAL_LENGTH code points (value[:limit]) and the store keeps the
// cut value; every other limit (keys, registry tags, experiment tags) still
// refuses. Off, the same values are refused (TestServerAppliesMLflowValidation).
func TestServerTruncatesUnderMLFLOW_TRUNCATE_LONG_VALUES(t *testing.T) {
	s := NewServer(t)
	s.TruncateLongValues = true
	api := s.URL + "/api/2.0/mlflow/"
	call := func(path, body string) int {
		t.Helper()
		st, _ := send(t, "POST", api+path, body)
		return st
	}
	if call("runs/create", `{"experiment_id":"0"}`) != 200 || call("registered-models/create", `{"name":"m"}`) != 200 {
		t.Fatal("setup")
	}
	long := func(n int) string { return strings.Repeat("é", n) } // 2 bytes, 1 code point each
	if st := call("runs/log-batch", `{"run_id":"run0001","params":[{"key":"p","value":"`+long(6001)+`"}],"tags":[{"key":"bt","value":"`+long(5003)+`"}]}`); st != 200 {
		t.Fatalf("log-batch with long values: %d", st)
	}
	if st := call("runs/set-tag", `{"run_id":"run0001","key":"st","value":"`+long(9000)+`"}`); st != 200 {
		t.Fatalf("set-tag with a long value: %d", st)
	}
	run := s.runs["run0001"]
	for name, got := range map[string]struct {
		v    string
		want int
	}{"param": {run.Params["p"], maxParamValLength}, "batch tag": {run.Tags["bt"], maxTagValLength}, "set-tag": {run.Tags["st"], maxTagValLength}} {
		if pyLen(got.v) != got.want || got.v != long(got.want) {
			t.Errorf("%s stored with %d code points, want the first %d", name, pyLen(got.v), got.want)
		}
	}
	if n := len(s.Truncated()); n != 3 {
		t.Errorf("Truncated() = %v", s.Truncated())
	}
	// No truncation where validation.py calls _validate_length_limit without truncate=True.
	for path, body := range map[string]string{
		"runs/log-batch":           `{"run_id":"run0001","params":[{"key":"` + strings.Repeat("k", 251) + `","value":"v"}]}`,
		"registered-models/create": `{"name":"m2","tags":[{"key":"k","value":"` + long(5001) + `"}]}`,
	} {
		if st := call(path, body); st != 400 {
			t.Errorf("%s: %d, want 400 (this limit never truncates)", path, st)
		}
	}
}
