package provenance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHashTreeMatchesDirectHashing(t *testing.T) {
	dir := t.TempDir()
	contents := map[string][]byte{
		"b.safetensors":     randomBytes(5, 5*ChunkSize+123), // several chunks and a partial one
		"a/config.json":     []byte(`{"x":1}`),
		"a/z/deep.bin":      randomBytes(6, ChunkSize), // exactly one chunk
		"empty.txt":         {},
		"tokenizer.json":    []byte("{}"),
		"c d/with space.md": []byte("hi"),
	}
	for n, b := range contents {
		writeFile(t, filepath.Join(dir, filepath.FromSlash(n)), b)
	}
	if err := os.MkdirAll(filepath.Join(dir, "empty-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	td, err := HashTree(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	wantOrder := []string{"a/config.json", "a/z/deep.bin", "b.safetensors", "c d/with space.md", "empty.txt", "tokenizer.json"}
	if len(td.Files) != len(wantOrder) {
		t.Fatalf("files %+v", td.Files)
	}
	root := sha256.New()
	var total int64
	for i, f := range td.Files {
		if f.Name != wantOrder[i] {
			t.Fatalf("file %d is %s, want %s", i, f.Name, wantOrder[i])
		}
		sum := sha256.Sum256(contents[f.Name])
		if f.SHA256 != hex.EncodeToString(sum[:]) || f.Size != int64(len(contents[f.Name])) {
			t.Fatalf("%s: %s (%d bytes), want %x", f.Name, f.SHA256, f.Size, sum)
		}
		root.Write(sum[:])
		total += f.Size
	}
	if td.SHA256 != hex.EncodeToString(root.Sum(nil)) || td.Bytes != total {
		t.Fatalf("folder digest %s, want %x", td.SHA256, root.Sum(nil))
	}
	// model_signing's root digest of a single empty file: sha256(sha256("")).
	e := sha256.Sum256(nil)
	ee := sha256.Sum256(e[:])
	if got := FolderDigest([]FileDigest{{Name: "f", SHA256: hex.EncodeToString(e[:])}}); got != hex.EncodeToString(ee[:]) {
		t.Fatalf("FolderDigest %s", got)
	}
}

func TestHashTreeRefusesSymlinksAndHonoursCancel(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "model.safetensors"), randomBytes(1, 4*ChunkSize))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := HashTree(ctx, dir); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled hash: %v", err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := HashTree(context.Background(), dir); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("symlink: %v", err)
	}
}

// Ordinary names hash exactly as `sha256sum` prints them; names with a
// backslash, newline or carriage return are escaped as it escapes them (the
// folder-level test is artifact.TestDigestDirNamesCannotForgeEntries).
func TestManifestLinesAreSha256sums(t *testing.T) {
	if got, want := sha256sumLine("ab", "dir/f.json"), "ab  dir/f.json\n"; got != want {
		t.Errorf("plain line %q, want %q", got, want)
	}
	if got, want := sha256sumLine("ab", "a\\b\nc"), "\\ab  a\\\\b\\nc\n"; got != want {
		t.Errorf("escaped line %q, want %q", got, want)
	}
}
