package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loraflow/loraflow/artifact"
)

func TestGCCommand(t *testing.T) {
	root := t.TempDir()
	s, err := artifact.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := s.ScratchDir("x")
	os.WriteFile(filepath.Join(d, "f"), []byte("unreferenced"), 0o644)
	ref, err := s.Commit(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.Path(ref)
	old := time.Now().Add(-30 * 24 * time.Hour)
	os.Chtimes(filepath.Join(p, "f"), old, old)
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		cmd := newRootCmd()
		cmd.SetOut(&out)
		cmd.SetArgs(append([]string{"gc", "--artifact-root", root}, args...))
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	if out := run("--dry-run"); !strings.Contains(out, "would remove object "+ref.SHA256) {
		t.Fatalf("dry run: %s", out)
	}
	if _, err := s.Path(ref); err != nil {
		t.Fatal("the dry run removed the object")
	}
	if out := run(); !strings.Contains(out, "removed 0 work folders and 1 objects") {
		t.Fatalf("gc: %s", out)
	}
	if _, err := s.Path(ref); err == nil {
		t.Fatal("the object is still there")
	}
}
