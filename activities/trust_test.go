package activities

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/loraflow/loraflow/provenance"
	"github.com/loraflow/loraflow/registry"
)

// trained is a world with a prepared snapshot and one attested adapter.
type trained struct {
	world
	prep  PrepareDataOutput
	train TrainOutput
	att   Attestation
}

func (w world) trainSeed(t *testing.T, prep PrepareDataOutput, seed int64) TrainOutput {
	t.Helper()
	s := w.spec
	s.Training.Seed = seed
	v, err := w.env().ExecuteActivity(w.acts.TrainLoRA, TrainInput{Spec: s, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel})
	if err != nil {
		t.Fatal(err)
	}
	var train TrainOutput
	v.Get(&train)
	return train
}

func (w world) trainAndAttest(t *testing.T, prep PrepareDataOutput, seed int64) (TrainOutput, Attestation) {
	t.Helper()
	train := w.trainSeed(t, prep, seed)
	v, err := w.env().ExecuteActivity(w.acts.Attest, AttestInput{Spec: w.spec, Kind: "adapter", Artifact: train.Adapter,
		BaseModel: prep.BaseModel, Snapshot: prep.Snapshot, Train: &train, InvocationID: "wf/run"})
	if err != nil {
		t.Fatal(err)
	}
	var att Attestation
	v.Get(&att)
	return train, att
}

func newTrained(t *testing.T) trained {
	w := newWorld(t, nil)
	prep := w.prepare(t)
	train, att := w.trainAndAttest(t, prep, 1)
	return trained{world: w, prep: prep, train: train, att: att}
}

// The substituted adapter: a second adapter, validly signed by the same
// worker, moved under the first one's store digest (with its bundles).
// Merge used to accept it ("signed by a trusted key"); it now refuses it as
// not the adapter this run attested.
func TestMergeRefusesSubstitutedAdapter(t *testing.T) {
	w := newTrained(t)
	_, other := w.trainAndAttest(t, w.prep, 2)
	if other.Artifact == w.att.Artifact {
		t.Fatal("precondition: two different adapters")
	}
	dir, _ := w.acts.Store.Path(w.att.Artifact)
	otherDir, _ := w.acts.Store.Path(other.Artifact)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(otherDir, dir); err != nil {
		t.Fatal(err)
	}
	bundles, _ := filepath.Glob(otherDir + ".*" + provenance.BundleSuffix)
	for _, b := range bundles {
		if err := os.Rename(b, dir+strings.TrimPrefix(b, otherDir)); err != nil {
			t.Fatal(err)
		}
	}
	keys, _ := w.acts.Trust.Verifier()
	if _, err := provenance.Verify(t.Context(), dir, keys.TrustedKeys()); err != nil {
		t.Fatalf("precondition: the substitute verifies as signed by a trusted key: %v", err)
	}
	_, err := w.env().ExecuteActivity(w.acts.Merge, MergeInput{Spec: w.spec, BaseModel: w.prep.BaseModel, Snapshot: w.prep.Snapshot,
		Adapter: w.att.Artifact, AdapterAttestation: w.att})
	nonRetryableType(t, err, ErrVerificationFailed, string(provenance.ReasonUnexpectedArtifact))
	// Publish refuses it the same way.
	_, err = w.env().ExecuteActivity(w.acts.Publish, PublishInput{Spec: w.spec, Snapshot: w.prep.Snapshot, BaseModel: w.prep.BaseModel,
		Train: w.train, Attestations: []Attestation{w.att}, InvocationID: "wf/run"})
	nonRetryableType(t, err, ErrVerificationFailed, string(provenance.ReasonUnexpectedArtifact))
}

// Merge checks the adapter's dependencies: the snapshot it names must be
// this run's.
func TestMergeRefusesAdapterOfAnotherSnapshot(t *testing.T) {
	w := newTrained(t)
	other := w.world
	other.spec.Dataset.Seed = 99 // another split: another snapshot
	prep2 := other.prepare(t)
	if prep2.Snapshot == w.prep.Snapshot {
		t.Fatal("precondition: another snapshot")
	}
	_, err := w.env().ExecuteActivity(w.acts.Merge, MergeInput{Spec: w.spec, BaseModel: w.prep.BaseModel, Snapshot: prep2.Snapshot,
		Adapter: w.att.Artifact, AdapterAttestation: w.att})
	nonRetryableType(t, err, ErrVerificationFailed, string(provenance.ReasonBrokenChain))
}

// The published signing key: Attestation.Bundles is activity input; Publish
// used to copy every path listed there into the registry.
func TestPublishCopiesOnlyVerifiedBundles(t *testing.T) {
	w := newTrained(t)
	keyPath := filepath.Join(w.dir, "keys", provenance.PrivateKeyFile)
	key, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	att := w.att
	att.Bundles = append(att.Bundles, keyPath, "/etc/passwd")
	v, err := w.env().ExecuteActivity(w.acts.Publish, PublishInput{Spec: w.spec, Snapshot: w.prep.Snapshot, BaseModel: w.prep.BaseModel,
		Train: w.train, Attestations: []Attestation{att}, InvocationID: "wf/run"})
	if err != nil {
		t.Fatal(err)
	}
	var out PublishOutput
	v.Get(&out)
	var published []string
	filepath.WalkDir(filepath.Join(w.dir, "registry"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, bytes.TrimSpace(key)) {
			t.Errorf("the signing key was published as %s", p)
		}
		published = append(published, filepath.Base(p))
		return nil
	})
	for _, want := range []string{"adapter.provenance.sigstore.json", "adapter.model-signing.sigstore.json"} {
		found := false
		for _, p := range published {
			found = found || p == want
		}
		if !found {
			t.Errorf("bundle %s not published (have %v)", want, published)
		}
	}
}

// Attest re-hashes the store object before signing it.
func TestAttestRefusesChangedStoreObject(t *testing.T) {
	w := newWorld(t, nil)
	prep := w.prepare(t)
	train := w.trainSeed(t, prep, w.spec.Training.Seed)
	dir, _ := w.acts.Store.Path(train.Adapter)
	if err := os.WriteFile(filepath.Join(dir, "adapter_config.json"), []byte(`{"peft_type":"LORA","r":64}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := w.env().ExecuteActivity(w.acts.Attest, AttestInput{Spec: w.spec, Kind: "adapter", Artifact: train.Adapter,
		BaseModel: prep.BaseModel, Snapshot: prep.Snapshot, Train: &train, InvocationID: "wf/run"})
	nonRetryableType(t, err, ErrVerificationFailed, "changed after it was committed")
	if _, err := os.Stat(provenance.BundlePath(dir, provenance.BundleProvenance)); err == nil {
		t.Fatal("the changed object was signed")
	}
}

// A spec path outside the worker's input roots.
func TestSpecPathOutsideRootsIsBadSpec(t *testing.T) {
	w := newWorld(t, nil)
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "leak.jsonl"), []byte(`{"text":"root:x:0:0"}`+"\n"), 0o644)
	s := w.spec
	s.Dataset.Files = []string{filepath.Join(outside, "leak.jsonl")}
	_, err := w.env().ExecuteActivity(w.acts.PrepareData, PrepareDataInput{Spec: s})
	nonRetryableType(t, err, ErrBadSpec, "dataset.files[0]")
	s = w.spec
	s.BaseModel = outside
	_, err = w.env().ExecuteActivity(w.acts.PrepareData, PrepareDataInput{Spec: s})
	nonRetryableType(t, err, ErrBadSpec, "base_model")
}

// The token sent to a foreign host: every run's Evaluate (and FindChampion)
// opened the spec's registry.uri with the worker's MLflow credentials.
func TestSpecRegistryURINeverReceivesTheToken(t *testing.T) {
	var hits atomic.Int32
	foreign := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(rw, `{"error_code":"RESOURCE_DOES_NOT_EXIST"}`, http.StatusNotFound)
	}))
	defer foreign.Close()
	t.Setenv(registry.EnvMLflowToken, "worker-secret")
	w := newTrained(t)
	s := w.spec
	s.Registry.URI = foreign.URL
	_, err := w.env().ExecuteActivity(w.acts.FindChampion, FindChampionInput{Spec: s})
	nonRetryableType(t, err, ErrBadSpec, "registry.uri")
	_, err = w.env().ExecuteActivity(w.acts.Evaluate, EvaluateInput{Spec: s, Snapshot: w.prep.Snapshot, BaseModel: w.prep.BaseModel, Adapter: w.train.Adapter})
	nonRetryableType(t, err, ErrBadSpec, "registry.uri")
	if hits.Load() != 0 {
		t.Fatalf("the foreign host got %d requests", hits.Load())
	}
}

// A spec-supplied trusted key, and a spec choosing the signing key file.
func TestSpecCannotAddTrustedKeysOrPickTheSigningKey(t *testing.T) {
	w := newTrained(t)
	attackerKey, attackerPub, err := provenance.GenerateKey(filepath.Join(t.TempDir(), "k"), provenance.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	s := w.spec
	s.Signing.TrustedKeys = []string{attackerPub}
	_, err = w.env().ExecuteActivity(w.acts.Merge, MergeInput{Spec: s, BaseModel: w.prep.BaseModel, Snapshot: w.prep.Snapshot,
		Adapter: w.att.Artifact, AdapterAttestation: w.att})
	nonRetryableType(t, err, ErrBadSpec, "signing.trusted_keys[0]")
	s = w.spec
	s.Signing.Key = attackerKey
	_, err = w.env().ExecuteActivity(w.acts.Attest, AttestInput{Spec: s, Kind: "adapter", Artifact: w.train.Adapter,
		BaseModel: w.prep.BaseModel, Snapshot: w.prep.Snapshot, Train: &w.train, InvocationID: "wf/run"})
	nonRetryableType(t, err, ErrBadSpec, "signing.key")
	s.Signing.Key = "env:HOME"
	_, err = w.env().ExecuteActivity(w.acts.Attest, AttestInput{Spec: s, Kind: "adapter", Artifact: w.train.Adapter,
		BaseModel: w.prep.BaseModel, Snapshot: w.prep.Snapshot, Train: &w.train, InvocationID: "wf/run"})
	nonRetryableType(t, err, ErrBadSpec, "signing.key")
}

// Held-out text stays out of the eval report unless the operator allows it.
func TestEvalReportQuotesNoHeldOutText(t *testing.T) {
	w := newTrained(t)
	v, err := w.env().ExecuteActivity(w.acts.Evaluate, EvaluateInput{Spec: w.spec, Snapshot: w.prep.Snapshot, BaseModel: w.prep.BaseModel, Adapter: w.train.Adapter})
	if err != nil {
		t.Fatal(err)
	}
	var out EvaluateOutput
	v.Get(&out)
	dir, _ := w.acts.Store.Path(out.Report)
	b, err := os.ReadFile(filepath.Join(dir, EvalReportFile))
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if _, ok := rep["samples"]; ok {
		t.Fatalf("the eval report quotes held-out rows by default: %s", b)
	}
}

// Credentials in a registry URI are never signed into provenance.
func TestAttestRefusesCredentialsInTheSpec(t *testing.T) {
	w := newWorld(t, nil)
	prep := w.prepare(t)
	s := w.spec
	s.Registry.URI = "https://alice:hunter2@mlflow.example.com"
	_, err := w.env().ExecuteActivity(w.acts.Attest, AttestInput{Spec: s, Kind: "eval-report", Artifact: prep.Snapshot,
		BaseModel: prep.BaseModel, Snapshot: prep.Snapshot, InvocationID: "wf/run"})
	nonRetryableType(t, err, ErrBadSpec, "registry.uri")
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("the error repeats the password: %v", err)
	}
	dir, _ := w.acts.Store.Path(prep.Snapshot)
	if _, err := os.Stat(provenance.BundlePath(dir, provenance.BundleProvenance)); err == nil {
		t.Fatal("a statement was signed")
	}
}

// The champion adapter read from the registry is verified before Evaluate
// scores it: a tampered registry copy is not comparable, so the gate never
// promotes over it on its word.
func TestEvaluateDoesNotScoreATamperedChampion(t *testing.T) {
	w := newTrained(t)
	v, err := w.env().ExecuteActivity(w.acts.Publish, PublishInput{Spec: w.spec, Snapshot: w.prep.Snapshot, BaseModel: w.prep.BaseModel,
		Train: w.train, Attestations: []Attestation{w.att}, Promote: true, InvocationID: "wf/run"})
	if err != nil {
		t.Fatal(err)
	}
	var pub PublishOutput
	v.Get(&pub)
	in := EvaluateInput{Spec: w.spec, Snapshot: w.prep.Snapshot, BaseModel: w.prep.BaseModel, Adapter: w.train.Adapter}
	var out EvaluateOutput
	if v, err = w.env().ExecuteActivity(w.acts.Evaluate, in); err != nil {
		t.Fatal(err)
	}
	v.Get(&out)
	if !out.HasChampion || !out.ChampionComparable {
		t.Fatalf("precondition: the intact champion is scored: %+v", out)
	}
	reg, err := registry.Open(t.Context(), "file://"+filepath.Join(w.dir, "registry"))
	if err != nil {
		t.Fatal(err)
	}
	ver, _, err := reg.GetByAlias(t.Context(), w.spec.Name, registry.AliasChampion)
	if err != nil {
		t.Fatal(err)
	}
	weights := filepath.Join(ver.Artifacts["adapter"], "adapter_model.safetensors")
	b, err := os.ReadFile(weights)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1
	os.Chmod(weights, 0o644)
	if err := os.WriteFile(weights, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if v, err = w.env().ExecuteActivity(w.acts.Evaluate, in); err != nil {
		t.Fatal(err)
	}
	out = EvaluateOutput{}
	v.Get(&out)
	if !out.HasChampion || out.ChampionComparable || !strings.Contains(out.ChampionNote, "does not verify") {
		t.Fatalf("a tampered champion was scored: %+v", out)
	}
}
