package safetensors

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/loraflow/loraflow/internal/safeio"
)

// MaxIndexSize is the largest model.safetensors.index.json accepted. The
// index of a 405B-parameter checkpoint is about 2 MB; the bound keeps a
// hostile index from being read into memory whole.
const MaxIndexSize = 64 << 20

// openRegular opens path and refuses anything but a regular file before a
// byte is read (see safeio.OpenRegular): a FIFO, a device or a folder is a
// format error naming the file.
func openRegular(path string) (*os.File, os.FileInfo, error) {
	fh, st, err := safeio.OpenRegular(path)
	return fh, st, wrapIOErr(path, err)
}

// readBounded reads a whole regular file of at most limit bytes; the size is
// checked before anything is allocated.
func readBounded(path string, limit int64) ([]byte, error) {
	b, err := safeio.ReadFile(path, limit)
	return b, wrapIOErr(path, err)
}

func wrapIOErr(path string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, safeio.ErrNotRegular), errors.Is(err, safeio.ErrTooLarge):
		return &FormatError{File: path, Msg: strings.TrimPrefix(err.Error(), path+": ")}
	default:
		return fmt.Errorf("safetensors: open: %w", err)
	}
}
