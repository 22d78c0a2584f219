package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os/exec"
	"testing"
)

// The folder digest is the sha256 of what `sha256sum` prints for the sorted
// files, so anyone can recompute it with coreutils. "a/b" and "a-b" sort
// differently byte-wise ('-' < '/') and component-wise (model_signing's
// order, which provenance.HashTree returns): the store digest keeps
// sha256sum's LC_ALL=C order.
func TestDigestMatchesSha256sum(t *testing.T) {
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Skip("sha256sum not installed")
	}
	for _, files := range []map[string]string{
		{"b.bin": "two", "a.txt": "one", "sub/c": "three"},
		{"a/b": "one", "a-b": "two", "a.c": "three"},
	} {
		dir := t.TempDir()
		fill(t, dir, files)
		cmd := exec.Command("sh", "-c", "find . -type f | sed 's|^\\./||' | LC_ALL=C sort | xargs sha256sum")
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(out)
		got, err := DigestDir(context.Background(), dir)
		if err != nil || got != hex.EncodeToString(sum[:]) {
			t.Fatalf("digest %s (%v), sha256sum manifest digest %x\n%s", got, err, sum, out)
		}
	}
}
