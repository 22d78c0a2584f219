package dataset

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/loraflow/loraflow/internal/safeio"
)

// Default limits on dataset input (Options may lower or raise them). They
// bound what one file, one row and one run can make the worker allocate:
// a file is read whole (and held about three times while it is parsed), a
// row is decoded on its own.
const (
	DefaultMaxFileBytes = 2 << 30    // one dataset file
	DefaultMaxLineBytes = 4 << 20    // one JSONL line, CSV record or text paragraph (128k tokens are about 512 KiB)
	DefaultMaxRows      = 10_000_000 // rows over all files
)

func (o Options) maxFileBytes() int64 { return positiveOr(o.MaxFileBytes, DefaultMaxFileBytes) }
func (o Options) maxLineBytes() int64 { return positiveOr(o.MaxLineBytes, DefaultMaxLineBytes) }
func (o Options) maxRows() int64      { return positiveOr(int64(o.MaxRows), DefaultMaxRows) }

func positiveOr(v, def int64) int64 {
	if v > 0 {
		return v
	}
	return def
}

// readInput reads one dataset file with its type and size checked first: a
// FIFO (which would block for ever), a device such as /dev/zero (which never
// ends), a folder or a symlink loop is invalid data, refused at once and not
// retried; a file over the limit is refused unread.
func readInput(path string, limit int64) ([]byte, error) {
	b, err := safeio.ReadFile(path, limit)
	switch {
	case err == nil:
		return b, nil
	case errors.Is(err, safeio.ErrNotRegular), errors.Is(err, syscall.ELOOP):
		return nil, fmt.Errorf("dataset: %w: %v", ErrInvalid, err)
	case errors.Is(err, safeio.ErrTooLarge):
		return nil, fmt.Errorf("dataset: %w: %v (Options.MaxFileBytes)", ErrInvalid, err)
	}
	return nil, fmt.Errorf("dataset: %w", err)
}

// checkRowText refuses a row's raw text that is over the line limit, not
// valid UTF-8 (it would be trained on as U+FFFD replacement characters) or
// holds a NUL byte. The reason names the byte offset within the row.
func checkRowText(text []byte, limit int64) error {
	if int64(len(text)) > limit {
		return fmt.Errorf("row is %d bytes, over the %d-byte limit (Options.MaxLineBytes)", len(text), limit)
	}
	if i := bytes.IndexByte(text, 0); i >= 0 {
		return fmt.Errorf("NUL byte at byte %d", i)
	}
	if !utf8.Valid(text) {
		i := 0
		for i < len(text) {
			r, n := utf8.DecodeRune(text[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		return fmt.Errorf("invalid UTF-8 at byte %d", i)
	}
	return nil
}

// checkRecord applies checkRowText to a CSV record's fields together.
func checkRecord(rec []string, limit int64) error {
	var n int64
	for _, f := range rec {
		n += int64(len(f))
	}
	if n > limit {
		return fmt.Errorf("row is %d bytes, over the %d-byte limit (Options.MaxLineBytes)", n, limit)
	}
	for i, f := range rec {
		if err := checkRowText([]byte(f), limit); err != nil {
			return fmt.Errorf("field %d: %w", i+1, err)
		}
	}
	return nil
}

// checkDecoded refuses a decoded row whose strings hold a NUL character
// (written as the JSON escape \u0000, which the raw-text check cannot see),
// naming the field.
func checkDecoded(fields map[string]any) error {
	var walk func(name string, v any) error
	walk = func(name string, v any) error {
		switch x := v.(type) {
		case string:
			if strings.IndexByte(x, 0) >= 0 {
				return fmt.Errorf("field %q holds a NUL character", name)
			}
		case []any:
			for i, y := range x {
				if err := walk(fmt.Sprintf("%s[%d]", name, i), y); err != nil {
					return err
				}
			}
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(x)) { // sorted: the reason goes into the manifest, whose bytes are digested
				if err := walk(name+"."+k, x[k]); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if err := walk(k, fields[k]); err != nil {
			return err
		}
	}
	return nil
}
