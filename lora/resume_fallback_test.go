package lora

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/loraflow/loraflow/lora/safetensors"
)

// captureSlog sends the default logger to a buffer for one test.
func captureSlog(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return &buf
}

// interruptedAt3 trains resumeSetup's run until step 5 and returns its
// checkpoint folder, which then holds step-000003 only.
func interruptedAt3(t *testing.T, m *Model) TrainConfig {
	t.Helper()
	pc, tc, data := resumeSetup()
	tc.CheckpointDir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, _, err := Train(ctx, m, pc, tc, data, func(p Progress) {
		if p.Step == 5 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	return tc
}

// TestLatestNamingAMissingCheckpointFallsBack: when LATEST names a folder
// that is gone (two writers once left it so) or damaged, the resume uses the
// newest intact checkpoint with a warning, skips damaged newer ones, and
// ends with the uninterrupted run's adapter bytes, instead of failing as
// CorruptCheckpoint.
func TestLatestNamingAMissingCheckpointFallsBack(t *testing.T) {
	m := newTiny(t, tinyLlamaConfig(), 8)
	pc, tc, data := resumeSetup()
	want, _, err := Train(context.Background(), m, pc, tc, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		damage func(dir string)
		warn   string
	}{
		{"LATEST names a missing folder", func(dir string) {
			os.WriteFile(filepath.Join(dir, latestFile), []byte("step-000006\n"), 0o644)
		}, "LATEST names step-000006, which is not an intact checkpoint"},
		{"newer folder torn, LATEST gone", func(dir string) {
			os.Remove(filepath.Join(dir, latestFile))
			torn := filepath.Join(dir, "step-000009")
			os.Mkdir(torn, 0o755)
			os.WriteFile(filepath.Join(torn, stateFile), []byte("\x10\x00\x00\x00\x00\x00\x00\x00{"), 0o644)
		}, ""},
		{"LATEST garbage", func(dir string) {
			os.WriteFile(filepath.Join(dir, latestFile), []byte("../../etc\n"), 0o644)
		}, `not a step-NNNNNN folder`},
	} {
		t.Run(c.name, func(t *testing.T) {
			logs := captureSlog(t)
			run := interruptedAt3(t, m)
			c.damage(run.CheckpointDir)
			if got, err := LatestCheckpoint(run.CheckpointDir); err != nil || filepath.Base(got) != "step-000003" {
				t.Fatalf("LatestCheckpoint = %q, %v; want step-000003", got, err)
			}
			a, res, err := Train(context.Background(), m, pc, run, data, nil)
			if err != nil {
				t.Fatalf("resume: %v", err)
			}
			if res.ResumedFromStep != 3 {
				t.Errorf("resumed from step %d, want 3", res.ResumedFromStep)
			}
			if !bytes.Equal(adapterBytes(t, a), adapterBytes(t, want)) {
				t.Error("the resumed adapter differs from the uninterrupted run's")
			}
			if c.warn != "" && !strings.Contains(logs.String(), c.warn) {
				t.Errorf("no warning saying %q in the log:\n%s", c.warn, logs)
			}
		})
	}
}

// TestResumeRefusesImpossibleRunState: run state that cannot belong to this
// run (a step beyond its steps, losses that do not match) is refused as
// CorruptCheckpoint naming the file, before its tensors are read.
func TestResumeRefusesImpossibleRunState(t *testing.T) {
	m := newTiny(t, tinyLlamaConfig(), 8)
	pc, _, data := resumeSetup()
	run := interruptedAt3(t, m)
	path := filepath.Join(run.CheckpointDir, "step-000003", stateFile)
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	meta := f.Metadata()
	var ts []safetensors.Tensor
	for _, ti := range f.Infos() {
		b, _ := f.Bytes(ti.Name)
		ts = append(ts, safetensors.Tensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: append([]byte(nil), b...)})
	}
	f.Close()
	meta[stateMetaKey] = strings.Replace(meta[stateMetaKey], `"step":3`, `"step":99`, 1)
	if err := safetensors.WriteFile(path, ts, meta); err != nil {
		t.Fatal(err)
	}
	_, _, err = Train(context.Background(), m, pc, run, data, nil)
	if !isKind(err, KindCorruptCheckpoint) || !strings.Contains(err.Error(), "step 99 of 10, but this run has 10 steps") || !strings.Contains(err.Error(), path) {
		t.Fatalf("Train = %v", err)
	}
}

// TestResumeOnOtherNumericsWarns: a checkpoint records the BLAS backend and
// thread split; resuming it under another is allowed (the run is correct,
// steps are not thrown away) with a warning that names both.
func TestResumeOnOtherNumericsWarns(t *testing.T) {
	m := newTiny(t, tinyLlamaConfig(), 8)
	pc, _, data := resumeSetup()
	run := interruptedAt3(t, m)
	prev := splitParts
	splitParts = prev + 1
	defer func() { splitParts = prev }()
	logs := captureSlog(t)
	if _, res, err := Train(context.Background(), m, pc, run, data, nil); err != nil || res.ResumedFromStep != 3 {
		t.Fatalf("resume on other numerics: %+v, %v", res, err)
	}
	if !strings.Contains(logs.String(), "another BLAS backend or thread split") || !strings.Contains(logs.String(), "split="+strconv.Itoa(prev)) {
		t.Errorf("no warning naming both fingerprints:\n%s", logs)
	}
}
