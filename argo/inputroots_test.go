package argo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/loraflow/loraflow/argo"
)

// TestTrainerPodsMountTheInputRoots: a base model in one of the operator's
// input roots (not the artifact store) trains remotely: its claim is
// mounted read-only in the trainer pod at the workers' path, the Workflow
// still matches Argo's schema, and a base outside every root is refused,
// naming the roots.
func TestTrainerPodsMountTheInputRoots(t *testing.T) {
	e := newEnv(t, func(c *argo.Config) {
		c.InputClaims = []argo.InputClaim{{Claim: "shared-models", MountPath: "/data/models"}, {Claim: "hf-cache", MountPath: "/data/hf"}}
	})
	e.job.BaseModelPath = "/data/hf/hub/models--org--m/snapshots/abc"
	wf, err := e.b.BuildWorkflow(e.job)
	if err != nil {
		t.Fatal(err)
	}
	vols := map[string]string{}
	for _, v := range wf.Spec.Volumes {
		if pvc := v.PersistentVolumeClaim; pvc != nil {
			vols[v.Name] = pvc.ClaimName
			if pvc.ClaimName != "lf-artifacts" && !pvc.ReadOnly {
				t.Errorf("input claim %s is not read-only", pvc.ClaimName)
			}
		}
	}
	mounted := map[string]string{}
	for _, m := range wf.Spec.Templates[0].Container.VolumeMounts {
		if claim, ok := vols[m.Name]; ok {
			mounted[claim] = m.MountPath
			if claim != "lf-artifacts" && !m.ReadOnly {
				t.Errorf("mount of %s is not read-only", claim)
			}
		}
	}
	if mounted["shared-models"] != "/data/models" || mounted["hf-cache"] != "/data/hf" || mounted["lf-artifacts"] != e.root {
		t.Errorf("mounts %v", mounted)
	}
	raw, _ := json.Marshal(wf)
	var obj map[string]any
	json.Unmarshal(raw, &obj)
	delete(obj, "status")
	raw, _ = json.Marshal(obj)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := argoSchema(t, true).Validate(inst); err != nil {
		t.Fatalf("the Workflow does not match argo-workflows' schema: %v", err)
	}

	e.job.BaseModelPath = "/srv/elsewhere/base"
	_, err = e.b.Train(context.Background(), e.job, nil)
	var ae *argo.Error
	if !errors.As(err, &ae) || ae.Reason != argo.ReasonBadInput || !strings.Contains(err.Error(), "/data/models, /data/hf") {
		t.Fatalf("base outside every root: %v", err)
	}
	// Only the base model may come from an input root: the trainer writes
	// its output to the store.
	e.job.BaseModelPath, e.job.OutputDir = "/data/models/base", "/data/models/out"
	if _, err := e.b.BuildWorkflow(e.job); err == nil {
		t.Fatal("an output folder in a read-only input root was accepted")
	}
}

func TestInputClaimsConfig(t *testing.T) {
	vars := map[string]string{"LORAFLOW_ARGO_NAMESPACE": "ml", "LORAFLOW_ARGO_TRAINER_IMAGE": "img", "LORAFLOW_ARGO_ARTIFACT_CLAIM": "lf",
		"LORAFLOW_ARGO_ARTIFACT_MOUNT_PATH": "/var/lib/loraflow/artifacts", "LORAFLOW_ARGO_INPUT_CLAIMS": "shared-models=/data/models,hf-cache=/data/hf"}
	c, err := argo.ConfigFromEnv(func(k string) string { return vars[k] })
	if err != nil || len(c.InputClaims) != 2 || c.InputClaims[1] != (argo.InputClaim{Claim: "hf-cache", MountPath: "/data/hf"}) {
		t.Fatalf("ConfigFromEnv = %+v, %v", c.InputClaims, err)
	}
	if _, err := argo.New(fake.NewSimpleClientset(), c); err != nil {
		t.Fatal(err)
	}
	for name, claims := range map[string][]argo.InputClaim{
		"relative mount": {{Claim: "m", MountPath: "data"}},
		"root mount":     {{Claim: "m", MountPath: "/"}},
		"on the store":   {{Claim: "m", MountPath: "/var/lib/loraflow/artifacts"}},
		"twice":          {{Claim: "m", MountPath: "/a"}, {Claim: "n", MountPath: "/a/"}},
		"bad claim name": {{Claim: "Not_A_Claim", MountPath: "/a"}},
		"empty claim":    {{Claim: "", MountPath: "/a"}},
	} {
		bad := c
		bad.InputClaims = claims
		if _, err := argo.New(fake.NewSimpleClientset(), bad); err == nil || !strings.Contains(err.Error(), "InputClaims") {
			t.Errorf("%s: %v", name, err)
		}
	}
	vars["LORAFLOW_ARGO_INPUT_CLAIMS"] = "just-a-claim"
	if _, err := argo.ConfigFromEnv(func(k string) string { return vars[k] }); err == nil || !strings.Contains(err.Error(), "LORAFLOW_ARGO_INPUT_CLAIMS") {
		t.Errorf("malformed variable: %v", err)
	}
}
