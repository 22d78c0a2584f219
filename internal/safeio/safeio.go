// Package safeio opens and reads untrusted input files with their size and
// type checked before anything is read or allocated: a FIFO would block a
// plain open forever, a device such as /dev/zero never ends, and a file's
// claimed size must not decide an allocation before it is bounded.
package safeio

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// ErrNotRegular is matched (errors.Is) when a path is a FIFO, a device, a
// socket or a folder.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is matched (errors.Is) when a file is over its limit.
var ErrTooLarge = errors.New("file too large")

// OpenRegular opens path read-only and refuses anything but a regular file
// (symlinks are followed: which targets are allowed is the caller's policy).
// O_NONBLOCK keeps the open from blocking on a FIFO; it has no effect on a
// regular file's reads.
func OpenRegular(path string) (*os.File, os.FileInfo, error) {
	fh, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		fh.Close()
		kind := "folder"
		if !st.IsDir() {
			kind = st.Mode().Type().String()
		}
		return nil, nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, kind)
	}
	return fh, st, nil
}

// ReadFile reads the whole regular file at path, refusing it unread when it
// is over limit bytes; a file that grows while it is read is refused too.
func ReadFile(path string, limit int64) ([]byte, error) {
	fh, st, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	if st.Size() > limit {
		return nil, fmt.Errorf("%s: %w: %d bytes, over the %d-byte limit", path, ErrTooLarge, st.Size(), limit)
	}
	b := make([]byte, 0, st.Size()+1)
	b, err = readAllInto(b, io.LimitReader(fh, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: %w: grew past the %d-byte limit while read", path, ErrTooLarge, limit)
	}
	return b, nil
}

func readAllInto(b []byte, r io.Reader) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}
