package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

func fill(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCommitIsContentAddressedAndIdempotent(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var refs []Ref
	for i := 0; i < 2; i++ {
		d, err := s.ScratchDir("x")
		if err != nil {
			t.Fatal(err)
		}
		fill(t, d, map[string]string{"a.txt": "alpha", "sub/b.txt": "beta"})
		ref, err := s.Commit(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Fatalf("scratch dir %s left behind", d)
		}
		refs = append(refs, ref)
	}
	if refs[0] != refs[1] {
		t.Fatalf("equal folders, different refs: %v %v", refs[0], refs[1])
	}
	p, err := s.Path(refs[0])
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(p, "sub/b.txt")); string(b) != "beta" {
		t.Fatal("content lost")
	}
}

func TestDigestDirChangesWithNameOrContent(t *testing.T) {
	ctx := context.Background()
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	fill(t, a, map[string]string{"x": "1", "y": "2"})
	fill(t, b, map[string]string{"x": "1", "z": "2"})
	fill(t, c, map[string]string{"x": "1", "y": "3"})
	da, _ := DigestDir(ctx, a)
	db, _ := DigestDir(ctx, b)
	dc, _ := DigestDir(ctx, c)
	if da == db || da == dc || db == dc {
		t.Fatal("digest ignores names or content")
	}
}

func TestLookupRecordAndTamperDetection(t *testing.T) {
	ctx := context.Background()
	s, _ := Open(t.TempDir())
	if _, ok, err := s.Lookup(ctx, "train", "k1"); ok || err != nil {
		t.Fatalf("empty index found something: %v", err)
	}
	d, _ := s.ScratchDir("x")
	fill(t, d, map[string]string{"w": "weights"})
	ref, _ := s.Commit(ctx, d)
	if err := s.Record("train", "k1", ref); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Lookup(ctx, "train", "k1")
	if !ok || err != nil || got != ref {
		t.Fatalf("lookup = %v %v %v", got, ok, err)
	}
	p, _ := s.Path(ref)
	os.WriteFile(filepath.Join(p, "w"), []byte("tampered"), 0o644)
	if _, ok, _ := s.Lookup(ctx, "train", "k1"); ok {
		t.Fatal("altered artifact returned by lookup")
	}
}

func TestPathRejectsMalformedDigest(t *testing.T) {
	s, _ := Open(t.TempDir())
	if _, err := s.Path(Ref{SHA256: "../../etc"}); err == nil {
		t.Fatal("path traversal accepted")
	}
}

// A file name holding a newline cannot pass for the entries of two files:
// names are escaped as GNU sha256sum escapes them, so the folder {x, y}
// and the folder {"x\n<sha256 of y>  y"} (same content as x) differ.
func TestDigestDirNamesCannotForgeEntries(t *testing.T) {
	ctx := context.Background()
	two, one := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(two, "x"), []byte("first"), 0o644)
	os.WriteFile(filepath.Join(two, "y"), []byte("second"), 0o644)
	sum := sha256.Sum256([]byte("second"))
	forged := "x\n" + hex.EncodeToString(sum[:]) + "  y"
	if err := os.WriteFile(filepath.Join(one, forged), []byte("first"), 0o644); err != nil {
		t.Skipf("this file system refuses a newline in a name: %v", err)
	}
	d2, err := DigestDir(ctx, two)
	if err != nil {
		t.Fatal(err)
	}
	d1, err := DigestDir(ctx, one)
	if err != nil {
		t.Fatal(err)
	}
	if d1 == d2 {
		t.Fatalf("a folder with one file named %q has the digest of the folder {x, y}", forged)
	}
	// The line format itself: provenance.TestManifestLinesAreSha256sums.
}
