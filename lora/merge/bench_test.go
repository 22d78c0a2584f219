package merge

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/loraflow/loraflow/internal/fixtures"
	"github.com/loraflow/loraflow/lora/safetensors"
)

var quiet = slog.New(slog.DiscardHandler)

// BenchmarkMerge compares merging a rank-16 q/v adapter into a ~128 MB BF16
// checkpoint (3 shards) with a plain copy of the same files. The target is
// merge ≤ 2× copy; the bench command (loraflow merge-bench) measures larger
// checkpoints and peak RSS.
func BenchmarkMerge(b *testing.B) {
	dir := b.TempDir()
	base := filepath.Join(dir, "base")
	a, err := fixtures.SyntheticCheckpoint(base, 128<<20, 48<<20, safetensors.BF16, 16, false, 1)
	if err != nil {
		b.Fatal(err)
	}
	var size int64
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		info, _ := e.Info()
		size += info.Size()
	}
	b.Run("copy", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; b.Loop(); i++ {
			out := filepath.Join(dir, "copy")
			os.RemoveAll(out)
			os.MkdirAll(out, 0o755)
			if _, err := copyTree(context.Background(), base, out, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, nosync := range []bool{false, true} {
		name := "merge"
		if nosync {
			name = "merge-nosync"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			for i := 0; b.Loop(); i++ {
				if _, err := Merge(context.Background(), base, filepath.Join(dir, "merged"), Options{Adapters: []Weighted{{Adapter: a, Weight: 1}}, SafeMerge: true, Overwrite: true, NoSync: nosync, Logger: quiet}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
