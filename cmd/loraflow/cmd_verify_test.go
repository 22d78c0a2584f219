package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loraflow/loraflow/provenance"
)

func TestKeygenAndVerifyCommands(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) (string, error) { return runCLI(t, args...) }
	if out, err := run("keygen", "--out", filepath.Join(dir, "keys"), "--type", "ed25519"); err != nil || !strings.Contains(out, "key id") {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	signer, err := provenance.LoadSigner(filepath.Join(dir, "keys", provenance.PrivateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "base")
	adapter := filepath.Join(dir, "adapter")
	for p, data := range map[string]string{
		filepath.Join(base, "config.json"):                  `{"model_type":"gpt2"}`,
		filepath.Join(adapter, "adapter_config.json"):       `{"peft_type":"LORA"}`,
		filepath.Join(adapter, "adapter_model.safetensors"): "weights",
	} {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	baseDigest, err := provenance.DigestPath(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	_, err = provenance.Attest(context.Background(), signer, provenance.Artifact{
		Kind: provenance.KindAdapter, Dir: adapter,
		Dependencies: []provenance.Dependency{
			{Role: provenance.RoleBaseModel, Name: "base", URI: base, SHA256: baseDigest},
			{Role: provenance.RoleDataset, Name: "data", URI: "s3://bucket/snapshot", SHA256: baseDigest},
		},
		ExternalParameters: map[string]any{"r": 8}, InvocationID: "wf/run",
	})
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "keys", provenance.PublicKeyFile)
	out, err := run("verify", adapter, "--key", pub)
	if err != nil || !strings.HasPrefix(out, "VERIFIED") || !strings.Contains(out, "[skip] dependency dataset") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(adapter, "adapter_model.safetensors"), []byte("weightz"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run("verify", adapter, "--key", pub)
	if err == nil || !strings.HasPrefix(out, "FAILED") || !strings.Contains(out, "DigestMismatch: adapter_model.safetensors") {
		t.Fatalf("tampered: %v\n%s", err, out)
	}
	// Without --key, verify trusts the embedded default's key, when there is one.
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	if out, err := run("verify", adapter); err == nil || !strings.Contains(err.Error()+out, "no embedded default key") {
		t.Fatalf("verify without --key and no embedded key: %v\n%s", err, out)
	}
	embedded := filepath.Join(dir, "data", "loraflow", "keys")
	os.MkdirAll(embedded, 0o700)
	if err := os.WriteFile(filepath.Join(embedded, provenance.PublicKeyFile), mustRead(t, pub), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run("verify", adapter)
	if err == nil || !strings.Contains(out, "trusting the embedded default's key") || !strings.Contains(out, "\nFAILED") || !strings.Contains(out, "DigestMismatch") {
		t.Fatalf("verify with the embedded key on the tampered adapter: %v\n%s", err, out)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
