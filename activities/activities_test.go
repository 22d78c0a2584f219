package activities

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/loraflow/loraflow/artifact"
	"github.com/loraflow/loraflow/internal/testmodel"
	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/provenance"
	"github.com/loraflow/loraflow/spec"
	"github.com/loraflow/loraflow/trust"
)

// world is a tiny base model, a dataset, a key and a store.
type world struct {
	acts *Activities
	spec spec.Spec
	dir  string
}

func newWorld(t *testing.T, lines []string) world {
	t.Helper()
	dir := t.TempDir()
	if err := testmodel.Llama(filepath.Join(dir, "base"), testmodel.Corpus(120), 300, 1); err != nil {
		t.Fatal(err)
	}
	if lines == nil {
		for _, l := range testmodel.Corpus(60) {
			b, _ := json.Marshal(map[string]string{"text": l})
			lines = append(lines, string(b))
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "data.jsonl"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	key, _, err := provenance.GenerateKey(filepath.Join(dir, "keys"), provenance.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	store, err := artifact.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	sp, err := spec.Parse([]byte(`
name: tiny
base_model: base
dataset: {files: [data.jsonl], format: text}
lora: {r: 2, target_modules: [q_proj, v_proj]}
training: {steps: 4, batch_size: 4, seq_len: 32, seed: 1, checkpoint_every: 2}
`), "tiny.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sp.BaseModel = filepath.Join(dir, "base")
	sp.Dataset.Files = []string{filepath.Join(dir, "data.jsonl")}
	policy, err := trust.New(trust.Config{ArtifactRoot: store.Root(), InputRoots: []string{dir}, SigningKey: key,
		Registries: []trust.Registry{{Name: trust.DefaultName, URI: "file://" + filepath.Join(dir, "registry")}}})
	if err != nil {
		t.Fatal(err)
	}
	return world{acts: &Activities{Store: store, Trust: policy}, spec: *sp, dir: dir}
}

func (w world) env() *testsuite.TestActivityEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(w.acts)
	return env
}

// nonRetryableType asserts err is a non-retryable application error of the
// given type whose message contains want.
func nonRetryableType(t *testing.T, err error, typ, want string) {
	t.Helper()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		t.Fatalf("want an application error, got %v", err)
	}
	if appErr.Type() != typ || !appErr.NonRetryable() {
		t.Fatalf("type %q non-retryable %v, want %q non-retryable: %v", appErr.Type(), appErr.NonRetryable(), typ, err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error does not name %q: %v", want, err)
	}
}

func (w world) prepare(t *testing.T) PrepareDataOutput {
	t.Helper()
	v, err := w.env().ExecuteActivity(w.acts.PrepareData, PrepareDataInput{Spec: w.spec})
	if err != nil {
		t.Fatal(err)
	}
	var out PrepareDataOutput
	if err := v.Get(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPrepareDataBadRowIsNonRetryableAndNamed(t *testing.T) {
	w := newWorld(t, []string{`{"text":"fine"}`, `{"text":"also fine"}`, `{"text": 3}`})
	_, err := w.env().ExecuteActivity(w.acts.PrepareData, PrepareDataInput{Spec: w.spec})
	nonRetryableType(t, err, ErrBadData, `data.jsonl:3: field "text" is float64`)
}

func TestTrainBadInputIsNonRetryable(t *testing.T) {
	w := newWorld(t, nil)
	prep := w.prepare(t)
	cases := []struct {
		name, typ, want string
		edit            func(s *spec.Spec)
	}{
		{"wrong target module", lora.KindTargetModuleNotFound, "q_proj", func(s *spec.Spec) { s.LoRA.TargetModules = spec.Targets("qkv_proj") }},
		{"rank above layer size", lora.KindRankTooLarge, "r = 64 is larger than min(in, out) = 32 of model.layers.0.self_attn.q_proj", func(s *spec.Spec) { s.LoRA.R = 64 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := w.spec
			c.edit(&s)
			_, err := w.env().ExecuteActivity(w.acts.TrainLoRA, TrainInput{Spec: s, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel})
			nonRetryableType(t, err, c.typ, c.want)
		})
	}
}

func TestCorruptBaseModelIsNonRetryableAndNamesTheFile(t *testing.T) {
	w := newWorld(t, nil)
	weights := filepath.Join(w.spec.BaseModel, "model.safetensors")
	b, _ := os.ReadFile(weights)
	if err := os.WriteFile(weights, b[:len(b)/2], 0o644); err != nil { // truncated
		t.Fatal(err)
	}
	prep := w.prepare(t)
	_, err := w.env().ExecuteActivity(w.acts.TrainLoRA, TrainInput{Spec: w.spec, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel})
	nonRetryableType(t, err, lora.KindCorruptCheckpoint, "model.safetensors")
}

func TestBaseModelChangedAfterPrepareIsRefused(t *testing.T) {
	w := newWorld(t, nil)
	prep := w.prepare(t)
	if err := os.WriteFile(filepath.Join(w.spec.BaseModel, "generation_config.json"), []byte(`{"changed":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := w.env().ExecuteActivity(w.acts.TrainLoRA, TrainInput{Spec: w.spec, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel})
	nonRetryableType(t, err, ErrBadSpec, "changed since PrepareData")
}

func TestTrainRetryReturnsTheSameAdapter(t *testing.T) {
	w := newWorld(t, nil)
	prep := w.prepare(t)
	in := TrainInput{Spec: w.spec, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel}
	var first, second TrainOutput
	v, err := w.env().ExecuteActivity(w.acts.TrainLoRA, in)
	if err != nil {
		t.Fatal(err)
	}
	v.Get(&first)
	v, err = w.env().ExecuteActivity(w.acts.TrainLoRA, in)
	if err != nil {
		t.Fatal(err)
	}
	v.Get(&second)
	if first.Adapter != second.Adapter || first.Steps != 4 {
		t.Fatalf("retry made another adapter: %+v vs %+v", first.Adapter, second.Adapter)
	}
}

func TestMergeRefusesUnsignedOrTamperedAdapter(t *testing.T) {
	w := newWorld(t, nil)
	prep := w.prepare(t)
	v, err := w.env().ExecuteActivity(w.acts.TrainLoRA, TrainInput{Spec: w.spec, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel})
	if err != nil {
		t.Fatal(err)
	}
	var train TrainOutput
	v.Get(&train)
	// Merge binds to the run's attestation: without one nothing is merged.
	_, err = w.env().ExecuteActivity(w.acts.Merge, MergeInput{Spec: w.spec, BaseModel: prep.BaseModel, Snapshot: prep.Snapshot, Adapter: train.Adapter})
	nonRetryableType(t, err, ErrVerificationFailed, "AdapterAttestation")
	// Unsigned: never attested, whatever the input claims.
	claim := Attestation{Kind: "adapter", Artifact: train.Adapter, Digest: strings.Repeat("1", 64), FolderDigest: strings.Repeat("2", 64)}
	_, err = w.env().ExecuteActivity(w.acts.Merge, MergeInput{Spec: w.spec, BaseModel: prep.BaseModel, Snapshot: prep.Snapshot, Adapter: train.Adapter, AdapterAttestation: claim})
	nonRetryableType(t, err, ErrVerificationFailed, "Unsigned")

	// Attested, then one byte flipped.
	v, err = w.env().ExecuteActivity(w.acts.Attest, AttestInput{Spec: w.spec, Kind: "adapter", Artifact: train.Adapter,
		BaseModel: prep.BaseModel, Snapshot: prep.Snapshot, Train: &train, InvocationID: "wf/run"})
	if err != nil {
		t.Fatal(err)
	}
	var att Attestation
	v.Get(&att)
	dir, _ := w.acts.Store.Path(att.Artifact)
	weights := filepath.Join(dir, "adapter_model.safetensors")
	b, _ := os.ReadFile(weights)
	b[len(b)-1] ^= 1
	os.WriteFile(weights, b, 0o644)
	_, err = w.env().ExecuteActivity(w.acts.Merge, MergeInput{Spec: w.spec, BaseModel: prep.BaseModel, Snapshot: prep.Snapshot, Adapter: att.Artifact, AdapterAttestation: att})
	nonRetryableType(t, err, ErrVerificationFailed, "adapter_model.safetensors")
	// The earlier artifacts are intact: the snapshot still verifies by digest.
	snap, _ := w.acts.Store.Path(prep.Snapshot)
	if d, _ := artifact.DigestDir(t.Context(), snap); d != prep.Snapshot.SHA256 {
		t.Fatal("snapshot changed")
	}
}

func TestPublishVerifiesAndIsIdempotent(t *testing.T) {
	w := newWorld(t, nil)
	prep := w.prepare(t)
	env := w.env()
	v, err := env.ExecuteActivity(w.acts.TrainLoRA, TrainInput{Spec: w.spec, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel})
	if err != nil {
		t.Fatal(err)
	}
	var train TrainOutput
	v.Get(&train)
	v, err = env.ExecuteActivity(w.acts.Attest, AttestInput{Spec: w.spec, Kind: "adapter", Artifact: train.Adapter,
		BaseModel: prep.BaseModel, Snapshot: prep.Snapshot, Train: &train, InvocationID: "wf/run"})
	if err != nil {
		t.Fatal(err)
	}
	var att Attestation
	v.Get(&att)
	in := PublishInput{Spec: w.spec, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel, Train: train,
		Attestations: []Attestation{att}, Promote: true, InvocationID: "wf/run"}
	var first, again PublishOutput
	if v, err = env.ExecuteActivity(w.acts.Publish, in); err != nil {
		t.Fatal(err)
	}
	v.Get(&first)
	if v, err = env.ExecuteActivity(w.acts.Publish, in); err != nil {
		t.Fatal(err)
	}
	v.Get(&again)
	if first.Version != "1" || again.Version != "1" || !again.Existed || first.Alias != "champion" {
		t.Fatalf("publish %+v, retried publish %+v", first, again)
	}
	// A tampered adapter is refused before anything is registered.
	dir, _ := w.acts.Store.Path(att.Artifact)
	os.WriteFile(filepath.Join(dir, "README.md"), []byte("edited card"), 0o644)
	_, err = env.ExecuteActivity(w.acts.Publish, in)
	nonRetryableType(t, err, ErrVerificationFailed, "README.md")
}

func TestClassificationAccuracyRises(t *testing.T) {
	var lines []string
	animals := []string{"cat", "dog", "bird", "horse"}
	people := []string{"man", "child", "friend", "woman"}
	places := []string{"the river", "a house", "the hill", "a tree", "the road"}
	for i := 0; i < 80; i++ {
		// Labels of equal token length, so that accuracy measures what was learnt.
		who, label := animals[i%4], "A"
		if i%2 == 1 {
			who, label = people[(i/2)%4], "B"
		}
		b, _ := json.Marshal(map[string]string{"text": "the " + who + " walked to " + places[i%5] + " " + strings.Repeat("again ", i%3), "label": label})
		lines = append(lines, string(b))
	}
	w := newWorld(t, lines)
	w.spec.Dataset.Format = "classification"
	w.spec.Dataset.ValidationFraction = 0.25
	// 100 steps at 0.005 learn the labels (accuracy 1.0 from 90 to 110 steps
	// and 0.004 to 0.006); at 0.02 the loss plateaus and the accuracy of 18
	// examples flips with rounding.
	w.spec.Training.Steps, w.spec.Training.LearningRate, w.spec.Training.BatchSize, w.spec.Training.SeqLen = 100, 0.005, 8, 96
	w.spec.LoRA.R, w.spec.LoRA.LoraAlpha, w.spec.LoRA.TargetModules = 8, 16, spec.TargetPattern("all-linear")
	prep := w.prepare(t)
	env := w.env()
	v, err := env.ExecuteActivity(w.acts.TrainLoRA, TrainInput{Spec: w.spec, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel})
	if err != nil {
		t.Fatal(err)
	}
	var train TrainOutput
	v.Get(&train)
	v, err = env.ExecuteActivity(w.acts.Evaluate, EvaluateInput{Spec: w.spec, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel, Adapter: train.Adapter})
	if err != nil {
		t.Fatal(err)
	}
	var ev EvaluateOutput
	v.Get(&ev)
	t.Logf("accuracy %.3f -> %.3f, loss %.4f -> %.4f", ev.Base.Accuracy, ev.Adapter.Accuracy, ev.Base.Loss, ev.Adapter.Loss)
	if !ev.Classification || ev.Adapter.Accuracy < 0.8 || ev.Adapter.Accuracy <= ev.Base.Accuracy || ev.Adapter.Loss >= ev.Base.Loss {
		t.Fatalf("classification did not improve: %+v", ev)
	}
}
