package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loraflow/loraflow/registry"
	"github.com/loraflow/loraflow/registry/mlflowtest"
)

func publishThree(t *testing.T, reg registry.Registry) {
	t.Helper()
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "adapter_config.json"), []byte(`{"peft_type":"LORA"}`), 0o644)
	for i, alias := range []string{registry.AliasChampion, registry.AliasChallenger, ""} {
		_, err := reg.Publish(context.Background(), registry.PublishRequest{
			ModelName:      "tiny-lora",
			ArtifactDirs:   map[string]string{"adapter": src},
			ArtifactDigest: "sha256:0123456789abcdef" + string(rune('a'+i)),
			Metrics:        map[string]float64{"eval_loss": 2 - float64(i)/2},
			Tags:           map[string]string{"loraflow.base_model": "tiny-llama"},
			Alias:          alias,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func testRegistryCLI(t *testing.T, uri string) {
	out, err := runCLI(t, "registry", "ls", "--registry", uri)
	if err != nil || !strings.Contains(out, "tiny-lora") || !regexpLine(out, "tiny-lora", "3", "1", "3") {
		t.Fatalf("ls: %v\n%s", err, out)
	}
	out, err = runCLI(t, "registry", "ls", "tiny-lora", "--registry", uri)
	if err != nil || !regexpLine(out, "1", "champion") || !regexpLine(out, "2", "challenger") || !strings.Contains(out, "eval_loss=1.5") {
		t.Fatalf("ls model: %v\n%s", err, out)
	}
	out, err = runCLI(t, "registry", "show", "tiny-lora", "@champion", "--registry", uri)
	if err != nil || !strings.Contains(out, "version:") || !regexpLine(out, "version:", "1") || !strings.Contains(out, "tag loraflow.base_model:") {
		t.Fatalf("show: %v\n%s", err, out)
	}
	out, err = runCLI(t, "registry", "promote", "tiny-lora", "3", "--registry", uri)
	if err != nil || !strings.Contains(out, "champion is now version 3 (was 1)") {
		t.Fatalf("promote: %v\n%s", err, out)
	}
	out, err = runCLI(t, "registry", "show", "tiny-lora", "@previous-champion", "--json", "--registry", uri)
	var v registry.Version
	if err != nil || json.Unmarshal([]byte(out), &v) != nil || v.Version != "1" {
		t.Fatalf("show previous: %v\n%s", err, out)
	}
	out, err = runCLI(t, "registry", "rollback", "tiny-lora", "--registry", uri)
	if err != nil || !strings.Contains(out, "champion is now version 1 (was 3)") {
		t.Fatalf("rollback: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "registry", "rollback", "tiny-lora", "--registry", uri); err == nil {
		t.Fatal("second rollback succeeded")
	}
	if _, err := runCLI(t, "registry", "show", "tiny-lora", "@nope", "--registry", uri); err == nil {
		t.Fatal("show of a missing alias succeeded")
	}
	out, err = runCLI(t, "registry", "show", "tiny-lora", "3", "--registry", uri)
	if err != nil || !strings.Contains(out, "tag loraflow.rolled_back:") {
		t.Fatalf("rolled-back version: %v\n%s", err, out)
	}
}

// regexpLine reports whether some line holds all fields in order, separated by blanks.
func regexpLine(out string, fields ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		got := strings.Fields(line)
		if len(got) < len(fields) {
			continue
		}
		ok := true
		for i, f := range fields {
			ok = ok && got[i] == f
		}
		if ok {
			return true
		}
	}
	return false
}

func TestRegistryCLILocal(t *testing.T) {
	dir := t.TempDir()
	reg, err := registry.OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	publishThree(t, reg)
	testRegistryCLI(t, "file://"+dir)
}

func TestRegistryCLIMLflow(t *testing.T) {
	srv := mlflowtest.NewServer(t)
	srv.Token = "tok"
	t.Setenv(registry.EnvMLflowToken, "tok")
	reg, err := registry.Open(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	publishThree(t, reg)
	testRegistryCLI(t, srv.URL)
	if c, _ := srv.Alias("tiny-lora", registry.AliasChampion); c != "1" {
		t.Errorf("server champion = %s", c)
	}
}
