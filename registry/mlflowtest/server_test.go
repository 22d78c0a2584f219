package mlflowtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// recordingTB captures Errorf so the test can check that violations are reported.
type recordingTB struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func send(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestServerRefusesWhatMLflowWouldNotDocument(t *testing.T) {
	rec := &recordingTB{TB: t}
	s := NewServer(rec)
	api := s.URL + "/api/2.0/mlflow/"
	bad := []struct{ method, path, body string }{
		{"POST", "experiments/create", `{"name":"e","colour":"blue"}`},          // unknown field
		{"POST", "experiments/create", `{}`},                                    // name required
		{"POST", "runs/create", `{"experiment_id":"0","tags":[{"value":"v"}]}`}, // tag without key
		{"POST", "model-versions/create", `{"name":"m"}`},                       // source required
		{"POST", "registered-models/alias", `{"name":"m","alias":"champion"}`},  // version required
		{"GET", "registered-models/alias?name=m", ``},                           // alias required
		{"GET", "model-versions/search?filter=name%3D%27m%27&limit=3", ``},      // unknown parameter
		{"GET", "model-versions/search?filter=source_path%3D%27x%27", ``},       // unsupported filter
		{"POST", "model-versions/get", `{"name":"m","version":"1"}`},            // wrong method
		{"POST", "runs/log-inputs", `{"datasets":[]}`},                          // run_id required
	}
	for i, b := range bad {
		status, out := send(t, b.method, api+b.path, b.body)
		if status/100 != 4 {
			t.Errorf("%s %s: status %d, want 4xx", b.method, b.path, status)
		}
		if out["error_code"] == "" {
			t.Errorf("%s %s: no error_code in %v", b.method, b.path, out)
		}
		if len(s.Violations()) != i+1 {
			t.Errorf("%s %s: %d violations recorded, want %d", b.method, b.path, len(s.Violations()), i+1)
		}
	}
	if len(rec.errors) != len(bad) {
		t.Errorf("%d violations reported to the test, want %d", len(rec.errors), len(bad))
	}

	// Over-long batches are refused.
	status, _ := send(t, "POST", api+"runs/create", `{"experiment_id":"0"}`)
	if status != 200 {
		t.Fatalf("runs/create: %d", status)
	}
	var params []string
	for i := range 101 {
		params = append(params, fmt.Sprintf(`{"key":"p%d","value":"v"}`, i))
	}
	status, _ = send(t, "POST", api+"runs/log-batch", `{"run_id":"run0001","params":[`+strings.Join(params, ",")+`]}`)
	if status != 400 || len(s.Violations()) != len(bad)+1 {
		t.Errorf("101 params: status %d, violations %d", status, len(s.Violations()))
	}
}

func TestServerStateAndMLflowAnswers(t *testing.T) {
	s := NewServer(t)
	api := s.URL + "/api/2.0/mlflow/"
	if st, out := send(t, "GET", api+"experiments/get-by-name?experiment_name=nope", ""); st != 404 || out["error_code"] != "RESOURCE_DOES_NOT_EXIST" {
		t.Errorf("missing experiment: %d %v", st, out)
	}
	send(t, "POST", api+"registered-models/create", `{"name":"m"}`)
	if st, out := send(t, "POST", api+"registered-models/create", `{"name":"m"}`); st != 400 || out["error_code"] != "RESOURCE_ALREADY_EXISTS" {
		t.Errorf("duplicate model: %d %v", st, out)
	}
	if st, out := send(t, "GET", api+"registered-models/alias?name=m&alias=champion", ""); st != 400 || out["message"] != "Registered model alias champion not found." {
		t.Errorf("missing alias: %d %v", st, out)
	}
	if st, _ := send(t, "POST", api+"model-versions/create", `{"name":"m","source":"s3://x","run_id":"nope"}`); st != 404 {
		t.Errorf("version of a missing run: %d", st)
	}
	if len(s.Violations()) != 0 {
		t.Errorf("violations: %v", s.Violations())
	}
}
