package fscopy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func tree(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "sub", "empty"), 0o755)
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("aa"), 0o644)
	os.WriteFile(filepath.Join(src, "sub", "b.txt"), []byte("bbb"), 0o644)
	if err := os.Symlink(filepath.Join(src, "a.txt"), filepath.Join(src, "link.txt")); err != nil {
		t.Fatal(err)
	}
	return src
}

func TestTree(t *testing.T) {
	src := tree(t)
	dst := filepath.Join(t.TempDir(), "out")
	n, err := Tree(context.Background(), src, dst, Options{Skip: func(rel string) bool { return rel == filepath.Join("sub", "b.txt") }, Sync: true})
	if err != nil || n != 4 {
		t.Fatalf("copied %d bytes, %v; want 4 (a.txt and the link's target, b.txt skipped)", n, err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "link.txt")); err != nil || string(b) != "aa" {
		t.Errorf("link.txt: %q %v", b, err)
	}
	if fi, err := os.Lstat(filepath.Join(dst, "link.txt")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("link not copied as a regular file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "sub", "b.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("skipped file copied: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "sub", "empty")); err != nil || !fi.IsDir() {
		t.Errorf("empty folder: %v", err)
	}
	// Overwrite by default, refused with Exclusive.
	if _, err := Tree(context.Background(), src, dst, Options{}); err != nil {
		t.Errorf("second copy: %v", err)
	}
	if _, err := Tree(context.Background(), src, dst, Options{Exclusive: true}); !errors.Is(err, os.ErrExist) {
		t.Errorf("exclusive copy over existing files: %v", err)
	}
}

func TestTreeSingleFileAndRefusals(t *testing.T) {
	src := tree(t)
	dst := filepath.Join(t.TempDir(), "x", "y", "a.txt")
	if n, err := Tree(context.Background(), filepath.Join(src, "a.txt"), dst, Options{}); err != nil || n != 2 {
		t.Fatalf("single file: %d %v", n, err)
	}
	os.Symlink(filepath.Join(src, "sub"), filepath.Join(src, "dirlink"))
	out := t.TempDir()
	if _, err := Tree(context.Background(), src, out, Options{RefuseIrregular: true}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("link to a folder with RefuseIrregular: %v", err)
	}
	out = t.TempDir()
	if _, err := Tree(context.Background(), src, out, Options{}); err != nil {
		t.Errorf("link to a folder: %v", err)
	} else if fi, err := os.Stat(filepath.Join(out, "dirlink")); err != nil || !fi.IsDir() {
		t.Errorf("link to a folder not an (empty) folder: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Tree(ctx, src, t.TempDir(), Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled copy: %v", err)
	}
}
