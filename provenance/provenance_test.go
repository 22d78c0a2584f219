package provenance

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixture is a small pipeline's worth of artifacts: a base model folder, a
// dataset snapshot file, an adapter folder and the keys.
type fixture struct {
	root, base, dataset, adapter string
	baseDigest, dataDigest       string
	signer                       *Signer
	keys                         *TrustedKeys
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func makeAdapter(t testing.TB, dir string, seed uint64) {
	writeFile(t, filepath.Join(dir, "adapter_config.json"), []byte(`{"peft_type":"LORA","r":8,"lora_alpha":16,"seed":`+string(rune('0'+seed%10))+`}`))
	writeFile(t, filepath.Join(dir, "adapter_model.safetensors"), randomBytes(seed, 3*ChunkSize/2))
	writeFile(t, filepath.Join(dir, "extras", "README.md"), []byte("adapter card\n"))
}

func newFixture(t testing.TB, kt KeyType) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{root: t.TempDir()}
	f.base = filepath.Join(f.root, "base")
	writeFile(t, filepath.Join(f.base, "config.json"), []byte(`{"model_type":"llama"}`))
	writeFile(t, filepath.Join(f.base, "model.safetensors"), randomBytes(1, 200_000))
	f.dataset = filepath.Join(f.root, "snapshot.jsonl")
	writeFile(t, f.dataset, []byte("{\"text\":\"call me Ishmael\"}\n"))
	f.adapter = filepath.Join(f.root, "adapter")
	makeAdapter(t, f.adapter, 7)
	var err error
	if f.baseDigest, err = DigestPath(ctx, f.base); err != nil {
		t.Fatal(err)
	}
	if f.dataDigest, err = DigestPath(ctx, f.dataset); err != nil {
		t.Fatal(err)
	}
	priv, _, err := GenerateKey(filepath.Join(f.root, "keys"), kt)
	if err != nil {
		t.Fatal(err)
	}
	if f.signer, err = LoadSigner(priv); err != nil {
		t.Fatal(err)
	}
	if f.keys, err = LoadTrustedKeys(filepath.Join(f.root, "keys", PublicKeyFile)); err != nil {
		t.Fatal(err)
	}
	return f
}

type spec struct {
	LearningRate float64 `json:"learning_rate"`
	Rank         int     `json:"r"`
	Seed         int64   `json:"seed"`
}

func (f *fixture) adapterArtifact(dir string) Artifact {
	return Artifact{
		Kind: KindAdapter,
		Dir:  dir,
		Dependencies: []Dependency{
			{Role: RoleBaseModel, Name: "base", URI: "file://" + f.base, SHA256: f.baseDigest},
			{Role: RoleDataset, Name: "snapshot", URI: f.dataset, SHA256: f.dataDigest},
		},
		ExternalParameters: spec{LearningRate: 2e-4, Rank: 8, Seed: 9007199254740993}, // 2^53+1: must survive exactly
		InvocationID:       "lora-pipeline-42/9f1c",
		WorkerIdentity:     "1234@host@loraflow",
		StartedOn:          time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC),
		FinishedOn:         time.Date(2026, 11, 28, 1, 5, 0, 0, time.UTC),
		Eval:               map[string]any{"loss": 1.25, "perplexity": 3.49},
		Carbon:             map[string]any{"energy_consumed": 0.0012, "emissions": 0.00057},
	}
}

func (f *fixture) attestAdapter(t *testing.T) *Attestation {
	t.Helper()
	att, err := Attest(context.Background(), f.signer, f.adapterArtifact(f.adapter))
	if err != nil {
		t.Fatal(err)
	}
	return att
}

func wantReason(t *testing.T, v *Verdict, err error, r Reason, pathContains string) {
	t.Helper()
	var ve *VerificationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *VerificationError %s, got %v", r, err)
	}
	if ve.Reason != r {
		t.Fatalf("reason %s, want %s (%v)", ve.Reason, r, err)
	}
	if pathContains != "" && !strings.Contains(ve.Path, pathContains) {
		t.Fatalf("failure names %q, want it to name %q (%v)", ve.Path, pathContains, err)
	}
	if v == nil || v.OK() || v.Err != ve {
		t.Fatalf("verdict does not carry the failure: %+v", v)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, kt := range []KeyType{KeyECDSAP256, KeyEd25519} {
		t.Run(string(kt), func(t *testing.T) {
			f := newFixture(t, kt)
			att := f.attestAdapter(t)
			if len(att.Files) != 3 || att.Files[0].Name != "adapter_config.json" || att.Files[2].Name != "extras/README.md" {
				t.Fatalf("files: %+v", att.Files)
			}
			kinds := []string{}
			for _, b := range att.Bundles {
				kinds = append(kinds, b.Kind)
				if filepath.Dir(b.Path) != f.root {
					t.Errorf("bundle %s is not beside the artifact", b.Path)
				}
			}
			if got := strings.Join(kinds, ","); got != "provenance,model-signing,eval,carbon" {
				t.Fatalf("bundles %s", got)
			}
			if att.Bundles[0].Path != f.adapter+".provenance.sigstore.json" {
				t.Fatalf("provenance bundle at %s", att.Bundles[0].Path)
			}
			v, err := Verify(context.Background(), f.adapter, f.keys, WithKind(KindAdapter), WithExpectedDependency(RoleBaseModel, f.baseDigest), WithRequiredDependencies())
			if err != nil {
				t.Fatal(err)
			}
			if !v.OK() || v.SHA256 != att.SHA256 || v.ProvenanceSHA256 != att.ProvenanceSHA256 || v.KeyID != f.signer.KeyID() {
				t.Fatalf("verdict %+v, attestation %+v", v, att)
			}
			if v.InvocationID != "lora-pipeline-42/9f1c" || v.Kind != KindAdapter || v.Name != "adapter" {
				t.Fatalf("verdict %+v", v)
			}
			// Verifying through the bundle path works too.
			if _, err := Verify(context.Background(), att.Bundles[0].Path, f.keys); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestStatementContent(t *testing.T) {
	f := newFixture(t, KeyECDSAP256)
	att := f.attestAdapter(t)
	sb, _, err := openBundle(att.Bundles[0].Path, f.keys)
	if err != nil {
		t.Fatal(err)
	}
	var prov struct {
		BuildDefinition struct {
			BuildType            string
			ExternalParameters   struct{ Seed json.Number }
			ResolvedDependencies []struct {
				Name        string
				URI         string
				Digest      map[string]string
				Annotations map[string]any
			}
		}
		RunDetails struct {
			Metadata struct{ InvocationID, StartedOn, FinishedOn string }
		}
	}
	dec := json.NewDecoder(strings.NewReader(string(sb.st.Predicate)))
	dec.UseNumber()
	if err := dec.Decode(&prov); err != nil {
		t.Fatal(err)
	}
	if prov.BuildDefinition.BuildType != BuildType {
		t.Errorf("buildType %q", prov.BuildDefinition.BuildType)
	}
	if prov.BuildDefinition.ExternalParameters.Seed != "9007199254740993" {
		t.Errorf("seed lost precision: %s", prov.BuildDefinition.ExternalParameters.Seed)
	}
	if prov.RunDetails.Metadata.StartedOn != "2026-11-28T01:00:00Z" || prov.RunDetails.Metadata.FinishedOn != "2026-11-28T01:05:00Z" {
		t.Errorf("times %+v", prov.RunDetails.Metadata)
	}
	deps := prov.BuildDefinition.ResolvedDependencies
	if len(deps) != 3 || deps[0].Digest["sha256"] != f.baseDigest || deps[1].Digest["sha256"] != f.dataDigest {
		t.Fatalf("dependencies %+v", deps)
	}
	w := deps[2]
	if w.Annotations["role"] != "worker" || !strings.HasPrefix(w.URI, "pkg:golang/") || len(w.Digest["sha256"]) != 64 {
		t.Errorf("worker dependency %+v", w)
	}
	// The model-signing statement: one subject, model_signing's root digest over the
	// sorted resource digests.
	ms, _, err := openBundle(att.Bundles[1].Path, f.keys)
	if err != nil {
		t.Fatal(err)
	}
	if ms.st.PredicateType != ModelSigningPredicateType || len(ms.st.Subject) != 1 || ms.st.Subject[0].Name != "adapter" || ms.st.Subject[0].Digest["sha256"] != att.Root {
		t.Fatalf("model-signing statement %+v", ms.st)
	}
	var msp modelSigningPredicate
	if err := json.Unmarshal(ms.st.Predicate, &msp); err != nil {
		t.Fatal(err)
	}
	if msp.Serialization.Method != "files" || msp.Serialization.HashType != "sha256" || len(msp.Resources) != 3 || msp.Resources[1].Name != "adapter_model.safetensors" {
		t.Fatalf("model-signing predicate %+v", msp)
	}
}

func TestTamperRejected(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(t *testing.T, f *fixture, att *Attestation)
		reason Reason
		names  string
	}{
		{"flipped byte in weights", func(t *testing.T, f *fixture, _ *Attestation) {
			flipByte(t, filepath.Join(f.adapter, "adapter_model.safetensors"), ChunkSize+17)
		}, ReasonDigestMismatch, "adapter_model.safetensors"},
		{"flipped byte in config", func(t *testing.T, f *fixture, _ *Attestation) {
			flipByte(t, filepath.Join(f.adapter, "adapter_config.json"), 3)
		}, ReasonDigestMismatch, "adapter_config.json"},
		{"flipped byte in nested file", func(t *testing.T, f *fixture, _ *Attestation) {
			flipByte(t, filepath.Join(f.adapter, "extras", "README.md"), 0)
		}, ReasonDigestMismatch, "extras/README.md"},
		{"renamed file", func(t *testing.T, f *fixture, _ *Attestation) {
			mustRename(t, filepath.Join(f.adapter, "adapter_config.json"), filepath.Join(f.adapter, "config.json"))
		}, ReasonRenamedFile, "adapter_config.json"},
		{"extra file", func(t *testing.T, f *fixture, _ *Attestation) {
			writeFile(t, filepath.Join(f.adapter, "zz_extra.bin"), []byte("x"))
		}, ReasonExtraFile, "zz_extra.bin"},
		{"missing file", func(t *testing.T, f *fixture, _ *Attestation) {
			os.Remove(filepath.Join(f.adapter, "extras", "README.md"))
		}, ReasonMissingFile, "extras/README.md"},
		{"unsigned", func(t *testing.T, f *fixture, att *Attestation) {
			os.Remove(att.Bundles[0].Path)
		}, ReasonUnsigned, "provenance.sigstore.json"},
		{"swapped provenance bundle", func(t *testing.T, f *fixture, att *Attestation) {
			other := filepath.Join(f.root, "other-adapter")
			makeAdapter(t, other, 99)
			oatt, err := Attest(context.Background(), f.signer, f.adapterArtifact(other))
			if err != nil {
				t.Fatal(err)
			}
			copyFile(t, oatt.Bundles[0].Path, att.Bundles[0].Path)
		}, ReasonBundleMismatch, "adapter"},
		{"swapped model-signing bundle", func(t *testing.T, f *fixture, att *Attestation) {
			other := filepath.Join(f.root, "other-adapter")
			makeAdapter(t, other, 99)
			oatt, err := Attest(context.Background(), f.signer, f.adapterArtifact(other))
			if err != nil {
				t.Fatal(err)
			}
			copyFile(t, oatt.Bundles[1].Path, att.Bundles[1].Path)
		}, ReasonBundleMismatch, "model-signing.sigstore.json"},
		{"missing eval bundle", func(t *testing.T, f *fixture, att *Attestation) {
			os.Remove(att.Bundles[2].Path)
		}, ReasonMissingBundle, "eval.sigstore.json"},
		{"payload edited after signing", func(t *testing.T, f *fixture, att *Attestation) {
			editBundlePayload(t, att.Bundles[0].Path, "lora-pipeline-42", "lora-pipeline-43")
		}, ReasonBadSignature, "provenance.sigstore.json"},
		{"resigned by another key", func(t *testing.T, f *fixture, att *Attestation) {
			priv, _, err := GenerateKey(filepath.Join(f.root, "mallory"), KeyECDSAP256)
			if err != nil {
				t.Fatal(err)
			}
			mallory, err := LoadSigner(priv)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Attest(context.Background(), mallory, f.adapterArtifact(f.adapter)); err != nil {
				t.Fatal(err)
			}
		}, ReasonUntrustedKey, "provenance.sigstore.json"},
		{"base model changed", func(t *testing.T, f *fixture, _ *Attestation) {
			flipByte(t, filepath.Join(f.base, "model.safetensors"), 100)
		}, ReasonBrokenChain, "base-model"},
		{"dataset changed", func(t *testing.T, f *fixture, _ *Attestation) {
			writeFile(t, f.dataset, []byte("{\"text\":\"poisoned\"}\n"))
		}, ReasonBrokenChain, "dataset"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, KeyECDSAP256)
			att := f.attestAdapter(t)
			if _, err := Verify(context.Background(), f.adapter, f.keys); err != nil {
				t.Fatalf("before tampering: %v", err)
			}
			c.tamper(t, f, att)
			v, err := Verify(context.Background(), f.adapter, f.keys)
			wantReason(t, v, err, c.reason, c.names)
			t.Logf("%v", err)
		})
	}
}

func TestWrongKeyAndRotation(t *testing.T) {
	f := newFixture(t, KeyECDSAP256)
	f.attestAdapter(t)
	_, pub2, err := GenerateKey(filepath.Join(f.root, "keys-2027"), KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	onlyNew, err := LoadTrustedKeys(pub2)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Verify(context.Background(), f.adapter, onlyNew)
	wantReason(t, v, err, ReasonUntrustedKey, "provenance.sigstore.json")

	both, err := LoadTrustedKeys(pub2, filepath.Join(f.root, "keys", PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if both.Len() != 2 {
		t.Fatalf("%d keys", both.Len())
	}
	v, err = Verify(context.Background(), f.adapter, both)
	if err != nil || v.KeyID != f.signer.KeyID() {
		t.Fatalf("rotation: %v %+v", err, v)
	}
}

func TestChainMergedModelAndEvalReport(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, KeyECDSAP256)
	adapterAtt := f.attestAdapter(t)
	merged := filepath.Join(f.root, "merged")
	writeFile(t, filepath.Join(merged, "config.json"), []byte(`{"model_type":"llama"}`))
	writeFile(t, filepath.Join(merged, "model.safetensors"), randomBytes(3, 200_000))
	mergedArtifact := Artifact{
		Kind: KindMergedModel,
		Dir:  merged,
		Dependencies: []Dependency{
			{Role: RoleBaseModel, Name: "base", URI: "file://" + f.base, SHA256: f.baseDigest},
			{Role: RoleParent, Name: "adapter", URI: "adapter", SHA256: adapterAtt.SHA256, Attestation: adapterAtt.ProvenanceSHA256},
		},
		ExternalParameters: map[string]any{"merge": "W0 + scale*B*A"},
		InvocationID:       "lora-pipeline-42/9f1c",
	}
	if _, err := Attest(ctx, f.signer, mergedArtifact); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(f.root, "reports", "eval-report.json")
	writeFile(t, report, []byte(`{"loss":1.25}`))
	reportAtt, err := Attest(ctx, f.signer, Artifact{
		Kind:               KindEvalReport,
		Files:              []string{report},
		Dependencies:       []Dependency{{Role: RoleParent, Name: "adapter", URI: "file://" + f.adapter, SHA256: adapterAtt.SHA256, Attestation: adapterAtt.ProvenanceSHA256}},
		ExternalParameters: map[string]any{"split": "test"},
		InvocationID:       "lora-pipeline-42/9f1c",
		Eval:               map[string]any{"loss": 1.25},
	})
	if err != nil {
		t.Fatal(err)
	}
	if reportAtt.Bundles[0].Path != report+".provenance.sigstore.json" || len(reportAtt.Bundles) != 2 {
		t.Fatalf("report bundles %+v", reportAtt.Bundles)
	}

	v, err := Verify(ctx, merged, f.keys, WithKind(KindMergedModel), WithRequiredDependencies())
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Parents) != 1 || !v.Parents[0].OK() || v.Parents[0].Kind != KindAdapter {
		t.Fatalf("parents %+v", v.Parents)
	}
	if _, err := Verify(ctx, report, f.keys, WithKind(KindEvalReport)); err != nil {
		t.Fatal(err)
	}

	// A merge step expecting an adapter refuses the merged model.
	v, err = Verify(ctx, merged, f.keys, WithKind(KindAdapter))
	wantReason(t, v, err, ReasonUnexpectedKind, "")
	// An adapter trained on another base is refused by Merge.
	v, err = Verify(ctx, f.adapter, f.keys, WithExpectedDependency(RoleBaseModel, strings.Repeat("ab", 32)))
	wantReason(t, v, err, ReasonBrokenChain, "base-model")

	// Tampering with the parent breaks the child's chain.
	flipByte(t, filepath.Join(f.adapter, "adapter_model.safetensors"), 5)
	v, err = Verify(ctx, merged, f.keys)
	wantReason(t, v, err, ReasonBrokenChain, "parent adapter")
	var inner *VerificationError
	if !errors.As(v.Err.Err, &inner) || inner.Reason != ReasonDigestMismatch || inner.Path != "adapter_model.safetensors" {
		t.Fatalf("inner cause %v", v.Err.Err)
	}
	v, err = Verify(ctx, report, f.keys)
	wantReason(t, v, err, ReasonBrokenChain, "parent adapter")
	flipByte(t, filepath.Join(f.adapter, "adapter_model.safetensors"), 5) // restore

	// A retried Attest of the same run writes the same statement, so the
	// link recorded by the child still holds.
	again, err := Attest(ctx, f.signer, f.adapterArtifact(f.adapter))
	if err != nil {
		t.Fatal(err)
	}
	if again.ProvenanceSHA256 != adapterAtt.ProvenanceSHA256 {
		t.Fatalf("retried Attest changed the statement: %s then %s", adapterAtt.ProvenanceSHA256, again.ProvenanceSHA256)
	}
	if _, err := Verify(ctx, merged, f.keys); err != nil {
		t.Fatal(err)
	}
	// Another run's attestation of the parent breaks the recorded link.
	rerun := f.adapterArtifact(f.adapter)
	rerun.InvocationID = "lora-pipeline-42/other-run"
	if _, err := Attest(ctx, f.signer, rerun); err != nil {
		t.Fatal(err)
	}
	v, err = Verify(ctx, merged, f.keys)
	wantReason(t, v, err, ReasonBrokenChain, "parent adapter")

	// An edited report file.
	writeFile(t, report, []byte(`{"loss":0.25}`))
	v, err = Verify(ctx, report, f.keys)
	wantReason(t, v, err, ReasonDigestMismatch, "eval-report.json")
}

func TestAttestRefusesMisuse(t *testing.T) {
	f := newFixture(t, KeyECDSAP256)
	ctx := context.Background()
	good := f.adapterArtifact(f.adapter)
	for name, mutate := range map[string]func(a *Artifact){
		"no signer":       nil,
		"unknown kind":    func(a *Artifact) { a.Kind = "model" },
		"no invocation":   func(a *Artifact) { a.InvocationID = "" },
		"no spec":         func(a *Artifact) { a.ExternalParameters = nil },
		"spec not object": func(a *Artifact) { a.ExternalParameters = []int{1} },
		"no dataset":      func(a *Artifact) { a.Dependencies = a.Dependencies[:1] },
		"bad digest":      func(a *Artifact) { a.Dependencies[0].SHA256 = "abc" },
		"parent without attestation": func(a *Artifact) {
			a.Dependencies = append(a.Dependencies, Dependency{Role: RoleParent, SHA256: f.baseDigest})
		},
		"dir and files": func(a *Artifact) { a.Files = []string{f.dataset} },
		"nothing":       func(a *Artifact) { a.Dir = "" },
	} {
		a := good
		a.Dependencies = append([]Dependency(nil), good.Dependencies...)
		signer := f.signer
		if mutate == nil {
			signer = nil
		} else {
			mutate(&a)
		}
		if _, err := Attest(ctx, signer, a); err == nil {
			t.Errorf("%s: Attest accepted it", name)
		}
	}
	if _, err := os.Stat(BundlePath(f.adapter, BundleProvenance)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused Attest left a bundle: %v", err)
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x01
	writeFile(t, path, b)
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, b)
}

// editBundlePayload rewrites the signed statement inside a bundle without
// re-signing it.
func editBundlePayload(t *testing.T, path, from, to string) {
	t.Helper()
	var b map[string]any
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	env := b["dsseEnvelope"].(map[string]any)
	payload, err := base64Decode(env["payload"].(string))
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(payload), from, to, 1)
	if edited == string(payload) {
		t.Fatalf("%q not in payload", from)
	}
	env["payload"] = base64Encode([]byte(edited))
	out, _ := json.Marshal(b)
	writeFile(t, path, out)
}

func base64Decode(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
func base64Encode(b []byte) string          { return base64.StdEncoding.EncodeToString(b) }

// Attest hashes the files once and signs only when they hash to
// ExpectSHA256, the digest the caller holds for them (the store key): the
// artifact's digest is the ManifestDigest, the same as the store's, and
// bytes changed before the hash are refused with nothing written.
func TestAttestSignsOnlyTheExpectedBytes(t *testing.T) {
	f := newFixture(t, KeyEd25519)
	ctx := context.Background()
	td, err := HashTree(ctx, f.adapter)
	if err != nil {
		t.Fatal(err)
	}
	a := f.adapterArtifact(f.adapter)
	a.ExpectSHA256 = td.Manifest
	att, err := Attest(ctx, f.signer, a)
	if err != nil {
		t.Fatal(err)
	}
	if att.SHA256 != td.Manifest || att.Root != td.SHA256 {
		t.Fatalf("attestation digest %s root %s, want the manifest digest %s and model_signing's root %s", att.SHA256, att.Root, td.Manifest, td.SHA256)
	}
	for _, b := range att.Bundles {
		os.Remove(b.Path)
	}
	writeFile(t, filepath.Join(f.adapter, "adapter_config.json"), []byte(`{"r":64}`))
	_, err = Attest(ctx, f.signer, a)
	var dm *DigestMismatchError
	if !errors.As(err, &dm) || dm.Want != td.Manifest {
		t.Fatalf("want a DigestMismatchError for %s, got %v", td.Manifest, err)
	}
	if _, err := os.Stat(BundlePath(f.adapter, BundleProvenance)); err == nil {
		t.Fatal("changed bytes were signed")
	}
}

// A statement signed before one digest per artifact names model_signing's
// root digest as the artifact's digest: it still verifies (both digests are
// recomputed from the files), the verdict gives the folder digest, and a
// policy expecting the old digest (an attestation of a run in flight across
// the upgrade) accepts it; a wrong digest is still refused.
func TestLegacyRootDigestStatementsVerify(t *testing.T) {
	f := newFixture(t, KeyEd25519)
	ctx := context.Background()
	// The old statement names the base model by its root digest too.
	baseTree, err := HashTree(ctx, f.base)
	if err != nil {
		t.Fatal(err)
	}
	a := f.adapterArtifact(f.adapter)
	a.Dependencies[0].SHA256 = baseTree.SHA256
	statedDigest = func(td *TreeDigest) string { return td.SHA256 }
	_, err = Attest(ctx, f.signer, a)
	statedDigest = func(td *TreeDigest) string { return td.Manifest }
	if err != nil {
		t.Fatal(err)
	}
	td, err := HashTree(ctx, f.adapter)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := NewVerifier(f.keys)
	if err != nil {
		t.Fatal(err)
	}
	// The reachable base model is re-hashed; it matches by its root digest.
	if v, err := Verify(ctx, f.adapter, f.keys); err != nil || !v.OK() {
		t.Fatalf("legacy statement with a reachable base: %v", err)
	}
	for _, want := range []string{td.SHA256, td.Manifest} {
		pol, err := NewPolicy(WithFolderDigest(want), WithDependencyPath(RoleBaseModel, f.base))
		if err != nil {
			t.Fatal(err)
		}
		v, err := verifier.Verify(ctx, f.adapter, pol)
		if err != nil || v.SHA256 != td.Manifest || v.Root != td.SHA256 {
			t.Fatalf("legacy statement expecting %s: verdict %+v, %v", want, v, err)
		}
	}
	pol, _ := NewPolicy(WithFolderDigest(strings.Repeat("a", 64)))
	if _, err := verifier.Verify(ctx, f.adapter, pol); err == nil {
		t.Fatal("a policy expecting another digest accepted the legacy statement")
	}
}
