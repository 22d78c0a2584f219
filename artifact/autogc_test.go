package artifact

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"io"
	"log/slog"
)

// TestAfterRunCollectsBoundedAndThrottled: AfterRun removes an old unheld
// work folder; a second call within MinInterval does nothing (also from
// another Store on the same root, as another worker would be), and
// Disabled turns it off.
func TestAfterRunCollectsBoundedAndThrottled(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	old := func(name string) string {
		dir := filepath.Join(root, "work", "train", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "LATEST"), []byte("step-000001\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		past := time.Now().Add(-48 * time.Hour)
		for _, p := range []string{filepath.Join(dir, "LATEST"), dir} {
			if err := os.Chtimes(p, past, past); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	s.SetAutoGC(AutoGCOptions{Disabled: true, OlderThan: time.Hour})
	first := old("a")
	if _, ran := s.AfterRun(context.Background(), quiet); ran {
		t.Fatal("disabled automatic gc ran")
	}
	s.SetAutoGC(AutoGCOptions{OlderThan: time.Hour})
	rep, ran := s.AfterRun(context.Background(), quiet)
	if !ran || len(rep.WorkDirs) != 1 || rep.WorkDirs[0] != first {
		t.Fatalf("AfterRun = %+v, %v; want the old work folder removed", rep, ran)
	}
	if _, err := os.Stat(first); !os.IsNotExist(err) {
		t.Fatalf("old work folder still there: %v", err)
	}
	second := old("b")
	other, _ := Open(root)
	other.SetAutoGC(AutoGCOptions{OlderThan: time.Hour})
	if _, ran := other.AfterRun(context.Background(), quiet); ran {
		t.Fatal("a second collection within MinInterval ran")
	}
	if _, err := os.Stat(second); err != nil {
		t.Fatal(err)
	}
	other.SetAutoGC(AutoGCOptions{OlderThan: time.Hour, MinInterval: time.Nanosecond})
	if rep, ran := other.AfterRun(context.Background(), quiet); !ran || len(rep.WorkDirs) != 1 {
		t.Fatalf("after the interval: %+v, %v", rep, ran)
	}
}
