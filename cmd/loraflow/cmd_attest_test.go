package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loraflow/loraflow/provenance"
)

// TestAttestCommandLineArtifacts: adapters combined and merged on the
// command line get the pipeline's bundles from `loraflow attest`, chained
// to their attested parents, base model and dataset; `loraflow verify`
// and cosign accept them, and an unattested or changed parent is refused.
func TestAttestCommandLineArtifacts(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	t.Setenv("LORAFLOW_SIGNING_KEY", "")
	base, a1, a2 := tinyModelAndAdapters(t, dir)
	keys := filepath.Join(dir, "keys")
	if out, err := runCLI(t, "keygen", "--out", keys); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	key, pub := filepath.Join(keys, provenance.PrivateKeyFile), filepath.Join(keys, provenance.PublicKeyFile)
	data := filepath.Join(dir, "data.jsonl")
	if err := os.WriteFile(data, []byte(`{"text":"call me Ishmael"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, args...)
		if err != nil {
			t.Fatalf("loraflow %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	// An unattested parent cannot start a chain.
	both := filepath.Join(dir, "both")
	run("combine", "--adapter", a1, "--adapter", a2, "--weight", "0.5", "--weight", "0.5", "--method", "cat", "--out", both)
	if _, err := runCLI(t, "attest", both, "--kind", "adapter", "--parent", a1, "--signing-key", key, "--key", pub); err == nil || !strings.Contains(err.Error(), "has no signed provenance: attest it first") {
		t.Fatalf("attest with an unattested parent: %v", err)
	}
	if _, err := runCLI(t, "attest", both, "--kind", "adapter", "--signing-key", key); err == nil || !strings.Contains(err.Error(), "no base model") {
		t.Fatalf("attest with no parent and no base: %v", err)
	}
	if _, err := runCLI(t, "attest", both, "--kind", "adapter", "--base", base); err == nil || !strings.Contains(err.Error(), "name the signing key") {
		t.Fatalf("attest with no key: %v", err)
	}
	for _, a := range []string{a1, a2} {
		run("attest", a, "--kind", "adapter", "--base", base, "--dataset", data, "--signing-key", key)
	}
	out := run("attest", both, "--kind", "adapter", "--parent", a1, "--parent", a2, "--signing-key", key, "--key", pub, "--made-by", "loraflow combine --method cat")
	if !strings.Contains(out, "attested adapter ") || !strings.Contains(out, "model-signing") {
		t.Errorf("attest printed:\n%s", out)
	}
	if out := run("verify", both, "--key", pub); !strings.Contains(out, "VERIFIED") {
		t.Fatalf("verify of the combined adapter:\n%s", out)
	}
	// Its provenance names both parents, the base and the dataset.
	v, err := provenance.Verify(t.Context(), both, mustTrust(t, pub))
	if err != nil {
		t.Fatal(err)
	}
	roles := map[provenance.Role]int{}
	for _, d := range v.Dependencies {
		roles[d.Role]++
	}
	if roles[provenance.RoleParent] != 2 || roles[provenance.RoleBaseModel] != 1 || roles[provenance.RoleDataset] != 1 || len(v.Parents) != 2 {
		t.Errorf("dependencies %+v, %d parent verdicts", roles, len(v.Parents))
	}

	merged := filepath.Join(dir, "merged")
	run("merge", "--base", base, "--adapter", both, "--out", merged, "--key", pub)
	run("attest", merged, "--kind", "merged-model", "--parent", both, "--signing-key", key, "--key", pub)
	if out := run("verify", merged, "--key", pub, "--kind", "merged-model"); !strings.Contains(out, "VERIFIED") {
		t.Fatalf("verify of the merged model:\n%s", out)
	}
	cosignVerifies(t, merged, pub)

	// A parent changed after it was attested is refused.
	if err := os.WriteFile(filepath.Join(a2, "adapter_config.json"), []byte(`{"r": 8}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "attest", both, "--kind", "adapter", "--parent", a1, "--parent", a2, "--signing-key", key, "--key", pub); err == nil || !strings.Contains(err.Error(), "parent "+a2+": refusing it") {
		t.Fatalf("attest with a changed parent: %v", err)
	}
}

func mustTrust(t *testing.T, pub string) *provenance.TrustedKeys {
	t.Helper()
	k, err := provenance.LoadTrustedKeys(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// cosignVerifies checks the provenance bundle of a folder artifact with
// cosign verify-blob-attestation, offline (key, no transparency log), on
// one of its files, as provenance.TestCosignVerifiesBundles does.
func cosignVerifies(t *testing.T, dir, pub string) {
	t.Helper()
	cosign := os.Getenv("LORAFLOW_COSIGN")
	if cosign == "" {
		if c, err := os.UserCacheDir(); err == nil {
			cosign = filepath.Join(c, "loraflow", "tools", "cosign-v2.6.5", "cosign")
		}
	}
	if _, err := os.Stat(cosign); err != nil {
		if p, err := exec.LookPath("cosign"); err == nil {
			cosign = p
		} else {
			t.Logf("no cosign (provenance.TestCosignVerifiesBundles builds it); skipping the cosign check")
			return
		}
	}
	root := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(root, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cosign, "verify-blob-attestation", "--key", pub, "--new-bundle-format", "--trusted-root", root, "--insecure-ignore-tlog",
		"--bundle", provenance.BundlePath(dir, provenance.BundleProvenance), "--type", "slsaprovenance1", filepath.Join(dir, "config.json"))
	cmd.Env = append(os.Environ(), "TUF_ROOT="+filepath.Join(t.TempDir(), "tuf"), "SIGSTORE_NO_CACHE=true")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verified OK") {
		t.Fatalf("cosign rejected the provenance bundle: %v\n%s", err, out)
	}
}
