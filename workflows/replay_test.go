package workflows_test

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/loraflow/loraflow"
	"github.com/loraflow/loraflow/internal/testmodel"
	"github.com/loraflow/loraflow/spec"
	"github.com/loraflow/loraflow/workflows"
)

// record re-records the histories instead of only replaying them; see
// testdata/README.md (go test ./workflows -run TestRecordHistories -record).
var record = flag.Bool("record", false, "re-record testdata/replay/*.json on a Temporal dev server")

// recorded are the committed histories and the outcome each run had. They
// cover the pipeline's three ends: published, refused by the gate, and ended
// early because the data had not changed.
var recorded = []struct {
	file, status string
}{
	{"quickstart.json", workflows.StatusPublished},
	{"gate-refusal.json", workflows.StatusRejected},
	{"unchanged.json", workflows.StatusUnchanged},
}

func quiet() sdklog.Logger { return sdklog.NewStructuredLogger(testmodel.Quiet()) }

// newReplayer registers the pipeline under its name, as the plugin does.
func newReplayer(wf any) worker.WorkflowReplayer {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{Name: workflows.PipelineName})
	return r
}

func loadHistory(t *testing.T, file string) *historypb.History {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "replay", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return h
}

// outcome decodes the recorded run's result from its completion event.
func outcome(t *testing.T, h *historypb.History) workflows.Result {
	t.Helper()
	events := h.GetEvents()
	if len(events) == 0 {
		t.Fatal("empty history")
	}
	last := events[len(events)-1]
	done := last.GetWorkflowExecutionCompletedEventAttributes()
	if last.GetEventType() != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED || done == nil {
		t.Fatalf("history ends with %s, not a completed run", last.GetEventType())
	}
	var res workflows.Result
	if err := converter.GetDefaultDataConverter().FromPayloads(done.GetResult(), &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// TestReplayRecordedHistories replays runs recorded from a real worker
// against today's workflow code: a change that alters the commands the
// workflow issues for one of them fails here (it would break runs in flight;
// docs/architecture.md, "Versioning workflow changes", says what to do).
func TestReplayRecordedHistories(t *testing.T) {
	for _, h := range recorded {
		t.Run(strings.TrimSuffix(h.file, ".json"), func(t *testing.T) {
			hist := loadHistory(t, h.file)
			if res := outcome(t, hist); res.Status != h.status {
				t.Fatalf("recorded run ended %q, want %q", res.Status, h.status)
			}
			for name, wf := range map[string]any{
				"LoRAPipeline": workflows.LoRAPipeline,
				"NewPipeline":  workflows.NewPipeline(workflows.Options{}),
			} {
				if err := newReplayer(wf).ReplayWorkflowHistory(quiet(), hist); err != nil {
					t.Errorf("%s: replay of %s: %v", name, h.file, err)
				}
			}
		})
	}
}

// TestReplayDetectsChangedWorkflow is the control: a workflow that issues
// different commands (one activity, then the end, where the recorded run
// went on to train, evaluate, attest, merge and publish) must not replay the
// recorded history.
func TestReplayDetectsChangedWorkflow(t *testing.T) {
	changed := func(ctx workflow.Context, s spec.Spec) (*workflows.Result, error) {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
		err := workflow.ExecuteActivity(ctx, "Evaluate", s).Get(ctx, nil)
		return &workflows.Result{}, err
	}
	err := newReplayer(changed).ReplayWorkflowHistory(quiet(), loadHistory(t, recorded[0].file))
	if err == nil {
		t.Fatal("a workflow issuing different commands replayed the quickstart history")
	}
	t.Logf("changed workflow refused as expected: %v", err)
}

// TestRecordHistories records the three histories on a Temporal dev server
// with the real plugin (activities included), only with -record.
func TestRecordHistories(t *testing.T) {
	if !*record {
		t.Skip("re-record with: go test ./workflows -run TestRecordHistories -record (see testdata/README.md)")
	}
	srv := testmodel.DevServer(t)
	ws := testmodel.NewWorkspace(t, 10) // only for its signing key
	examples, err := filepath.Abs(filepath.Join("..", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	plugin, err := loraflow.Plugin(loraflow.Config{
		ArtifactRoot: filepath.Join(ws.Dir, "artifacts"),
		SigningKey:   ws.Key,
		RegistryURI:  "file://" + filepath.Join(ws.Dir, "registry"),
		InputRoots:   []string{examples},
		Logger:       testmodel.Quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	const queue = "replay-record"
	w := worker.New(srv.Client(), queue, worker.Options{Plugins: []worker.Plugin{plugin}})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	quickstart, err := spec.Load(filepath.Join(examples, "quickstart", "spec.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The gate refusal: the quickstart with a threshold no adapter meets
	// (and fewer steps, which changes no command the workflow issues).
	refused := *quickstart
	refused.Training.Steps = 10
	refused.Evaluation.MinImprovement = 0.99
	// The unchanged-data run: the quickstart again, after it has published.
	unchanged := *quickstart
	unchanged.SkipIfUnchanged = true

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	for i, s := range []spec.Spec{*quickstart, refused, unchanged} {
		h := recorded[i]
		id := "replay-" + strings.TrimSuffix(h.file, ".json")
		run, err := srv.Client().ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, workflows.PipelineName, s)
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.Result
		if err := run.Get(ctx, &res); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if res.Status != h.status {
			t.Fatalf("%s ended %q (%s), want %q", id, res.Status, res.Reason, h.status)
		}
		var hist historypb.History
		it := srv.Client().GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			hist.Events = append(hist.Events, ev)
		}
		// The format `temporal workflow show --output json` writes and
		// client.HistoryFromJSON reads.
		b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(&hist)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", "replay", h.file), append(b, '\n'), 0o644); err != nil {
			t.Fatal(errors.Join(err, errors.New("run from the workflows folder")))
		}
		t.Logf("recorded %s: %d events, %s", h.file, len(hist.Events), res.Status)
	}
}
