package activities

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/loraflow/loraflow/argo"
	"github.com/loraflow/loraflow/carbon"
	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/pipeline"
	"github.com/loraflow/loraflow/spec"
)

// fakeArgo plays the Argo backend: it runs the trainer contract in process
// (like the trainer image's `loraflow train`) or fails as told. As
// argo.Backend.Train does, a job whose Workflow already succeeded is adopted,
// not run again: its output folder must still hold the adapter, or the
// result is a non-retryable InvalidAdapter (argo/backend.go, Train and
// submit).
type fakeArgo struct {
	fail      error
	jobs      []argo.Job
	succeeded map[string]bool // by Workflow name
	stopped   []argo.Job
	// reported, when set, is the energy the trainer reports in its result
	// (cmd/loraflow/cmd_train.go measures it with pipeline.Measure).
	reported *carbon.Report
}

func (f *fakeArgo) Stop(_ context.Context, job argo.Job) error {
	f.stopped = append(f.stopped, job)
	return nil
}

func (f *fakeArgo) Train(ctx context.Context, job argo.Job, heartbeat func(argo.Status)) (string, error) {
	f.jobs = append(f.jobs, job)
	if f.fail != nil {
		return "", f.fail
	}
	name := argo.DefaultName(job, "img", 1)
	if f.succeeded[name] {
		if _, err := peft.Load(job.OutputDir); err != nil {
			return "", &argo.Error{Workflow: name, Phase: "Succeeded", Reason: argo.ReasonInvalidAdapter, ExitCode: 0, Err: err}
		}
		return job.OutputDir, nil
	}
	// The trainer reads the spec with spec.Load (cmd/loraflow/cmd_train.go);
	// a spec it refuses makes it exit 2, which Argo reports as bad input.
	sp, err := spec.Load(job.SpecPath)
	if err != nil {
		return "", &argo.Error{Workflow: name, Phase: "Failed", Reason: argo.ReasonBadInput, ExitCode: argo.ExitBadInput, Err: err}
	}
	s := *sp
	heartbeat(argo.Status{Phase: "Running", Trainer: &argo.TrainerProgress{Step: 1, TotalSteps: 4}})
	if err := os.MkdirAll(job.OutputDir, 0o755); err != nil {
		return "", err
	}
	res, err := pipeline.TrainAdapter(ctx, s, job.SnapshotPath, job.OutputDir, filepath.Join(job.OutputDir+".ck"), nil)
	if err != nil {
		return "", err
	}
	res.Usage = f.reported
	for i, a := range job.ExtraArgs { // the contract's --result file
		if a == "--result" && i+1 < len(job.ExtraArgs) {
			b, _ := json.Marshal(res)
			if err := os.WriteFile(job.ExtraArgs[i+1], b, 0o644); err != nil {
				return "", err
			}
		}
	}
	if f.succeeded == nil {
		f.succeeded = map[string]bool{}
	}
	f.succeeded[name] = true
	return job.OutputDir, nil
}

func TestTrainLoRAOnRemoteTrainer(t *testing.T) {
	w := newWorld(t, nil)
	prep := w.prepare(t)
	fake := &fakeArgo{}
	w.acts.RemoteTrainer = argo.RemoteTrainer(fake)
	v, err := w.env().ExecuteActivity(w.acts.TrainLoRA, TrainInput{Spec: w.spec, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel})
	if err != nil {
		t.Fatal(err)
	}
	var out TrainOutput
	v.Get(&out)
	if len(fake.jobs) != 1 || out.Adapter.SHA256 == "" || out.Steps != 4 || len(out.Losses) != 4 {
		t.Fatalf("jobs %d, out %+v", len(fake.jobs), out)
	}
	if p, err := w.acts.Store.Path(out.Adapter); err != nil || pipeline.CheckAdapterFitsBase(p, w.spec.BaseModel) != nil {
		t.Fatalf("adapter from the remote trainer not in the store or not fitting: %v", err)
	}
	// A retry uses the same job paths, so the backend adopts the same Workflow.
	again := &fakeArgo{fail: errors.New("stop here")}
	w.acts.RemoteTrainer = argo.RemoteTrainer(again)
	w.spec.Training.Seed++ // new inputs: a new work folder
	w.env().ExecuteActivity(w.acts.TrainLoRA, TrainInput{Spec: w.spec, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel})
	w.env().ExecuteActivity(w.acts.TrainLoRA, TrainInput{Spec: w.spec, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel})
	if len(again.jobs) != 2 || again.jobs[0].OutputDir != again.jobs[1].OutputDir || argo.DefaultName(again.jobs[0], "img", 1) != argo.DefaultName(again.jobs[1], "img", 1) {
		t.Fatalf("retried attempts gave different jobs: %+v", again.jobs)
	}
}

func TestRemoteTrainerBadInputIsNonRetryable(t *testing.T) {
	w := newWorld(t, nil)
	prep := w.prepare(t)
	w.acts.RemoteTrainer = argo.RemoteTrainer(&fakeArgo{fail: &argo.Error{Reason: argo.ReasonBadInput, ExitCode: 2, Message: "trainer: rank too large"}})
	_, err := w.env().ExecuteActivity(w.acts.TrainLoRA, TrainInput{Spec: w.spec, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel})
	nonRetryableType(t, err, "Argo"+string(argo.ReasonBadInput), "rank too large")
}

func TestCheckAdapterFitsBaseRejectsWrongShapes(t *testing.T) {
	w := newWorld(t, nil)
	prep := w.prepare(t)
	snap, _ := w.acts.Store.Path(prep.Snapshot)
	out := filepath.Join(w.dir, "ad")
	os.MkdirAll(out, 0o755)
	other := w.spec
	other.LoRA.TargetModules = spec.Targets("q_proj")
	if _, err := pipeline.TrainAdapter(context.Background(), other, snap, out, filepath.Join(w.dir, "ck"), nil); err != nil {
		t.Fatal(err)
	}
	// A base model of other sizes: the adapter's shapes do not fit.
	big := filepath.Join(w.dir, "big")
	if err := writeWiderModel(big); err != nil {
		t.Fatal(err)
	}
	if err := pipeline.CheckAdapterFitsBase(out, big); err == nil {
		t.Fatal("adapter accepted for a base model of other shapes")
	}
}

func writeWiderModel(dir string) error {
	m, err := lora.NewModel(lora.ModelConfig{ModelType: "llama", VocabSize: 300, Hidden: 48, Layers: 2, Heads: 4, KVHeads: 2,
		Intermediate: 64, MaxPositions: 64, BosTokenID: -1, EosTokenID: -1}, 1)
	if err != nil {
		return err
	}
	return m.Save(dir)
}
