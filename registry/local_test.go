package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// makeArtifacts writes a small adapter and eval folder and returns their paths.
func makeArtifacts(t testing.TB, seed string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	adapter := filepath.Join(dir, "adapter")
	eval := filepath.Join(dir, "eval")
	for _, d := range []string{adapter, filepath.Join(adapter, "sub"), eval} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		filepath.Join(adapter, "adapter_config.json"):       `{"peft_type":"LORA","r":8,"seed":"` + seed + `"}`,
		filepath.Join(adapter, "adapter_model.safetensors"): strings.Repeat("w", 4096) + seed,
		filepath.Join(adapter, "sub", "nested.txt"):         "nested " + seed,
		filepath.Join(eval, "report.json"):                  `{"loss":1.5}`,
	}
	for p, c := range files {
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return map[string]string{"adapter": adapter, "eval": eval}
}

func samplePublish(t testing.TB, model, digest string) PublishRequest {
	return PublishRequest{
		ModelName:      model,
		ArtifactDirs:   makeArtifacts(t, digest),
		ArtifactDigest: digest,
		Tags:           map[string]string{"loraflow.base_model": "tiny-llama", "loraflow.workflow_id": "wf-1"},
		Metrics:        map[string]float64{"eval_loss": 1.5, "perplexity": 4.48},
		MetricHistory:  map[string][]MetricPoint{"train_loss": {{Step: 1, Value: 3}, {Step: 2, Value: 2.5}}},
		Params:         map[string]string{"r": "8", "lora_alpha": "16"},
		Datasets:       []Dataset{{Name: "train", Digest: "sha256:d1", Context: "training"}},
		Description:    "test adapter",
	}
}

func TestLocalPublishIsIdempotentAndCopiesArtifacts(t *testing.T) {
	ctx := context.Background()
	reg, err := OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	req := samplePublish(t, "tiny-lora", "sha256:aaa")
	v1, err := reg.Publish(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if v1.Version != "1" || v1.ArtifactDigest != "sha256:aaa" || v1.Description != "test adapter" {
		t.Fatalf("first publish = %+v", v1)
	}
	if v1.Tags[TagArtifactDigest] != "sha256:aaa" || v1.Tags["loraflow.base_model"] != "tiny-llama" {
		t.Errorf("tags = %v", v1.Tags)
	}
	if v1.Metrics["perplexity"] != 4.48 {
		t.Errorf("metrics = %v", v1.Metrics)
	}
	got, err := os.ReadFile(filepath.Join(v1.Artifacts["adapter"], "sub", "nested.txt"))
	if err != nil || string(got) != "nested sha256:aaa" {
		t.Fatalf("copied artifact: %q, %v", got, err)
	}
	// Changing the source after publishing must not change the registry's copy.
	os.WriteFile(filepath.Join(req.ArtifactDirs["adapter"], "sub", "nested.txt"), []byte("changed"), 0o644)

	v1again, err := reg.Publish(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if v1.Existed || !v1again.Existed {
		t.Errorf("Existed: first %v, retry %v", v1.Existed, v1again.Existed)
	}
	if v1again.Version != "1" {
		t.Fatalf("retried publish made version %s, want 1", v1again.Version)
	}
	got, _ = os.ReadFile(filepath.Join(v1.Artifacts["adapter"], "sub", "nested.txt"))
	if string(got) != "nested sha256:aaa" {
		t.Errorf("registry copy changed to %q", got)
	}
	v2, err := reg.Publish(ctx, samplePublish(t, "tiny-lora", "sha256:bbb"))
	if err != nil || v2.Version != "2" {
		t.Fatalf("second artifact: %+v, %v", v2, err)
	}
	list, err := reg.ListVersions(ctx, "tiny-lora")
	if err != nil || len(list) != 2 {
		t.Fatalf("ListVersions = %v, %v", list, err)
	}
	params, metrics, hist, ds, err := reg.RunRecord(ctx, "tiny-lora", "1")
	if err != nil {
		t.Fatal(err)
	}
	if params["r"] != "8" || metrics["eval_loss"] != 1.5 || len(hist["train_loss"]) != 2 || len(ds) != 1 {
		t.Errorf("run record = %v %v %v %v", params, metrics, hist, ds)
	}
	models, err := reg.ListModels(ctx)
	if err != nil || len(models) != 1 || models[0] != "tiny-lora" {
		t.Errorf("ListModels = %v, %v", models, err)
	}
	if _, err := reg.GetVersion(ctx, "tiny-lora", "9"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing version: err = %v, want ErrNotFound", err)
	}
	if _, err := reg.ListVersions(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing model: err = %v, want ErrNotFound", err)
	}
	// Nothing is left in the staging folder.
	if left, _ := os.ReadDir(filepath.Join(reg.Root(), "tmp")); len(left) != 0 {
		t.Errorf("staging left %d entries", len(left))
	}
}

func TestLocalPublishRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	reg, _ := OpenLocal(t.TempDir())
	cases := map[string]PublishRequest{
		"no digest":      {ModelName: "m"},
		"bad model name": {ModelName: "../evil", ArtifactDigest: "sha256:1"},
		"bad digest":     {ModelName: "m", ArtifactDigest: "sha256:../../x"},
		"missing dir":    {ModelName: "m", ArtifactDigest: "sha256:1", ArtifactDirs: map[string]string{"adapter": "/nonexistent/x"}},
		"bad artifact":   {ModelName: "m", ArtifactDigest: "sha256:1", ArtifactDirs: map[string]string{"a/b": t.TempDir()}},
	}
	for name, req := range cases {
		if _, err := reg.Publish(ctx, req); err == nil {
			t.Errorf("%s: publish succeeded", name)
		}
	}
}

func TestLocalAliasesPromoteRollback(t *testing.T) {
	reg, _ := OpenLocal(t.TempDir())
	testPromoteRollback(t, reg)
}

// testPromoteRollback runs the champion/challenger scenario on any Registry.
func testPromoteRollback(t *testing.T, reg Registry) {
	t.Helper()
	ctx := context.Background()
	if _, ok, err := reg.GetByAlias(ctx, "m", AliasChampion); ok || err != nil {
		t.Fatalf("alias of a missing model: ok=%v err=%v", ok, err)
	}
	req := samplePublish(t, "m", "sha256:one")
	req.Alias = AliasChampion
	v1, err := reg.Publish(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !v1.HasAlias(AliasChampion) {
		t.Fatalf("v1 aliases = %v", v1.Aliases)
	}
	// A challenger does not move the champion.
	req2 := samplePublish(t, "m", "sha256:two")
	req2.Alias = AliasChallenger
	v2, err := reg.Publish(ctx, req2)
	if err != nil {
		t.Fatal(err)
	}
	if !v2.HasAlias(AliasChallenger) || v2.HasAlias(AliasChampion) {
		t.Fatalf("v2 aliases = %v", v2.Aliases)
	}
	// Publishing without an alias moves nothing either.
	v3, err := reg.Publish(ctx, samplePublish(t, "m", "sha256:three"))
	if err != nil {
		t.Fatal(err)
	}
	if len(v3.Aliases) != 0 {
		t.Fatalf("v3 aliases = %v", v3.Aliases)
	}
	champ, ok, err := reg.GetByAlias(ctx, "m", AliasChampion)
	if err != nil || !ok || champ.Version != v1.Version {
		t.Fatalf("champion = %+v ok=%v err=%v, want version %s", champ, ok, err, v1.Version)
	}
	if champ.Metrics["eval_loss"] != 1.5 {
		t.Errorf("champion metrics = %v", champ.Metrics)
	}

	res, err := reg.Promote(ctx, "m", v2.Version)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Champion != v2.Version || res.Previous != v1.Version {
		t.Fatalf("promote = %+v", res)
	}
	if _, ok, _ := reg.GetByAlias(ctx, "m", AliasChallenger); ok {
		t.Errorf("challenger alias survived the challenger's promotion")
	}
	prev, ok, _ := reg.GetByAlias(ctx, "m", AliasPreviousChampion)
	if !ok || prev.Version != v1.Version {
		t.Fatalf("previous champion = %+v, %v", prev, ok)
	}
	// Promoting the champion again changes nothing.
	if res, err := reg.Promote(ctx, "m", v2.Version); err != nil || res.Changed {
		t.Fatalf("re-promote = %+v, %v", res, err)
	}
	if _, err := reg.Promote(ctx, "m", "99"); err == nil {
		t.Errorf("promoting a missing version succeeded")
	}

	res, err = reg.Rollback(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	if res.Champion != v1.Version || res.Previous != v2.Version {
		t.Fatalf("rollback = %+v", res)
	}
	champ, _, _ = reg.GetByAlias(ctx, "m", AliasChampion)
	if champ.Version != v1.Version {
		t.Fatalf("after rollback champion = %s, want %s", champ.Version, v1.Version)
	}
	demoted, err := reg.GetVersion(ctx, "m", v2.Version)
	if err != nil || demoted.Tags[TagRolledBack] != "true" {
		t.Errorf("demoted version tags = %v, %v", demoted.Tags, err)
	}
	if _, err := reg.Rollback(ctx, "m"); !errors.Is(err, ErrNoPreviousChampion) {
		t.Errorf("second rollback: err = %v, want ErrNoPreviousChampion", err)
	}

	if err := reg.SetAlias(ctx, "m", "canary", v3.Version); err != nil {
		t.Fatal(err)
	}
	if v, ok, _ := reg.GetByAlias(ctx, "m", "canary"); !ok || v.Version != v3.Version {
		t.Errorf("canary = %+v %v", v, ok)
	}
	if err := reg.DeleteAlias(ctx, "m", "canary"); err != nil {
		t.Fatal(err)
	}
	if err := reg.DeleteAlias(ctx, "m", "canary"); err != nil {
		t.Errorf("deleting a missing alias: %v", err)
	}
	if _, ok, _ := reg.GetByAlias(ctx, "m", "canary"); ok {
		t.Errorf("canary survived DeleteAlias")
	}
	if err := reg.SetAlias(ctx, "m", "canary", "77"); err == nil {
		t.Errorf("alias to a missing version succeeded")
	}
	list, err := reg.ListVersions(ctx, "m")
	if err != nil || len(list) != 3 {
		t.Fatalf("versions = %d, %v", len(list), err)
	}
}

// Helper process for TestLocalConcurrentProcesses.
const helperEnv = "LORAFLOW_REGISTRY_TEST_HELPER"

func TestMain(m *testing.M) {
	if root := os.Getenv(helperEnv); root != "" {
		os.Exit(runHelper(root, os.Getenv(helperEnv+"_ID")))
	}
	os.Exit(m.Run())
}

func runHelper(root, id string) int {
	reg, err := OpenLocal(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	src, err := os.MkdirTemp("", "helper")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(src)
	os.WriteFile(filepath.Join(src, "f"), []byte(id), 0o644)
	digests := concurrentDigests(id)
	for _, d := range digests {
		_, err := reg.Publish(context.Background(), PublishRequest{
			ModelName: "shared", ArtifactDigest: d, ArtifactDirs: map[string]string{"adapter": src},
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

// concurrentDigests: 10 digests every publisher shares, then 5 of its own.
func concurrentDigests(id string) []string {
	var out []string
	for i := range 10 {
		out = append(out, fmt.Sprintf("sha256:shared%d", i))
	}
	for i := range 5 {
		out = append(out, fmt.Sprintf("sha256:own-%s-%d", id, i))
	}
	return out
}

func checkSharedModel(t *testing.T, reg *Local, publishers []string) {
	t.Helper()
	list, err := reg.ListVersions(context.Background(), "shared")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, p := range publishers {
		for _, d := range concurrentDigests(p) {
			want[d] = true
		}
	}
	seenDigest := map[string]string{}
	var nums []int
	for _, v := range list {
		if other, dup := seenDigest[v.ArtifactDigest]; dup {
			t.Errorf("digest %s has two versions: %s and %s", v.ArtifactDigest, other, v.Version)
		}
		seenDigest[v.ArtifactDigest] = v.Version
		n, _ := strconv.Atoi(v.Version)
		nums = append(nums, n)
		if _, err := os.Stat(v.Artifacts["adapter"]); err != nil {
			t.Errorf("version %s artifacts: %v", v.Version, err)
		}
	}
	if len(list) != len(want) {
		t.Errorf("%d versions, want %d (one per distinct digest)", len(list), len(want))
	}
	sort.Ints(nums)
	for i, n := range nums {
		if n != i+1 {
			t.Fatalf("version numbers %v are not 1..%d", nums, len(nums))
		}
	}
	// The document is valid JSON (never torn).
	b, err := os.ReadFile(filepath.Join(reg.Root(), "models", "shared.json"))
	if err != nil || !json.Valid(b) {
		t.Fatalf("model document invalid: %v", err)
	}
}

func TestLocalConcurrentGoroutines(t *testing.T) {
	reg, err := OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644)
	publishers := []string{"g0", "g1", "g2", "g3", "g4", "g5"}
	var wg sync.WaitGroup
	errs := make(chan error, len(publishers)*20)
	for _, id := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each goroutine opens its own handle, as separate workers would.
			r, err := OpenLocal(reg.Root())
			if err != nil {
				errs <- err
				return
			}
			for _, d := range concurrentDigests(id) {
				if _, err := r.Publish(context.Background(), PublishRequest{ModelName: "shared", ArtifactDigest: d, ArtifactDirs: map[string]string{"adapter": src}}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkSharedModel(t, reg, publishers)
}

func TestLocalConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts helper processes")
	}
	root := t.TempDir()
	reg, err := OpenLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	publishers := []string{"p0", "p1", "p2"}
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for _, id := range publishers[:2] {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+root, helperEnv+"_ID="+id)
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		outs = append(outs, out)
	}
	// This process publishes at the same time.
	if code := runHelper(root, publishers[2]); code != 0 {
		t.Errorf("in-process publisher exited %d", code)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper %d: %v\n%s", i, err, outs[i])
		}
	}
	checkSharedModel(t, reg, publishers)
}

func TestOpenURIs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, uri := range []string{"file://" + dir, dir, "file:" + dir} {
		r, err := Open(ctx, uri)
		if err != nil {
			t.Fatalf("Open(%q): %v", uri, err)
		}
		if l, ok := r.(*Local); !ok || l.Root() != dir {
			t.Errorf("Open(%q) = %T %v", uri, r, r.URI())
		}
	}
	r, err := Open(ctx, "http://mlflow.example:5000/prefix?experiment=exp1")
	if err != nil {
		t.Fatal(err)
	}
	m, ok := r.(*MLflow)
	if !ok || m.experiment != "exp1" || m.URI() != "http://mlflow.example:5000/prefix" {
		t.Errorf("Open(http) = %T %+v", r, r.URI())
	}
	if _, err := Open(ctx, "s3://bucket/x"); err == nil {
		t.Errorf("Open(s3://) succeeded")
	}
	t.Setenv(EnvRegistryURI, "file://"+dir)
	if DefaultURI() != "file://"+dir {
		t.Errorf("DefaultURI = %s", DefaultURI())
	}
}
