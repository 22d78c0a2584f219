package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loraflow/loraflow/provenance"
)

// The command-line merge used to merge a tampered adapter without a word
// (exit 0) while `loraflow verify` reported DigestMismatch on the same
// folder; now both refuse it.
func TestMergeRefusesTamperedSignedAdapter(t *testing.T) {
	dir := t.TempDir()
	base, a1, a2 := tinyModelAndAdapters(t, dir)
	priv, pub, err := provenance.GenerateKey(filepath.Join(dir, "keys"), provenance.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := provenance.LoadSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	baseDigest, err := provenance.DigestPath(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data.jsonl")
	if err := os.WriteFile(data, []byte(`{"text":"x"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dataDigest, _ := provenance.DigestPath(t.Context(), data)
	if _, err := provenance.Attest(t.Context(), signer, provenance.Artifact{Kind: provenance.KindAdapter, Dir: a1,
		Dependencies: []provenance.Dependency{{Role: provenance.RoleBaseModel, Name: "base", URI: "file://" + base, SHA256: baseDigest},
			{Role: provenance.RoleDataset, Name: "data", URI: "file://" + data, SHA256: dataDigest}},
		ExternalParameters: map[string]any{"test": true}, InvocationID: "cli/test", StartedOn: time.Unix(0, 0), FinishedOn: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	merged := func(name string) string { return filepath.Join(dir, name) }
	if out, err := runCLI(t, "merge", "--base", base, "--adapter", a1, "--out", merged("ok"), "--key", pub); err != nil {
		t.Fatalf("an intact signed adapter is refused: %v\n%s", err, out)
	}
	// Signed, but no key given: refused rather than used unverified.
	if _, err := runCLI(t, "merge", "--base", base, "--adapter", a1, "--out", merged("nokey")); err == nil || !strings.Contains(err.Error(), "--key") {
		t.Fatalf("a signed adapter was merged without a key to verify it: %v", err)
	}
	// Unsigned adapters (PEFT folders from elsewhere) still merge.
	if out, err := runCLI(t, "merge", "--base", base, "--adapter", a2, "--out", merged("unsigned")); err != nil {
		t.Fatalf("unsigned adapter: %v\n%s", err, out)
	}

	weights := filepath.Join(a1, "adapter_model.safetensors")
	b, err := os.ReadFile(weights)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1
	if err := os.WriteFile(weights, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "verify", a1, "--key", pub); err == nil {
		t.Fatal("verify accepts the tampered adapter")
	}
	for _, cmd := range [][]string{
		{"merge", "--base", base, "--adapter", a1, "--out", merged("tampered"), "--key", pub},
		{"unmerge", "--merged", merged("ok"), "--adapter", a1, "--out", merged("back"), "--key", pub},
		{"combine", "--adapter", a1, "--adapter", a2, "--weight", "1", "--weight", "1", "--method", "cat", "--out", merged("comb"), "--key", pub},
	} {
		_, err := runCLI(t, cmd...)
		if err == nil || !strings.Contains(err.Error(), string(provenance.ReasonDigestMismatch)) {
			t.Errorf("%s: tampered adapter not refused with %s: %v", cmd[0], provenance.ReasonDigestMismatch, err)
		}
	}
	if _, err := os.Stat(merged("tampered")); !os.IsNotExist(err) {
		t.Fatalf("a merged model was written from the tampered adapter: %v", err)
	}
	// The explicit way out.
	if out, err := runCLI(t, "merge", "--base", base, "--adapter", a1, "--out", merged("forced"), "--no-verify-signature"); err != nil {
		t.Fatalf("--no-verify-signature: %v\n%s", err, out)
	}
}
