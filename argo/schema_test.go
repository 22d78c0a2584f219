package argo_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

const (
	argoModule     = "github.com/argoproj/argo-workflows/v3"
	workflowSchema = "#/definitions/io.argoproj.workflow.v1alpha1.Workflow"
)

// argoSchema compiles the Workflow definition of the JSON Schema shipped in
// the argo-workflows module (api/jsonschema/schema.json), found through the
// module cache. With strict, every object schema that lists properties and
// says nothing of others gets additionalProperties: false, so a misspelled or
// misplaced field fails instead of being ignored.
func argoSchema(t *testing.T, strict bool) *jsonschema.Schema {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-json", argoModule).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", argoModule, err)
	}
	var mod struct{ Dir, Version string }
	if err := json.Unmarshal(out, &mod); err != nil {
		t.Fatal(err)
	}
	if mod.Dir == "" {
		// Listed but not downloaded: download it (the module is in go.mod).
		if out, err := exec.Command("go", "mod", "download", "-json", argoModule+"@"+mod.Version).Output(); err == nil {
			_ = json.Unmarshal(out, &mod)
		}
	}
	path := filepath.Join(mod.Dir, "api", "jsonschema", "schema.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("argo-workflows %s schema: %v", mod.Version, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if strict {
		closeObjects(doc)
	}
	c := jsonschema.NewCompiler()
	const url = "file:///argo-workflows/schema.json"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(url + workflowSchema)
	if err != nil {
		t.Fatalf("compile %s: %v", workflowSchema, err)
	}
	return sch
}

func closeObjects(v any) {
	switch v := v.(type) {
	case map[string]any:
		if _, hasProps := v["properties"]; hasProps {
			if _, set := v["additionalProperties"]; !set {
				v["additionalProperties"] = false
			}
		}
		for _, sub := range v {
			closeObjects(sub)
		}
	case []any:
		for _, sub := range v {
			closeObjects(sub)
		}
	}
}

func TestWorkflowMatchesArgoSchema(t *testing.T) {
	e := newEnv(t)
	e.job.ExtraArgs = []string{"--checkpoint-every", "50"}
	e.job.Env = map[string]string{"OPENBLAS_NUM_THREADS": "8"}
	e.job.Labels = map[string]string{"loraflow.dev/run": "r1"}
	wf, err := e.b.BuildWorkflow(e.job)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(wf)
	if err != nil {
		t.Fatal(err)
	}
	// The status belongs to Argo's controller; the empty one Go sends holds
	// null timestamps (metav1.Time), which the API server accepts but the
	// schema types as strings. Validate what the backend decides: the rest.
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	delete(obj, "status")
	if raw, err = json.Marshal(obj); err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	sch := argoSchema(t, true)
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("the Workflow does not match argo-workflows' schema:\n%v\n%s", err, raw)
	}

	// The strict schema does reject what Argo would not understand.
	for name, mutate := range map[string]func(m map[string]any){
		"unknown spec field": func(m map[string]any) { m["spec"].(map[string]any)["entryPoint"] = "train" },
		"wrong kind":         func(m map[string]any) { m["kind"] = "CronWorkflow" },
		"gpu limit as number": func(m map[string]any) {
			c := m["spec"].(map[string]any)["templates"].([]any)[0].(map[string]any)["container"].(map[string]any)
			c["resources"].(map[string]any)["limits"].(map[string]any)["nvidia.com/gpu"] = map[string]any{"value": 1}
		},
		"no spec": func(m map[string]any) { delete(m, "spec") },
	} {
		t.Run(name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			mutate(m)
			b, _ := json.Marshal(m)
			inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err := sch.Validate(inst); err == nil {
				t.Errorf("schema accepted a Workflow with %s", name)
			}
		})
	}
	if !strings.Contains(string(raw), `"nvidia.com/gpu":"1"`) {
		t.Errorf("GPU limit not serialised as a quantity: %s", raw)
	}
}
