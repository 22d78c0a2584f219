package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/loraflow/loraflow"
	"github.com/loraflow/loraflow/internal/testmodel"
	"github.com/loraflow/loraflow/provenance"
	"github.com/loraflow/loraflow/registry"
	"github.com/loraflow/loraflow/spec"
	"github.com/loraflow/loraflow/workflows"
)

// scheduleKeyName is the signing key the fixture's spec names; the test's
// worker declares it (a spec names keys, never key files).
const scheduleKeyName = "sched"

// scheduleSpecFixture writes a tiny base model, a dataset, a signing key and
// a spec publishing to a file registry; it returns the spec and registry paths.
func scheduleSpecFixture(t *testing.T) (specPath, registryDir string) {
	t.Helper()
	ws := testmodel.NewWorkspace(t, 160)
	dir := ws.Dir
	doc := fmt.Sprintf(`name: sched-tiny
base_model: base
dataset: {files: [data.jsonl], format: text, validation_fraction: 0.15, seed: 3}
lora: {r: 4, lora_alpha: 8, target_modules: [q_proj, v_proj]}
training: {steps: 12, batch_size: 8, seq_len: 32, learning_rate: 0.02, warmup_steps: 2, seed: 7}
evaluation: {min_improvement: 0}
merge: false
signing: {key: %s}
registry: {uri: "file://registry"}
carbon: {region: FRA, pue: 1.2}
`, scheduleKeyName)
	specPath = filepath.Join(dir, "spec.yaml")
	if err := os.WriteFile(specPath, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return specPath, filepath.Join(dir, "registry")
}

var startedWorkflowRE = regexp.MustCompile(`started workflow (\S+) \(run (\S+)\)`)

// TestScheduleLifecycle drives every schedule command against the dev
// server with an in-process worker: scheduled runs publish once, then end
// as "unchanged" while dataset and base stay the same.
func TestScheduleLifecycle(t *testing.T) {
	srv := testmodel.DevServer(t)
	specPath, registryDir := scheduleSpecFixture(t)
	const queue = "schedule-test"
	ws := filepath.Dir(specPath)
	plugin, err := loraflow.Plugin(loraflow.Config{ArtifactRoot: filepath.Join(t.TempDir(), "artifacts"), InputRoots: []string{ws},
		SigningKeys: map[string]string{scheduleKeyName: filepath.Join(ws, "keys", provenance.PrivateKeyFile)}, Logger: scheduleLogger()})
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(srv.Client(), queue, worker.Options{Plugins: []worker.Plugin{plugin}})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	conn := []string{"--address", srv.FrontendHostPort()}
	cli := func(args ...string) (string, error) {
		t.Helper()
		return runCLI(t, append(args, conn...)...)
	}
	mustCLI := func(args ...string) string {
		t.Helper()
		out, err := cli(args...)
		if err != nil {
			t.Fatalf("loraflow %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	// create: a cron schedule (Jan 1 only, so it does not fire during the
	// test) and an interval schedule.
	out := mustCLI("schedule", "create", "--spec", specPath, "--id", "nightly", "--cron", "0 3 1 1 *",
		"--catchup-window", "10m", "--note", "retrain on new data", "--task-queue", queue)
	if !strings.Contains(out, "schedule nightly created") || !strings.Contains(out, "next run: ") {
		t.Fatalf("create:\n%s", out)
	}
	if out, err := cli("schedule", "create", "--spec", specPath, "--id", "nightly", "--every", "1h"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("creating an existing ID: %v\n%s", err, out)
	}
	if out, err := cli("schedule", "create", "--spec", specPath, "--id", "bad-cron", "--cron", "61 25 * * *"); err == nil || !strings.Contains(err.Error(), `creating schedule "bad-cron"`) {
		t.Fatalf("an invalid cron expression was accepted: %v\n%s", err, out)
	} else {
		t.Logf("invalid cron: %v", err)
	}
	mustCLI("schedule", "create", "--spec", specPath, "--id", "daily", "--every", "24h", "--pause-on-failure=false", "--task-queue", queue)

	out = mustCLI("schedule", "describe", "nightly")
	for _, want := range []string{"cron:", "0 3 1 1 *", "overlap:", "SKIP", "pause on failure:", "true", "catch-up window:", "10m0s",
		"state:", "active", "note:", "retrain on new data", "LoRAPipeline on task queue " + queue, "skip_if_unchanged true", specPath} {
		if !strings.Contains(out, want) {
			t.Fatalf("describe nightly lacks %q:\n%s", want, out)
		}
	}
	if next := fmt.Sprintf("%d-01-01T03:00:00Z", time.Now().UTC().Year()+1); !strings.Contains(out, next) {
		t.Fatalf("describe nightly does not list the next run %s:\n%s", next, out)
	}
	out = mustCLI("schedule", "describe", "daily")
	if !regexp.MustCompile(`every:\s+24h0m0s`).MatchString(out) || !regexp.MustCompile(`pause on failure:\s+false`).MatchString(out) {
		t.Fatalf("describe daily:\n%s", out)
	}
	// --update replaces timing and policies of an existing schedule, keeping it paused.
	mustCLI("schedule", "pause", "daily")
	if out, err := cli("schedule", "create", "--spec", specPath, "--id", "daily", "--every", "12h"); err == nil || !strings.Contains(err.Error(), "--update replaces it") {
		t.Fatalf("create over an existing schedule: %v\n%s", err, out)
	}
	if out = mustCLI("schedule", "create", "--update", "--spec", specPath, "--id", "daily", "--every", "12h", "--note", "twice a day", "--task-queue", queue); !strings.Contains(out, "schedule daily updated") {
		t.Fatalf("create --update:\n%s", out)
	}
	out = mustCLI("schedule", "describe", "daily")
	if !regexp.MustCompile(`every:\s+12h0m0s\n`).MatchString(out) || strings.Contains(out, "24h") || !regexp.MustCompile(`pause on failure:\s+true`).MatchString(out) ||
		!regexp.MustCompile(`state:\s+paused`).MatchString(out) || !strings.Contains(out, "twice a day") {
		t.Fatalf("describe after create --update:\n%s", out)
	}

	// trigger: the first run trains and publishes version 1.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	runResult := func(out string) (string, workflows.Result) {
		t.Helper()
		m := startedWorkflowRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("trigger did not report a started workflow:\n%s", out)
		}
		var res workflows.Result
		if err := srv.Client().GetWorkflow(ctx, m[1], m[2]).Get(ctx, &res); err != nil {
			t.Fatalf("scheduled run %s: %v", m[1], err)
		}
		return m[1], res
	}
	out = mustCLI("schedule", "trigger", "nightly")
	first := startedWorkflowRE.FindStringSubmatch(out)
	if first == nil || !strings.HasPrefix(first[1], "nightly-") {
		t.Fatalf("trigger: workflow ID not prefixed by the schedule ID:\n%s", out)
	}
	// A trigger while that run is going is skipped (overlap SKIP).
	overlap := mustCLI("schedule", "trigger", "nightly")
	if d, err := srv.Client().DescribeWorkflowExecution(ctx, first[1], first[2]); err == nil &&
		d.GetWorkflowExecutionInfo().GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		if !strings.Contains(overlap, "skipped, the previous run is still going") || !strings.Contains(overlap, first[1]) {
			t.Fatalf("trigger during a run was not skipped:\n%s", overlap)
		}
	} else {
		t.Logf("first run ended before the overlap check; not checked: %s", overlap)
	}
	id1, res1 := runResult(out)
	if res1.Status != workflows.StatusPublished || res1.Publication == nil || res1.Publication.Version != "1" {
		t.Fatalf("first scheduled run: status %s (%s), publication %+v", res1.Status, res1.Reason, res1.Publication)
	}

	// trigger again, nothing changed: the run ends as "unchanged".
	id2, res2 := runResult(mustCLI("schedule", "trigger", "nightly"))
	if res2.Status != workflows.StatusUnchanged || res2.Publication != nil || res2.Train != nil {
		t.Fatalf("second scheduled run: status %s (%s), publication %+v", res2.Status, res2.Reason, res2.Publication)
	}
	reg, err := registry.Open(ctx, "file://"+registryDir)
	if err != nil {
		t.Fatal(err)
	}
	if vs, err := reg.ListVersions(ctx, "sched-tiny"); err != nil || len(vs) != 1 {
		t.Fatalf("registry after an unchanged run: %d versions, %v", len(vs), err)
	}

	// describe lists both runs with their outcome.
	out = mustCLI("schedule", "describe", "nightly")
	if !regexp.MustCompile(regexp.QuoteMeta(id1)+`\s+completed: published sched-tiny version 1`).MatchString(out) ||
		!regexp.MustCompile(regexp.QuoteMeta(id2)+`\s+completed: unchanged`).MatchString(out) {
		t.Fatalf("describe after two runs:\n%s", out)
	}
	t.Logf("overlapping trigger: %s\ndescribe after two runs:\n%s", strings.TrimSpace(overlap), out)

	// list (visibility is eventually consistent: poll).
	deadline := time.Now().Add(15 * time.Second)
	for {
		out = mustCLI("schedule", "list")
		if regexp.MustCompile(`(?m)^nightly\s+active\s+cron 0 3 1 1 \*\s+LoRAPipeline`).MatchString(out) &&
			regexp.MustCompile(`(?m)^daily\s+paused\s+every 12h0m0s\s+LoRAPipeline`).MatchString(out) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("list:\n%s", out)
		}
		time.Sleep(300 * time.Millisecond)
	}

	// A schedule made by another client (no loraflow memo) is described from
	// the server's spec.
	if _, err := srv.Client().ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID: "foreign", Spec: client.ScheduleSpec{CronExpressions: []string{"30 4 * * 1"}},
		Action: &client.ScheduleWorkflowAction{Workflow: "SomethingElse", TaskQueue: "elsewhere"},
	}); err != nil {
		t.Fatal(err)
	}
	out = mustCLI("schedule", "describe", "foreign")
	if !regexp.MustCompile(`calendar:\s+sec=0 min=30 hour=4 dom=1-31 month=1-12 dow=1\n`).MatchString(out) ||
		!strings.Contains(out, "SomethingElse on task queue elsewhere") || strings.Contains(out, "model:") {
		t.Fatalf("describe of a schedule without loraflow's memo:\n%s", out)
	}
	mustCLI("schedule", "delete", "foreign")

	// pause / unpause / delete round trip.
	mustCLI("schedule", "pause", "nightly", "--note", "data freeze")
	out = mustCLI("schedule", "describe", "nightly")
	if !regexp.MustCompile(`state:\s+paused`).MatchString(out) || !strings.Contains(out, "data freeze") {
		t.Fatalf("describe after pause:\n%s", out)
	}
	mustCLI("schedule", "unpause", "nightly")
	if out = mustCLI("schedule", "describe", "nightly"); !regexp.MustCompile(`state:\s+active`).MatchString(out) {
		t.Fatalf("describe after unpause:\n%s", out)
	}
	for _, id := range []string{"nightly", "daily"} {
		mustCLI("schedule", "delete", id)
		if out, err := cli("schedule", "describe", id); err == nil || !strings.Contains(err.Error(), `schedule "`+id+`" not found`) {
			t.Fatalf("describe after delete: %v\n%s", err, out)
		}
	}

	// Unknown IDs are named in the error.
	for _, verb := range []string{"describe", "pause", "unpause", "trigger", "delete"} {
		if out, err := cli("schedule", verb, "no-such-schedule"); err == nil || !strings.Contains(err.Error(), `schedule "no-such-schedule" not found`) {
			t.Errorf("%s of an unknown schedule: %v\n%s", verb, err, out)
		}
	}
}

// TestScheduleCreateRejectsBadArguments needs no server: the arguments are
// checked before anything is dialled.
func TestScheduleCreateRejectsBadArguments(t *testing.T) {
	specPath := filepath.Join(t.TempDir(), "spec.yaml")
	os.WriteFile(specPath, []byte("name: x\n"), 0o644)
	// An address nobody listens on: a command that got past validation would fail to dial, not with these errors.
	conn := []string{"--address", "127.0.0.1:1"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--spec", specPath, "--id", "a"}, "--cron EXPR (repeatable) or --every DURATION"},
		{[]string{"--spec", specPath, "--id", "a", "--cron", "@daily", "--every", "1h"}, "exclude each other"},
		{[]string{"--spec", specPath, "--cron", "@daily"}, "--id is required"},
		{[]string{"--id", "a", "--cron", "@daily"}, "--spec is required"},
		{[]string{"--spec", specPath, "--id", "a", "--every", "-1h"}, "negative"},
		{[]string{"--spec", specPath, "--id", "a", "--every", "100ms"}, "one-second resolution"},
		{[]string{"--spec", specPath, "--id", "a", "--cron", " "}, "expression is empty"},
		{[]string{"--spec", specPath, "--id", "a", "--every", "1h", "--catchup-window", "1s"}, "minimum of 10s"},
		{[]string{"--spec", specPath, "--id", "a", "--every", "soon"}, "invalid argument"},
		{[]string{"--spec", filepath.Join(t.TempDir(), "missing.yaml"), "--id", "a", "--every", "1h"}, "missing.yaml"},
	} {
		out, err := runCLI(t, append(append([]string{"schedule", "create"}, tc.args...), conn...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("create %v: got %v, want an error containing %q\n%s", tc.args, err, tc.want, out)
		}
	}
	if _, err := runCLI(t, "schedule", "describe"); err == nil {
		t.Error("describe without an ID accepted")
	}
}

// TestScheduleOptions checks the schedule create builds, without a server.
func TestScheduleOptions(t *testing.T) {
	o := scheduleCreateOptions{specFile: "/s.yaml", id: "nightly", cron: []string{"0 3 * * *"}, catchupWindow: time.Hour, pauseOnFailure: true, note: "n"}
	so := o.scheduleOptions(spec.Spec{Name: "m"}, "q")
	act := so.Action.(*client.ScheduleWorkflowAction)
	if so.Overlap != enums.SCHEDULE_OVERLAP_POLICY_SKIP || so.CatchupWindow != time.Hour || !so.PauseOnFailure || so.Note != "n" ||
		len(so.Spec.CronExpressions) != 1 || len(so.Spec.Intervals) != 0 || act.Workflow != workflows.PipelineName || act.TaskQueue != "q" || act.ID != "nightly" {
		t.Fatalf("schedule options: %+v, action %+v", so, act)
	}
	if s := act.Args[0].(spec.Spec); !s.SkipIfUnchanged || s.Name != "m" {
		t.Fatalf("scheduled spec: %+v", s)
	}
	o.cron, o.every = nil, 90*time.Minute
	if so = o.scheduleOptions(spec.Spec{Name: "m"}, "q"); len(so.Spec.Intervals) != 1 || so.Spec.Intervals[0].Every != 90*time.Minute || len(so.Spec.CronExpressions) != 0 {
		t.Fatalf("interval schedule: %+v", so.Spec)
	}
	if act = so.Action.(*client.ScheduleWorkflowAction); act.Memo[memoEvery] != "1h30m0s" || act.Memo[memoCron] != nil || so.Memo[memoModel] != "m" {
		t.Fatalf("memo: schedule %v, action %v", so.Memo, act.Memo)
	}
	so.Note = ""
	up := updatedSchedule(client.Schedule{State: &client.ScheduleState{Paused: true, Note: "frozen"}}, so)
	if !up.Schedule.State.Paused || up.Schedule.State.Note != "frozen" || up.Schedule.Spec.Intervals[0].Every != 90*time.Minute ||
		up.Schedule.Policy.Overlap != enums.SCHEDULE_OVERLAP_POLICY_SKIP || up.Schedule.Action != so.Action {
		t.Fatalf("update: %+v", up.Schedule)
	}
}
