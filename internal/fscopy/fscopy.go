// Package fscopy copies files and folder trees, following symbolic links to
// regular files, for the artifact moves of the pipeline (registry staging,
// the unchanged files of a merge, a remote trainer's output).
package fscopy

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Options say how a copy treats what it finds and what it writes.
type Options struct {
	// Skip, when set, leaves out the regular files it reports (by path
	// relative to the source folder).
	Skip func(rel string) bool
	// Exclusive refuses to replace an existing file (O_EXCL); otherwise an
	// existing file is truncated and overwritten.
	Exclusive bool
	// Sync fsyncs each file written.
	Sync bool
	// RefuseIrregular makes a file that is not regular after links are
	// followed (a device, a socket, a link to a folder) an error; otherwise it
	// is left out (a link to a folder becomes an empty folder).
	RefuseIrregular bool
}

// Tree copies src into dst and returns the bytes copied. A folder's files
// and folders are copied under dst (created if missing); a single file is
// copied to dst itself, its parent folders created. ctx is checked between
// files.
func Tree(ctx context.Context, src, dst string, o Options) (int64, error) {
	info, err := os.Stat(src)
	if err != nil {
		return 0, err
	}
	if !info.IsDir() {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return 0, err
		}
		return File(src, dst, o)
	}
	var total int64
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		st, err := os.Stat(path) // follows links
		if err != nil {
			return err
		}
		switch {
		case st.Mode().IsRegular():
			if o.Skip != nil && o.Skip(rel) {
				return nil
			}
			n, err := File(path, target, o)
			total += n
			return err
		case o.RefuseIrregular:
			return fmt.Errorf("copy %s: not a regular file", path)
		case st.IsDir():
			return os.MkdirAll(target, 0o755)
		}
		return nil
	})
	return total, err
}

// File copies the file src to dst and returns the bytes copied.
func File(src, dst string, o Options) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	flag := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if o.Exclusive {
		flag = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	}
	out, err := os.OpenFile(dst, flag, 0o644)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, in) // copy_file_range on Linux
	if err != nil {
		out.Close()
		return n, fmt.Errorf("copy %s: %w", src, err)
	}
	if o.Sync {
		if err := out.Sync(); err != nil {
			out.Close()
			return n, fmt.Errorf("sync %s: %w", dst, err)
		}
	}
	return n, out.Close()
}
