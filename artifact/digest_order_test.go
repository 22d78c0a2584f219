package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os/exec"
	"testing"
)

// "a/b" and "a-b" sort differently byte-wise ('-' < '/') and component-wise
// (model_signing's order, which provenance.HashTree returns); the store
// digest stays the sha256sum of LC_ALL=C-sorted files.
func TestDigestDirSortsNamesByteWise(t *testing.T) {
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Skip("sha256sum not installed")
	}
	dir := t.TempDir()
	fill(t, dir, map[string]string{"a/b": "one", "a-b": "two", "a.c": "three"})
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
