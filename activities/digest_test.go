package activities

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/loraflow/loraflow/artifact"
	"github.com/loraflow/loraflow/pipeline"
	"github.com/loraflow/loraflow/provenance"
	"github.com/loraflow/loraflow/registry"
)

// One digest per artifact: the adapter's store key is the digest its
// provenance statement names and the one its registry version records; the
// base model and the dataset snapshot are named by the digests PrepareData
// gave them, in the statement and in the registry alike; the registry's
// version key (the trained adapter) is the attested adapter's files but its
// model card, recomputable from the published folder.
func TestOneDigestPerArtifact(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, nil)
	prep := w.prepare(t)
	train, att := w.trainAndAttest(t, prep, w.spec.Training.Seed)
	if att.FolderDigest != att.Artifact.SHA256 {
		t.Fatalf("provenance names %s, the store key is %s", att.FolderDigest, att.Artifact.SHA256)
	}
	dir, _ := w.acts.Store.Path(att.Artifact)
	verifier, err := w.acts.Trust.Verifier()
	if err != nil {
		t.Fatal(err)
	}
	pol, err := provenance.NewPolicy(provenance.WithFolderDigest(att.Artifact.SHA256))
	if err != nil {
		t.Fatal(err)
	}
	verdict, err := verifier.Verify(ctx, dir, pol)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	base, _ := verdict.Dependency(provenance.RoleBaseModel)
	data, _ := verdict.Dependency(provenance.RoleDataset)
	if verdict.SHA256 != att.Artifact.SHA256 || base.SHA256 != prep.BaseModel.SHA256 || data.SHA256 != prep.Snapshot.SHA256 {
		t.Fatalf("statement: artifact %s base %s data %s; store/prepare: %s %s %s",
			verdict.SHA256, base.SHA256, data.SHA256, att.Artifact.SHA256, prep.BaseModel.SHA256, prep.Snapshot.SHA256)
	}
	if d, _ := artifact.DigestDir(ctx, w.spec.BaseModel); d != base.SHA256 {
		t.Fatalf("the base folder hashes to %s, its dependency is %s", d, base.SHA256)
	}

	v, err := w.env().ExecuteActivity(w.acts.Publish, PublishInput{Spec: w.spec, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel,
		Train: train, Attestations: []Attestation{att}, Promote: true, InvocationID: "wf/run"})
	if err != nil {
		t.Fatal(err)
	}
	var pub PublishOutput
	v.Get(&pub)
	reg, err := registry.Open(ctx, "file://"+filepath.Join(w.dir, "registry"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	ver, ok, err := reg.GetByAlias(ctx, w.spec.Name, registry.AliasChampion)
	if err != nil || !ok {
		t.Fatalf("champion: %v %v", ok, err)
	}
	if ver.Tags[registry.TagAdapterDigest] != att.Artifact.SHA256 || ver.Tags[registry.TagBaseModelDigest] != base.SHA256 || ver.Tags[registry.TagDatasetDigest] != data.SHA256 {
		t.Fatalf("registry tags %v, statement artifact %s base %s data %s", ver.Tags, att.Artifact.SHA256, base.SHA256, data.SHA256)
	}
	// The version key: the published adapter without its card.
	published := ver.Artifacts["adapter"]
	td, err := provenance.HashTree(ctx, published)
	if err != nil {
		t.Fatal(err)
	}
	var weights []provenance.FileDigest
	for _, f := range td.Files {
		if f.Name != pipeline.ModelCardFile {
			weights = append(weights, f)
		}
	}
	if td.Manifest != att.Artifact.SHA256 || provenance.ManifestDigest(weights) != train.Adapter.SHA256 || ver.ArtifactDigest != "sha256:"+train.Adapter.SHA256 {
		t.Fatalf("published folder %s (store %s); without its card %s, version key %q (trained %s)",
			td.Manifest, att.Artifact.SHA256, provenance.ManifestDigest(weights), ver.ArtifactDigest, train.Adapter.SHA256)
	}
}

// Attest hashes the object it signs once and signs only if those bytes are
// the store object's: an eval report changed after Evaluate committed it is
// refused, and nothing is signed.
func TestAttestSignsOnlyTheBytesItHashed(t *testing.T) {
	w := newTrained(t)
	v, err := w.env().ExecuteActivity(w.acts.Evaluate, EvaluateInput{Spec: w.spec, Snapshot: w.prep.Snapshot, BaseModel: w.prep.BaseModel, Adapter: w.att.Artifact})
	if err != nil {
		t.Fatal(err)
	}
	var ev EvaluateOutput
	v.Get(&ev)
	dir, _ := w.acts.Store.Path(ev.Report)
	if err := os.WriteFile(filepath.Join(dir, EvalReportFile), []byte(`{"adapter":{"Loss":0.001}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = w.env().ExecuteActivity(w.acts.Attest, AttestInput{Spec: w.spec, Kind: "eval-report", Artifact: ev.Report, BaseModel: w.prep.BaseModel,
		Snapshot: w.prep.Snapshot, Eval: &ev, Parents: []Attestation{w.att}, InvocationID: "wf/run"})
	nonRetryableType(t, err, ErrVerificationFailed, "changed after it was committed")
	if _, err := os.Stat(provenance.BundlePath(dir, provenance.BundleProvenance)); err == nil {
		t.Fatal("the changed report was signed")
	}
}
