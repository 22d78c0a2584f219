package pipeline

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/loraflow/loraflow/artifact"
	"github.com/loraflow/loraflow/internal/testmodel"
	"github.com/loraflow/loraflow/provenance"
	"github.com/loraflow/loraflow/registry"
	"github.com/loraflow/loraflow/spec"
)

// The steps run without Temporal, as a command-line tool would chain them:
// prepare, train, evaluate, attest, merge, publish, each taking the
// previous one's output. Each artifact keeps one digest from the store to
// the registry.
func TestStepsRunWithoutTemporal(t *testing.T) {
	ctx := context.Background()
	dir, sp, store := tinyRun(t, `training: {steps: 4, batch_size: 4, seq_len: 32, seed: 1, checkpoint_every: 2}`)
	priv, pub, err := provenance.GenerateKey(filepath.Join(dir, "keys"), provenance.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := provenance.LoadSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := provenance.LoadTrustedKeys(pub)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := provenance.NewVerifier(keys)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Open(ctx, "file://"+filepath.Join(dir, "registry"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()

	prep, err := PrepareData(ctx, store, PrepareDataInput{Spec: *sp}, StepOptions{})
	if err != nil {
		t.Fatal(err)
	}
	snapDir, _ := store.Path(prep.Snapshot)
	adapterDir, err := store.ScratchDir("adapter")
	if err != nil {
		t.Fatal(err)
	}
	res, err := TrainAdapter(ctx, *sp, snapDir, adapterDir, filepath.Join(dir, "checkpoints"), nil)
	if err != nil {
		t.Fatal(err)
	}
	trainedRef, err := store.Commit(ctx, adapterDir)
	if err != nil {
		t.Fatal(err)
	}
	train := TrainOutput{Adapter: trainedRef, Steps: res.Steps, Tokens: res.Tokens, FinalLoss: res.FinalLoss, Losses: res.Losses, FLOPs: res.FLOPs}
	champ, err := FindChampion(ctx, reg, verifier, *sp, prep.BaseModel.SHA256, prep.Snapshot.SHA256, nil)
	if err != nil || champ.Found {
		t.Fatalf("champion before any publish: %+v %v", champ, err)
	}
	ev, err := Evaluate(ctx, store, EvaluateInput{Spec: *sp, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel, Adapter: trainedRef}, EvaluateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	attest := func(in AttestInput) Attestation {
		t.Helper()
		in.Spec, in.BaseModel, in.Snapshot, in.InvocationID = *sp, prep.BaseModel, prep.Snapshot, "cli/run"
		att, err := Attest(ctx, store, signer, in, AttestOptions{WorkerIdentity: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if att.FolderDigest != att.Artifact.SHA256 {
			t.Fatalf("%s: provenance names %s, the store key is %s", att.Kind, att.FolderDigest, att.Artifact.SHA256)
		}
		return att
	}
	adapterAtt := attest(AttestInput{Kind: "adapter", Artifact: trainedRef, Train: &train, Eval: &ev})
	evalAtt := attest(AttestInput{Kind: "eval-report", Artifact: ev.Report, Eval: &ev, Parents: []Attestation{adapterAtt}})
	merged, err := Merge(ctx, store, verifier, MergeInput{Spec: *sp, BaseModel: prep.BaseModel, Snapshot: prep.Snapshot,
		Adapter: adapterAtt.Artifact, AdapterAttestation: adapterAtt}, StepOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mergedAtt := attest(AttestInput{Kind: "merged-model", Artifact: merged.Merged, Parents: []Attestation{adapterAtt}})
	pubOut, err := Publish(ctx, store, verifier, reg, PublishInput{Spec: *sp, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel,
		Train: train, Eval: ev, Merge: &merged, Attestations: []Attestation{adapterAtt, evalAtt, mergedAtt}, Promote: true, InvocationID: "cli/run"}, StepOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ver, ok, err := reg.GetByAlias(ctx, sp.Name, registry.AliasChampion)
	if err != nil || !ok || ver.Version != pubOut.Version {
		t.Fatalf("champion %+v %v %v, published %+v", ver, ok, err, pubOut)
	}
	if ver.Tags[registry.TagAdapterDigest] != adapterAtt.Artifact.SHA256 || ver.Tags[registry.TagMergedDigest] != mergedAtt.Artifact.SHA256 {
		t.Fatalf("registry tags %v; attested adapter %s, merged %s", ver.Tags, adapterAtt.Artifact.SHA256, mergedAtt.Artifact.SHA256)
	}
}

// tinyRun makes, in a temporary folder, a tiny Llama base, a text dataset,
// a store, and the spec of a run on them; training (and any further spec
// lines) completes the spec.
func tinyRun(t *testing.T, training string) (dir string, sp *spec.Spec, store *artifact.Store) {
	t.Helper()
	dir = t.TempDir()
	base := filepath.Join(dir, "base")
	if err := testmodel.Llama(base, testmodel.Corpus(120), 300, 1); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data.jsonl")
	if err := testmodel.WriteTextJSONL(data, testmodel.Corpus(60)); err != nil {
		t.Fatal(err)
	}
	sp, err := spec.Parse([]byte(`
name: tiny
base_model: base
dataset: {files: [data.jsonl], format: text}
lora: {r: 2, target_modules: [q_proj, v_proj]}
`+training+"\n"), "tiny.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sp.BaseModel, sp.Dataset.Files = base, []string{data}
	store, err = artifact.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	return dir, sp, store
}
