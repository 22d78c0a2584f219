package artifact

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCommitReplacesTornObject: an object of the same digest that no longer
// hashes to it (a crash mid-write before Commit was durable, a bad disk) is
// replaced by the new folder instead of being kept forever.
func TestCommitReplacesTornObject(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	commit := func() Ref {
		d, err := s.ScratchDir("x")
		if err != nil {
			t.Fatal(err)
		}
		fill(t, d, map[string]string{"weights.bin": strings.Repeat("w", 4096), "sub/config.json": "{}"})
		ref, err := s.Commit(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		return ref
	}
	ref := commit()
	p, _ := s.Path(ref)
	if err := os.Truncate(filepath.Join(p, "weights.bin"), 100); err != nil { // torn
		t.Fatal(err)
	}
	if again := commit(); again != ref {
		t.Fatalf("ref changed: %v %v", again, ref)
	}
	if d, err := DigestDir(ctx, p); err != nil || d != ref.SHA256 {
		t.Fatalf("the torn object was kept: digest %s, %v", d, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(s.Root(), "tmp")); len(entries) != 0 {
		t.Fatalf("leftovers in tmp/: %v", entries)
	}
}

// TestCommitSyncsBeforeRename: every file and folder of the artifact is
// fsynced while it is still in its scratch folder, and objects/ after the
// rename.
func TestCommitSyncsBeforeRename(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.ScratchDir("x")
	if err != nil {
		t.Fatal(err)
	}
	fill(t, d, map[string]string{"a": "1", "sub/b": "2", "sub/deeper/c": "3"})
	var synced []string
	real := fsyncPath
	fsyncPath = func(p string) error {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("fsync of %s, which is not there: %v", p, err)
		}
		synced = append(synced, p)
		return real(p)
	}
	defer func() { fsyncPath = real }()
	if _, err := s.Commit(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "sub/b", "sub/deeper/c", "sub/deeper", "sub", "."}
	for i, w := range want {
		want[i] = filepath.Join(d, w)
	}
	want = append(want, filepath.Join(s.Root(), "objects"))
	for _, w := range want {
		if !slices.Contains(synced, w) {
			t.Errorf("%s was not fsynced (synced %v)", w, synced)
		}
	}
	if got := synced[len(synced)-1]; got != filepath.Join(s.Root(), "objects") {
		t.Errorf("last fsync %s, want objects/ after the rename", got)
	}
	// Folders after their contents.
	if slices.Index(synced, filepath.Join(d, "sub")) < slices.Index(synced, filepath.Join(d, "sub/deeper/c")) {
		t.Errorf("a folder was synced before its files: %v", synced)
	}
}

// TestCommitToReadOnlyStoreLeavesNothingUnderAFinalName: a store that
// cannot take the object fails with an error naming the folder, and no
// partial object appears.
func TestCommitToReadOnlyStoreLeavesNothingUnderAFinalName(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores folder permissions")
	}
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d, _ := s.ScratchDir("x")
	fill(t, d, map[string]string{"a": "1"})
	objects := filepath.Join(s.Root(), "objects")
	if err := os.Chmod(objects, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(objects, 0o755)
	if _, err := s.Commit(context.Background(), d); err == nil || !strings.Contains(err.Error(), d) {
		t.Fatalf("err = %v", err)
	}
	if entries, _ := os.ReadDir(objects); len(entries) != 0 {
		t.Fatalf("objects/ holds %v after a failed commit", entries)
	}
}
