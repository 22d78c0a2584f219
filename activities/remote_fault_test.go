package activities

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/loraflow/loraflow/argo"
	"github.com/loraflow/loraflow/pipeline"
	"github.com/loraflow/loraflow/spec"
)

// TestWriteSpecRoundTrip: the spec file handed to the remote trainer is
// accepted by the trainer's spec.Load and gives back the same spec, on the
// quickstart spec and with the fields the worker leaves unset (registry,
// carbon.pue, signing key) and a false that is not a default.
func TestWriteSpecRoundTrip(t *testing.T) {
	qs, err := spec.Load(filepath.Join("..", "examples", "quickstart", "spec.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	unset := *qs
	unset.Registry.URI, unset.Carbon.PUE, unset.Signing.Key = "", 0, ""
	unset.LoRA.InitLoraWeights = spec.InitLoraWeights{InitLoraWeights: "false"}
	for name, s := range map[string]spec.Spec{"quickstart": *qs, "unset fields": unset} {
		t.Run(name, func(t *testing.T) {
			// json.Marshal alone gives what the schema refuses.
			if raw, _ := json.Marshal(s); name == "unset fields" {
				if _, err := spec.Parse(raw, "marshalled.json"); err == nil {
					t.Fatal("the schema accepts registry.uri \"\" and carbon.pue 0: the test no longer checks the pruning")
				}
			}
			p := filepath.Join(t.TempDir(), "spec.json")
			if err := pipeline.WriteTrainerSpec(p, s); err != nil {
				t.Fatal(err)
			}
			back, err := spec.Load(p)
			if err != nil {
				t.Fatalf("the trainer refuses the spec it is given: %v", err)
			}
			if !reflect.DeepEqual(*back, s) {
				t.Fatalf("round trip changed the spec:\n got %+v\nwant %+v", *back, s)
			}
		})
	}
}

// TestRemoteContextKeepsShutdownApartFromCancel: the remote trainer sees
// context.Canceled only for Temporal's cancellation; a worker shutdown or
// an attempt's deadline keeps its cause, so the remote run is left for the
// next attempt (argo.IsCancel false).
func TestRemoteContextKeepsShutdownApartFromCancel(t *testing.T) {
	for name, c := range map[string]struct {
		cause  error
		cancel bool
	}{
		"temporal cancel":  {temporal.NewCanceledError(), true},
		"plain cancel":     {context.Canceled, true},
		"worker shutdown":  {worker.ErrWorkerShutdown, false},
		"attempt deadline": {context.DeadlineExceeded, false},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			rctx, stop := remoteContext(ctx)
			defer stop()
			cancel(c.cause)
			<-rctx.Done()
			if got := argo.IsCancel(context.Cause(rctx)); got != c.cancel {
				t.Fatalf("IsCancel(%v) = %v, want %v", context.Cause(rctx), got, c.cancel)
			}
		})
	}
}

// weightsDigest is the sha256 of an adapter's weights file (the config
// names the base model's path, which differs between test folders).
func weightsDigest(t *testing.T, w world, out TrainOutput) [32]byte {
	t.Helper()
	p, err := w.acts.Store.Path(out.Adapter)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(p, "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestRemoteTrainingSurvivesACrashAtEachPoint: a worker crash after the
// remote run succeeded — before the adapter is committed, after the commit,
// after train_result.json — leaves what the retry needs: it adopts the
// finished remote run (no second training) and ends with the adapter an
// uninterrupted run makes.
func TestRemoteTrainingSurvivesACrashAtEachPoint(t *testing.T) {
	train := func(t *testing.T, w world, fake *fakeArgo, prep PrepareDataOutput) (TrainOutput, error) {
		w.acts.RemoteTrainer = argo.RemoteTrainer(fake)
		v, err := w.env().ExecuteActivity(w.acts.TrainLoRA, TrainInput{Spec: w.spec, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel})
		var out TrainOutput
		if err == nil {
			err = v.Get(&out)
		}
		return out, err
	}
	ref := newWorld(t, nil)
	want, err := train(t, ref, &fakeArgo{}, ref.prepare(t))
	if err != nil {
		t.Fatal(err)
	}
	wantWeights := weightsDigest(t, ref, want)

	crash := errors.New("injected crash")
	for _, point := range []string{"train:trained", "train:committed", "train:recorded"} {
		t.Run(point, func(t *testing.T) {
			w := newWorld(t, nil)
			prep := w.prepare(t)
			fake := &fakeArgo{}
			injectFault = func(p string) error {
				if p == point {
					return crash
				}
				return nil
			}
			_, err := train(t, w, fake, prep)
			injectFault = func(string) error { return nil }
			if err == nil || !strings.Contains(err.Error(), crash.Error()) {
				t.Fatalf("first attempt: err = %v, want the injected crash", err)
			}
			got, err := train(t, w, fake, prep)
			if err != nil {
				t.Fatalf("retry after a crash at %s: %v", point, err)
			}
			if weightsDigest(t, w, got) != wantWeights || got.Steps != want.Steps {
				t.Fatalf("retry gave another adapter (steps %d, want %d)", got.Steps, want.Steps)
			}
			trained := 0
			for range fake.succeeded {
				trained++
			}
			if trained != 1 {
				t.Fatalf("%d remote runs, want 1 (adopted)", trained)
			}
			work, err := w.acts.Store.WorkDir("train", trainKey(TrainInput{Spec: w.spec, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel}))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(pipeline.RemoteJobFor(w.spec, "", work).OutputDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("remote adapter folder left after the recorded result (err %v)", err)
			}
		})
	}
}

// TestStopRemoteTrainingNamesTheRunsJob: the pipeline's cleanup stops the
// job TrainLoRA started (same paths, so the same Workflow name).
func TestStopRemoteTrainingNamesTheRunsJob(t *testing.T) {
	w := newWorld(t, nil)
	prep := w.prepare(t)
	fake := &fakeArgo{fail: errors.New("stop here")}
	w.acts.RemoteTrainer = argo.RemoteTrainer(fake)
	in := TrainInput{Spec: w.spec, Snapshot: prep.Snapshot, BaseModel: prep.BaseModel}
	w.env().ExecuteActivity(w.acts.TrainLoRA, in)
	if _, err := w.env().ExecuteActivity(w.acts.StopRemoteTraining, in); err != nil {
		t.Fatal(err)
	}
	if len(fake.jobs) != 1 || len(fake.stopped) != 1 || argo.DefaultName(fake.jobs[0], "img", 1) != argo.DefaultName(fake.stopped[0], "img", 1) {
		t.Fatalf("started %+v, stopped %+v", fake.jobs, fake.stopped)
	}
	// Local training: nothing to stop.
	w.acts.RemoteTrainer = nil
	if _, err := w.env().ExecuteActivity(w.acts.StopRemoteTraining, in); err != nil {
		t.Fatal(err)
	}
}
