package provenance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Issue: "%s  %s\n" lines let a file name holding a newline forge a second
// line, so two different trees had one digest. ManifestDigest escapes such
// names as GNU sha256sum does, and equals sha256 of sha256sum's own output.
func TestManifestDigestNewlineNameDoesNotCollide(t *testing.T) {
	ctx := context.Background()
	x, y := "content of x", "content of y"
	hy := sha256.Sum256([]byte(y))

	one := t.TempDir() // two files, x and y
	os.WriteFile(filepath.Join(one, "x"), []byte(x), 0o644)
	os.WriteFile(filepath.Join(one, "y"), []byte(y), 0o644)
	two := t.TempDir() // one file whose name forges y's line after x's
	// Under the old lines, tree one is "<hx>  x\n<hy>  y\n". A file in tree
	// two named "x\n<hy>  y" with x's content printed "<hx>  x\n<hy>  y\n" too.
	os.WriteFile(filepath.Join(two, "x\n"+hex.EncodeToString(hy[:])+"  y"), []byte(x), 0o644)
	t1, err := HashTree(ctx, one)
	if err != nil {
		t.Fatal(err)
	}
	t2, err := HashTree(ctx, two)
	if err != nil {
		t.Fatal(err)
	}
	if ManifestDigest(t1.Files) == ManifestDigest(t2.Files) {
		t.Fatal("a newline in a file name forges another tree's digest")
	}

	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Skip("sha256sum not installed")
	}
	for _, dir := range []string{one, two} {
		td, _ := HashTree(ctx, dir)
		args := []string{"--"}
		for _, f := range td.Files { // byte order, as LC_ALL=C sort
			args = append(args, f.Name)
		}
		cmd := exec.Command("sha256sum", args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(out)
		if got := ManifestDigest(td.Files); got != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: ManifestDigest %s, sha256 of sha256sum's output %x\n%q", dir, got, sum, out)
		}
	}
}
