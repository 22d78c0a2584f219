// Package atomicfile writes files so that readers see the old content or
// the new, never a part: a temporary file in the same folder, fsynced,
// then renamed over the target. It depends on the standard library only,
// so every package of the module (the engine included) may use it.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Create opens a new temporary file beside path, for Commit to move into
// place once written.
func Create(path string) (*os.File, error) {
	return os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
}

// Commit gives tmp mode 0644, fsyncs and closes it, renames it over path
// and fsyncs the folder (best effort). On failure tmp is removed.
func Commit(tmp *os.File, path string) error {
	name := tmp.Name()
	err := tmp.Chmod(0o644)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		_ = os.Remove(name)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_ = Sync(filepath.Dir(path)) // best effort: the file itself is durable
	return nil
}

// WriteFile atomically replaces path with data, with mode 0644.
func WriteFile(path string, data []byte) error {
	tmp, err := Create(path)
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return Commit(tmp, path)
}
