package artifact

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// age sets the modification time of p and everything under it to d ago.
func age(t *testing.T, p string, d time.Duration) {
	t.Helper()
	when := time.Now().Add(-d)
	err := filepath.WalkDir(p, func(q string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(q, when, when)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestGCRemovesOnlyOldUnheldUnreferenced(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	obj := func(body string) Ref {
		d, _ := s.ScratchDir("x")
		fill(t, d, map[string]string{"f": body})
		ref, err := s.Commit(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		return ref
	}
	indexed, byOldWork, unreferenced, recent, byHeldWork := obj("a"), obj("b"), obj("c"), obj("d"), obj("e")
	if err := s.Record("PrepareData", "k", indexed); err != nil {
		t.Fatal(err)
	}
	work := func(key string, names Ref) string {
		d, err := s.WorkDir("train", key)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(map[string]any{"Adapter": names})
		if err := WriteFileAtomic(filepath.Join(d, "train_result.json"), b); err != nil {
			t.Fatal(err)
		}
		return d
	}
	oldWork, heldWork := work("old", byOldWork), work("held", byHeldWork)
	newWork := work("new", recent)
	held, err := s.LockWorkDir("train", "held", "a running attempt")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	for _, p := range []string{oldWork, heldWork, filepath.Join(s.Root(), "objects")} {
		age(t, p, 30*24*time.Hour)
	}
	p, _ := s.Path(recent)
	age(t, p, time.Hour)
	_ = newWork

	dry, err := s.GC(ctx, GCOptions{OlderThan: 7 * 24 * time.Hour, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.GC(ctx, GCOptions{OlderThan: 7 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dry.WorkDirs, rep.WorkDirs) || !slices.Equal(dry.Objects, rep.Objects) {
		t.Fatalf("dry run %+v differs from the run %+v", dry, rep)
	}
	if !slices.Equal(rep.WorkDirs, []string{oldWork}) {
		t.Errorf("work folders removed %v, want only %s", rep.WorkDirs, oldWork)
	}
	for _, gone := range []Ref{byOldWork, unreferenced} {
		if _, err := s.Path(gone); err == nil {
			t.Errorf("object %s kept", gone.SHA256[:8])
		}
	}
	for _, kept := range []Ref{indexed, recent, byHeldWork} {
		if _, err := s.Path(kept); err != nil {
			t.Errorf("object %s removed: %v", kept.SHA256[:8], err)
		}
	}
	if len(rep.Objects) != 2 || rep.Bytes == 0 {
		t.Errorf("report %+v", rep)
	}
	if _, err := os.Stat(heldWork); err != nil {
		t.Errorf("a held work folder was removed: %v", err)
	}
}
