package provenance

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
)

// TestPathLessIsPurePosixPathOrder sorts names as model_signing sorts its
// resources (src/model_signing/manifest.py: sorted() of File(PurePosixPath)
// keys). The expected order is Python's own, printed by
//
//	python3 -c "from pathlib import PurePosixPath as P; xs=[...]; print([str(p) for p in sorted(P(x) for x in xs)])"
//
// with Python 3.11.7 on the names below.
func TestPathLessIsPurePosixPathOrder(t *testing.T) {
	names := []string{"a-b", "a/b", "a.b", "a", "a/b/c", "ab", "a/b-c", "a/b/c.d", "B", "é", "z/a", "a/é", "a0"}
	want := []string{"B", "a", "a/b", "a/b/c", "a/b/c.d", "a/b-c", "a/é", "a-b", "a.b", "a0", "ab", "z/a", "é"}
	sort.Slice(names, func(i, j int) bool { return PathLess(names[i], names[j]) })
	if !slices.Equal(names, want) {
		t.Errorf("order\n got %q\nwant %q", names, want)
	}
}

// TestHashTreeIgnoresGitPathsAtTheRoot: model_signing's default hashing
// config (src/model_signing/hashing.py, Config.hash with ignore_git_paths
// True) leaves out <model>/.git/, .gitattributes, .github/ and .gitignore,
// the root's only; the same names deeper down are hashed.
func TestHashTreeIgnoresGitPathsAtTheRoot(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{".git/HEAD", ".git/objects/ab/cd", ".gitattributes", ".github/workflows/ci.yml", ".gitignore",
		"model.safetensors", "a-b", "a/b", "sub/.gitignore", "sub/.git/x", ".gitmodules"} {
		p := filepath.Join(dir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	td, err := HashTree(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range td.Files {
		got = append(got, f.Name)
	}
	want := []string{".gitmodules", "a/b", "a-b", "model.safetensors", "sub/.git/x", "sub/.gitignore"}
	if !slices.Equal(got, want) {
		t.Errorf("hashed %q, want %q", got, want)
	}
}

// TestHashFilesIgnoresGitPathsAtTheRoot: an explicit file list gets the same
// ignore rules as a walked folder, because model_signing's file serializer
// (src/model_signing/_serialization/file.py, Serializer.serialize) applies
// should_ignore to each path of files_to_hash as well; so HashFiles of a
// list and HashTree of the folder holding exactly those files agree.
func TestHashFilesIgnoresGitPathsAtTheRoot(t *testing.T) {
	dir := t.TempDir()
	names := []string{".git/HEAD", ".gitattributes", ".github/workflows/ci.yml", ".gitignore", "./.gitignore",
		"model.safetensors", "sub/.gitignore", ".gitmodules"}
	for _, f := range names {
		p := filepath.Join(dir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	listed, err := HashFiles(context.Background(), dir, names)
	if err != nil {
		t.Fatal(err)
	}
	walked, err := HashTree(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range listed.Files {
		got = append(got, f.Name)
	}
	if want := []string{".gitmodules", "model.safetensors", "sub/.gitignore"}; !slices.Equal(got, want) {
		t.Errorf("hashed %q, want %q", got, want)
	}
	if listed.SHA256 != walked.SHA256 {
		t.Errorf("HashFiles %s, HashTree %s of the same files", listed.SHA256, walked.SHA256)
	}
}
