package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Sync fsyncs the file or folder at path. A folder that the filesystem
// cannot fsync (EINVAL, as some do) is not an error.
func Sync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if st, serr := os.Stat(path); serr == nil && st.IsDir() && errors.Is(err, os.ErrInvalid) {
			return nil
		}
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return nil
}

// SyncTree fsyncs every regular file under dir, then every folder, deepest
// first, so that the bytes and the names are on disk before dir is renamed
// or named elsewhere. sync is Sync when nil (a test may watch the order).
func SyncTree(dir string, sync func(path string) error) error {
	if sync == nil {
		sync = Sync
	}
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			dirs = append(dirs, p)
		case d.Type().IsRegular():
			return sync(p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := sync(dirs[i]); err != nil {
			return err
		}
	}
	return nil
}
